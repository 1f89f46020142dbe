/// The limits an SDP body must stay within; anything larger is refused with ``SIPParseError/tooLarge(_:)``.
public struct SDPLimits: Hashable, Sendable {
    /// Lines, empty ones included.
    public var maxLines = 1_024
    /// m= sections.
    public var maxMedia = 64
    /// One line, terminator included.
    public var maxLineBytes = 8_192

    public init() {}
}
