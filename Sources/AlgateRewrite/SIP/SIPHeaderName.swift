/// The header fields the gateway reads, recognised case-insensitively in their full and compact forms.
///
/// Every compact form of RFC 3261 7.3.3 and of the later RFCs that IANA lists (`i m e l c f s k t v` and
/// `o r b u x y a j d n`) is resolved: the ten that have a case here map to it, the others to ``other``; their
/// canonical spelling is still available from ``canonicalName(_:)`` for matching by name.
public enum SIPHeaderName: Hashable, Sendable {
    case via, from, to, callID, cseq, contact, contentLength, contentType, maxForwards, recordRoute, route
    case expires, userAgent, other

    /// The header name as RFC 3261 spells it (empty for ``other``).
    public var canonicalName: String {
        switch self {
        case .via: return "Via"
        case .from: return "From"
        case .to: return "To"
        case .callID: return "Call-ID"
        case .cseq: return "CSeq"
        case .contact: return "Contact"
        case .contentLength: return "Content-Length"
        case .contentType: return "Content-Type"
        case .maxForwards: return "Max-Forwards"
        case .recordRoute: return "Record-Route"
        case .route: return "Route"
        case .expires: return "Expires"
        case .userAgent: return "User-Agent"
        case .other: return ""
        }
    }

    /// Classifies a header name given as bytes (without the colon or surrounding whitespace).
    public init(_ name: UnsafeRawBufferPointer) {
        self = SIPHeaderName.classify(name, 0..<name.count)
    }

    /// The lower-cased canonical full name of a header, with compact forms expanded: `"v"` and `"VIA"` give
    /// `"via"`, `"o"` gives `"event"`; any other name is returned lower-cased as it is.
    public static func canonicalName(_ name: String) -> String {
        let lowered = String(decoding: name.utf8.map(ASCII.lower), as: UTF8.self)
        guard lowered.utf8.count == 1, let letter = lowered.utf8.first, let full = compactForms[letter] else {
            return lowered
        }
        return full
    }

    /// RFC 3261 7.3.3 and the IANA SIP header registry: compact letter to lower-cased full name.
    static let compactForms: [UInt8: String] = [
        UInt8(ascii: "i"): "call-id", UInt8(ascii: "m"): "contact", UInt8(ascii: "e"): "content-encoding",
        UInt8(ascii: "l"): "content-length", UInt8(ascii: "c"): "content-type", UInt8(ascii: "f"): "from",
        UInt8(ascii: "s"): "subject", UInt8(ascii: "k"): "supported", UInt8(ascii: "t"): "to",
        UInt8(ascii: "v"): "via", UInt8(ascii: "o"): "event", UInt8(ascii: "r"): "refer-to",
        UInt8(ascii: "b"): "referred-by", UInt8(ascii: "u"): "allow-events", UInt8(ascii: "x"): "session-expires",
        UInt8(ascii: "y"): "identity", UInt8(ascii: "a"): "accept-contact", UInt8(ascii: "j"): "reject-contact",
        UInt8(ascii: "d"): "request-disposition", UInt8(ascii: "n"): "identity-info",
    ]

    static func classify(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> SIPHeaderName {
        if range.count == 1 {
            switch ASCII.lower(bytes[range.lowerBound]) {
            case UInt8(ascii: "v"): return .via
            case UInt8(ascii: "f"): return .from
            case UInt8(ascii: "t"): return .to
            case UInt8(ascii: "i"): return .callID
            case UInt8(ascii: "m"): return .contact
            case UInt8(ascii: "l"): return .contentLength
            case UInt8(ascii: "c"): return .contentType
            default: return .other
            }
        }
        switch range.count {
        case 2:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "to") { return .to }
        case 3:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "via") { return .via }
        case 4:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "from") { return .from }
            if SIPGrammar.equalsIgnoringCase(bytes, range, "cseq") { return .cseq }
        case 5:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "route") { return .route }
        case 7:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "call-id") { return .callID }
            if SIPGrammar.equalsIgnoringCase(bytes, range, "contact") { return .contact }
            if SIPGrammar.equalsIgnoringCase(bytes, range, "expires") { return .expires }
        case 10:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "user-agent") { return .userAgent }
        case 12:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "content-type") { return .contentType }
            if SIPGrammar.equalsIgnoringCase(bytes, range, "max-forwards") { return .maxForwards }
            if SIPGrammar.equalsIgnoringCase(bytes, range, "record-route") { return .recordRoute }
        case 14:
            if SIPGrammar.equalsIgnoringCase(bytes, range, "content-length") { return .contentLength }
        default:
            break
        }
        return .other
    }
}
