public import AlgateConfig
import AlgatePinholes
public import AlgateRewrite
public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import UnixSignals

/// The whole gateway of one configuration: its listeners, its pinhole backend, its sessions.
///
/// Run it in a `ServiceGroup`: it binds every listener, serves until graceful shutdown (SIGTERM/SIGINT), then
/// stops accepting, lets running transfers finish up to `shutdown-grace`, closes what is left and every pinhole.
public final class Gateway: Service, Sendable {
    public let configuration: AlgateConfiguration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let backend: any PinholeBackend
    private let registry = SessionRegistry()
    private let listeners: [FTPListener]
    private let sipListeners: [SIPListener]
    private let ready: (@Sendable ([Endpoint]) -> Void)?
    private let policy: PolicyStore
    private let reload: (@Sendable () throws -> AlgateConfiguration)?
    /// The nftables rules steering control traffic to transparent listeners; nil when there is none.
    private let intercept: InterceptInstaller?

    /// Checks that this build can serve `configuration`; the errors name the key and line.
    ///
    /// - Parameters:
    ///   - ready: called with the bound listen addresses once every listener is up.
    ///   - reload: reads the configuration again on SIGHUP; its policy rules replace the old ones at once, and on
    ///     an error the old rules stay. Other changes need a restart (they are reported, not applied).
    public init(configuration: AlgateConfiguration, group: any EventLoopGroup, logger: Logger,
                ready: (@Sendable ([Endpoint]) -> Void)? = nil,
                reload: (@Sendable () throws -> AlgateConfiguration)? = nil) throws(GatewayError) {
        var ftp: [FTPProxyConfiguration] = []
        for listener in configuration.ftp {
            // Transparent mode has no upstream: each session goes to its client's original destination.
            let upstream = listener.mode == .transparent
                ? nil : try Self.upstream(of: "ftp", listener.listen, listener.mode, listener.upstream, listener.line)
            var proxy = FTPProxyConfiguration(listen: listener.listen, upstream: upstream)
            proxy.publicAddress = listener.publicAddress
            proxy.dataAddress = listener.dataAddress
            proxy.maxLineLength = listener.maxLineLength
            proxy.idleTimeout = listener.idleTimeout
            proxy.maxSessions = listener.maxSessions
            proxy.allowPrivilegedPorts = listener.allowPrivilegedPorts
            proxy.pinholeTimeout = configuration.pinholes.timeout
            proxy.passivePinholesAtServerAddress = listener.mode == .transparent
                && configuration.pinholes.backend == .nftables
            ftp.append(proxy)
        }
        var sip: [SIPProxyConfiguration] = []
        for listener in configuration.sip {
            // Transparent mode has no upstream: each phone's messages go to where it sent them.
            let upstream = listener.mode == .transparent
                ? nil : try Self.upstream(of: "sip", listener.listen, listener.mode, listener.upstream, listener.line)
            var proxy = SIPProxyConfiguration(listen: listener.listen, upstream: upstream)
            if listener.mode == .transparent, let port = listener.interceptPorts.first {
                proxy.interceptedPort = port
            }
            proxy.transports = listener.transports
            proxy.publicAddress = listener.publicAddress
            proxy.insideAddress = listener.insideAddress
            proxy.mediaTimeout = listener.mediaTimeout
            proxy.keepAliveInterval = listener.keepAliveInterval
            proxy.maxConnections = listener.maxConnections
            proxy.limits.maxMessageBytes = listener.maxMessageSize
            proxy.ice = listener.ice
            proxy.insideNetworks = listener.insideNetworks
            sip.append(proxy)
        }
        self.configuration = configuration
        self.logger = logger
        self.group = group
        self.ready = ready
        self.reload = reload
        let rules = InterceptRules(configuration: configuration)
        self.intercept = rules.isEmpty ? nil : try InterceptInstaller(rules: rules, logger: logger)
        let policy = PolicyStore(configuration.policy, logger: logger)
        self.policy = policy
        let backend = try Self.makeBackend(configuration.pinholes, logger: logger)
        self.backend = backend
        let registry = self.registry
        self.listeners = ftp.map {
            FTPListener(configuration: $0, group: group, backend: backend, registry: registry, policy: policy,
                        logger: logger)
        }
        self.sipListeners = sip.map {
            SIPListener(configuration: $0, group: group, backend: backend, policy: policy, logger: logger)
        }
    }

