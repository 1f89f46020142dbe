import AlgatePinholes
import AlgateRewrite
import Logging
import NIOCore
import NIOPosix


/// Hands every datagram of the SIP socket to the listener.
final class SIPDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let core: SIPListenerCore

    init(core: SIPListenerCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.receivedDatagram(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors from earlier sends surface here; the socket stays open for everyone else.
    }
}

/// Hands every framed message of one SIP TCP connection to the listener, for the engine of `upstream`.
final class SIPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = SIPStreamItem

    private let core: SIPListenerCore
    private let flow: SIPFlow
    private let side: SIPSide
    private let upstream: Endpoint

    init(core: SIPListenerCore, flow: SIPFlow, side: SIPSide, upstream: Endpoint) {
        self.core = core
        self.flow = flow
        self.side = side
        self.upstream = upstream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .message(let bytes): core.received(bytes, from: flow, side: side, upstream: upstream)
        case .refused(let header, let error): core.refusedFraming(header, error, on: flow, side: side, upstream: upstream)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.connectionClosed(flow, side: side, upstream: upstream)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.streamError(error, on: flow, side: side, upstream: upstream)
    }
}
