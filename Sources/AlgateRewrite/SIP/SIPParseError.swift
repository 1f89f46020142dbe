/// Why a SIP message, one of its fields, or its SDP body could not be used.
///
/// Every case names the rule that was broken, so that a refusal can be logged (and, for a request, answered with a
/// 400, 505 or 513) with its cause. Line numbers count from 1, the start line being line 1.
public enum SIPParseError: Error, Hashable, Sendable {
    /// The bytes hold nothing but line ends (a keep-alive, RFC 5626 3.5.1), or nothing at all.
    case emptyMessage
    /// The first line is neither `Method SP Request-URI SP SIP-Version` nor `SIP-Version SP Status-Code SP Reason`
    /// (extra or trailing whitespace, a missing part, a control byte; RFC 4475 3.1.2.8 to 3.1.2.10).
    case badStartLine
    /// The method of a request line is not a token.
    case badMethod
    /// The SIP-Version is well formed but not SIP/2.0 (RFC 4475 3.1.2.16; answered with 505).
    case badVersion
    /// A status code that is not three digits from 100 to 699 (RFC 4475 3.1.2.19).
    case badStatusCode
    /// A URI that does not follow RFC 3261 25.1 (or, for other schemes, RFC 3986's absolute-URI shape).
    case badURI
    /// A Request-URI that carries `?headers` (not allowed there: RFC 3261 19.1.1, RFC 4475 3.1.2.11).
    case headersInRequestURI
    /// A header line that is not `name HCOLON value`, or a continuation line with no field to continue.
    case badHeader(line: Int)
    /// No empty line ends the header section.
    case noHeaderEnd
    /// A header that routing needs is absent (canonical name).
    case missingHeader(String)
    /// A header that must appear once appears again (canonical name; RFC 4475 3.3.8, 3.3.9).
    case duplicateHeader(String)
    /// A Content-Length that is not a decimal number (negative, empty, text; RFC 4475 3.1.2.3).
    case badContentLength
    /// The body is shorter than the Content-Length says (RFC 4475 3.1.2.2).
    case contentLengthMismatch(declared: Int, actual: Int)
    /// A configured limit was exceeded; the text names the limit.
    case tooLarge(String)
    /// A Via value that is not `SIP/2.0/transport sent-by *(;param)` (RFC 3261 20.42; RFC 4475 3.1.2.1).
    case badVia
    /// A CSeq that is not `number method`, or whose number is 2**31 or more (RFC 3261 8.1.1.5; RFC 4475 3.1.2.4).
    case badCSeq
    /// A request whose CSeq method is not its start line's method (RFC 4475 3.1.2.17, 3.1.2.18).
    case cseqMethodMismatch
    /// A Max-Forwards that is not a number from 0 to 255.
    case badMaxForwards
    /// A Call-ID that is not `word [@ word]`.
    case badCallID
    /// A From, To, Contact, Route or Record-Route value that is not a name-addr or addr-spec (header named).
    case badNameAddress(String)
    /// A Content-Type that is not `type/subtype *(;param)`, or a multipart type without a boundary.
    case badContentType
    /// A body the gateway cannot read: a Content-Encoding other than identity.
    case unsupportedContentEncoding
    /// A multipart body without its delimiters (RFC 2046 5.1.1).
    case badMultipart
    /// An SDP line that is not of RFC 8866's grammar where the gateway must read it (o=, c=, m=, a=rtcp); line
    /// numbers count within the SDP body.
    case badSDP(line: Int)

    /// A short, single-line explanation for logs and reason phrases.
    public var explanation: String {
        switch self {
        case .emptyMessage: return "no message, only line ends"
        case .badStartLine: return "malformed start line"
        case .badMethod: return "method is not a token"
        case .badVersion: return "SIP version is not SIP/2.0"
        case .badStatusCode: return "status code is not 100-699"
        case .badURI: return "malformed URI"
        case .headersInRequestURI: return "Request-URI carries headers"
        case .badHeader(let line): return "malformed header field at line \(line)"
        case .noHeaderEnd: return "no empty line ends the header section"
        case .missingHeader(let name): return "missing \(name) header"
        case .duplicateHeader(let name): return "more than one \(name) header"
        case .badContentLength: return "malformed Content-Length"
        case .contentLengthMismatch(let declared, let actual):
            return "Content-Length \(declared) but \(actual) bytes of body"
        case .tooLarge(let what): return "\(what) over the configured limit"
        case .badVia: return "malformed Via"
        case .badCSeq: return "malformed CSeq"
        case .cseqMethodMismatch: return "CSeq method does not match the request method"
        case .badMaxForwards: return "malformed Max-Forwards"
        case .badCallID: return "malformed Call-ID"
        case .badNameAddress(let name): return "malformed \(name) value"
        case .badContentType: return "malformed Content-Type"
        case .unsupportedContentEncoding: return "body has a Content-Encoding the gateway cannot read"
        case .badMultipart: return "malformed multipart body"
        case .badSDP(let line): return "malformed SDP at line \(line)"
        }
    }
}
