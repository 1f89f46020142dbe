public import AlgateRewrite
public import NIOCore
import NIOPosix

/// What a media relay needs: one RTP stream and its RTCP, between an outside and an inside endpoint.
public struct MediaRelaySpec: Hashable, Sendable {
    /// The signalling session (dialog) that owns the relay.
    public var session: UInt64
    /// The local address of the outside-facing sockets (the address written into SDP sent outside).
    public var outsideAddress: IPAddress
    /// The local address of the inside-facing sockets (the address written into SDP sent inside).
    public var insideAddress: IPAddress
    /// Where outside media goes until the outside endpoint's own packets show its real address (symmetric RTP).
    public var outsidePeer: Endpoint?
    /// Where inside media goes, likewise.
    public var insidePeer: Endpoint?
    /// The only source address admitted on the outside sockets; nil admits any (a configured exception).
    public var outsideAllowed: IPAddress?
    /// The only source address admitted on the inside sockets; nil admits any.
    public var insideAllowed: IPAddress?
    /// The relay closes when no packet crossed it for this long.
    public var idleTimeout: Duration

    public init(session: UInt64, outsideAddress: IPAddress, insideAddress: IPAddress, outsidePeer: Endpoint?,
                insidePeer: Endpoint?, outsideAllowed: IPAddress?, insideAllowed: IPAddress?, idleTimeout: Duration) {
        self.session = session
        self.outsideAddress = outsideAddress
        self.insideAddress = insideAddress
        self.outsidePeer = outsidePeer
        self.insidePeer = insidePeer
        self.outsideAllowed = outsideAllowed
        self.insideAllowed = insideAllowed
        self.idleTimeout = idleTimeout
    }
}

/// Counts of what a media relay carried.
public struct MediaRelayCounters: Hashable, Sendable {
    /// RTP and RTCP packets relayed from outside to inside, and back.
    public var inbound = 0
    public var outbound = 0
    /// Packets dropped because they came from an address that is not admitted, or had nowhere to go.
    public var dropped = 0
}

/// A userspace media relay: four UDP sockets (RTP and RTCP on each side) on two port pairs from the pool.
///
/// A packet from outside is sent on from the inside socket of the same kind to the inside peer, and the other way
/// round. Each side latches onto the source of the first admitted packet (symmetric RTP), so a phone behind its own
/// NAT is reached where its packets come from, not at the private address its SDP names.
public final class MediaRelay: Sendable {
    public let spec: MediaRelaySpec
    /// The RTP port on the outside address (RTCP is one above).
    public let outsidePort: UInt16
    /// The RTP port on the inside address (RTCP is one above).
    public let insidePort: UInt16
    public let eventLoop: any EventLoop

    enum Socket: Int, CaseIterable, Sendable {
        case outsideRTP, outsideRTCP, insideRTP, insideRTCP

        var isOutside: Bool { self == .outsideRTP || self == .outsideRTCP }
        var isRTCP: Bool { self == .outsideRTCP || self == .insideRTCP }
        var partner: Socket {
            switch self {
            case .outsideRTP: .insideRTP
            case .outsideRTCP: .insideRTCP
            case .insideRTP: .outsideRTP
            case .insideRTCP: .outsideRTCP
            }
        }
    }

    private struct State {
        var channels: [Socket: any Channel] = [:]
        /// Where each socket sends: RTP peers, and RTCP peers (RTP port + 1 unless a=rtcp said otherwise).
        var peers: [Socket: SocketAddress] = [:]
        var latched: Set<Socket> = []
        var counters = MediaRelayCounters()
        var lastPacket = NIODeadline.now()
        var idleCheck: Scheduled<Void>?
        var closed = false
        var onEvent: @Sendable (MediaRelayEvent) -> Void
        var release: (@Sendable () -> Void)?
    }

    private let state: NIOLoopBoundBox<State>

