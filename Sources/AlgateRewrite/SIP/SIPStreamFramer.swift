/// Cuts a SIP byte stream (TCP, TLS) into messages by Content-Length, from byte 0 of the stream (RFC 3261 18.3).
///
/// The framer only answers "how long is the next frame"; it keeps no state, so the caller hands it the unread front
/// of its buffer each time and consumes what it returns. Each call reads the header section from its start again,
/// so a peer that sends one byte at a time costs up to ``SIPLimits/maxHeaderBytes`` of scanning per byte: keep that
/// limit modest. Over a stream Content-Length is mandatory, so a message
/// without one is refused rather than guessed at, and the first line must be a SIP start line as soon as it is
/// complete: bytes that do not start a SIP message are refused at once, never searched for one further on (a
/// REGISTER hidden mid-stream, NAT Slipstreaming, is never found).
public struct SIPStreamFramer: Sendable {
    public enum Frame: Hashable, Sendable {
        /// Line ends before a message: a keep-alive ping (CRLFCRLF) or pong (CRLF), RFC 5626 3.5.1. Consume them.
        case keepAlive(length: Int)
        /// One whole message of `length` bytes, for ``SIPMessage/parse(_:limits:)``.
        case message(length: Int)
    }

    public var limits: SIPLimits

    public init(limits: SIPLimits = .init()) {
        self.limits = limits
    }

    /// The next frame at the start of `bytes`; nil when more bytes are needed to tell.
    ///
    /// Throws when the header section or the message would exceed the limits, when Content-Length is missing,
    /// repeated, negative or not a number, and when the first line is not a SIP start line.
    public func nextFrame(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> Frame? {
        switch try measure(bytes) {
        case .frame(let frame): return frame
        case .needMore: return nil
        }
    }

    /// What ``measure(_:)`` found: a whole frame, or how many bytes the next message needs in all when its header
    /// section is complete (so a caller can wait for that many without asking again at every byte).
    public enum Measurement: Hashable, Sendable {
        case frame(Frame)
        case needMore(total: Int?)
    }

    /// Like ``nextFrame(_:)``, and when only the body is missing, the message's total length.
    public func measure(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> Measurement {
        guard let frame = try nextFrameOrLength(bytes) else { return .needMore(total: nil) }
        switch frame {
        case .left(let frame): return .frame(frame)
        case .right(let total): return .needMore(total: total)
        }
    }

    /// The length of the complete header section at the start of `bytes`, its empty line included; nil when it is
    /// not complete (or does not scan). Where a caller that refuses a message whose length cannot be known
    /// (``nextFrame(_:)`` threw `missingHeader`, `badContentLength` or `duplicateHeader`) goes on: the empty line
    /// may be CR LF or a bare LF, as the header scan takes it, so looking for CR LF CR LF instead would run on into
    /// the body or the next message.
    public func headerSectionLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard case .complete(let section)? = try? SIPHeaderSection.scan(bytes, limits: limits) else { return nil }
        return section.bodyStart
    }

    private enum Either { case left(Frame), right(Int) }

    private func nextFrameOrLength(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> Either? {
        guard !bytes.isEmpty else { return nil }
        let lineEnds = SIPHeaderSection.leadingLineEnds(bytes)
        if lineEnds > 0 { return .left(.keepAlive(length: lineEnds)) }
        if bytes[0] == ASCII.cr {
            // A CR whose LF has not arrived yet; a CR followed by anything else is not a line end.
            guard bytes.count == 1 else { throw .badStartLine }
            return nil
        }

        let section: SIPHeaderSection
        switch try SIPHeaderSection.scan(bytes, limits: limits) {
        case .incomplete:
            return nil
        case .complete(let complete):
            section = complete
        }

        var declared: Int? = nil
        for field in section.fields where field.name == .contentLength {
            guard declared == nil else { throw .duplicateHeader("Content-Length") }
            guard let value = SIPGrammar.saturatingDecimal(bytes, field.valueRange, cap: 1 << 40) else {
                throw .badContentLength
            }
            declared = value
        }
        guard let declared else { throw .missingHeader("Content-Length") }
        let length = section.bodyStart + declared
        guard length <= limits.maxMessageBytes else { throw .tooLarge("message") }
        return bytes.count >= length ? .left(.message(length: length)) : .right(length)
    }
}
