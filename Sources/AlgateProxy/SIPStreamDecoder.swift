public import AlgateRewrite
public import NIOCore

/// One item of a SIP byte stream.
public enum SIPStreamItem: Sendable, Equatable {
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
    /// Bytes at the front already searched for the end of the header section.
    private var searched = 0
    /// Whether the start line of the pending message was checked (bytes that are not SIP are refused at once).
    private var startLineChecked = false
    /// The total length of the pending message once its header section is known.
    private var needed: Int?

    public init(limits: SIPLimits) {
        framer = SIPStreamFramer(limits: limits)
    }

    /// Whether the framer needs to look again: a peer dripping bytes one at a time must not make every byte cost
    /// a scan of the whole header section.
    private mutating func worthMeasuring(_ buffer: ByteBuffer) -> Bool {
        let view = buffer.readableBytesView
        if let needed { return view.count >= needed }
        guard let first = view.first else { return false }
        if first == ASCII.cr || first == ASCII.lf { return true }  // keep-alives
        let start = view.index(view.startIndex, offsetBy: max(0, searched - 3))
        let tail = view[start...]
        // The empty line after a header line: CR LF or a bare LF after the line's own CR LF or LF, as the scan
        // reads them.
        if tail.firstRange(of: [ASCII.cr, ASCII.lf, ASCII.cr, ASCII.lf]) != nil
            || tail.firstRange(of: [ASCII.lf, ASCII.lf]) != nil
            || tail.firstRange(of: [ASCII.lf, ASCII.cr, ASCII.lf]) != nil { return true }
        searched = view.count
        if !startLineChecked, view.contains(ASCII.lf) {
            startLineChecked = true
            return true
        }
        return view.count > framer.limits.maxHeaderBytes
    }

    private mutating func reset() {
        searched = 0
        startLineChecked = false
        needed = nil
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard worthMeasuring(buffer) else { return .needMoreData }
        let framed: Result<SIPStreamFramer.Frame?, SIPParseError> = buffer.withUnsafeReadableBytes { bytes in
            do throws(SIPParseError) {
                switch try framer.measure(bytes) {
                case .frame(let frame): return .success(frame)
                case .needMore(let total):
                    needed = total
                    return .success(nil)
                }
            } catch {
                return .failure(error)
            }
        }
        if case .success(_?) = framed { reset() }
        if case .failure = framed { reset() }
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
                // The header section is whole (the framer got that far): refuse it and go on after its empty line.
                let length = buffer.withUnsafeReadableBytes { framer.headerSectionLength($0) }
                guard let length, let header = buffer.readSlice(length: length) else { throw error }
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
