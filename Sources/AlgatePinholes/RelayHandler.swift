import NIOCore

/// Relays bytes between two channels on one event loop, in both directions, with backpressure and half-closure.
///
/// Make a pair with ``RelayHandler/matchedPair()`` and add one to each channel. A channel reads only while its
/// partner can take writes; an end of input on one side shuts the partner's output, so a one-way end (an FTP upload
/// finishing) travels through; a channel is closed when both directions are done, or at once on an error.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var inputClosed = false
    private var outputClosed = false
    /// Bytes this side received and passed to its partner.
    private(set) var bytesRelayed = 0
    /// Called once, when this side's channel goes inactive.
    var onInactive: ((Int) -> Void)?

    static func matchedPair() -> (RelayHandler, RelayHandler) {
        let first = RelayHandler()
        let second = RelayHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytesRelayed += buffer.readableBytes
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelActive(context: ChannelHandlerContext) {
        // The partner was connected first and holds its reads until this side can take writes.
        partner?.partnerActivated()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        onInactive?(bytesRelayed)
        onInactive = nil
        partner?.partnerClose()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            inputClosed = true
            partner?.partnerShutdownOutput()
            if outputClosed { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    // MARK: Calls from the partner

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerActivated() {
        context?.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
    }

    private func partnerBecameWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    private func partnerShutdownOutput() {
        guard let context else { return }
        outputClosed = true
        if inputClosed {
            context.close(promise: nil)
        } else {
            context.close(mode: .output, promise: nil)
        }
    }

    private func partnerClose() {
        context?.close(promise: nil)
    }
}
