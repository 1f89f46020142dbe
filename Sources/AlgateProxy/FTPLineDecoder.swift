import AlgateRewrite
public import NIOCore

/// Frames an FTP control stream into lines with AlgateRewrite's ``FTPLineFramer``: each line ends in LF,
/// terminator included; a line longer than `maxLineLength` without its LF closes the session
/// (``FTPLineTooLongError``).
public struct FTPLineDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    private var framer: FTPLineFramer

    /// The longest line accepted, terminator included.
    public var maxLineLength: Int { framer.maxLineLength }

    public init(maxLineLength: Int) {
        framer = FTPLineFramer(maxLineLength: maxLineLength)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = try framer.nextLine(in: buffer.readableBytesView),
              let line = buffer.readSlice(length: length) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        let state = try decode(context: context, buffer: &buffer)
        if state == .needMoreData, buffer.readableBytes > 0, let rest = buffer.readSlice(length: buffer.readableBytes) {
            // A last line without its terminator: pass it on rather than lose it.
            framer.reset()
            context.fireChannelRead(wrapInboundOut(rest))
        }
        return state == .continue ? .continue : .needMoreData
    }
}
