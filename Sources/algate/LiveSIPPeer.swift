import AlgatePinholes
import AlgateProxy
import AlgateRewrite
import NIOCore
import NIOPosix
import Synchronization

/// The signalling socket of one stand-in peer of a live SIP replay: over UDP one socket that talks to the
/// gateway; over TCP the client's connection to the gateway, or the server's listening socket, which takes the
/// connections the gateway opens (and opens one to the gateway itself when it must speak first).
///
/// Every message that arrives goes into ``arrivals``; ``expect(_:within:)`` puts a deadline there too, so a player
/// waits for a message by its arrival, and learns of a message that never comes by the deadline's.
final class LiveSIPPeer: Sendable {
    enum Arrival: Sendable {
        case message(ByteBuffer)
        case deadline(Int)
    }

    let transport: SIPTransport
    let isServer: Bool
    let gateway: Endpoint
    /// Where the peer is: for TCP clients the connection's local end.
    let local: Endpoint
    let arrivals: AsyncStream<Arrival>
    private let continuation: AsyncStream<Arrival>.Continuation
    private let channel: any Channel
    private let group: any EventLoopGroup
    private let limits: SIPLimits
    /// TCP server: the connection the last message came on (answers go back on it).
    private let lastConnection = Mutex<(any Channel)?>(nil)
    private let connections = Mutex<[any Channel]>([])

    private init(transport: SIPTransport, isServer: Bool, gateway: Endpoint, local: Endpoint, channel: any Channel,
                 arrivals: AsyncStream<Arrival>, continuation: AsyncStream<Arrival>.Continuation,
                 group: any EventLoopGroup, limits: SIPLimits) {
        self.transport = transport
        self.isServer = isServer
        self.gateway = gateway
        self.local = local
        self.channel = channel
        self.arrivals = arrivals
        self.continuation = continuation
        self.group = group
        self.limits = limits
    }

    /// The server side: listens on `host` (any port) for what the gateway forwards upstream.
    static func server(transport: SIPTransport, host: String, gateway: Endpoint, group: any EventLoopGroup,
                       limits: SIPLimits) async throws -> LiveSIPPeer {
        let (arrivals, continuation) = AsyncStream.makeStream(of: Arrival.self)
        let box = PeerBox()
        let channel: any Channel
        switch transport {
        case .udp:
            channel = try await udpBootstrap(group: group, continuation: continuation).bind(host: host, port: 0).get()
        case .tcp:
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: limits)))
                        try child.pipeline.syncOperations.addHandler(StreamCollector(continuation: continuation,
                                                                                     box: box))
                    }
                }
                .bind(host: host, port: 0).get()
        }
        guard let local = channel.localAddress.flatMap(Endpoint.init(socketAddress:)) else {
            throw LiveReplayError("the stand-in server has no address")
        }
        let peer = LiveSIPPeer(transport: transport, isServer: true, gateway: gateway, local: local, channel: channel,
                               arrivals: arrivals, continuation: continuation, group: group, limits: limits)
        box.peer.withLock { $0 = peer }
        return peer
    }

    /// The client side: a socket on `host` (any port) that talks to the gateway (over TCP: connected to it).
    static func client(transport: SIPTransport, host: String, gateway: Endpoint, group: any EventLoopGroup,
                       limits: SIPLimits) async throws -> LiveSIPPeer {
        let (arrivals, continuation) = AsyncStream.makeStream(of: Arrival.self)
        let channel: any Channel
        switch transport {
        case .udp:
            channel = try await udpBootstrap(group: group, continuation: continuation).bind(host: host, port: 0).get()
        case .tcp:
            channel = try await ClientBootstrap(group: group)
                .bind(to: try SocketAddress(ipAddress: host, port: 0))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(SIPStreamDecoder(limits: limits)))
                        try channel.pipeline.syncOperations.addHandler(
                            StreamCollector(continuation: continuation, box: nil))
                    }
                }
                .connect(to: try SocketAddress(gateway)).get()
        }
        guard let local = channel.localAddress.flatMap(Endpoint.init(socketAddress:)) else {
            throw LiveReplayError("the stand-in client has no address")
        }
        return LiveSIPPeer(transport: transport, isServer: false, gateway: gateway, local: local, channel: channel,
                           arrivals: arrivals, continuation: continuation, group: group, limits: limits)
    }

    private static func udpBootstrap(group: any EventLoopGroup,
                                     continuation: AsyncStream<Arrival>.Continuation) -> DatagramBootstrap {
        DatagramBootstrap(group: group).receivingWholeDatagrams(upTo: WholeDatagrams.mediaLimit).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(DatagramCollector(continuation: continuation))
            }
        }
    }

    /// Sends one message to the gateway.
    func send(_ bytes: ByteBuffer) async throws {
        switch transport {
        case .udp:
            try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: try SocketAddress(gateway), data: bytes))
        case .tcp:
            if isServer {
                try await tcpConnectionForServer().writeAndFlush(bytes)
            } else {
                try await channel.writeAndFlush(bytes)
            }
        }
    }

    /// The connection a TCP server answers on: the last one a message came on, else a new one to the gateway.
    private func tcpConnectionForServer() async throws -> any Channel {
        if let last = lastConnection.withLock({ $0 }) { return last }
        let limits = self.limits
        let continuation = self.continuation
        let host = local.address
        let connection = try await ClientBootstrap(group: group)
            .bind(to: try SocketAddress(Endpoint(address: host, port: 0)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: limits)))
                    try channel.pipeline.syncOperations.addHandler(StreamCollector(continuation: continuation, box: nil))
                }
            }
            .connect(to: try SocketAddress(gateway)).get()
        track(connection)
        return connection
    }

    fileprivate func track(_ connection: any Channel) {
        lastConnection.withLock { $0 = connection }
        connections.withLock { $0.append(connection) }
    }

    /// Puts a deadline for message `index` into ``arrivals`` after `timeout`; cancel it when the message came.
    func expect(_ index: Int, within timeout: TimeAmount) -> Scheduled<Void> {
        let continuation = self.continuation
        return channel.eventLoop.scheduleTask(in: timeout) { continuation.yield(.deadline(index)) }
    }

    /// Closes the socket and every connection.
    func close() async {
        for connection in connections.withLock({ $0 }) { try? await connection.close() }
        try? await channel.close()
        continuation.finish()
    }

    /// Lets a TCP server's accepted connections tell the peer that they carried the last message.
    private final class PeerBox: Sendable {
        let peer = Mutex<LiveSIPPeer?>(nil)
    }

    private final class DatagramCollector: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let continuation: AsyncStream<Arrival>.Continuation

        init(continuation: AsyncStream<Arrival>.Continuation) {
            self.continuation = continuation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data).data
            // Keep-alives (line ends only) are not messages.
            guard !bytes.readableBytesView.allSatisfy({ $0 == 0x0d || $0 == 0x0a }) else { return }
            continuation.yield(.message(bytes))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {}
    }

    private final class StreamCollector: ChannelInboundHandler {
        typealias InboundIn = SIPStreamItem
        let continuation: AsyncStream<Arrival>.Continuation
        let box: PeerBox?

        init(continuation: AsyncStream<Arrival>.Continuation, box: PeerBox?) {
            self.continuation = continuation
            self.box = box
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if let peer = box?.peer.withLock({ $0 }) { peer.track(context.channel) }
            switch unwrapInboundIn(data) {
            case .message(let bytes): continuation.yield(.message(bytes))
            case .refused(let header, _): continuation.yield(.message(header))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
