import AlgateRewrite
import Foundation
import NIOCore
import Testing

/// A message from lines written without line ends: each gets CRLF, then the empty line, then the body.
func sipBytes(_ lines: [String], body: String = "") -> ByteBuffer {
    ByteBuffer(string: lines.map { $0 + "\r\n" }.joined() + "\r\n" + body)
}

/// Text with every `\n` turned into CRLF (for SDP bodies written as literals).
func crlf(_ text: String) -> String {
    text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
}

func sipParse(_ lines: [String], body: String = "", limits: SIPLimits = .init()) throws -> SIPMessage {
    try SIPMessage.parse(sipBytes(lines, body: body), limits: limits)
}

/// Runs a byte-level parser on a String's bytes, keeping its typed error.
func sipScan<T>(_ text: String, _ body: (UnsafeRawBufferPointer) throws(SIPParseError) -> T) throws(SIPParseError) -> T {
    let bytes = Array(text.utf8)
    let result: Result<T, SIPParseError> = bytes.withUnsafeBytes { raw in
        do throws(SIPParseError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

extension ByteBuffer {
    var bytesArray: [UInt8] { Array(readableBytesView) }
    var text: String { String(decoding: readableBytesView, as: UTF8.self) }
}

extension SIPMessage {
    /// The SDP of the message, parsed, with its range; nil without one.
    func sdp(limits: SDPLimits = .init()) throws -> (range: Range<Int>, sdp: SDPSessionDescription)? {
        guard let range = try SIPMultipart.sdpBody(of: self) else { return nil }
        let sdp = try bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
            try SDPSessionDescription.parse(UnsafeRawBufferPointer(rebasing: raw[range]), limits: limits)
        }
        return (range, sdp)
    }

    var allText: String { bytes.text }
}

/// The bytes split into lines, each with its line end.
func sipLines(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
    var lines: [[UInt8]] = []
    var current: [UInt8] = []
    for byte in bytes {
        current.append(byte)
        if byte == 0x0A {
            lines.append(current)
            current = []
        }
    }
    if !current.isEmpty { lines.append(current) }
    return lines
}

/// A reference splice, written independently of SIPMessageEditor: applies replacements from the last to the
/// first (insertions at equal offsets in call order).
func referenceSplice(_ original: [UInt8], _ edits: [(range: Range<Int>, bytes: [UInt8])]) -> [UInt8] {
    var result = original
    let ordered = edits.enumerated().sorted { left, right in
        if left.element.range.lowerBound != right.element.range.lowerBound {
            return left.element.range.lowerBound > right.element.range.lowerBound
        }
        if left.element.range.isEmpty != right.element.range.isEmpty { return !left.element.range.isEmpty }
        return left.offset > right.offset
    }
    for (_, edit) in ordered {
        result.replaceSubrange(edit.range, with: edit.bytes)
    }
    return result
}

/// What the editor sends for a spliced message: every bare LF of the header section (all but the last
/// `bodyCount` bytes) as CRLF, the body as it is. Written independently of SIPMessageEditor.
func crlfHeaders(_ message: [UInt8], bodyCount: Int) -> [UInt8] {
    let headerCount = message.count - bodyCount
    var out: [UInt8] = []
    for (index, byte) in message.enumerated() {
        if index < headerCount, byte == 0x0A, index == 0 || message[index - 1] != 0x0D { out.append(0x0D) }
        out.append(byte)
    }
    return out
}

/// A small deterministic generator, so property tests fail the same way every time.
struct SIPTestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// The external material in `<repo>/../shared/corpus`, read at test time and never copied into the repository.
enum SIPCorpus {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // AlgateRewriteTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the repository
        .deletingLastPathComponent()
        .appendingPathComponent("shared/corpus", isDirectory: true)

    static let tortureDirectory = directory.appendingPathComponent("sip-torture-rfc4475", isDirectory: true)
    static let captureDirectory = directory.appendingPathComponent("sip", isDirectory: true)

    static var hasTorture: Bool { isDirectory(tortureDirectory) }
    static var hasCaptures: Bool { isDirectory(captureDirectory) }

    static func isDirectory(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// One torture message, byte for byte.
    static func torture(_ name: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: tortureDirectory.appendingPathComponent(name + ".dat")))
    }

    static func tortureNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: tortureDirectory.path)
            .filter { $0.hasSuffix(".dat") }.map { String($0.dropLast(4)) }.sorted()
    }

    static func captureNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: captureDirectory.path)
            .filter { $0.hasSuffix(".pcap") }.sorted()
    }

    /// The first executable `tshark` on PATH or in the usual places.
    static let tshark: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/tshark" } + ["/usr/bin/tshark", "/usr/local/bin/tshark"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
}

enum SIPCorpusError: Error, CustomStringConvertible {
    case tshark(String)
    var description: String {
        switch self { case .tshark(let why): "tshark: \(why)" }
    }
}

/// The SIP traffic of one capture: UDP datagrams of the flows tshark calls SIP, and reassembled TCP streams that
/// carry SIP, each direction separately.
struct SIPCapture: Sendable {
    struct Datagram: Sendable {
        var frame: Int
        var payload: [UInt8]
    }

