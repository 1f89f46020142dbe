public import AlgateRewrite
public import NIOCore
import NIOPosix

/// What a userspace TCP pinhole needs to know: where to listen, whom to admit, where to relay.
public struct TCPPinholeSpec: Hashable, Sendable {
    /// The control session that owns the pinhole (for per-session limits and logs).
    public var session: UInt64
    /// The local address the pinhole listens on (its port comes from the pool).
    public var listenAddress: IPAddress
    /// The only peer address admitted; a connection from anywhere else is closed and logged.
    public var allowedPeer: IPAddress
    /// Where the admitted connection is relayed.
    public var target: Endpoint
    /// The local address to connect to `target` from; servers such as vsftpd and pyftpdlib accept a data
    /// connection only from the address their control connection comes from.
    public var sourceAddress: IPAddress?
    /// How long the pinhole waits for its one connection.
    public var timeout: Duration

    public init(session: UInt64, listenAddress: IPAddress, allowedPeer: IPAddress, target: Endpoint,
                sourceAddress: IPAddress?, timeout: Duration) {
        self.session = session
        self.listenAddress = listenAddress
        self.allowedPeer = allowedPeer
        self.target = target
        self.sourceAddress = sourceAddress
        self.timeout = timeout
    }
}

/// What happens to a pinhole after it opened, reported on its event loop.
public enum PinholeEvent: Sendable {
    /// The expected peer connected and the relay to the target is up.
    case relayStarted(peer: Endpoint)
    /// The relay ended; bytes each way.
    case relayEnded(fromPeer: Int, toPeer: Int)
    /// A connection from another address than the expected peer was refused.
    case rejected(peer: Endpoint)
    /// The expected peer connected but the target could not be reached.
    case targetUnreachable(String)
    /// Nobody connected within the timeout.
    case expired
    /// The pinhole is gone (after any of the above, or an explicit close); its port is back in the pool.
    case closed
}

/// One open userspace TCP pinhole: a listener on a pool port that admits one connection from one peer and relays it.
///
/// All of its state lives on its event loop; `close()` may be called from anywhere.
public final class TCPPinhole: Sendable {
    public let spec: TCPPinholeSpec
    /// The public (or inside) port the peer must connect to.
    public let port: UInt16
    public let eventLoop: any EventLoop

    private struct State {
        var listener: (any Channel)?
        var relay: [any Channel] = []
        var used = false
        var closed = false
        var timeout: Scheduled<Void>?
        var onEvent: @Sendable (PinholeEvent) -> Void
        var release: (@Sendable () -> Void)?
        var fromPeer = 0
        var toPeer = 0
        var relayEndsPending = 0
    }

    private let state: NIOLoopBoundBox<State>

    init(spec: TCPPinholeSpec, port: UInt16, eventLoop: any EventLoop,
         onEvent: @escaping @Sendable (PinholeEvent) -> Void, release: @escaping @Sendable () -> Void) {
        self.spec = spec
        self.port = port
        self.eventLoop = eventLoop
        self.state = NIOLoopBoundBox.makeBoxSendingValue(
            State(onEvent: onEvent, release: release), eventLoop: eventLoop)
    }

    /// Whether the peer has connected (an active relay keeps its control session alive).
    public var isRelaying: Bool {
        eventLoop.preconditionInEventLoop()
        return state.value.used && !state.value.closed
    }

