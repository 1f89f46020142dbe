import AlgateReplay
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// `algate replay FILE --live`: each control session of the offline report is played again through a real gateway
/// started in this process on loopback (reverse mode, userspace pinholes), and compared with the offline run.
///
/// FTP (``LiveFTPSession``): an ``FTPListener``; a client plays the capture's client lines against it, a server the
/// capture's server lines as its upstream, both in the captured order, with the addresses and ports of PORT/EPRT
/// and 227/229 replaced by live ones, and the data connections go through the pinholes the gateway opens. SIP
/// (``LiveSIPSession``): a ``SIPListener`` for the session's transport; the stand-ins play the captured messages
/// with addresses, SDP ports, Via fields and contacts made coherent with the live run, and RTP goes both ways
/// through every media relay the gateway opens. A session matches when every message arrives, the same messages
/// are rewritten, as many pinholes (media relays) open, and every covered data connection (every media relay whose
/// both ends are known) carries its bytes intact. Sessions in which the offline replay refused something are listed
/// as skipped. `ALGATE_LIVE_DEBUG=1` in the environment traces what both sides send and receive to stderr.
enum LiveReplay {
    struct Outcome: Sendable {
        var session: Int
        var protocolName: String
        var skipped: String?
        var differences: [String] = []
        var lines = 0
        var rewrites = 0
        var pinholes = 0
        var transfers = 0
        var matched: Bool { skipped == nil && differences.isEmpty }
    }

    static func run(_ report: ReplayReport) async -> [Outcome] {
        var outcomes: [Outcome] = []
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        for session in report.sessions {
            let name = session.protocol.rawValue.uppercased()
            // A refused or malformed message is answered by the gateway itself: the captured server never saw what
            // the capture says it answered, so the captured order cannot be played against a live gateway.
            guard session.errors.isEmpty else {
                outcomes.append(Outcome(session: session.id, protocolName: name,
                                        skipped: "the offline replay reports \(session.errors.count) error(s); live "
                                            + "replay plays sessions the gateway passes through whole"))
                continue
            }
            var outcome = Outcome(session: session.id, protocolName: name)
            do {
                switch session.protocol {
                case .ftp:
                    try await LiveFTPSession(session: session, group: group).run(into: &outcome)
                case .sip:
                    try await LiveSIPSession(session: session, group: group).run(into: &outcome)
                }
            } catch {
                outcome.differences.append("live run failed: \(error)")
            }
            outcomes.append(outcome)
        }
        try? await group.shutdownGracefully()
        return outcomes
    }

    /// The messages one run rewrote and the other did not, said the same way for FTP and SIP.
    static func rewriteDifferences(offline: Set<Int>, live: Set<Int>, messages: [String]) -> [String] {
        var differences: [String] = []
        for index in offline.subtracting(live).sorted() where index < messages.count {
            differences.append("offline rewrites message \(index) (\(messages[index])), live it went unchanged")
        }
        for index in live.subtracting(offline).sorted() where index < messages.count {
            differences.append("live rewrote message \(index) (\(messages[index])), offline does not")
        }
        return differences
    }

    static func text(_ outcomes: [Outcome]) -> String {
        var out: [String] = []
        for outcome in outcomes {
            let head = "live session \(outcome.session) (\(outcome.protocolName)): "
            if let skipped = outcome.skipped {
                out.append(head + "skipped (\(skipped))")
                continue
            }
            let counts = outcome.protocolName == "SIP"
                ? "\(outcome.lines) message(s), \(outcome.rewrites) rewritten, \(outcome.pinholes) media relay(s), "
                    + "\(outcome.transfers) media flow(s) carried"
                : "\(outcome.lines) line(s), \(outcome.rewrites) rewritten, \(outcome.pinholes) pinhole(s), "
                    + "\(outcome.transfers) data connection(s) carried"
            out.append(head + (outcome.matched ? "matches the offline replay: " : "DIFFERS from the offline replay: ")
                       + counts)
            out += outcome.differences.map { "  - \($0)" }
        }
        let replayed = outcomes.filter { $0.skipped == nil }
        let differing = replayed.filter { !$0.matched }.count
        out.append("live: \(replayed.count) session(s) replayed, \(differing) differ(s), "
                   + "\(outcomes.count - replayed.count) skipped")
        return out.joined(separator: "\n") + "\n"
    }
}

/// A collecting log handler: the live run counts the gateway's `pinhole open` lines.
final class LiveLogStore: Sendable {
    private let messages = Mutex<[String]>([])

    func append(_ message: String) { messages.withLock { $0.append(message) } }
    func count(_ message: String) -> Int { messages.withLock { $0.filter { $0 == message }.count } }

    struct Handler: LogHandler {
        let store: LiveLogStore
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            store.append(event.message.description)
        }
    }
}

struct LiveReplayError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

typealias LiveChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>

/// Reads CRLF (or LF) terminated lines from an async channel's inbound stream.
struct LiveLineReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var pending: [UInt8] = []

    mutating func next() async throws -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(pending[..<newline])
                pending.removeFirst(newline + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard let buffer = try await iterator.next() else { return nil }
            pending += buffer.readableBytesView
        }
    }
}

let liveDebug = ProcessInfo.processInfo.environment["ALGATE_LIVE_DEBUG"] != nil
func liveTrace(_ text: @autoclosure () -> String) {
    if liveDebug { Algate.printError("live: \(text())") }
}
