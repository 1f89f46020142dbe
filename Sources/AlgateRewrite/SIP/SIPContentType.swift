/// A media type, `type/subtype *(;param)` (RFC 3261 20.15, RFC 2045 5.1), as Content-Type carries it.
public struct SIPContentType: Hashable, Sendable {
    /// Lower-cased: `application`, `multipart`, ...
    public var type: String
    /// Lower-cased: `sdp`, `mixed`, `alternative`, ...
    public var subtype: String
    public var parameters: [SIPParameter]

    /// `application/sdp`.
    public var isSDP: Bool { type == "application" && subtype == "sdp" }
    /// Any `multipart/...`.
    public var isMultipart: Bool { type == "multipart" }

    /// The `boundary` parameter of a multipart type, unquoted; nil when absent.
    public var boundary: [UInt8]? {
        guard var value = parameters.first(named: "boundary")?.value else { return nil }
        if value.utf8.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            value = String(value.dropFirst().dropLast())
        }
        return value.isEmpty ? nil : Array(value.utf8)
    }

    /// Parses a whole buffer as one media type.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> SIPContentType {
        try parse(bytes, in: SIPGrammar.trimLWS(bytes, 0..<bytes.count))
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>) throws(SIPParseError) -> SIPContentType {
        let end = range.upperBound
        var index = range.lowerBound
        let typeStart = index
        while index < end, SIPGrammar.isTokenChar(bytes[index]) { index += 1 }
        let typeRange = typeStart..<index
        index = SIPGrammar.skipLWS(bytes, index, end)
        guard !typeRange.isEmpty, index < end, bytes[index] == SIPGrammar.slash else { throw .badContentType }
        index = SIPGrammar.skipLWS(bytes, index + 1, end)
        let subtypeStart = index
        while index < end, SIPGrammar.isTokenChar(bytes[index]) { index += 1 }
        let subtypeRange = subtypeStart..<index
        guard !subtypeRange.isEmpty else { throw .badContentType }
        let parameters = try SIPParameter.scanHeaderParameters(bytes, from: index, to: end, error: .badContentType)
        return SIPContentType(type: SIPGrammar.lowercasedString(bytes, typeRange),
                              subtype: SIPGrammar.lowercasedString(bytes, subtypeRange), parameters: parameters)
    }
}
