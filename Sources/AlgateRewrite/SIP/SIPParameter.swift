/// One `;name[=value]` parameter of a URI, a Via, a name-addr or a media type.
///
/// The ranges let an editor remove a parameter (``range``), or replace its value (``valueRange``) without touching
/// anything around it.
public struct SIPParameter: Hashable, Sendable {
    /// The name, lower-cased (parameter names compare case-insensitively).
    public var name: String
    /// The value as written (a quoted string keeps its quotes; escapes are not decoded); nil for a flag.
    public var value: String?
    /// From the `;` through the end of the value (or of the name, for a flag).
    public var range: Range<Int>
    public var nameRange: Range<Int>
    public var valueRange: Range<Int>?

    public init(name: String, value: String?, range: Range<Int>, nameRange: Range<Int>, valueRange: Range<Int>?) {
        self.name = name
        self.value = value
        self.range = range
        self.nameRange = nameRange
        self.valueRange = valueRange
    }
}

extension Array where Element == SIPParameter {
    /// The first parameter called `name` (give it lower-cased).
    func first(named name: String) -> SIPParameter? {
        first { $0.name == name }
    }
}

extension SIPParameter {
    /// Scans header parameters, `*( SEMI generic-param )` (RFC 3261 25.1), from `index` to `end`, whitespace
    /// and folds allowed around `;` and `=`. A value is a token, a quoted string, or a host (IPv6 with or
    /// without brackets, as `received=` carries it). An empty name or value is refused with `error`.
    static func scanHeaderParameters(_ bytes: UnsafeRawBufferPointer, from index: Int, to end: Int,
                                     error: SIPParseError) throws(SIPParseError) -> [SIPParameter] {
        var parameters: [SIPParameter] = []
        var index = SIPGrammar.skipLWS(bytes, index, end)
        while index < end {
            guard bytes[index] == SIPGrammar.semicolon else { throw error }
            let start = index
            index = SIPGrammar.skipLWS(bytes, index + 1, end)
            let nameStart = index
            while index < end, SIPGrammar.isTokenChar(bytes[index]) { index += 1 }
            guard index > nameStart else { throw error }
            let nameRange = nameStart..<index
            var valueRange: Range<Int>? = nil
            let afterName = SIPGrammar.skipLWS(bytes, index, end)
            if afterName < end, bytes[afterName] == ASCII.equals {
                var cursor = SIPGrammar.skipLWS(bytes, afterName + 1, end)
                let valueStart = cursor
                if cursor < end, bytes[cursor] == SIPGrammar.doubleQuote {
                    guard let close = SIPGrammar.endOfQuotedString(bytes, cursor, end) else { throw error }
                    cursor = close
                } else {
                    while cursor < end, isValueChar(bytes[cursor]) { cursor += 1 }
                }
                guard cursor > valueStart else { throw error }
                valueRange = valueStart..<cursor
                index = cursor
            }
            parameters.append(SIPParameter(
                name: SIPGrammar.lowercasedString(bytes, nameRange),
                value: valueRange.map { SIPGrammar.string(bytes, $0) },
                range: start..<(valueRange?.upperBound ?? nameRange.upperBound),
                nameRange: nameRange, valueRange: valueRange))
            index = SIPGrammar.skipLWS(bytes, index, end)
        }
        return parameters
    }

    /// token characters plus what a host adds: `:` `[` `]`.
    @inline(__always)
    static func isValueChar(_ byte: UInt8) -> Bool {
        SIPGrammar.isTokenChar(byte) || byte == ASCII.colon || byte == ASCII.openBracket || byte == ASCII.closeBracket
    }
}
