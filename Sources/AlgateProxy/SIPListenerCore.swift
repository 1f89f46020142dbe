import AlgatePinholes
import AlgateRewrite
import Logging
import NIOCore
import NIOPosix


/// The listener's state on its event loop: sockets, connections and the engines.
final class SIPListenerCore {
    private let configuration: SIPProxyConfiguration
    private let loop: any EventLoop
    private let backend: any PinholeBackend
    private let policy: PolicyStore?
    private let logger: Logger
    /// One engine per upstream: reverse mode's one, made at start; in transparent mode one per original
    /// destination, made on first use.
    private var engines: [Endpoint: SIPUpstreamEngine] = [:]
    private var udp: (any Channel)?
    private var tcpServer: (any Channel)?
    /// Accepted TCP connections by id (from phones, and from an upstream when it opens its own).
    private var outsideConnections: [UInt64: any Channel] = [:]
    private var nextConnectionID: UInt64 = 0
    private var keepAlive: RepeatedTask?
    private let started = NIODeadline.now()

    init(configuration: SIPProxyConfiguration, loop: any EventLoop, backend: any PinholeBackend,
         policy: PolicyStore?, logger: Logger) {
        self.configuration = configuration
        self.loop = loop
        self.backend = backend
        self.policy = policy
        self.logger = logger
        if let upstream = configuration.upstream {
            let listen = configuration.listen
            engines[upstream] = makeEngine(SIPGatewayContext(
                publicAddress: configuration.publicAddress ?? listen.address, publicPort: listen.port,
                insideAddress: configuration.insideAddress ?? listen.address, insidePort: listen.port,
                upstream: upstream))
        }
    }

    private var isTransparent: Bool { configuration.upstream == nil }