    struct Stream: Sendable {
        var index: Int
        /// Both directions, each reassembled by sequence number.
        var directions: [[UInt8]]
        var gaps: Int
    }

    var name: String
    var datagrams: [Datagram]
    var streams: [Stream]

    static func read(_ name: String) throws -> SIPCapture {
        let path = SIPCorpus.captureDirectory.appendingPathComponent(name).path
        return SIPCapture(name: name, datagrams: try udp(path), streams: try tcp(path))
    }

    static func tshark(_ path: String, filter: String, fields: [String]) throws -> [[String]] {
        guard let tshark = SIPCorpus.tshark else { throw SIPCorpusError.tshark("not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tshark)
        process.arguments = ["-r", path, "-n", "-o", "tcp.desegment_tcp_streams:FALSE", "-Y", filter,
                             "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
            + fields.flatMap { ["-e", $0] }
        // Output goes to a file, read after tshark exits: reading a pipe while other tests start processes can
        // be interrupted by a signal, which Foundation's readDataToEndOfFile does not survive.
        let outputURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("algate-sip-tshark-\(UUID().uuidString).txt")
        guard FileManager.default.createFile(atPath: outputURL.path, contents: nil) else {
            throw SIPCorpusError.tshark("cannot create \(outputURL.path)")
        }
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let output = try FileHandle(forWritingTo: outputURL)
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try output.close()
        guard process.terminationStatus == 0 else {
            throw SIPCorpusError.tshark("exit status \(process.terminationStatus) for \(path)")
        }
        let data = try Data(contentsOf: outputURL)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// Datagrams of every UDP flow (address and port pair, either direction) in which tshark saw SIP.
    static func udp(_ path: String) throws -> [Datagram] {
        let rows = try tshark(path, filter: "udp", fields: [
            "frame.number", "frame.protocols", "ip.src", "ipv6.src", "udp.srcport", "ip.dst", "ipv6.dst",
            "udp.dstport", "udp.payload",
        ])
        var flows: Set<String> = []
        var all: [(flow: String, datagram: Datagram)] = []
        for row in rows {
            guard row.count == 9, let frame = Int(row[0]) else { throw SIPCorpusError.tshark("bad row \(row)") }
            let source = (row[2].isEmpty ? row[3] : row[2]) + "/" + row[4]
            let destination = (row[5].isEmpty ? row[6] : row[5]) + "/" + row[7]
            let flow = [source, destination].sorted().joined(separator: " ")
            if row[1].split(separator: ":").contains("sip") { flows.insert(flow) }
            all.append((flow, Datagram(frame: frame, payload: try hex(row[8]))))
        }
        return all.filter { flows.contains($0.flow) }.map(\.datagram)
    }

    /// TCP streams in which tshark saw SIP, each direction put back in sequence order.
    static func tcp(_ path: String) throws -> [Stream] {
        let rows = try tshark(path, filter: "tcp", fields: [
            "frame.number", "frame.protocols", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "tcp.seq_raw",
            "tcp.payload", "tcp.flags.syn",
        ])
        struct Direction {
            var next: UInt32?
            var held: [(seq: UInt32, bytes: [UInt8])] = []
            var bytes: [UInt8] = []
        }
        var sipStreams: Set<Int> = []
        var directions: [Int: [String: Direction]] = [:]
        var order: [Int: [String]] = [:]
        for row in rows {
            guard row.count == 9, let stream = Int(row[2]), let seq = UInt32(row[6]) else {
                throw SIPCorpusError.tshark("bad row \(row)")
            }
            if row[1].split(separator: ":").contains("sip") { sipStreams.insert(stream) }
            let source = (row[3].isEmpty ? row[4] : row[3]) + "/" + row[5]
            if order[stream, default: []].contains(source) == false { order[stream, default: []].append(source) }
            var direction = directions[stream, default: [:]][source] ?? Direction()
            let payload = try hex(row[7])
            let isSYN = row[8] == "1" || row[8] == "True"
            if direction.next == nil { direction.next = isSYN ? seq &+ 1 : seq }
            if !payload.isEmpty, let next = direction.next {
                direction.held.append((seq, payload))
                var cursor = next
                while let index = direction.held.firstIndex(where: { Int32(bitPattern: $0.seq &- cursor) <= 0 }) {
                    let segment = direction.held.remove(at: index)
                    let overlap = Int(Int32(bitPattern: cursor &- segment.seq))
                    guard overlap < segment.bytes.count else { continue }
                    direction.bytes += segment.bytes[overlap...]
                    cursor = cursor &+ UInt32(segment.bytes.count - overlap)
                }
                direction.next = cursor
            }
            directions[stream, default: [:]][source] = direction
        }
        return sipStreams.sorted().map { stream in
            let sides = order[stream, default: []].compactMap { directions[stream]?[$0] }
            return Stream(index: stream, directions: sides.map(\.bytes), gaps: sides.reduce(0) { $0 + $1.held.count })
        }
    }

    static func hex(_ text: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8? = nil
        for character in text.utf8 where character != UInt8(ascii: ":") {
            guard let nibble = hexNibble(character) else { throw SIPCorpusError.tshark("not hex: \(text.prefix(40))") }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil else { throw SIPCorpusError.tshark("odd hex length") }
        return bytes
    }

    static func hexNibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
