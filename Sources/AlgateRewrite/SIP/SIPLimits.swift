/// The limits a SIP message must stay within; anything larger is refused with ``SIPParseError/tooLarge(_:)``.
///
/// Defaults fit every message of RFC 4475 and of real phones; a 64 KB INVITE (suricata's `sip-body-large`) needs
/// a larger `maxMessageBytes`.
public struct SIPLimits: Hashable, Sendable {
    /// The whole message: start line, headers and body (a UDP datagram, or one message of a stream).
    public var maxMessageBytes = 65_535
    /// Start line, header fields and the empty line that ends them.
    public var maxHeaderBytes = 16_384
    /// Header fields (a folded field counts once).
    public var maxHeaders = 128
    /// One physical line of the header section, terminator included.
    public var maxLineBytes = 8_192
    /// Parts of a multipart body, counted over all nesting levels.
    public var maxBodyParts = 16
    /// How deep multipart bodies may nest (multipart/mixed holding multipart/alternative is depth 2).
    public var maxBodyNesting = 3

    public init() {}
}
