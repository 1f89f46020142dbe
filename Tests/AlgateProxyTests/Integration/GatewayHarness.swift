import AlgatePinholes
import AlgateProxy
import AlgateRewrite
import Foundation
import Logging
import NIOPosix

/// One gateway in this process, the way `algate run` builds it: an event-loop group, a userspace pinhole backend
/// with its own port pool, a session registry and one FTP listener in reverse mode. Its log goes to a ``LogStore``.
struct GatewayHarness: Sendable {
    struct Options: Sendable {
        var listen: String = "127.0.0.1:0"
        var publicAddress: String? = "127.0.0.1"
        var pool: ClosedRange<UInt16>
        var perSession = 16
        var total = 1000
        var pinholeTimeout: Duration = .seconds(10)
        var idleTimeout: Duration?
        var allowPrivilegedPorts = false
        var maxLineLength: Int?

        init(pool: ClosedRange<UInt16>) {
            self.pool = pool
        }
    }

    /// Where clients connect.
    let endpoint: Endpoint
    let upstream: Endpoint
    let pool: ClosedRange<UInt16>
    let log: LogStore
    let registry: SessionRegistry
    let backend: UserspacePinholeBackend

    /// `ftp://HOST:PORT` of the gateway (IPv6 in brackets).
    var url: String { "ftp://\(endpoint)" }

    /// Starts a gateway in front of `upstream`, runs `body`, and always shuts it down: stop listening, wind the
    /// sessions down, close the pinholes, stop the event loops.
    @discardableResult
    static func with<T>(upstream: Endpoint, _ options: Options,
                        _ body: (GatewayHarness) async throws -> T) async throws -> T {
        let log = LogStore()
        let logger = Logger.collecting(into: log)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let backend = UserspacePinholeBackend(ports: options.pool,
                                              limits: .init(perSession: options.perSession, total: options.total),
                                              logger: logger)
        let registry = SessionRegistry()
        guard let listen = Endpoint(options.listen) else { throw PeerError("bad listen address \(options.listen)") }
        var configuration = FTPProxyConfiguration(listen: listen, upstream: upstream)
        configuration.publicAddress = options.publicAddress.flatMap(IPAddress.init)
        configuration.pinholeTimeout = options.pinholeTimeout
        if let idle = options.idleTimeout { configuration.idleTimeout = idle }
        configuration.allowPrivilegedPorts = options.allowPrivilegedPorts
        if let length = options.maxLineLength { configuration.maxLineLength = length }
        let listener = FTPListener(configuration: configuration, group: group, backend: backend, registry: registry,
                                   logger: logger)
        return try await withCleanup {
            let bound = try await listener.start()
            let harness = GatewayHarness(endpoint: bound, upstream: upstream, pool: options.pool, log: log,
                                         registry: registry, backend: backend)
            return try await body(harness)
        } cleanup: {
            await listener.stop()
            registry.beginDraining()
            // Sessions with a transfer running close when it ends; do not wait for ever on a stuck one.
            let deadline = ContinuousClock.now + .seconds(10)
            while registry.count > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            backend.shutdown()
            try? await group.shutdownGracefully()
        }
    }

    /// The log lines of the session whose pinhole listened on `port` (to explain one failure among many).
    func sessionLog(pinholePort port: UInt16) -> String {
        let open = log.lines("pinhole open").first { logField("listen", in: $0)?.hasSuffix(":\(port)") == true }
        guard let session = open.flatMap({ logField("session", in: $0) }) else {
            return "(no pinhole on port \(port) in the gateway log)"
        }
        return log.all.filter { logField("session", in: $0) == session }.joined(separator: "\n")
    }

    /// Whether `port` is one of this gateway's pinhole ports.
    func isPoolPort(_ port: UInt16) -> Bool { pool.contains(port) }

    /// Waits until every session has ended (clients quit) and every pinhole is closed; false at the deadline.
    func waitUntilIdle(within limit: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while registry.count > 0 || backend.openCount > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
