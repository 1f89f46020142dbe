import AlgatePinholes
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A stand-in registrar upstream of the gateway (UDP and TCP on one port) that records every byte that reaches it
/// and answers REGISTER and OPTIONS with 200 OK (echoing the Contact with `;expires=60`), so that a REGISTER the
/// gateway forwarded would create a binding. The witness that nothing was forwarded.
final class SIPUpstreamSink: Sendable {
    struct Message: Sendable {
        var transport: String
        var source: String
        var text: String
        var startLine: String { String(text.prefix { !$0.isNewline }) }
    }

    let address: String
    let port: UInt16
    private let state: NIOLockedValueBox<State>
    private let channels: [any Channel]

    struct State {
        var messages: [Message] = []
        /// Every chunk read on a TCP connection, whatever it is.
        var tcpBytes = 0
        var udpBytes = 0
    }

    private init(address: String, port: UInt16, state: NIOLockedValueBox<State>, channels: [any Channel]) {
        self.address = address
        self.port = port
        self.state = state
        self.channels = channels
    }

    var endpoint: String { "\(address):\(port)" }
    var messages: [Message] { state.withLockedValue { $0.messages } }
    var bytesReceived: Int { state.withLockedValue { $0.tcpBytes + $0.udpBytes } }

    static func start(address: String, port: UInt16, group: any EventLoopGroup) async throws -> SIPUpstreamSink {
        let state = NIOLockedValueBox(State())
        let socketAddress = try SocketAddress(ipAddress: address, port: Int(port))
        let udp = try await DatagramBootstrap(group: group)
            .receivingWholeDatagrams(upTo: WholeDatagrams.mediaLimit)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SinkDatagramHandler(state: state))
                }
            }
            .bind(to: socketAddress).get()
        let tcp: any Channel
        do {
            tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SinkStreamHandler(state: state))
                    }
                }
                .bind(to: socketAddress).get()
        } catch {
            try? await udp.close()
            throw error
        }
        return SIPUpstreamSink(address: address, port: port, state: state, channels: [udp, tcp])
    }

    func stop() async {
        for channel in channels { try? await channel.close() }
    }

    /// A sink on 127.0.0.2 and a gateway (127.0.0.1) in front of it, for `body`; both stopped afterwards.
    static func withGateway(poolSize: Int,
                            _ body: (SIPGatewayHarness, SIPUpstreamSink) async throws -> Void) async throws {
        let sip = try SIPITPorts.block(2)
        let pool = try SIPITPorts.block(poolSize)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await sipitWithCleanup {
            let sink = try await SIPUpstreamSink.start(address: "127.0.0.2", port: sip.upperBound, group: group)
            try await sipitWithCleanup {
                try await SIPGatewayHarness.with(.init(listen: "127.0.0.1:\(sip.lowerBound)", upstream: sink.endpoint,
                                                       pool: pool)) { gateway in
                    try await body(gateway, sink)
                }
            } cleanup: {
                await sink.stop()
            }
        } cleanup: {
            try? await group.shutdownGracefully()
        }
    }

    /// The 200 OK for a REGISTER or OPTIONS request (nil for anything else).
    static func answer(_ text: String) -> String? {
        let head = text.components(separatedBy: "\r\n\r\n").first ?? text
        let lines = head.components(separatedBy: "\r\n")
        guard let start = lines.first, start.hasPrefix("REGISTER ") || start.hasPrefix("OPTIONS ") else { return nil }
        var response = ["SIP/2.0 200 OK"]
        for line in lines.dropFirst() {
            let name = line.prefix { $0 != ":" }.trimmingCharacters(in: .whitespaces).lowercased()
            switch name {
            case "via", "v", "from", "f", "call-id", "i", "cseq":
                response.append(line)
            case "to", "t":
                response.append(line.contains("tag=") ? line : line + ";tag=sink")
            case "contact", "m":
                response.append(start.hasPrefix("REGISTER ") ? line + ";expires=60" : line)
            default:
                break
            }
        }
        response.append("Content-Length: 0")
        return response.joined(separator: "\r\n") + "\r\n\r\n"
    }
}

private final class SinkDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let state: NIOLockedValueBox<SIPUpstreamSink.State>

    init(state: NIOLockedValueBox<SIPUpstreamSink.State>) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let text = String(decoding: envelope.data.readableBytesView, as: UTF8.self)
        state.withLockedValue { state in
            state.udpBytes += envelope.data.readableBytes
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }  // keep-alive CRLFs
            state.messages.append(.init(transport: "UDP", source: "\(envelope.remoteAddress)", text: text))
        }
        if let answer = SIPUpstreamSink.answer(text) {
            let reply = AddressedEnvelope(remoteAddress: envelope.remoteAddress,
                                          data: context.channel.allocator.buffer(string: answer))
            context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}

/// Frames SIP on a TCP connection (header section, then Content-Length bytes) and records each message.
private final class SinkStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let state: NIOLockedValueBox<SIPUpstreamSink.State>
    private var pending: [UInt8] = []

    init(state: NIOLockedValueBox<SIPUpstreamSink.State>) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let chunk = unwrapInboundIn(data)
        state.withLockedValue { $0.tcpBytes += chunk.readableBytes }
        pending += chunk.readableBytesView
        let source = "\(context.remoteAddress.map { "\($0)" } ?? "?")"
        while let message = nextMessage() {
            let text = String(decoding: message, as: UTF8.self)
            state.withLockedValue { $0.messages.append(.init(transport: "TCP", source: source, text: text)) }
            if let answer = SIPUpstreamSink.answer(text) {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: answer)), promise: nil)
            }
        }
    }

    private func nextMessage() -> [UInt8]? {
        while pending.starts(with: [13, 10]) { pending.removeFirst(2) }
        guard let end = pending.firstRange(of: [13, 10, 13, 10]) else { return nil }
        let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
        var length = 0
        for line in head.components(separatedBy: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            if name == "content-length" || name == "l" {
                length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        let total = end.upperBound + max(0, length)
        guard pending.count >= total else { return nil }
        let message = Array(pending[..<total])
        pending.removeFirst(total)
        return message
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
