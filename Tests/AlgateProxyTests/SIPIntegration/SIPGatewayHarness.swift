import AlgatePinholes
import AlgateProxy
import AlgateRewrite
import Foundation
import Logging
import NIOPosix

/// One SIP gateway in this process, built the way `algate run` builds it: an event-loop group, a userspace
/// pinhole backend with the test's own port pool, and one ``SIPListener`` in reverse mode (UDP and TCP on one
/// port). Its log goes to a ``SIPITLog``.
struct SIPGatewayHarness: Sendable {
    struct Options: Sendable {
        var listen: String
        var upstream: String
        var pool: ClosedRange<UInt16>
        var publicAddress = "127.0.0.1"
        var insideAddress = "127.0.0.1"
        var transports: Set<SIPTransport> = [.udp, .tcp]
        var mediaTimeout: Duration = .seconds(30)
    }

    /// Where outside peers send (the bound address).
    let endpoint: Endpoint
    let options: Options
    let log: SIPITLog
    let backend: UserspacePinholeBackend

    /// `127.0.0.1:5060` or `[::1]:5060`, as SIPp takes a remote.
    var address: String { "\(endpoint)" }
    var host: String { "\(endpoint.address)" }
    var port: UInt16 { endpoint.port }

    /// Starts the gateway, runs `body`, and always stops it: listener, relays, event loops.
    static func with<T>(_ options: Options, _ body: (SIPGatewayHarness) async throws -> T) async throws -> T {
        let log = SIPITLog()
        let logger = Logger(label: "algate.sipit") { _ in SIPITLogHandler(log: log) }
        guard let listen = Endpoint(options.listen), let upstream = Endpoint(options.upstream),
              let publicAddress = IPAddress(options.publicAddress),
              let insideAddress = IPAddress(options.insideAddress) else {
            throw SIPITError("bad gateway options \(options)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let backend = UserspacePinholeBackend(ports: options.pool, limits: .init(perSession: 16, total: 10000),
                                              logger: logger)
        var configuration = SIPProxyConfiguration(listen: listen, upstream: upstream)
        configuration.transports = options.transports
        configuration.publicAddress = publicAddress
        configuration.insideAddress = insideAddress
        configuration.mediaTimeout = options.mediaTimeout
        let listener = SIPListener(configuration: configuration, group: group, backend: backend, logger: logger)
        return try await sipitWithCleanup {
            let bound = try await listener.start()
            return try await body(SIPGatewayHarness(endpoint: bound, options: options, log: log, backend: backend))
        } cleanup: {
            await listener.stop()
            backend.shutdown()
            try? await group.shutdownGracefully()
        }
    }

    /// The "media relay close" lines of calls whose Call-ID contains `callID` (all when nil).
    func relayCloses(callID: String? = nil) -> [SIPITLog.Entry] {
        log.entries("media relay close").filter { entry in callID.map { entry["call-id"]?.contains($0) == true } ?? true }
    }

    /// Sum of packets-in (outside -> inside) and packets-out (inside -> outside) over `entries`.
    static func packets(_ entries: [SIPITLog.Entry]) -> (inbound: Int, outbound: Int) {
        entries.reduce((0, 0)) { sum, entry in
            (sum.0 + (entry["packets-in"].flatMap { Int($0) } ?? 0),
             sum.1 + (entry["packets-out"].flatMap { Int($0) } ?? 0))
        }
    }

    /// Outside ports of the relays opened so far ("media relay open" outside=HOST:PORT).
    var relayOutsidePorts: Set<UInt16> {
        Set(log.entries("media relay open").compactMap { $0["outside"].flatMap(Endpoint.init)?.port })
    }

    var relayInsidePorts: Set<UInt16> {
        Set(log.entries("media relay open").compactMap { $0["inside"].flatMap(Endpoint.init)?.port })
    }

    /// Waits until `count` relays have closed (each closes on BYE; the log line comes when its sockets are shut).
    func waitForRelayCloses(_ count: Int, callID: String? = nil, within limit: Duration = .seconds(15)) async -> Bool {
        await log.wait(within: limit) { _ in relayCloses(callID: callID).count >= count }
    }
}
