public import AlgatePinholes
public import AlgateRewrite
public import Logging
public import NIOCore
import NIOPosix

/// One `[[sip]]` listener in reverse mode: UDP and TCP on the same address and port, in front of one PBX or
/// registrar.
///
/// Everything of a listener (its sockets, its TCP connections, its upstream connections, its media relays and the
/// engine) lives on one event loop, so the engine needs no locks; signalling is light, media relays are cheap.
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
    public func start() async throws -> Endpoint {
        let configuration = self.configuration
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

/// Limits and addresses of one SIP listener.
public struct SIPProxyConfiguration: Hashable, Sendable {
    public var listen: Endpoint
    public var upstream: Endpoint
    public var transports: Set<SIPTransport> = [.udp, .tcp]
    /// What outside peers are told; default: the listen address (which then must not be a wildcard).
    public var publicAddress: IPAddress?
    /// The gateway's address towards upstream; default: the listen address.
    public var insideAddress: IPAddress?
    public var limits = SIPLimits()
    /// A media relay with no packet for this long closes.
    public var mediaTimeout: Duration = .seconds(60)
    /// How often a registered phone's NAT mapping is refreshed (a CRLF keep-alive, RFC 5626 4.4.1).
    public var keepAliveInterval: Duration = .seconds(25)
    /// TCP connections at once, from outside.
    public var maxConnections: Int = 1000

    public init(listen: Endpoint, upstream: Endpoint) {
        self.listen = listen
        self.upstream = upstream
    }
}

/// The listener's state on its event loop: sockets, connections and the engine.
final class SIPListenerCore {
    private let configuration: SIPProxyConfiguration
    private let loop: any EventLoop
    private let backend: any PinholeBackend
    private let logger: Logger
    private var engine: SIPGatewayStateMachine
    private var udp: (any Channel)?
    private var tcpServer: (any Channel)?
    /// Accepted TCP connections by id (from phones, and from the upstream when it opens its own), and the
    /// connection to upstream paired with each phone connection.
    private var outsideConnections: [UInt64: any Channel] = [:]
    private var upstreamConnections: [UInt64: EventLoopFuture<any Channel>] = [:]
    private var nextConnectionID: UInt64 = 0
    private var relays: [UInt64: any MediaPinhole] = [:]
    private var keepAlive: RepeatedTask?
    private let started = NIODeadline.now()

    init(configuration: SIPProxyConfiguration, loop: any EventLoop, backend: any PinholeBackend,
         policy: PolicyStore?, logger: Logger) {
        self.configuration = configuration
        self.loop = loop
        self.backend = backend
        self.logger = logger
        let listen = configuration.listen
        self.engine = SIPGatewayStateMachine(
            context: SIPGatewayContext(
                publicAddress: configuration.publicAddress ?? listen.address, publicPort: listen.port,
                insideAddress: configuration.insideAddress ?? listen.address, insidePort: listen.port,
                upstream: configuration.upstream),
            limits: configuration.limits)
        if let policy {
            engine.admission = { message, flow, _ in policy.admit(message, from: flow) }
        }
    }

    private var now: Double {
        Double((NIODeadline.now() - started).nanoseconds) / 1e9
    }

    func bind() -> EventLoopFuture<Endpoint> {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let address: SocketAddress
        do {
            address = try SocketAddress(configuration.listen)
        } catch {
            return loop.makeFailedFuture(error)
        }
        var binds: [EventLoopFuture<Void>] = []
        if configuration.transports.contains(.udp) {
            binds.append(DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SIPDatagramHandler(core: bound.value))
                    }
                }
                .bind(to: address)
                .map { channel in bound.value.udp = channel })
        }
        if configuration.transports.contains(.tcp) {
            binds.append(ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try bound.value.accept(child)
                    }
                }
                .bind(to: address)
                .map { channel in bound.value.tcpServer = channel })
        }
        return EventLoopFuture.andAllSucceed(binds, on: loop).flatMapThrowing {
            let core = bound.value
            let local = (core.udp ?? core.tcpServer)?.localAddress.flatMap(Endpoint.init(socketAddress:))
            guard let local else { throw ChannelError.unknownLocalAddress }
            core.logger.info("listening", metadata: [
                "address": "\(local)", "upstream": "\(core.configuration.upstream)",
                "transports": "\(core.configuration.transports.map(\.rawValue).sorted().joined(separator: ","))",
            ])
            core.keepAlive = core.loop.scheduleRepeatedTask(
                initialDelay: TimeAmount(core.configuration.keepAliveInterval),
                delay: TimeAmount(core.configuration.keepAliveInterval)) { _ in
                bound.value.refreshBindings()
            }
            return local
        }
    }

    func stop() -> EventLoopFuture<Void> {
        keepAlive?.cancel()
        for relay in relays.values { relay.close() }
        relays.removeAll()
        var closing: [EventLoopFuture<Void>] = []
        if let udp { closing.append(udp.close()) }
        if let tcpServer { closing.append(tcpServer.close()) }
        for connection in outsideConnections.values { connection.close(promise: nil) }
        for upstream in upstreamConnections.values { upstream.whenSuccess { $0.close(promise: nil) } }
        return EventLoopFuture.whenAllComplete(closing, on: loop).map { _ in }
    }

    // MARK: Input

    func received(_ bytes: ByteBuffer, from flow: SIPFlow, side: SIPSide) {
        engine.receive(bytes, from: flow, side: side, now: now)
        drain()
    }

    func receivedDatagram(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard let source = Endpoint(socketAddress: envelope.remoteAddress) else { return }
        let side: SIPSide = source.address.isSameHost(as: configuration.upstream.address)
            && source.port == configuration.upstream.port ? .inside : .outside
        received(envelope.data, from: SIPFlow(transport: .udp, remote: source), side: side)
    }

    private func accept(_ child: any Channel) throws {
        guard outsideConnections.count < configuration.maxConnections,
              let remote = child.remoteAddress.flatMap(Endpoint.init(socketAddress:)) else {
            logger.warning("sip connection refused: limit reached", metadata: ["limit": "\(configuration.maxConnections)"])
            child.close(promise: nil)
            return
        }
        nextConnectionID += 1
        let id = nextConnectionID
        outsideConnections[id] = child
        let flow = SIPFlow(transport: .tcp, remote: remote.unmappedEndpoint, connection: id)
        // A registrar or PBX opens its own connections to reach phones (a new TCP connection from an ephemeral
        // port): what comes from the upstream's address is the inside, whichever side connected.
        let side: SIPSide = remote.address.isSameHost(as: configuration.upstream.address) ? .inside : .outside
        try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: configuration.limits)))
        try child.pipeline.syncOperations.addHandler(SIPConnectionHandler(core: self, flow: flow, side: side))
        logger.debug("sip connection open", metadata: ["flow": "\(flow)"])
    }

    func connectionClosed(_ flow: SIPFlow, side: SIPSide) {
        guard let id = flow.connection else { return }
        switch side {
        case .outside, .inside where flow.remote != configuration.upstream:
            guard outsideConnections.removeValue(forKey: id) != nil else { return }
            upstreamConnections.removeValue(forKey: id)?.whenSuccess { $0.close(promise: nil) }
            engine.connectionClosed(flow)
            drain()
            logger.debug("sip connection closed", metadata: ["flow": "\(flow)"])
        case .inside:
            upstreamConnections.removeValue(forKey: id)
            // The phone's connection stays; a new upstream connection is made for its next request.
        }
    }

    /// A message on a stream whose length cannot be known: answered 400 when it is a request; the stream goes on.
    func refusedFraming(_ header: ByteBuffer, _ error: SIPParseError, on flow: SIPFlow, side: SIPSide) {
        logger.warning("sip message refused", metadata: ["from": "\(flow)", "reason": "\(error.explanation)"])
        if let response = SIPResponseBuilder.badRequest(header, explanation: error.explanation) {
            send(response, to: flow)
        }
    }

    /// A framing or parse error on a TCP connection: answered where the engine can, and logged.
    func streamError(_ error: any Error, on flow: SIPFlow, side: SIPSide) {
        logger.warning("sip stream error; connection closed", metadata: ["flow": "\(flow)", "error": "\(error)"])
        if flow.remote == configuration.upstream {
            upstreamConnections[flow.connection ?? 0]?.whenSuccess { $0.close(promise: nil) }
        } else {
            outsideConnections[flow.connection ?? 0]?.close(promise: nil)
        }
    }

    // MARK: Actions

    private func drain() {
        while let action = engine.nextAction() {
            perform(action)
        }
    }

    private func perform(_ action: SIPGatewayAction) {
        switch action {
        case .send(let bytes, let flow):
            send(bytes, to: flow)
        case .openMedia(let request):
            openMedia(request)
        case .updateMedia(let id, let outsidePeer, let outsideRTCP, let insidePeer, let insideRTCP):
            relays[id]?.setPeer(outside: true, outsidePeer, rtcpPort: outsideRTCP)
            relays[id]?.setPeer(outside: false, insidePeer, rtcpPort: insideRTCP)
        case .closeMedia(let id):
            relays.removeValue(forKey: id)?.close()
        case .report(let event):
            report(event)
        }
    }

    private func send(_ bytes: ByteBuffer, to flow: SIPFlow) {
        switch flow.transport {
        case .udp:
            guard let udp, let destination = try? SocketAddress(flow.remote) else { return }
            udp.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: bytes), promise: nil)
        case .tcp:
            guard let id = flow.connection else { return }
            if flow.remote == configuration.upstream {
                upstreamConnection(pairedWith: id).whenSuccess { $0.writeAndFlush(bytes, promise: nil) }
            } else {
                outsideConnections[id]?.writeAndFlush(bytes, promise: nil)
            }
        }
    }

    /// The TCP connection to upstream that carries the requests of outside connection `id`, made on first use.
    private func upstreamConnection(pairedWith id: UInt64) -> EventLoopFuture<any Channel> {
        if let existing = upstreamConnections[id] { return existing }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let flow = SIPFlow(transport: .tcp, remote: configuration.upstream, connection: id)
        let limits = configuration.limits
        let upstream: SocketAddress
        do {
            upstream = try SocketAddress(configuration.upstream)
        } catch {
            return loop.makeFailedFuture(error)
        }
        let connecting = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: limits)))
                    try channel.pipeline.syncOperations.addHandler(
                        SIPConnectionHandler(core: bound.value, flow: flow, side: .inside))
                }
            }
            .connect(to: upstream)
        connecting.whenFailure { error in
            let core = bound.value
            core.upstreamConnections.removeValue(forKey: id)
            core.logger.warning("sip upstream unreachable", metadata: ["upstream": "\(core.configuration.upstream)",
                                                                       "error": "\(error)"])
        }
        upstreamConnections[id] = connecting
        return connecting
    }

    private func openMedia(_ request: SIPMediaRequest) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let spec = MediaRelaySpec(
            session: request.dialog, outsideAddress: engine.context.publicAddress.bindable(fallback: configuration.listen.address),
            insideAddress: engine.context.insideAddress, outsidePeer: request.outsidePeer, insidePeer: request.insidePeer,
            outsideAllowed: request.outsideAllowed, insideAllowed: nil, idleTimeout: configuration.mediaTimeout)
        let id = request.id
        backend.openMediaPinhole(spec, on: loop) { event in
            if case .closed(let counters) = event {
                let core = bound.value
                if core.relays.removeValue(forKey: id) != nil {
                    core.engine.mediaClosed(id: id)
                    core.drain()
                }
                core.logger.info("media relay close", metadata: [
                    "relay": "\(id)", "call-id": "\(request.callID)", "packets-in": "\(counters.inbound)",
                    "packets-out": "\(counters.outbound)", "dropped": "\(counters.dropped)",
                ])
            }
        }.whenComplete { result in
            let core = bound.value
            switch result {
            case .success(let relay):
                core.relays[id] = relay
                relay.setPeer(outside: true, request.outsidePeer, rtcpPort: request.outsideRTCPPort)
                relay.setPeer(outside: false, request.insidePeer, rtcpPort: request.insideRTCPPort)
                core.logger.info("media relay open", metadata: [
                    "relay": "\(id)", "call-id": "\(request.callID)",
                    "outside": "\(Endpoint(address: spec.outsideAddress, port: relay.outsidePort))",
                    "inside": "\(Endpoint(address: spec.insideAddress, port: relay.insidePort))",
                    "admits": "\(request.outsideAllowed)",
                ])
                core.engine.mediaOpened(id: id, outsidePort: relay.outsidePort, insidePort: relay.insidePort)
            case .failure(let error):
                core.logger.warning("media relay refused", metadata: ["call-id": "\(request.callID)", "error": "\(error)"])
                core.engine.mediaFailed(id: id, reason: "\(error)")
            }
            core.drain()
        }
    }

    private func refreshBindings() {
        engine.expire(now: now)
        drain()
        // A CRLF CRLF keep-alive (RFC 5626 4.4.1) keeps each registered phone's NAT mapping open.
        for flow in engine.registeredFlows {
            send(ByteBuffer(string: "\r\n\r\n"), to: flow)
        }
    }

    private func report(_ event: SIPGatewayEvent) {
        switch event {
        case .forwarded(let summary, let from, let to):
            logger.info("sip", metadata: ["from": "\(from)", "to": "\(to)", "message": "\(summary)"])
        case .refused(let reason, let from, let answered):
            logger.warning("sip message refused", metadata: [
                "from": "\(from)", "reason": "\(reason)", "answered": "\(answered.map(String.init) ?? "no")",
            ])
        case .binding(let aor, let flow, let expires):
            logger.info(expires > 0 ? "registration binding" : "registration removed", metadata: [
                "aor": "\(aor)", "flow": "\(flow)", "expires": "\(expires)",
            ])
        case .media(let callID, let what):
            logger.info("dialog media", metadata: ["call-id": "\(callID)", "what": "\(what)"])
        }
    }
}

