public import AlgatePinholes
public import AlgateRewrite
public import Logging
public import NIOCore
import NIOPosix
import NIOConcurrencyHelpers

/// One `[[ftp]]` listener: accepts clients, connects each to the upstream server (reverse mode) or to the server
/// it was headed for before nftables redirected it here (transparent mode), and runs an ``FTPSession`` between
/// them.
public final class FTPListener: Sendable {
    public let configuration: FTPProxyConfiguration
    private let group: any EventLoopGroup
    private let backend: any PinholeBackend
    private let registry: SessionRegistry
    private let policy: PolicyStore?
    private let logger: Logger
    private let channel: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)

    public init(configuration: FTPProxyConfiguration, group: any EventLoopGroup, backend: any PinholeBackend,
                registry: SessionRegistry, policy: PolicyStore? = nil, logger: Logger) {
        self.configuration = configuration
        self.policy = policy
        self.group = group
        self.backend = backend
        self.registry = registry
        var logger = logger
        logger[metadataKey: "listener"] = "ftp \(configuration.listen)"
        self.logger = logger
    }

    /// Binds the listening socket; returns the address it is bound to (the port is real even when 0 was asked).
    public func start() async throws -> Endpoint {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] child in
                self.accept(child)
            }
        let bound = try await bootstrap.bind(to: SocketAddress(configuration.listen)).get()
        channel.withLockedValue { $0 = bound }
        guard let local = bound.localAddress.flatMap(Endpoint.init(socketAddress:)) else {
            throw ChannelError.unknownLocalAddress
        }
        logger.info("listening", metadata: [
            "address": "\(local)",
            "upstream": "\(configuration.upstream.map { "\($0)" } ?? "original destination (transparent)")",
        ])
        return local
    }

    /// Stops accepting; running sessions go on.
    public func stop() async {
        let bound = channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }

    private func accept(_ child: any Channel) -> EventLoopFuture<Void> {
        let loop = child.eventLoop
        let clientEndpoint = child.remoteAddress.flatMap(Endpoint.init(socketAddress:))
        let sessionID = registry.register(limit: configuration.maxSessions) { _ in
            // Replaced below once the session exists; a session still connecting just closes.
            child.close(promise: nil)
        }
        guard let sessionID else {
            logger.warning("session refused: limit reached", metadata: [
                "client": "\(clientEndpoint.map { "\($0)" } ?? "?")", "limit": "\(configuration.maxSessions)",
            ])
            return Self.reject(child, "421 Too many connections; try again later.")
        }
        // Reverse mode: the one upstream. Transparent mode: wherever the client was headed before the redirect.
        let destination = configuration.upstream.map { loop.makeSucceededFuture($0) } ?? originalDestination(of: child)
        return destination.flatMap { [self] target in
            let upstream: SocketAddress
            do {
                upstream = try SocketAddress(target)
            } catch {
                self.registry.unregister(sessionID)
                return Self.reject(child, "421 Service not available.")
            }
            return ClientBootstrap(group: loop)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connectTimeout(TimeAmount(self.configuration.connectTimeout))
                .connect(to: upstream)
                .flatMapThrowing { [self] server in
                    try self.startSession(sessionID, client: child, server: server)
                }
                .flatMapError { [self] error in
                    self.registry.unregister(sessionID)
                    self.logger.warning("session refused: upstream unreachable", metadata: [
                        "client": "\(clientEndpoint.map { "\($0)" } ?? "?")", "upstream": "\(target)",
                        "error": "\(error)",
                    ])
                    return Self.reject(child, "421 Service not available: cannot reach the FTP server.")
                }
        }.flatMapError { [self] error in
            // Only the transparent-mode lookup fails here; a failed connect has been answered above.
            self.registry.unregister(sessionID)
            self.logger.warning("session refused: \(error)", metadata: [
                "client": "\(clientEndpoint.map { "\($0)" } ?? "?")",
            ])
            return Self.reject(child, "421 Service not available: this gateway serves redirected connections only.")
        }
    }

    /// Transparent mode: the destination the client asked for, read back from the kernel's NAT. A connection made
    /// to the listener itself (not redirected) is refused: its original destination is the listener, and
    /// connecting there would loop back into the gateway.
    private func originalDestination(of child: any Channel) -> EventLoopFuture<Endpoint> {
        OriginalDestination.of(child)
            .flatMapErrorThrowing { error in
                throw TransparentModeError("original destination unknown (not redirected by nftables?): \(error)")
            }
            .flatMapThrowing { original in
                let target = Endpoint(address: original.address.unmapped, port: original.port)
                if let local = child.localAddress.flatMap(Endpoint.init(socketAddress:)),
                   local.address.unmapped == target.address, local.port == target.port {
                    throw TransparentModeError("connection not redirected: its original destination \(target) is "
                        + "this listener, and connecting there would loop")
                }
                return target
            }
    }

    private func startSession(_ id: UInt64, client: any Channel, server: any Channel) throws {
        guard let clientEnd = client.remoteAddress.flatMap(Endpoint.init(socketAddress:)),
              let clientLocal = client.localAddress.flatMap(Endpoint.init(socketAddress:)),
              let serverEnd = server.remoteAddress.flatMap(Endpoint.init(socketAddress:)),
              let serverLocal = server.localAddress.flatMap(Endpoint.init(socketAddress:)) else {
            server.close(promise: nil)
            throw ChannelError.unknownLocalAddress
        }
        var context = FTPSessionContext(
            client: Endpoint(address: clientEnd.address.unmapped, port: clientEnd.port),
            server: Endpoint(address: serverEnd.address.unmapped, port: serverEnd.port),
            // Transparent mode announces the server's own address: the client connects there, as it believes it
            // does anyway (EPSV), and algate's steering rule or kernel pinhole takes the connection.
            publicAddress: (configuration.publicAddress
                ?? (configuration.upstream == nil ? serverEnd.address : clientLocal.address)).unmapped,
            insideAddress: (configuration.dataAddress ?? serverLocal.address).unmapped)
        // The server knows the gateway by the address of the control connection, and may name it in a reply
        // (vsftpd's STAT: "Connected to ..."), even when active pinholes listen on another one.
        if serverLocal.address.unmapped != context.insideAddress { context.alsoInside = [serverLocal.address.unmapped] }
        let session = FTPSession(id: id, client: client, server: server, context: context,
                                 configuration: configuration, backend: backend, registry: registry, policy: policy,
                                 logger: logger)
        for (channel, side) in [(client, FTPSide.client), (server, FTPSide.server)] {
            try channel.pipeline.syncOperations.addHandler(
                ByteToMessageHandler(FTPLineDecoder(maxLineLength: configuration.maxLineLength)))
            try channel.pipeline.syncOperations.addHandler(FTPControlHandler(side: side, session: session))
        }
        let bound = NIOLoopBound(session, eventLoop: client.eventLoop)
        registry.replaceWindDown(id) { [loop = client.eventLoop] force in
            loop.execute { bound.value.windDown(force: force) }
        }
        session.start()
    }

    private static func reject(_ child: any Channel, _ reply: String) -> EventLoopFuture<Void> {
        child.eventLoop.makeCompletedFuture {
            try child.pipeline.syncOperations.addHandler(FTPRejectHandler(reply: reply))
        }
    }
}

/// Why a transparent-mode listener cannot serve a connection.
struct TransparentModeError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
