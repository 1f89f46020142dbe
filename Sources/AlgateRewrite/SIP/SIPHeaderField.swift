/// One header field of a message, as offsets into the message's readable bytes.
///
/// A folded field (RFC 3261 7.3.1: a line starting with SP or HTAB continues the one before) is one field: its
/// `valueRange` spans the continuation lines and `lineRange` ends after the last one's terminator.
public struct SIPHeaderField: Hashable, Sendable {
    /// The header, compact forms resolved.
    public var name: SIPHeaderName
    /// The name as written (`l`, `Content-Length`, `CONTENT-LENGTH`), without the whitespace before the colon.
    public var nameRange: Range<Int>
    /// The value: after the colon and any leading whitespace, up to before the CRLF that ends the field, with
    /// trailing whitespace left out. Folds inside the value are included as they are.
    public var valueRange: Range<Int>
    /// The whole field including its terminating CRLF (or LF): remove this to remove the field.
    public var lineRange: Range<Int>

    public init(name: SIPHeaderName, nameRange: Range<Int>, valueRange: Range<Int>, lineRange: Range<Int>) {
        self.name = name
        self.nameRange = nameRange
        self.valueRange = valueRange
        self.lineRange = lineRange
    }
}
