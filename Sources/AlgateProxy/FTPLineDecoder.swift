public import NIOCore

/// Frames an FTP control stream into lines, each ending in LF (CR LF, or a bare LF from sloppy peers), terminator
/// included, so that a line that is not rewritten is forwarded byte for byte.
///
/// A line longer than `maxLineLength` without its LF is an error: the session is closed, since nothing in FTP needs
/// such a line and buffering it is how a peer would exhaust the gateway's memory. NUL and other control bytes are
/// not special: they stay in the line they arrived in.
public struct FTPLineDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// The longest line accepted, terminator included.
    public let maxLineLength: Int
    /// Where the search for LF resumes: bytes before it were already searched.
    private var searched = 0

    public init(maxLineLength: Int) {
        precondition(maxLineLength > 0, "a line must be allowed at least one byte")
        self.maxLineLength = maxLineLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let lf = view[(view.startIndex + searched)...].firstIndex(of: 0x0A) else {
            searched = view.count
            if view.count > maxLineLength { throw FTPLineTooLongError(limit: maxLineLength) }
            return .needMoreData
        }
        let length = lf - view.startIndex + 1
        searched = 0
        if length > maxLineLength { throw FTPLineTooLongError(limit: maxLineLength) }
        // readSlice cannot fail: the length is within the readable bytes.
        guard let line = buffer.readSlice(length: length) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        let state = try decode(context: context, buffer: &buffer)
        if state == .needMoreData, buffer.readableBytes > 0, let rest = buffer.readSlice(length: buffer.readableBytes) {
            // A last line without its terminator: pass it on rather than lose it.
            searched = 0
            context.fireChannelRead(wrapInboundOut(rest))
        }
        return state == .continue ? .continue : .needMoreData
    }
}

/// A control line exceeded the configured length.
public struct FTPLineTooLongError: Error, Hashable, CustomStringConvertible {
    public var limit: Int
    public var description: String { "line longer than \(limit) bytes" }
}
