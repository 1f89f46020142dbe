import AlgatePinholes
import AlgateRewrite
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Userspace pinholes on real loopback sockets.
@Suite(.serialized) struct TCPPinholeTests {
    /// A target server that records what it receives per connection and, at end of input, answers with
    /// "got N" and closes: this proves half-closure travels through the relay both ways.
    final class Target: Sendable {
        let channel: any Channel
        let received = NIOLockedValueBox<[Int]>([])

        init(group: any EventLoopGroup) async throws {
            let received = self.received
            channel = try await ServerBootstrap(group: group)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(CountingHandler(received: received))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var endpoint: Endpoint { Endpoint(socketAddress: channel.localAddress!)! }
    }

    final class CountingHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let received: NIOLockedValueBox<[Int]>
        var count = 0

        init(received: NIOLockedValueBox<[Int]>) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            count += unwrapInboundIn(data).readableBytes
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            guard let event = event as? ChannelEvent, case .inputClosed = event else { return }
            received.withLockedValue { $0.append(count) }
            var reply = context.channel.allocator.buffer(capacity: 16)
            reply.writeString("got \(count)")
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
        }
    }

    /// Collects everything a client connection receives until the peer closes.
    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<String>
        var text = ""

        init(done: EventLoopPromise<String>) { self.done = done }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            text += String(buffer: unwrapInboundIn(data))
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.succeed(text)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            // A connection that never came up (refused) still settles the promise.
            done.fail(ChannelError.ioOnClosedChannel)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let events = NIOLockedValueBox<[String]>([])

    func backend(ports: ClosedRange<UInt16>, perSession: Int = 4) -> UserspacePinholeBackend {
        UserspacePinholeBackend(ports: ports, limits: .init(perSession: perSession, total: 100),
                                logger: Logger(label: "test"))
    }

    func open(_ backend: UserspacePinholeBackend, target: Endpoint, allowed: String = "127.0.0.1",
              timeout: Duration = .seconds(10)) async throws -> TCPPinhole {
        let events = self.events
        let spec = TCPPinholeSpec(session: 1, listenAddress: IPAddress("127.0.0.1")!, allowedPeer: IPAddress(allowed)!,
                                  target: target, sourceAddress: IPAddress("127.0.0.1"), timeout: timeout)
        return try await backend.openTCP(spec, on: group.next()) { event in
            events.withLockedValue { $0.append("\(event)") }
        }.get()
    }

    /// Connects to the pinhole from `source`, sends `payload`, half-closes, and returns what came back.
    func exchange(port: UInt16, from source: String = "127.0.0.1", payload: Int) async throws -> String {
        let promise = group.next().makePromise(of: String.self)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(done: promise))
                }
            }
            .connect(host: "127.0.0.1", port: Int(port)).get()
        var buffer = channel.allocator.buffer(capacity: payload)
        buffer.writeRepeatingByte(0x61, count: payload)
        try await channel.writeAndFlush(buffer)
        try await channel.close(mode: .output)
        return try await promise.futureResult.get()
    }

    @Test func relaysOneConnectionBothWaysWithHalfClosure() async throws {
        let target = try await Target(group: group)
        let backend = backend(ports: 45100...45109)
        let pinhole = try await open(backend, target: target.endpoint)
        #expect((45100...45109).contains(pinhole.port))
        #expect(backend.openCount == 1)

        let reply = try await exchange(port: pinhole.port, payload: 3_000_000)
        #expect(reply == "got 3000000")
        #expect(target.received.withLockedValue { $0 } == [3_000_000])

        // One connection only: the listener is gone, and so is the pinhole.
        await #expect(throws: (any Error).self) { _ = try await exchange(port: pinhole.port, payload: 1) }
        try await group.next().submit {}.get()
        #expect(backend.openCount == 0)
        let seen = events.withLockedValue { $0 }
        #expect(seen.contains { $0.hasPrefix("relayStarted") })
        #expect(seen.contains { $0.hasPrefix("relayEnded(fromPeer: 3000000, toPeer: 11)") })
        try await target.channel.close()
    }

    @Test func refusesAnyPeerButTheExpectedOne() async throws {
        let target = try await Target(group: group)
        let backend = backend(ports: 45110...45119)
        let pinhole = try await open(backend, target: target.endpoint)
        // 127.0.0.7 is refused and the pinhole stays for the right peer.
        _ = try? await exchange(port: pinhole.port, from: "127.0.0.7", payload: 10)
        #expect(target.received.withLockedValue { $0 }.isEmpty)
        #expect(events.withLockedValue { $0 }.contains { $0.hasPrefix("rejected") })
        let reply = try await exchange(port: pinhole.port, payload: 10)
        #expect(reply == "got 10")
        try await target.channel.close()
    }

    @Test func expiresWhenNobodyConnects() async throws {
        let target = try await Target(group: group)
        let backend = backend(ports: 45120...45129)
        let pinhole = try await open(backend, target: target.endpoint, timeout: .milliseconds(200))
        let closed = NIOLockedValueBox(false)
        // Wait for the close event the timeout causes, without sleeping a fixed time.
        for _ in 0..<100 where !closed.withLockedValue({ $0 }) {
            try await group.next().scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
            closed.withLockedValue { $0 = events.withLockedValue { $0 }.contains("closed") }
        }
        #expect(events.withLockedValue { $0 } == ["expired", "closed"])
        #expect(backend.openCount == 0)
        await #expect(throws: (any Error).self) { _ = try await exchange(port: pinhole.port, payload: 1) }
        try await target.channel.close()
    }

    @Test func enforcesTheSessionLimitAndReleasesOnClose() async throws {
        let target = try await Target(group: group)
        let backend = backend(ports: 45130...45139, perSession: 2)
        let first = try await open(backend, target: target.endpoint)
        _ = try await open(backend, target: target.endpoint)
        await #expect(throws: PinholeError.sessionLimit(2)) { _ = try await open(backend, target: target.endpoint) }
        first.close()
        try await group.next().submit {}.get()
        _ = try await open(backend, target: target.endpoint)
        backend.shutdown()
        try await group.next().submit {}.get()
        #expect(backend.openCount == 0)
        await #expect(throws: PinholeError.shuttingDown) { _ = try await open(backend, target: target.endpoint) }
        try await target.channel.close()
    }

    @Test func skipsPortsTakenByOtherPrograms() async throws {
        let target = try await Target(group: group)
        let squatter = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 45140).get()
        let backend = backend(ports: 45140...45141)
        let pinhole = try await open(backend, target: target.endpoint)
        #expect(pinhole.port == 45141)
        await #expect(throws: PinholeError.poolExhausted) { _ = try await open(backend, target: target.endpoint) }
        try await squatter.close()
        try await target.channel.close()
    }
}
