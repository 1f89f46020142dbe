/// One value of From, To, Contact, Route or Record-Route: `"Display" <uri>;params`, `Display <uri>;params`, or
/// the bare addr-spec form `uri;params` (RFC 3261 20.10, 25.1).
///
/// In the bare form the URI ends at the first `;`: what follows are header parameters, not URI parameters, and a URI
/// holding `;`, `?` or `,` must be written in angle brackets (so `Contact: sip:u@h?Route=...` is refused, RFC 4475
/// 3.1.2.13). All ranges are offsets into the parsed bytes.
///
/// Liberties taken: whitespace just inside the angle brackets is ignored, as RFC 4475 3.1.2.14 allows an element
/// that is liberal in what it accepts (`< sip:t.watson@example.org >`); an unquoted display name may hold UTF-8
/// (`Jörg <sip:...>`) and backslash pairs (one phone in the corpus writes `\"arik\" <sip:...>`). Commas and other
/// separators in an unquoted display name are still refused (3.1.2.15), as is an unterminated quoted string
/// (3.1.2.6): both make it impossible to tell where the value ends.
public struct SIPNameAddress: Hashable, Sendable {
    /// The whole value (one element of a comma-separated list).
    public var range: Range<Int>
    /// The display name as written (quotes included); nil when there is none.
    public var displayNameRange: Range<Int>?
    /// Whether the URI stands in angle brackets (name-addr) or bare (addr-spec).
    public var hasAngleBrackets: Bool
    /// The URI, inside the brackets and without surrounding whitespace.
    public var uriRange: Range<Int>
    public var uri: SIPURI
    /// The header parameters after the URI (tag, expires, q, ...).
    public var parameters: [SIPParameter]
    /// Where the parameters end: append a new `;param` here.
    public var parametersEnd: Int

    /// The `tag` parameter (From and To).
    public var tag: String? { parameter(named: "tag")?.value }

    /// The first header parameter called `name`, compared case-insensitively.
    public func parameter(named name: String) -> SIPParameter? {
        parameters.first(named: SIPURI.lowercased(name))
    }

    /// Parses a whole buffer as one value.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> SIPNameAddress {
        try parse(bytes, in: SIPGrammar.trimLWS(bytes, 0..<bytes.count), header: "name-addr")
    }

    /// Parses the value in `range` (already split from its list and trimmed); errors name `header`.
    static func parse(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>,
                      header: String) throws(SIPParseError) -> SIPNameAddress {
        let error = SIPParseError.badNameAddress(header)
        let end = range.upperBound
        guard !range.isEmpty else { throw error }

        // Look for the '<' that opens a name-addr, stepping over what a display name may hold.
        var index = range.lowerBound
        var opening: Int? = nil
        scan: while index < end {
            let byte = bytes[index]
            switch byte {
            case SIPGrammar.lessThan:
                opening = index
                break scan
            case SIPGrammar.doubleQuote:
                guard let close = SIPGrammar.endOfQuotedString(bytes, index, end) else { throw error }
                index = close
            case SIPGrammar.backslash where index + 1 < end:
                index += 2
            default:
                // token characters, whitespace, and UTF-8 (unquoted non-ASCII names are common in the wild).
                guard SIPGrammar.isTokenChar(byte) || SIPGrammar.isLWS(byte) || byte >= 0x80 else { break scan }
                index += 1
            }
        }

        if let opening {
            var close = opening + 1
            while close < end, bytes[close] != SIPGrammar.greaterThan { close += 1 }
            guard close < end else { throw error }
            let uriRange = SIPGrammar.trimLWS(bytes, (opening + 1)..<close)
            let uri: SIPURI
            do { uri = try SIPURI.parse(bytes, in: uriRange) } catch { throw .badNameAddress(header) }
            let display = SIPGrammar.trimLWS(bytes, range.lowerBound..<opening)
            let parameters = try SIPParameter.scanHeaderParameters(bytes, from: close + 1, to: end, error: error)
            return SIPNameAddress(range: range, displayNameRange: display.isEmpty ? nil : display,
                                  hasAngleBrackets: true, uriRange: uriRange, uri: uri, parameters: parameters,
                                  parametersEnd: parameters.last?.range.upperBound ?? (close + 1))
        }

        // addr-spec: the URI runs to the first ';' and may hold neither '?' nor ','.
        var uriEnd = range.lowerBound
        while uriEnd < end, bytes[uriEnd] != SIPGrammar.semicolon {
            guard bytes[uriEnd] != SIPGrammar.question, bytes[uriEnd] != ASCII.comma else { throw error }
            uriEnd += 1
        }
        let uriRange = SIPGrammar.trimLWS(bytes, range.lowerBound..<uriEnd)
        let uri: SIPURI
        do { uri = try SIPURI.parse(bytes, in: uriRange) } catch { throw .badNameAddress(header) }
        let parameters = try SIPParameter.scanHeaderParameters(bytes, from: uriEnd, to: end, error: error)
        return SIPNameAddress(range: range, displayNameRange: nil, hasAngleBrackets: false, uriRange: uriRange,
                              uri: uri, parameters: parameters,
                              parametersEnd: parameters.last?.range.upperBound ?? uriRange.upperBound)
    }
}
