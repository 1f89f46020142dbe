public import AlgatePinholes
public import AlgateRewrite
public import Logging
public import NIOCore
import NIOPosix

/// One `[[sip]]` listener: UDP and TCP on the same address and port, in front of one PBX or registrar (reverse
/// mode), or on a NAT gateway between the phones inside and whatever registrar or proxy each phone sends to
/// (transparent mode: nftables steers the phones' SIP traffic here, and algate learns its original destination).
///
/// Everything of a listener (its sockets, its TCP connections, its upstream connections, its media relays and the
/// engines) lives on one event loop, so the engines need no locks; signalling is light, media relays are cheap.
public final class SIPListener: Sendable {
    public let configuration: SIPProxyConfiguration
    private let loop: any EventLoop
    private let backend: any PinholeBackend
    private let policy: PolicyStore?
    private let logger: Logger
    private let core: NIOLoopBoundBox<SIPListenerCore?>

    public init(configuration: SIPProxyConfiguration, group: any EventLoopGroup, backend: any PinholeBackend,
                policy: PolicyStore? = nil, logger: Logger) {
        self.configuration = configuration
        self.policy = policy
        self.loop = group.next()
        self.backend = backend
        var logger = logger
        logger[metadataKey: "listener"] = "sip \(configuration.listen)"
        self.logger = logger
        self.core = NIOLoopBoundBox.makeEmptyBox(valueType: SIPListenerCore.self, eventLoop: loop)
    }

    /// Binds UDP and TCP (as configured) and returns the bound address.
    ///
    /// - Throws: ``GatewayError`` when, in reverse mode, `inside-address` is an address of this host that the
    ///   listener does not bind: the upstream would send its requests for the phones there and find nothing.
    public func start() async throws -> Endpoint {
        let configuration = self.configuration
        if configuration.upstream != nil, let inside = configuration.insideAddress,
           !configuration.listen.address.isWildcard, inside.unmapped != configuration.listen.address.unmapped,
           TransparentSocket.isLocal(inside) {
            throw GatewayError("[[sip]] listen = \"\(configuration.listen)\": inside-address = \"\(inside)\" is what the "
                + "upstream is told to send requests for the phones to, but the listener does not bind it: listen on "
                + "a wildcard address (0.0.0.0 or [::]) or on \(inside)")
        }
        let logger = self.logger
        let backend = self.backend
        let core = self.core
        let policy = self.policy
        return try await loop.flatSubmit { [loop] in
            let listenerCore = SIPListenerCore(configuration: configuration, loop: loop, backend: backend,
                                               policy: policy, logger: logger)
            core.value = listenerCore
            return listenerCore.bind()
        }.get()
    }

    /// Closes the sockets, every connection and every media relay of the listener.
    public func stop() async {
        let core = self.core
        try? await loop.flatSubmit {
            guard let listenerCore = core.value else { return core.eventLoop.makeSucceededVoidFuture() }
            core.value = nil
            return listenerCore.stop()
        }.get()
    }
}
