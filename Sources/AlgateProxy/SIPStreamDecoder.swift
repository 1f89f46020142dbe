public import AlgateRewrite
public import NIOCore

/// One item of a SIP byte stream.
public enum SIPStreamItem: Sendable {
    /// A whole message, exactly as framed by its Content-Length.
    case message(ByteBuffer)
    /// A message whose header section is complete but whose length cannot be known (Content-Length missing or
    /// malformed): its header section, to answer with 400; the stream goes on after it as if its body were empty.
    case refused(ByteBuffer, SIPParseError)
}

/// Frames a SIP TCP stream from byte 0 by Content-Length (RFC 3261 18.3) with ``SIPStreamFramer``.
///
/// Keep-alive line ends (RFC 5626) are consumed silently. A stream that does not start with a SIP start line, or
/// whose header section outgrows the limit, cannot be followed any further: that is an error, and the connection
/// closes. Nothing is ever searched for further on in the stream (NAT Slipstreaming).
public struct SIPStreamDecoder: ByteToMessageDecoder {
    public typealias InboundOut = SIPStreamItem

    private let framer: SIPStreamFramer

    public init(limits: SIPLimits) {
        framer = SIPStreamFramer(limits: limits)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let framed: Result<SIPStreamFramer.Frame?, SIPParseError> = buffer.withUnsafeReadableBytes { bytes in
            do throws(SIPParseError) {
                return .success(try framer.nextFrame(bytes))
            } catch {
                return .failure(error)
            }
        }
        switch framed {
        case .success(nil):
            return .needMoreData
        case .success(.keepAlive(let length)?):
            buffer.moveReaderIndex(forwardBy: length)
            return .continue
        case .success(.message(let length)?):
            guard let message = buffer.readSlice(length: length) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(.message(message)))
            return .continue
        case .failure(let error):
            switch error {
            case .missingHeader, .badContentLength, .duplicateHeader:
                // The header section is whole (the framer got that far): refuse it and go on after it.
                let end = buffer.readableBytesView.firstRange(of: [ASCII.cr, ASCII.lf, ASCII.cr, ASCII.lf])
                guard let end, let header = buffer.readSlice(length: end.upperBound - buffer.readerIndex) else {
                    throw error
                }
                context.fireChannelRead(wrapInboundOut(.refused(header, error)))
                return .continue
            default:
                throw error
            }
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        // A partial message at the end of the stream is dropped: it cannot be forwarded whole.
        let state = try decode(context: context, buffer: &buffer)
        if state == .needMoreData { buffer.moveReaderIndex(to: buffer.writerIndex) }
        return state
    }
}
