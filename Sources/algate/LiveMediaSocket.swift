import AlgatePinholes
import AlgateRewrite
import NIOCore
import NIOPosix

/// A stand-in peer's RTP socket in a live SIP replay: the port its SDP announces, on the address its SDP names;
/// every datagram that arrives goes into ``packets``.
final class LiveMediaSocket: Sendable {
    let channel: any Channel
    let packets: AsyncStream<[UInt8]>
    let port: Int

    private init(channel: any Channel, packets: AsyncStream<[UInt8]>) {
        self.channel = channel
        self.packets = packets
        self.port = channel.localAddress?.port ?? 0
    }

    /// Binds a UDP socket on `host`, any port.
    static func bind(host: String, group: any EventLoopGroup) async throws -> LiveMediaSocket {
        let (packets, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        let channel = try await DatagramBootstrap(group: group)
            .receivingWholeDatagrams(upTo: WholeDatagrams.mediaLimit)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(continuation: continuation))
                }
            }
            .bind(host: host, port: 0)
            .get()
        channel.closeFuture.whenComplete { _ in continuation.finish() }
        return LiveMediaSocket(channel: channel, packets: packets)
    }

    /// Sends each payload to `target`.
    func send(_ payloads: [[UInt8]], to target: Endpoint) async throws {
        let address = try SocketAddress(target)
        for payload in payloads {
            try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: payload)))
        }
    }

    /// Waits for `expected.count` datagrams (at most `timeout`), and returns how many of them are among
    /// `expected`, byte for byte.
    func receive(_ expected: [[UInt8]], timeout: Duration) async -> Int {
        let packets = self.packets
        let count = expected.count
        let received: [[UInt8]] = await withTaskGroup(of: [[UInt8]]?.self) { tasks in
            tasks.addTask {
                var got: [[UInt8]] = []
                for await packet in packets {
                    got.append(packet)
                    if got.count >= count { break }
                }
                return got
            }
            tasks.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await tasks.next() ?? nil
            tasks.cancelAll()
            return first ?? []
        }
        var remaining = expected
        var matched = 0
        for packet in received {
            if let index = remaining.firstIndex(of: packet) {
                remaining.remove(at: index)
                matched += 1
            }
        }
        return matched
    }

    func close() async {
        try? await channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let continuation: AsyncStream<[UInt8]>.Continuation

        init(continuation: AsyncStream<[UInt8]>.Continuation) {
            self.continuation = continuation
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            continuation.yield(Array(unwrapInboundIn(data).data.readableBytesView))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // ICMP port unreachable from an earlier send: the socket stays.
        }
    }
}