/// Hands every datagram of the SIP socket to the listener.
final class SIPDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let core: SIPListenerCore

    init(core: SIPListenerCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.receivedDatagram(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors from earlier sends surface here; the socket stays open for everyone else.
    }
}

/// Hands every framed message of one SIP TCP connection to the listener.
final class SIPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = SIPStreamItem

    private let core: SIPListenerCore
    private let flow: SIPFlow
    private let side: SIPSide

    init(core: SIPListenerCore, flow: SIPFlow, side: SIPSide) {
        self.core = core
        self.flow = flow
        self.side = side
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .message(let bytes): core.received(bytes, from: flow, side: side)
        case .refused(let header, let error): core.refusedFraming(header, error, on: flow, side: side)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.connectionClosed(flow, side: side)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.streamError(error, on: flow, side: side)
    }
}

extension Endpoint {
    /// The endpoint with an IPv4-mapped IPv6 address folded to IPv4.
    var unmappedEndpoint: Endpoint { Endpoint(address: address.unmapped, port: port) }
}

extension IPAddress {
    /// This address unless it is a wildcard, which a relay socket cannot announce; then `fallback`.
    func bindable(fallback: IPAddress) -> IPAddress {
        switch self {
        case .v4(0), .v6(high: 0, low: 0): return fallback
        default: return self
        }
    }
}
