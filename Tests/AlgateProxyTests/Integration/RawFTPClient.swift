import AlgatePinholes
import AlgateRewrite
import Foundation
import NIOCore
import NIOPosix

/// One FTP reply: its code and all of its lines.
struct FTPReply: Sendable, CustomStringConvertible {
    var code: Int
    var lines: [String]
    var description: String { lines.joined(separator: " / ") }
    var text: String { lines.joined(separator: "\n") }
}

/// A hand-driven FTP control connection over NIO, for what no real client will do on purpose: a bounce PORT,
/// a PASV that is never used, a data connection from the wrong address.
///
/// Every connection has a lifetime: when it is over the channel is closed, so a read never hangs a test.
final class RawFTPConnection {
    let channel: any Channel
    private var lines: AsyncThrowingStream<String, any Error>.AsyncIterator

    private init(channel: any Channel, lines: AsyncThrowingStream<String, any Error>) {
        self.channel = channel
        self.lines = lines.makeAsyncIterator()
    }

    /// Connects (from `source` when given) and returns once connected; nothing is read yet.
    static func connect(to endpoint: Endpoint, from source: String? = nil,
                        lifetime: Duration = .seconds(30)) async throws -> RawFTPConnection {
        let (stream, continuation) = AsyncThrowingStream<String, any Error>.makeStream()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LineCollector(continuation))
                }
            }
        if let source {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0))
        }
        let channel = try await bootstrap.connect(to: SocketAddress(endpoint)).get()
        channel.eventLoop.scheduleTask(in: TimeAmount(lifetime)) {
            channel.close(promise: nil)
        }
        return RawFTPConnection(channel: channel, lines: stream)
    }

    /// Reads one complete reply (multi-line replies included).
    func readReply() async throws -> FTPReply {
        var collected: [String] = []
        var code: Int?
        while true {
            guard let line = try await lines.next() else {
                throw PeerError("control connection closed; read so far: \(collected)")
            }
            collected.append(line)
            let bytes = Array(line.utf8)
            let lineCode = bytes.count >= 3 && bytes[0..<3].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
                ? Int(String(decoding: bytes[0..<3], as: UTF8.self)) : nil
            if code == nil {
                guard let lineCode else { throw PeerError("not a reply: \(line)") }
                code = lineCode
            }
            if lineCode == code, bytes.count == 3 || bytes[3] == UInt8(ascii: " ") {
                return FTPReply(code: code!, lines: collected)
            }
        }
    }

    /// The next line, or nil when the connection closed.
    func readLine() async throws -> String? {
        try await lines.next()
    }

    func send(_ line: String) async throws {
        var buffer = channel.allocator.buffer(capacity: line.utf8.count + 2)
        buffer.writeString(line + "\r\n")
        try await channel.writeAndFlush(buffer).get()
    }

    /// Sends a command and reads its reply.
    func command(_ line: String) async throws -> FTPReply {
        try await send(line)
        return try await readReply()
    }

    /// Reads the banner and logs in anonymously; throws unless both succeed.
    func login() async throws {
        let banner = try await readReply()
        guard banner.code == 220 else { throw PeerError("banner: \(banner)") }
        let user = try await command("USER anonymous")
        guard user.code == 331 || user.code == 230 else { throw PeerError("USER: \(user)") }
        if user.code == 331 {
            let pass = try await command("PASS itest@example.org")
            guard pass.code == 230 else { throw PeerError("PASS: \(pass)") }
        }
    }

    func close() async {
        try? await channel.close().get()
    }

    /// Waits for a 220 banner on `endpoint`, retrying while nothing listens yet; throws at the deadline, or at
    /// once when `alive` says the server process is gone.
    static func waitForBanner(_ endpoint: Endpoint, within limit: Duration = .seconds(15),
                              alive: () -> Bool = { true }) async throws {
        let deadline = ContinuousClock.now + limit
        var lastError = "no attempt"
        while ContinuousClock.now < deadline {
            guard alive() else { throw PeerError("server at \(endpoint) exited before its banner") }
            do {
                let connection = try await connect(to: endpoint, lifetime: .seconds(3))
                let reply = try await connection.readReply()
                _ = try? await connection.command("QUIT")
                await connection.close()
                if reply.code == 220 { return }
                lastError = "banner \(reply)"
            } catch {
                lastError = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw PeerError("no 220 banner from \(endpoint) within \(limit): \(lastError)")
    }
}

/// A data connection made by hand: connects, optionally sends, and collects whatever arrives until the other side
/// closes (or the lifetime ends).
enum RawDataConnection {
    struct Outcome: Sendable {
        var bytes: [UInt8]
        /// How the connection ended: nil for an orderly close by the peer.
        var error: String?
        var elapsed: Duration
    }

    static func receiveAll(from endpoint: Endpoint, source: String? = nil,
                           lifetime: Duration = .seconds(30)) async throws -> Outcome {
        let start = ContinuousClock.now
        let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ChunkCollector(continuation))
                }
            }
        if let source {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0))
        }
        let channel = try await bootstrap.connect(to: SocketAddress(endpoint)).get()
        channel.eventLoop.scheduleTask(in: TimeAmount(lifetime)) {
            continuation.finish(throwing: PeerError("data connection lifetime over"))
            channel.close(promise: nil)
        }
        var bytes: [UInt8] = []
        var failure: String?
        do {
            for try await chunk in stream {
                bytes.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            failure = "\(error)"
        }
        try? await channel.close().get()
        return Outcome(bytes: bytes, error: failure, elapsed: ContinuousClock.now - start)
    }
}

/// Splits a byte stream into lines (CR LF or LF), without the terminator.
private final class LineCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let continuation: AsyncThrowingStream<String, any Error>.Continuation
    private var pending: [UInt8] = []

    init(_ continuation: AsyncThrowingStream<String, any Error>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        for byte in buffer.readableBytesView {
            if byte == UInt8(ascii: "\n") {
                if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
                continuation.yield(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}

private final class ChunkCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation

    init(_ continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}

extension FTPReply {
    /// The endpoint in a 227 reply `(h1,h2,h3,h4,p1,p2)`.
    var passiveEndpoint: Endpoint? {
        guard code == 227 else { return nil }
        let digits = text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        // The six numbers are the last six in the line (the code comes first).
        guard digits.count >= 7 else { return nil }
        let six = Array(digits.suffix(6))
        guard six.allSatisfy({ (0...255).contains($0) }),
              let address = IPAddress("\(six[0]).\(six[1]).\(six[2]).\(six[3])") else { return nil }
        return Endpoint(address: address, port: UInt16(six[4] * 256 + six[5]))
    }

    /// The port in a 229 reply `(|||port|)`.
    var extendedPassivePort: UInt16? {
        guard code == 229, let open = text.firstIndex(of: "(") else { return nil }
        let inside = text[text.index(after: open)...].prefix { $0 != ")" }
        return inside.split(separator: "|").compactMap { UInt16($0) }.first
    }
}