    /// The backend `[pinholes]` asks for, with its limits.
    private static func makeBackend(_ settings: PinholeSettings, logger: Logger) throws(GatewayError) -> any PinholeBackend {
        let limits = PinholeLedger.Limits(perSession: settings.perSession, total: settings.maxTotal)
        switch settings.backend {
        case .userspace:
            return UserspacePinholeBackend(ports: settings.ports, limits: limits, logger: logger)
        case .nftables:
            do {
                return try NftablesPinholeBackend(ports: settings.ports, limits: limits, logger: logger)
            } catch {
                throw GatewayError("pinholes.backend = \"nftables\": \(error)")
            }
        }
    }

    /// The upstream of a reverse-mode listener (the configuration decoder makes sure there is one).
    private static func upstream(of table: String, _ listen: Endpoint, _ mode: FTPListenerSettings.Mode,
                                 _ upstream: Endpoint?, _ line: Int) throws(GatewayError) -> Endpoint {
        guard mode == .reverse, let upstream else {
            throw GatewayError("line \(line): [[\(table)]] listen = \"\(listen)\": reverse mode needs upstream")
        }
        return upstream
    }

    public func run() async throws {
        // SIGHUP is trapped before anything is announced: its default action would end the process.
        let hangups: UnixSignalsSequence? = reload == nil ? nil : await UnixSignalsSequence(trapping: .sighup)
        do {
            try await backend.prepare()
        } catch {
            throw GatewayError("pinholes.backend = \"\(configuration.pinholes.backend.rawValue)\": \(error)")
        }
        var bound: [Endpoint] = []
        do {
            for listener in listeners { bound.append(try await listener.start()) }
            for listener in sipListeners { bound.append(try await listener.start()) }
        } catch {
            for listener in listeners { await listener.stop() }
            for listener in sipListeners { await listener.stop() }
            await backend.shutdown()
            throw GatewayError("cannot listen: \(error)")
        }
        // The steering rules go in once the listeners can take what they redirect.
        if let intercept {
            do {
                try await intercept.install()
            } catch {
                for listener in listeners { await listener.stop() }
                for listener in sipListeners { await listener.stop() }
                await backend.shutdown()
                throw error
            }
        }
        logger.info("algate ready", metadata: [
            "listeners": "\(bound.map(\.description).joined(separator: " "))",
            "pinhole-ports": "\(configuration.pinholes.ports.lowerBound)-\(configuration.pinholes.ports.upperBound)",
        ])
        ready?(bound)

        // Serve until SIGTERM/SIGINT (or cancellation); SIGHUP reloads the policy rules meanwhile.
        await withTaskGroup(of: Void.self) { tasks in
            if let reload, let hangups {
                tasks.addTask { [self] in
                    for await _ in hangups { self.reloadPolicy(reload) }
                }
            }
            try? await gracefulShutdown()
            tasks.cancelAll()
        }

        logger.info("shutting down", metadata: [
            "sessions": "\(registry.count)", "grace": "\(configuration.shutdownGrace)",
        ])
        // Stop steering new connections here first: they would find no listener.
        await intercept?.remove()
        for listener in listeners { await listener.stop() }
        // SIP has no sessions to drain: calls keep their media until the relays close with the listener.
        for listener in sipListeners { await listener.stop() }
        registry.beginDraining()
        let registry = self.registry
        let grace = configuration.shutdownGrace
        let finishedInTime = await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask { await registry.drained(); return true }
            tasks.addTask { try? await Task.sleep(for: grace); return false }
            let first = await tasks.next() ?? true
            if !first { registry.closeAll() }
            tasks.cancelAll()
            await tasks.waitForAll()
            return first
        }
        await backend.shutdown()
        logger.info("stopped", metadata: ["clean": "\(finishedInTime)"])
    }
}

extension Gateway {
    /// SIGHUP: the new rules or, on any error, the old ones; never a mix.
    func reloadPolicy(_ reload: @Sendable () throws -> AlgateConfiguration) {
        do {
            let fresh = try reload()
            policy.replace(with: fresh.policy)
            var unchanged = fresh
            unchanged.policy = configuration.policy
            if unchanged != configuration {
                logger.notice("reload: only the policy rules were applied; other changes need a restart")
            }
            logger.notice("policy reloaded", metadata: ["rules": "\(fresh.policy.rules.count)"])
        } catch {
            logger.error("policy reload failed; the old rules stay", metadata: ["error": "\(error)"])
        }
    }
}

/// The gateway cannot start with its configuration or environment.
public struct GatewayError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
