import AlgateReplay
import AlgateRewrite
import FuzzSupport
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns captures and messages into seed files, one folder per harness, named by content hash.
struct SeedWriter {
    let root: String
    private var counts: [String: Int] = [:]

    init(root: String) {
        self.root = root
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return bytes
    }

    mutating func add(_ harness: String, _ bytes: [UInt8], name: String) {
        guard !bytes.isEmpty else { return }
        let folder = "\(root)/\(harness)"
        mkdir(folder, 0o755)
        let path = "\(folder)/seed-\(String(FuzzHash(bytes).value, radix: 16))"
        guard let file = fopen(path, "wb") else {
            print("fuzz-seeds: cannot write \(path) (from \(name))")
            return
        }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        counts[harness, default: 0] += 1
    }

    /// A SIP message: for the parser, and its SDP bodies for the SDP harness.
    mutating func addSIPMessage(_ bytes: [UInt8], name: String) {
        add("sip-message", bytes, name: name)
        guard let message = try? SIPMessage.parse(ByteBuffer(bytes: bytes)),
              let bodies = try? SIPMultipart.sdpBodies(of: message) else { return }
        for body in bodies { add("sdp", message.byteArray(body), name: name) }
    }

    /// A capture: itself for the packet layer; its FTP sessions as transcripts; its SIP messages one by one, as a
    /// gateway transcript, and each direction of a session as a stream for the framer.
    mutating func addCapture(_ path: String) {
        guard let bytes = Self.read(path) else { return }
        add("replay-packets", bytes, name: path)
        var settings = ReplaySettings()
        settings.keepsMessageBytes = true
        let report: ReplayReport
        do {
            report = try CaptureReplayer.replay(path: path, settings: settings)
        } catch {
            print("fuzz-seeds: \(path): \(error)")
            return
        }
        for session in report.sessions {
            switch session.protocol {
            case .ftp: addFTP(session, name: path)
            case .sip: addSIP(session, name: path)
            }
        }
    }

    private mutating func addFTP(_ session: ReplaySession, name: String) {
        var transcript: [UInt8] = session.client.hasPrefix("[") ? Array("6\n".utf8) : []
        for message in session.messages {
            transcript += FTPTranscript.line(message.from == "client" ? .client : .server,
                                             Array(message.text.utf8) + [0x0D, 0x0A])
        }
        add("ftp-engine", transcript, name: name)
    }

    private mutating func addSIP(_ session: ReplaySession, name: String) {
        var records: [SIPTranscript.Record] = []
        var streams: [[UInt8]] = [[], []]
        for message in session.messages {
            guard let raw = message.raw else { continue }
            addSIPMessage(raw, name: name)
            let fromClient = message.from == "client"
            streams[fromClient ? 0 : 1] += raw
            var flags: SIPTranscript.Flags = session.transport == "tcp" ? [.tcp] : []
            if !fromClient {
                // From the PBX: a response follows the gateway's own Via back; a request goes to a contact mapping.
                flags.insert(.inside)
                flags.insert(raw.starts(with: Array("SIP/2.0".utf8)) ? .echoVias : .retarget)
            }
            records.append(.init(flags: flags, message: raw))
        }
        add("sip-gateway", SIPTranscript.encode(records), name: name)
        for stream in streams where !stream.isEmpty {
            add("sip-framer", [0] + stream, name: name)
            // And cut at three points (the cut count byte, then two bytes per cut).
            add("sip-framer", [3, 0, 1, 0, 200, 2, 0] + stream, name: name)
        }
    }

    func finish() {
        for (harness, count) in counts.sorted(by: { $0.key < $1.key }) {
            print("fuzz-seeds: \(harness): \(count) seeds")
        }
    }
}
