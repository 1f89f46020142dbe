import AlgateRewrite
import NIOCore

/// The thin handler at the end of each control channel's pipeline: it hands lines (or, after AUTH TLS, raw bytes)
/// to the session and tells it when its channel goes away.
final class FTPControlHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let side: FTPSide
    private let session: FTPSession

    init(side: FTPSide, session: FTPSession) {
        self.side = side
        self.session = session
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.received(unwrapInboundIn(data), from: side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.close(reason: "\(side.rawValue) closed the connection")
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            session.inputClosed(side)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.writabilityChanged(side, isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        session.failed(side, error: error)
    }
}

/// Answers a client the gateway will not serve with one reply, then closes.
final class FTPRejectHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: String

    init(reply: String) {
        self.reply = reply
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: reply.utf8.count + 2)
        buffer.writeString(reply + "\r\n")
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
