import AlgateRewrite
import Foundation
import Synchronization

/// The external captures in `<repo>/../shared/corpus` (see its SOURCES.md), read with tshark at test time.
///
/// Nothing here is copied into the repository: when the folder or tshark is missing, the tests that need them are
/// skipped with a message saying which.
enum Corpus {
    /// `<repo>/../shared/corpus`, found from this file's own path (`<repo>/Tests/AlgateRewriteTests/…`).
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // AlgateRewriteTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the repository
        .deletingLastPathComponent()
        .appendingPathComponent("shared/corpus", isDirectory: true)

    static let ftpDirectory = directory.appendingPathComponent("ftp", isDirectory: true)

    static var hasFTPCaptures: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: ftpDirectory.path, isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    /// The first executable `tshark` on PATH, or in the usual places.
    static let tshark: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/tshark" } + ["/usr/bin/tshark", "/usr/local/bin/tshark"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// The `.pcap` files of the FTP folder, sorted.
    static func ftpCaptureNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: ftpDirectory.path).filter { $0.hasSuffix(".pcap") }.sorted()
    }

    /// The capture `name` of the FTP folder, read once per test process.
    static func ftp(_ name: String) throws -> Capture {
        try cache.capture(ftpDirectory.appendingPathComponent(name).path)
    }

    private static let cache = CaptureCache()
}

/// One line (terminator included) as one side sent it, or the unterminated rest at the end of a stream.
struct CapturedLine: Sendable {
    var side: FTPSide
    var bytes: [UInt8]
    /// The frame that completed the line (for messages).
    var frame: Int
}

/// One TCP connection of a capture, reassembled by sequence number (retransmissions dropped, reordering undone).
struct CapturedConnection: Sendable {
    var stream: Int
    /// The side that sent the SYN (or, without one, the source of the first packet).
    var initiator: Endpoint
    var responder: Endpoint
    var fromInitiator: [UInt8] = []
    var fromResponder: [UInt8] = []
    /// Payload bytes held back because a segment before them never arrived.
    var missingSegments = 0
}

/// An FTP control connection: a connection whose responder's first bytes are a reply code.
struct CapturedControlConnection: Sendable {
    var connection: CapturedConnection
    var client: Endpoint { connection.initiator }
    var server: Endpoint { connection.responder }
    /// Both directions split on LF, in the order the capture completed them.
    var lines: [CapturedLine]
}

struct Capture: Sendable {
    var name: String
    var control: [CapturedControlConnection]
    /// Every other TCP connection: the data connections.
    var data: [CapturedConnection]
}

enum CorpusError: Error, CustomStringConvertible {
    case tshark(String)
    var description: String {
        switch self { case .tshark(let why): "tshark: \(why)" }
    }
}

/// Each capture read once per test run (tshark is slow to start); reading happens under the lock, so two tests
/// asking for the same file wait for one tshark run.
private final class CaptureCache: Sendable {
    private let results = Mutex<[String: Result<Capture, any Error>]>([:])

    func capture(_ path: String) throws -> Capture {
        try results.withLock { results in
            if let done = results[path] { return try done.get() }
            let result = Result { try CaptureReader.read(path) }
            results[path] = result
            return try result.get()
        }
    }
}

/// Runs tshark once per file, one row per TCP packet, and rebuilds the byte streams.
private enum CaptureReader {
    static let fields = ["frame.number", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "ip.dst", "ipv6.dst",
                         "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.seq_raw", "tcp.payload"]

    struct Direction {
        var next: UInt32?
        var held: [(seq: UInt32, bytes: [UInt8])] = []

        /// Takes a segment; returns the bytes that are now in order.
        mutating func accept(seq: UInt32, bytes: [UInt8]) -> [UInt8] {
            if next == nil { next = seq }
            held.append((seq, bytes))
            var fresh: [UInt8] = []
            while let index = held.firstIndex(where: { Int32(bitPattern: $0.seq &- next!) <= 0 }) {
                let segment = held.remove(at: index)
                let overlap = Int(-Int64(Int32(bitPattern: segment.seq &- next!)))
                guard overlap < segment.bytes.count else { continue }  // a retransmission
                fresh += segment.bytes[overlap...]
                next = next! &+ UInt32(segment.bytes.count - overlap)
            }
            return fresh
        }
    }

    struct Stream {
        var connection: CapturedConnection
        var synSeen = false
        var initiatorDirection = Direction()
        var responderDirection = Direction()
        /// In-order chunks: true when from the initiator.
        var chunks: [(fromInitiator: Bool, bytes: [UInt8], frame: Int)] = []
    }