    init(spec: MediaRelaySpec, outsidePort: UInt16, insidePort: UInt16, eventLoop: any EventLoop,
         onEvent: @escaping @Sendable (MediaRelayEvent) -> Void, release: @escaping @Sendable () -> Void) {
        self.spec = spec
        self.outsidePort = outsidePort
        self.insidePort = insidePort
        self.eventLoop = eventLoop
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(onEvent: onEvent, release: release), eventLoop: eventLoop)
    }

    /// What the relay carried so far (on its event loop).
    public var counters: MediaRelayCounters {
        eventLoop.preconditionInEventLoop()
        return state.value.counters
    }

    /// Binds the four sockets and arms the inactivity timer.
    func start() -> EventLoopFuture<Void> {
        var binds: [EventLoopFuture<Void>] = []
        for socket in Socket.allCases {
            let address = socket.isOutside ? spec.outsideAddress : spec.insideAddress
            let base = socket.isOutside ? outsidePort : insidePort
            let port = base + (socket.isRTCP ? 1 : 0)
            let local: SocketAddress
            do {
                local = try SocketAddress(Endpoint(address: address, port: port))
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
            let bind = DatagramBootstrap(group: eventLoop)
                .receivingWholeDatagrams(upTo: WholeDatagrams.mediaLimit)
                .channelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(MediaSocketHandler(relay: self, socket: socket))
                    }
                }
                .bind(to: local)
                .map { [self] channel in
                    self.eventLoop.preconditionInEventLoop()
                    self.state.value.channels[socket] = channel
                    if self.state.value.closed { channel.close(promise: nil) }
                }
            binds.append(bind)
        }
        setPeer(outside: true, spec.outsidePeer, rtcpPort: nil)
        setPeer(outside: false, spec.insidePeer, rtcpPort: nil)
        return EventLoopFuture.andAllSucceed(binds, on: eventLoop).map { [self] in
            self.scheduleIdleCheck()
        }
    }

    /// Points one side at a new endpoint (from an SDP answer or a re-INVITE); its RTCP goes to `rtcpPort` or
    /// the RTP port + 1. A side that already latched onto real packets keeps its latched address.
    public func setPeer(outside: Bool, _ endpoint: Endpoint?, rtcpPort: UInt16?) {
        guard let endpoint else { return }
        let apply: @Sendable () -> Void = { [self] in
            let rtp: Socket = outside ? .outsideRTP : .insideRTP
            let rtcp: Socket = outside ? .outsideRTCP : .insideRTCP
            if !state.value.latched.contains(rtp) {
                state.value.peers[rtp] = try? SocketAddress(endpoint)
            }
            if !state.value.latched.contains(rtcp) {
                let port = rtcpPort ?? (endpoint.port == .max ? endpoint.port : endpoint.port + 1)
                state.value.peers[rtcp] = try? SocketAddress(Endpoint(address: endpoint.address, port: port))
            }
        }
        if eventLoop.inEventLoop { apply() } else { eventLoop.execute(apply) }
    }

    /// Closes the four sockets; the ports go back to the pool once.
    public func close() {
        if eventLoop.inEventLoop { shut(idle: false) } else { eventLoop.execute { [self] in shut(idle: false) } }
    }

    /// Closes a relay that never opened (its sockets did not all bind), without a word to its owner: nobody was
    /// handed this relay, so no `closed` event may reach the owner of the one that replaces it.
    func abandon() {
        eventLoop.execute { [self] in
            self.state.value.onEvent = { _ in }
            self.shut(idle: false)
        }
    }

    // MARK: Packets

    fileprivate func received(_ envelope: AddressedEnvelope<ByteBuffer>, on socket: Socket) {
        guard !state.value.closed else { return }
        let allowed = socket.isOutside ? spec.outsideAllowed : spec.insideAllowed
        if let allowed {
            guard let source = Endpoint(socketAddress: envelope.remoteAddress),
                  source.address.isSameHost(as: allowed) else {
                state.value.counters.dropped += 1
                return
            }
        }
        // Symmetric RTP: answer where the packets really come from.
        if !state.value.latched.contains(socket) {
            state.value.latched.insert(socket)
            state.value.peers[socket] = envelope.remoteAddress
        }
        let out = socket.partner
        guard let destination = state.value.peers[out], let channel = state.value.channels[out] else {
            state.value.counters.dropped += 1
            return
        }
        state.value.lastPacket = .now()
        if socket.isOutside { state.value.counters.inbound += 1 } else { state.value.counters.outbound += 1 }
        // The socket reads into a 64 KiB buffer (media datagrams are received whole up to 65,535 bytes). The packet
        // leaves in a buffer of its own size, so that the write, pending until the read completes, holds a few
        // hundred bytes and the socket reuses its one receive buffer for the next read instead of keeping several
        // 64 KiB buffers alive behind pending writes.
        var packet = channel.allocator.buffer(capacity: envelope.data.readableBytes)
        packet.writeImmutableBuffer(envelope.data)
        channel.write(AddressedEnvelope(remoteAddress: destination, data: packet), promise: nil)
    }

    fileprivate func readComplete(on socket: Socket) {
        state.value.channels[socket.partner]?.flush()
    }

    // MARK: Lifetime

    private func scheduleIdleCheck() {
        let delay = TimeAmount(spec.idleTimeout)
        state.value.idleCheck = eventLoop.scheduleTask(in: delay) { [self] in
            guard !self.state.value.closed else { return }
            if NIODeadline.now() - self.state.value.lastPacket >= delay {
                self.shut(idle: true)
            } else {
                self.scheduleIdleCheck()
            }
        }
    }

    private func shut(idle: Bool) {
        guard !state.value.closed else { return }
        state.value.closed = true
        state.value.idleCheck?.cancel()
        for channel in state.value.channels.values { channel.close(promise: nil) }
        state.value.channels.removeAll()
        state.value.release?()
        state.value.release = nil
        if idle { state.value.onEvent(.idle(state.value.counters)) }
        state.value.onEvent(.closed(state.value.counters))
    }
}

/// What happens to a media relay, reported on its event loop.
public enum MediaRelayEvent: Hashable, Sendable {
    /// No packet for the idle timeout: the relay closed itself.
    case idle(MediaRelayCounters)
    /// The relay closed (explicitly, or after `idle`); final counters.
    case closed(MediaRelayCounters)
}

/// Hands each datagram of one relay socket to its relay.
final class MediaSocketHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let relay: MediaRelay
    private let socket: MediaRelay.Socket

    init(relay: MediaRelay, socket: MediaRelay.Socket) {
        self.relay = relay
        self.socket = socket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.received(unwrapInboundIn(data), on: socket)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        relay.readComplete(on: socket)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like surface here as read errors; media keeps flowing.
    }
}