    /// Binds the listener and arms the timeout. Fails without side effects (the caller releases the port).
    func start() -> EventLoopFuture<Void> {
        let listenAddress: SocketAddress
        do {
            listenAddress = try SocketAddress(Endpoint(address: spec.listenAddress, port: port))
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 8)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] child in
                self.eventLoop.preconditionInEventLoop()
                return self.admit(child)
            }
        return bootstrap.bind(to: listenAddress).map { [self] channel in
            self.eventLoop.preconditionInEventLoop()
            if self.state.value.closed {
                channel.close(promise: nil)
                return
            }
            self.state.value.listener = channel
            self.state.value.timeout = self.eventLoop.scheduleTask(in: TimeAmount(self.spec.timeout)) { [self] in
                guard !self.state.value.used else { return }
                self.state.value.onEvent(.expired)
                self.shut()
            }
        }
    }

    /// Closes the listener and any relay; the port goes back to the pool once.
    public func close() {
        if eventLoop.inEventLoop {
            shut()
        } else {
            eventLoop.execute { [self] in self.shut() }
        }
    }

    private func admit(_ child: any Channel) -> EventLoopFuture<Void> {
        let peer = child.remoteAddress.flatMap(Endpoint.init(socketAddress:))
        guard let peer, peer.address.isSameHost(as: spec.allowedPeer), !state.value.used, !state.value.closed else {
            if let peer, !state.value.closed { state.value.onEvent(.rejected(peer: peer)) }
            return eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
        }
        state.value.used = true
        state.value.timeout?.cancel()
        // One connection only: stop accepting right away. The listener itself closes only after this child is
        // through the accept path, since NIO drops a child whose listener is no longer active.
        state.value.listener?.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }

        let target: SocketAddress
        do {
            target = try SocketAddress(spec.target)
        } catch {
            state.value.onEvent(.targetUnreachable("\(error)"))
            shut()
            return eventLoop.makeFailedFuture(error)
        }
        // The outbound side reads nothing until the admitted side is registered and active (its relay handler
        // turns reading on): bytes written to a channel that is not yet active would be lost.
        var bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: false)
            .connectTimeout(.seconds(10))
        if let source = spec.sourceAddress, let local = try? SocketAddress(Endpoint(address: source, port: 0)) {
            bootstrap = bootstrap.bind(to: local)
        }
        return bootstrap.connect(to: target).flatMapThrowing { [self] outbound in
            self.eventLoop.preconditionInEventLoop()
            let (peerSide, targetSide) = RelayHandler.matchedPair()
            peerSide.onInactive = { [self] bytes in self.relayEnded(fromPeer: bytes) }
            targetSide.onInactive = { [self] bytes in self.relayEnded(toPeer: bytes) }
            try outbound.pipeline.syncOperations.addHandler(targetSide)
            try child.pipeline.syncOperations.addHandler(peerSide)
            self.state.value.relay = [child, outbound]
            self.state.value.relayEndsPending = 2
            self.state.value.onEvent(.relayStarted(peer: peer))
            if self.state.value.closed { outbound.close(promise: nil) }
            self.eventLoop.execute { [self] in
                self.state.value.listener?.close(promise: nil)
                self.state.value.listener = nil
            }
        }.flatMapErrorThrowing { [self] error in
            self.state.value.onEvent(.targetUnreachable("\(error)"))
            self.shut()
            throw error
        }
    }

    private func relayEnded(fromPeer bytes: Int) {
        state.value.fromPeer = bytes
        relayHalfEnded()
    }

    private func relayEnded(toPeer bytes: Int) {
        state.value.toPeer = bytes
        relayHalfEnded()
    }

    private func relayHalfEnded() {
        state.value.relayEndsPending -= 1
        guard state.value.relayEndsPending == 0 else { return }
        state.value.onEvent(.relayEnded(fromPeer: state.value.fromPeer, toPeer: state.value.toPeer))
        shut()
    }

    private func shut() {
        guard !state.value.closed else { return }
        state.value.closed = true
        state.value.timeout?.cancel()
        state.value.listener?.close(promise: nil)
        state.value.listener = nil
        for channel in state.value.relay { channel.close(promise: nil) }
        state.value.release?()
        state.value.release = nil
        state.value.onEvent(.closed)
    }
}

extension Endpoint {
    /// The endpoint of an IPv4 or IPv6 socket address; nil for a Unix socket.
    ///
    /// Read straight from the sockaddr, without text: media relays call this for every packet.
    public init?(socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let v4):
            self.init(address: .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr)),
                      port: UInt16(bigEndian: v4.address.sin_port))
        case .v6(let v6):
            var storage = v6.address.sin6_addr
            let address = withUnsafeBytes(of: &storage) { raw -> IPAddress in
                let high = raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
                let low = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                return .v6(high: UInt64(bigEndian: high), low: UInt64(bigEndian: low))
            }
            self.init(address: address, port: UInt16(bigEndian: v6.address.sin6_port))
        case .unixDomainSocket:
            return nil
        }
    }
}

extension SocketAddress {
    /// The socket address of an endpoint.
    public init(_ endpoint: Endpoint) throws {
        try self.init(ipAddress: endpoint.address.description, port: Int(endpoint.port))
    }
}