    private func makeEngine(_ context: SIPGatewayContext) -> SIPUpstreamEngine {
        var machine = SIPGatewayStateMachine(context: context, limits: configuration.limits)
        machine.ice = configuration.ice
        machine.insideNetworks = configuration.insideNetworks
        if let policy {
            machine.admission = { message, flow, _ in policy.admit(message, from: flow) }
        }
        return SIPUpstreamEngine(upstream: context.upstream, machine: machine)
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
            var bootstrap = DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .receivingWholeDatagrams(upTo: configuration.limits.maxMessageBytes)
            if isTransparent {
                // TPROXY hands this socket datagrams addressed elsewhere; each one's destination (IP_PKTINFO) is
                // where its phone sent it.
                bootstrap = bootstrap
                    .channelOption(TransparentSocket.option(for: configuration.listen.address), value: 1)
                    .channelOption(.receivePacketInfo, value: true)
            }
            binds.append(bootstrap
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
                    bound.value.accept(child)
                }
                .bind(to: address)
                .map { channel in bound.value.tcpServer = channel })
        }
        return EventLoopFuture.andAllSucceed(binds, on: loop).flatMapThrowing {
            let core = bound.value
            let local = (core.udp ?? core.tcpServer)?.localAddress.flatMap(Endpoint.init(socketAddress:))
            guard let local else { throw ChannelError.unknownLocalAddress }
            core.logger.info("listening", metadata: [
                "address": "\(local)",
                "upstream": "\(core.configuration.upstream.map { "\($0)" } ?? "original destination (transparent)")",
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
        var closing: [EventLoopFuture<Void>] = []
        for engine in engines.values {
            if let impersonator = engine.close() { closing.append(impersonator) }
        }
        if let udp { closing.append(udp.close()) }
        if let tcpServer { closing.append(tcpServer.close()) }
        for connection in outsideConnections.values { connection.close(promise: nil) }
        return EventLoopFuture.whenAllComplete(closing, on: loop).map { _ in }
    }

    // MARK: Engines

    /// The transparent engine whose upstream `source` is: traffic from outside comes addressed to the gateway
    /// itself (a response to algate's Via, a request to a contact algate put in a REGISTER), and belongs to the
    /// engine of the registrar or proxy that sends it (the same endpoint, else the same host: a proxy may send from
    /// another port, or open its own TCP connection).
    private func engine(from source: Endpoint) -> SIPUpstreamEngine? {
        if let exact = engines[source] { return exact }
        return engines.values.first { $0.upstream.address.isSameHost(as: source.address) }
    }

    /// The transparent engine of original destination `destination`, made on first use for `phone`.
    private func engine(towards destination: Endpoint, phone: Endpoint) -> SIPUpstreamEngine? {
        if let existing = engines[destination] { return existing }
        guard engines.count < configuration.maxUpstreams else {
            logger.warning("sip upstream refused: limit reached", metadata: [
                "destination": "\(destination)", "limit": "\(configuration.maxUpstreams)",
            ])
            return nil
        }
        // A message a phone sent to the gateway itself was not intercepted: the gateway is no upstream.
        guard !TransparentSocket.isLocal(destination.address) else {
            logger.debug("sip message to the gateway itself from no known upstream; dropped", metadata: [
                "from": "\(phone)", "to": "\(destination)",
            ])
            return nil
        }
        guard let towardsUpstream = configuration.publicAddress ?? TransparentSocket.sourceAddress(towards: destination),
              let towardsPhone = configuration.insideAddress ?? TransparentSocket.sourceAddress(towards: phone) else {
            logger.warning("sip upstream unreachable: no route", metadata: ["destination": "\(destination)"])
            return nil
        }
        // The phone is told the destination it asked for (Via, Record-Route, Contact: what it sends there is
        // intercepted again and comes back to this engine); media goes to the gateway's address on its side.
        // The upstream is told the gateway's own address towards it, where it reaches this listener directly.
        let engine = makeEngine(SIPGatewayContext(
            publicAddress: destination.address, publicPort: destination.port,
            insideAddress: towardsUpstream, insidePort: configuration.listen.port,
            upstream: destination, publicMediaAddress: towardsPhone))
        if configuration.transports.contains(.udp) {
            engine.impersonator = impersonatingSocket(destination)
        }
        engines[destination] = engine
        logger.info("sip upstream", metadata: [
            "upstream": "\(destination)", "gateway": "\(towardsUpstream)", "media-inside": "\(towardsPhone)",
        ])
        return engine
    }

    /// A UDP socket bound to `destination` (`IP_TRANSPARENT`, `SO_REUSEADDR` beside the listener's own socket on
    /// the same port): what the engine sends to phones leaves from the address and port they sent to. It receives
    /// nothing: TPROXY gives intercepted datagrams to the listener's socket, and no route brings others here.
    private func impersonatingSocket(_ destination: Endpoint) -> EventLoopFuture<any Channel> {
        let address: SocketAddress
        do {
            address = try SocketAddress(destination)
        } catch {
            return loop.makeFailedFuture(error)
        }
        let binding = DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(TransparentSocket.option(for: destination.address), value: 1)
            .bind(to: address)
        binding.whenFailure { [logger] error in
            logger.warning("cannot answer phones from the upstream's address", metadata: [
                "upstream": "\(destination)", "error": "\(error)",
            ])
        }
        return binding
    }

    // MARK: Input

    func received(_ bytes: ByteBuffer, from flow: SIPFlow, side: SIPSide, upstream: Endpoint) {
        guard let engine = engines[upstream] else { return }
        engine.machine.receive(bytes, from: flow, side: side, now: now)
        drain(engine)
    }

    func receivedDatagram(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard let source = Endpoint(socketAddress: envelope.remoteAddress) else { return }
        let flow = SIPFlow(transport: .udp, remote: source)
        if let upstream = configuration.upstream {
            let side: SIPSide = source.address.isSameHost(as: upstream.address) && source.port == upstream.port
                ? .inside : .outside
            received(envelope.data, from: flow, side: side, upstream: upstream)
            return
        }
        // Transparent: IPv4 peers as IPv4 even on a dual-stack socket, as the upstreams and the per-destination
        // sockets are (see `send`).
        let peer = SIPFlow(transport: .udp, remote: source.unmappedEndpoint)
        if let engine = engine(from: peer.remote) {
            received(envelope.data, from: peer, side: .inside, upstream: engine.upstream)
            return
        }
        // Intercepted: TPROXY delivers the datagram unchanged, so its destination is where the phone sent it.
        guard let destination = envelope.metadata?.packetInfo.flatMap({ Endpoint(socketAddress: $0.destinationAddress) })
        else { return }
        let original = Endpoint(address: destination.address.unmapped, port: configuration.interceptedPort)
        guard let engine = engine(towards: original, phone: peer.remote) else { return }
        received(envelope.data, from: peer, side: .outside, upstream: engine.upstream)
    }

    private func accept(_ child: any Channel) -> EventLoopFuture<Void> {
        guard outsideConnections.count < configuration.maxConnections,
              let remote = child.remoteAddress.flatMap(Endpoint.init(socketAddress:)) else {
            logger.warning("sip connection refused: limit reached", metadata: ["limit": "\(configuration.maxConnections)"])
            child.close(promise: nil)
            return child.eventLoop.makeSucceededVoidFuture()
        }
        if let upstream = configuration.upstream {
            // A registrar or PBX opens its own connections to reach phones (a new TCP connection from an ephemeral
            // port): what comes from the upstream's address is the inside, whichever side connected.
            let side: SIPSide = remote.address.isSameHost(as: upstream.address) ? .inside : .outside
            return child.eventLoop.makeCompletedFuture { try attach(child, remote: remote, side: side, upstream: upstream) }
        }
        if let engine = engine(from: remote.unmappedEndpoint) {
            return child.eventLoop.makeCompletedFuture {
                try attach(child, remote: remote, side: .inside, upstream: engine.upstream)
            }
        }
        // A phone's connection, redirected here: it belongs to the engine of where it was headed.
        let bound = NIOLoopBound(self, eventLoop: loop)
        return OriginalDestination.of(child).flatMapThrowing { destination in
            let core = bound.value
            guard let engine = core.engine(towards: destination.unmappedEndpoint, phone: remote.unmappedEndpoint) else {
                child.close(promise: nil)
                return
            }
            try core.attach(child, remote: remote, side: .outside, upstream: engine.upstream)
        }.flatMapErrorThrowing { [logger] error in
            logger.warning("sip connection refused: no original destination", metadata: [
                "from": "\(remote)", "error": "\(error)",
            ])
            child.close(promise: nil)
        }
    }

    private func attach(_ child: any Channel, remote: Endpoint, side: SIPSide, upstream: Endpoint) throws {
        nextConnectionID += 1
        let id = nextConnectionID
        outsideConnections[id] = child
        let flow = SIPFlow(transport: .tcp, remote: remote.unmappedEndpoint, connection: id)
        try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: configuration.limits)))
        try child.pipeline.syncOperations.addHandler(SIPConnectionHandler(core: self, flow: flow, side: side,
                                                                          upstream: upstream))
        logger.debug("sip connection open", metadata: ["flow": "\(flow)", "upstream": "\(upstream)"])
    }

    func connectionClosed(_ flow: SIPFlow, side: SIPSide, upstream: Endpoint) {
        guard let id = flow.connection, let engine = engines[upstream] else { return }
        if side == .inside, flow.remote == engine.upstream {
            engine.upstreamConnections.removeValue(forKey: id)
            // The phone's connection stays; a new upstream connection is made for its next request.
            return
        }
        // A phone's connection, or one the upstream opened to us.
        guard outsideConnections.removeValue(forKey: id) != nil else { return }
        engine.upstreamConnections.removeValue(forKey: id)?.whenSuccess { $0.close(promise: nil) }
        engine.machine.connectionClosed(flow)
        drain(engine)
        logger.debug("sip connection closed", metadata: ["flow": "\(flow)"])
    }

    /// A message on a stream whose length cannot be known: answered 400 when it is a request; the stream goes on.
    func refusedFraming(_ header: ByteBuffer, _ error: SIPParseError, on flow: SIPFlow, side: SIPSide, upstream: Endpoint) {
        logger.warning("sip message refused", metadata: ["from": "\(flow)", "reason": "\(error.explanation)"])
        if case let (_, response?) = SIPResponseBuilder.refusal(header, error: error), let engine = engines[upstream] {
            send(response, to: flow, engine: engine)
        }
    }

    /// A framing or parse error on a TCP connection: answered where the engine can, and logged.
    func streamError(_ error: any Error, on flow: SIPFlow, side: SIPSide, upstream: Endpoint) {
        logger.warning("sip stream error; connection closed", metadata: ["flow": "\(flow)", "error": "\(error)"])
        if flow.remote == upstream {
            engines[upstream]?.upstreamConnections[flow.connection ?? 0]?.whenSuccess { $0.close(promise: nil) }
        } else {
            outsideConnections[flow.connection ?? 0]?.close(promise: nil)
        }
    }

    // MARK: Actions

    private func drain(_ engine: SIPUpstreamEngine) {
        while engine.mediaUpdatesPending == 0, let action = engine.machine.nextAction() {
            perform(action, engine)
        }
    }

    private func perform(_ action: SIPGatewayAction, _ engine: SIPUpstreamEngine) {
        switch action {
        case .send(let bytes, let flow):
            send(bytes, to: flow, engine: engine)
        case .openMedia(let request):
            openMedia(request, engine)
        case .updateMedia(let id, let outsidePeer, let outsideRTCP, let insidePeer, let insideRTCP):
            // A kernel pinhole takes a moment to follow: the answer that announces the new endpoints, and
            // everything after it, waits until it has.
            guard let pending = engine.relays[id]?.setPeers(outside: outsidePeer, outsideRTCP: outsideRTCP,
                                                            inside: insidePeer, insideRTCP: insideRTCP) else { return }
            engine.mediaUpdatesPending += 1
            let bound = NIOLoopBound(self, eventLoop: loop)
            let boundEngine = NIOLoopBound(engine, eventLoop: loop)
            pending.hop(to: loop).whenComplete { _ in
                boundEngine.value.mediaUpdatesPending -= 1
                bound.value.drain(boundEngine.value)
            }
        case .closeMedia(let id):
            engine.relays.removeValue(forKey: id)?.close()
        case .report(let event):
            report(event)
        }
    }

    private func send(_ bytes: ByteBuffer, to flow: SIPFlow, engine: SIPUpstreamEngine) {
        switch flow.transport {
        case .udp:
            guard let destination = try? SocketAddress(flow.remote) else { return }
            let envelope = AddressedEnvelope(remoteAddress: destination, data: bytes)
            if let impersonator = engine.impersonator, !flow.remote.address.isSameHost(as: engine.upstream.address) {
                // To a phone: from the address it sent to (a socket of that address's family).
                impersonator.whenSuccess { $0.writeAndFlush(envelope, promise: nil) }
            } else if let udp {
                udp.writeAndFlush(Self.envelope(envelope, for: udp), promise: nil)
            }
        case .tcp:
            guard let id = flow.connection else { return }
            if flow.remote == engine.upstream {
                upstreamConnection(pairedWith: id, engine).whenSuccess { $0.writeAndFlush(bytes, promise: nil) }
            } else {
                outsideConnections[id]?.writeAndFlush(bytes, promise: nil)
            }
        }
    }

    /// `envelope` with an IPv4 destination IPv4-mapped when `channel` is an IPv6 (dual-stack) socket: transparent
    /// engines keep IPv4 upstreams as IPv4.
    private static func envelope(_ envelope: AddressedEnvelope<ByteBuffer>,
                                 for channel: any Channel) -> AddressedEnvelope<ByteBuffer> {
        guard case .v6? = channel.localAddress, case .v4 = envelope.remoteAddress,
              let remote = Endpoint(socketAddress: envelope.remoteAddress), case .v4(let value) = remote.address,
              let mapped = try? SocketAddress(Endpoint(address: .v6(high: 0, low: 0xffff_0000_0000 | UInt64(value)),
                                                       port: remote.port))
        else { return envelope }
        return AddressedEnvelope(remoteAddress: mapped, data: envelope.data)
    }

    /// The TCP connection to the engine's upstream that carries the requests of outside connection `id`, made on
    /// first use.
    private func upstreamConnection(pairedWith id: UInt64, _ engine: SIPUpstreamEngine) -> EventLoopFuture<any Channel> {
        if let existing = engine.upstreamConnections[id] { return existing }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let upstreamEndpoint = engine.upstream
        let flow = SIPFlow(transport: .tcp, remote: upstreamEndpoint, connection: id)
        let limits = configuration.limits
        let upstream: SocketAddress
        do {
            upstream = try SocketAddress(upstreamEndpoint)
        } catch {
            return loop.makeFailedFuture(error)
        }
        let connecting = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: limits)))
                    try channel.pipeline.syncOperations.addHandler(
                        SIPConnectionHandler(core: bound.value, flow: flow, side: .inside, upstream: upstreamEndpoint))
                }
            }
            .connect(to: upstream)
        connecting.whenFailure { error in
            let core = bound.value
            core.engines[upstreamEndpoint]?.upstreamConnections.removeValue(forKey: id)
            core.logger.warning("sip upstream unreachable", metadata: ["upstream": "\(upstreamEndpoint)",
                                                                       "error": "\(error)"])
        }
        engine.upstreamConnections[id] = connecting
        return connecting
    }

    private func openMedia(_ request: SIPMediaRequest, _ engine: SIPUpstreamEngine) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let boundEngine = NIOLoopBound(engine, eventLoop: loop)
        let context = engine.machine.context
        let spec = MediaRelaySpec(
            session: request.dialog,
            outsideAddress: context.publicMediaAddress.bindable(fallback: configuration.listen.address),
            insideAddress: context.insideAddress, outsidePeer: request.outsidePeer, insidePeer: request.insidePeer,
            outsideAllowed: request.outsideAllowed, insideAllowed: nil, idleTimeout: configuration.mediaTimeout)
        let id = request.id
        backend.openMediaPinhole(spec, on: loop) { event in
            if case .closed(let counters) = event {
                let core = bound.value
                let engine = boundEngine.value
                if engine.relays.removeValue(forKey: id) != nil {
                    engine.machine.mediaClosed(id: id)
                    core.drain(engine)
                }
                core.logger.info("media relay close", metadata: [
                    "relay": "\(id)", "call-id": "\(request.callID)", "packets-in": "\(counters.inbound)",
                    "packets-out": "\(counters.outbound)", "dropped": "\(counters.dropped)",
                ])
            }
        }.whenComplete { result in
            let core = bound.value
            let engine = boundEngine.value
            switch result {
            case .success(let relay):
                engine.relays[id] = relay
                _ = relay.setPeers(outside: request.outsidePeer, outsideRTCP: request.outsideRTCPPort,
                                   inside: request.insidePeer, insideRTCP: request.insideRTCPPort)
                core.logger.info("media relay open", metadata: [
                    "relay": "\(id)", "call-id": "\(request.callID)",
                    "outside": "\(Endpoint(address: spec.outsideAddress, port: relay.outsidePort))",
                    "inside": "\(Endpoint(address: spec.insideAddress, port: relay.insidePort))",
                    "admits": "\(request.outsideAllowed)",
                ])
                engine.machine.mediaOpened(id: id, outsidePort: relay.outsidePort, insidePort: relay.insidePort)
            case .failure(let error):
                core.logger.warning("media relay refused", metadata: ["call-id": "\(request.callID)", "error": "\(error)"])
                engine.machine.mediaFailed(id: id, reason: "\(error)")
            }
            core.drain(engine)
        }
    }

    private func refreshBindings() {
        for engine in engines.values {
            engine.machine.expire(now: now)
            drain(engine)
            // A CRLF CRLF keep-alive (RFC 5626 4.4.1) keeps each registered phone's NAT mapping open.
            for flow in engine.machine.registeredFlows {
                send(ByteBuffer(string: "\r\n\r\n"), to: flow, engine: engine)
            }
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

extension Endpoint {
    /// The endpoint with an IPv4-mapped IPv6 address folded to IPv4.
    var unmappedEndpoint: Endpoint { Endpoint(address: address.unmapped, port: port) }
}

extension IPAddress {
    /// 0.0.0.0 or `::`.
    var isWildcard: Bool {
        switch self {
        case .v4(0), .v6(high: 0, low: 0): return true
        default: return false
        }
    }

    /// This address unless it is a wildcard, which a relay socket cannot announce; then `fallback`.
    func bindable(fallback: IPAddress) -> IPAddress {
        isWildcard ? fallback : self
    }
}