    static func read(_ path: String) throws -> Capture {
        guard let tshark = Corpus.tshark else { throw CorpusError.tshark("not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tshark)
        process.arguments = ["-r", path, "-n", "-o", "tcp.desegment_tcp_streams:FALSE", "-Y", "tcp",
                             "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
            + fields.flatMap { ["-e", $0] }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CorpusError.tshark("exit status \(process.terminationStatus) for \(path)")
        }

        var streams: [Int: Stream] = [:]
        for row in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let column = row.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard column.count == fields.count, let frame = Int(column[0]), let index = Int(column[1]),
                  let source = endpoint(column[2].isEmpty ? column[3] : column[2], column[4]),
                  let destination = endpoint(column[5].isEmpty ? column[6] : column[5], column[7]),
                  let seq = UInt32(column[10]) else {
                throw CorpusError.tshark("unreadable row in \(path): \(row)")
            }
            var stream = streams[index]
                ?? Stream(connection: CapturedConnection(stream: index, initiator: source, responder: destination))
            if column[8] == "1", column[9] == "0", !stream.synSeen {
                stream.synSeen = true
                stream.connection.initiator = source
                stream.connection.responder = destination
            }
            let payload = try hex(column[11])
            if !payload.isEmpty {
                let fromInitiator = source == stream.connection.initiator
                let fresh = fromInitiator
                    ? stream.initiatorDirection.accept(seq: seq, bytes: payload)
                    : stream.responderDirection.accept(seq: seq, bytes: payload)
                if !fresh.isEmpty { stream.chunks.append((fromInitiator, fresh, frame)) }
            }
            streams[index] = stream
        }

        var control: [CapturedControlConnection] = []
        var dataConnections: [CapturedConnection] = []
        for index in streams.keys.sorted() {
            var stream = streams[index]!
            for chunk in stream.chunks {
                if chunk.fromInitiator { stream.connection.fromInitiator += chunk.bytes }
                else { stream.connection.fromResponder += chunk.bytes }
            }
            stream.connection.missingSegments = stream.initiatorDirection.held.count
                + stream.responderDirection.held.count
            if !stream.synSeen, startsWithReply(stream.connection.fromInitiator),
               !startsWithReply(stream.connection.fromResponder) {
                // No SYN in the capture: the side that speaks reply codes is the server.
                swap(&stream.connection.initiator, &stream.connection.responder)
                swap(&stream.connection.fromInitiator, &stream.connection.fromResponder)
                stream.chunks = stream.chunks.map { (!$0.fromInitiator, $0.bytes, $0.frame) }
            }
            if startsWithReply(stream.connection.fromResponder) {
                control.append(CapturedControlConnection(connection: stream.connection, lines: lines(stream.chunks)))
            } else {
                dataConnections.append(stream.connection)
            }
        }
        return Capture(name: URL(fileURLWithPath: path).lastPathComponent, control: control, data: dataConnections)
    }

    /// Splits both directions on LF (terminator kept), a line belonging to the chunk that completes it; what is
    /// left unterminated at the end becomes a last line, as the proxy's decoder passes it on at EOF.
    static func lines(_ chunks: [(fromInitiator: Bool, bytes: [UInt8], frame: Int)]) -> [CapturedLine] {
        var result: [CapturedLine] = []
        var pending: [Bool: (bytes: [UInt8], frame: Int)] = [:]
        for chunk in chunks {
            let side: FTPSide = chunk.fromInitiator ? .client : .server
            var buffer = pending[chunk.fromInitiator]?.bytes ?? []
            var start = 0
            for (offset, byte) in chunk.bytes.enumerated() where byte == 0x0A {
                buffer += chunk.bytes[start...offset]
                result.append(CapturedLine(side: side, bytes: buffer, frame: chunk.frame))
                buffer = []
                start = offset + 1
            }
            buffer += chunk.bytes[start...]
            pending[chunk.fromInitiator] = (buffer, chunk.frame)
        }
        for (fromInitiator, rest) in pending.sorted(by: { $0.value.frame < $1.value.frame }) where !rest.bytes.isEmpty {
            result.append(CapturedLine(side: fromInitiator ? .client : .server, bytes: rest.bytes, frame: rest.frame))
        }
        return result
    }

    /// `ddd<SP>` or `ddd-` with a first digit of 1 to 5.
    static func startsWithReply(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        return (UInt8(ascii: "1")...UInt8(ascii: "5")).contains(bytes[0])
            && bytes[1...2].allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            && (bytes[3] == UInt8(ascii: " ") || bytes[3] == UInt8(ascii: "-"))
    }

    static func endpoint(_ address: String, _ port: String) -> Endpoint? {
        guard let address = IPAddress(address), let port = UInt16(port) else { return nil }
        return Endpoint(address: address, port: port)
    }

    static func hex(_ text: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for character in text.utf8 where character != UInt8(ascii: ":") {
            let nibble: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = character - UInt8(ascii: "A") + 10
            default: throw CorpusError.tshark("not hex: \(text.prefix(40))")
            }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil else { throw CorpusError.tshark("odd hex length") }
        return bytes
    }
}
