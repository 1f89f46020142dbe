import AlgatePinholes
import AlgateRewrite
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// An FTP "server" that answers each command with the lines a script gives, on loopback: for replies no real
/// server sends on purpose (a 227 nobody asked for, a second one, an address on every line of a multi-line 227).
/// It greets, then answers every command line with `script(line)`, each string one line (CR LF added), and
/// records the commands it got.
final class ScriptedFTPServer: Sendable {
    let endpoint: Endpoint
    private let channel: any Channel
    private let received: NIOLockedValueBox<[String]>

    /// The command lines it got, in order, without CR LF.
    var commands: [String] { received.withLockedValue { $0 } }

    private init(endpoint: Endpoint, channel: any Channel, received: NIOLockedValueBox<[String]>) {
        self.endpoint = endpoint
        self.channel = channel
        self.received = received
    }

    /// Listens on `address`, runs `body`, and always closes the listener.
    @discardableResult
    static func with<T>(on address: String = "127.0.0.2", greeting: String = "220 scripted server ready",
                        script: @escaping @Sendable (String) -> [String],
                        _ body: (ScriptedFTPServer) async throws -> T) async throws -> T {
        let received = NIOLockedValueBox<[String]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        ScriptHandler(greeting: greeting, script: script, received: received))
                }
            }
            .bind(host: address, port: 0).get()
        guard let local = channel.localAddress.flatMap(Endpoint.init(socketAddress:)) else {
            try? await channel.close().get()
            throw PeerError("scripted server has no local address")
        }
        let server = ScriptedFTPServer(endpoint: local, channel: channel, received: received)
        return try await withCleanup {
            try await body(server)
        } cleanup: {
            try? await channel.close().get()
        }
    }
}

/// Greets on connect, then answers each LF-terminated line.
private final class ScriptHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let greeting: String
    private let script: @Sendable (String) -> [String]
    private let received: NIOLockedValueBox<[String]>
    private var pending: [UInt8] = []

    init(greeting: String, script: @escaping @Sendable (String) -> [String], received: NIOLockedValueBox<[String]>) {
        self.greeting = greeting
        self.script = script
        self.received = received
    }

    func channelActive(context: ChannelHandlerContext) {
        send([greeting], context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for byte in unwrapInboundIn(data).readableBytesView {
            guard byte == UInt8(ascii: "\n") else {
                pending.append(byte)
                continue
            }
            if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
            let line = String(decoding: pending, as: UTF8.self)
            pending.removeAll(keepingCapacity: true)
            received.withLockedValue { $0.append(line) }
            send(script(line), context: context)
            if line.uppercased() == "QUIT" { context.close(promise: nil) }
        }
    }

    private func send(_ lines: [String], context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        for line in lines { buffer.writeString(line + "\r\n") }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
}
