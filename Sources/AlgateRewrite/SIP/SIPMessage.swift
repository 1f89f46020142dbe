public import NIOCore

/// One SIP request or response, parsed just far enough to route it and to rewrite it in place.
///
/// The message keeps its bytes as they arrived; every range it hands out is an offset into ``bytes``' readable
/// bytes, so an editor (``SIPMessageEditor``) changes exactly the bytes it is told to and nothing else.
///
/// ``parse(_:limits:)`` validates what a proxy relies on and refuses the rest with a specific ``SIPParseError``:
///
/// 1. Framing: the start line (RFC 3261 7.1, 7.2, single spaces, SIP/2.0, a 100-699 code), well-formed header lines
///    (folds allowed), the empty line, and Content-Length against the body. Over UDP a body longer than declared is
///    cut to the declared length and the rest discarded (RFC 3261 18.3; RFC 4475 3.1.1.8); a shorter one is refused.
///    Without a Content-Length the body is the rest of the bytes (a datagram).
/// 2. Presence: Via, From, To, Call-ID and CSeq (RFC 3261 8.1.1). Call-ID, CSeq, Content-Length and Max-Forwards
///    must not repeat (RFC 4475 3.3.8, 3.3.9). Max-Forwards is not required: a proxy adds one when it is missing
///    (RFC 3261 16.6 step 3), and RFC 2543 peers (RFC 4475 3.4.1) and one capture of the corpus leave it out.
///    A repeated From or To is tolerated and the first one is used (suricata's `sip_header_multi_val` capture).
/// 3. Values: the Request-URI (no `?headers`, RFC 3261 19.1.1), CSeq (`number method`, number below 2**31, method
///    equal to a request's), every Via value, Max-Forwards (0-255), Call-ID (visible ASCII, one `@` at most),
///    From, To, and every Contact, Route and Record-Route value, since the gateway rewrites or follows them.
///
/// Checks run in that order, so a message with several defects names the first.
public struct SIPMessage: Sendable {
    public enum StartLine: Hashable, Sendable {
        case request(method: String, uri: Range<Int>)
        case response(code: Int)
    }

    /// The whole message as received (readable bytes), without leading line ends and without bytes past the
    /// declared Content-Length. Every offset of this type is relative to its reader index.
    public let bytes: ByteBuffer
    public let startLine: StartLine
    /// The first line including its terminator.
    public let startLineRange: Range<Int>
    /// For a response, the reason phrase (may be empty).
    public let reasonRange: Range<Int>?
    /// Every header field, in order.
    public let headers: [SIPHeaderField]
    /// The body: from after the empty line to the end of ``bytes``.
    public let body: Range<Int>
    /// The offset of the empty line that ends the header section.
    public let headerEnd: Int
    /// How many bytes the datagram held past the declared Content-Length (discarded), plus leading line ends.
    public let discardedBytes: Int

    /// The parsed Request-URI of a request.
    public let requestURI: SIPURI?
    /// Every Via value, top first, across fields and commas.
    public let vias: [SIPVia]
    public let from: SIPNameAddress
    public let to: SIPNameAddress
    /// Every Contact value in order; empty for `Contact: *` (see ``isContactWildcard``) and when there is none.
    public let contacts: [SIPNameAddress]
    /// `Contact: *` (a REGISTER removing every binding).
    public let isContactWildcard: Bool
    public let routes: [SIPNameAddress]
    public let recordRoutes: [SIPNameAddress]
    /// The Call-ID value as text.
    public let callID: String
    public let maxForwards: Int?
    /// The Content-Length as declared; nil when the message has none.
    public let contentLength: Int?
    let cseqNumber: UInt32
    let cseqMethod: String

    /// The method of a request; nil for a response.
    public var method: String? {
        if case .request(let method, _) = startLine { return method }
        return nil
    }

    /// The status code of a response; nil for a request.
    public var statusCode: Int? {
        if case .response(let code) = startLine { return code }
        return nil
    }

    public var isRequest: Bool { method != nil }

    /// The Request-URI's offsets; nil for a response.
    public var requestURIRange: Range<Int>? {
        if case .request(_, let uri) = startLine { return uri }
        return nil
    }

    /// CSeq's sequence number and method (always present in a parsed message).
    public var cseq: (number: UInt32, method: String)? { (cseqNumber, cseqMethod) }

    /// The Call-ID's bytes.
    public var callIDBytes: [UInt8] { Array(callID.utf8) }

    /// The line end the message uses, CRLF or (tolerated) LF, as its empty line has it: for header lines an editor
    /// inserts.
    public var lineEnding: [UInt8] { body.lowerBound - headerEnd == 1 ? [ASCII.lf] : [ASCII.cr, ASCII.lf] }

    /// The top Via: the one a response is routed by.
    public var topVia: SIPVia { vias[0] }

    /// The fields with this name, in order.
    public func fields(_ name: SIPHeaderName) -> [SIPHeaderField] {
        headers.filter { $0.name == name }
    }

    /// The first field with this name.
    public func field(_ name: SIPHeaderName) -> SIPHeaderField? {
        headers.first { $0.name == name }
    }

    /// The fields whose name, compact forms expanded, is `name` compared case-insensitively: `fields(named:
    /// "Event")` finds `o:` too.
    public func fields(named name: String) -> [SIPHeaderField] {
        let wanted = SIPHeaderName.canonicalName(name)
        return headers.filter { field in
            SIPHeaderName.canonicalName(text(field.nameRange)) == wanted
        }
    }

    /// The values of every field with this name, split at the commas that separate list elements (RFC 3261 7.3:
    /// commas inside quoted strings and `<...>` do not count), trimmed, empty elements left out, in order.
    public func values(of name: SIPHeaderName) -> [Range<Int>] {
        bytes.withUnsafeReadableBytes { raw in
            var result: [Range<Int>] = []
            for field in headers where field.name == name {
                for element in SIPGrammar.splitList(raw, field.valueRange) where !element.isEmpty {
                    result.append(element)
                }
            }
            return result
        }
    }

    /// The range to remove to take one element out of a comma-separated field: the whole field when it is the
    /// only element, otherwise the element with the comma (and whitespace) that joins it to its neighbour.
    public func removalRange(ofValue value: Range<Int>) -> Range<Int>? {
        guard let field = headers.first(where: { $0.valueRange.contains(value.lowerBound) }) else { return nil }
        return bytes.withUnsafeReadableBytes { raw -> Range<Int>? in
            let elements = SIPGrammar.splitList(raw, field.valueRange)
            guard let position = elements.firstIndex(of: value) else { return nil }
            if elements.count == 1 { return field.lineRange }
            if position + 1 < elements.count {
                return value.lowerBound..<elements[position + 1].lowerBound
            }
            return elements[position - 1].upperBound..<value.upperBound
        }
    }

    /// The bytes of `range` as text (UTF-8, invalid sequences replaced): for logs and small fields only.
    public func text(_ range: Range<Int>) -> String {
        bytes.withUnsafeReadableBytes { SIPGrammar.string($0, range) }
    }

    /// The bytes of `range`.
    public func byteArray(_ range: Range<Int>) -> [UInt8] {
        bytes.withUnsafeReadableBytes { Array($0[range]) }
    }

    /// Whether a datagram is nothing but line ends: a keep-alive (RFC 5626 3.5.1), not a message.
    public static func isKeepAlive(_ bytes: ByteBuffer) -> Bool {
        bytes.readableBytes > 0 && bytes.withUnsafeReadableBytes { raw in
            raw.allSatisfy { $0 == ASCII.cr || $0 == ASCII.lf }
        }
    }

    // MARK: Parsing

    /// Parses one complete message: a UDP datagram, or one message that ``SIPStreamFramer`` cut from a stream.
    public static func parse(_ bytes: ByteBuffer, limits: SIPLimits = .init()) throws(SIPParseError) -> SIPMessage {
        guard bytes.readableBytes <= limits.maxMessageBytes else { throw .tooLarge("message") }
        let skip = bytes.withUnsafeReadableBytes { SIPHeaderSection.leadingLineEnds($0) }
        guard skip < bytes.readableBytes,
              let trimmed = bytes.getSlice(at: bytes.readerIndex + skip, length: bytes.readableBytes - skip)
        else { throw .emptyMessage }
        let parts = try trimmed.withUnsafeReadableBytes { (raw) throws(SIPParseError) -> Parts in
            try Parts(raw, limits: limits)
        }
        guard let message = trimmed.getSlice(at: trimmed.readerIndex, length: parts.length) else {
            throw .emptyMessage
        }
        return SIPMessage(bytes: message, parts: parts, discarded: skip + trimmed.readableBytes - parts.length)
    }

    private init(bytes: ByteBuffer, parts: Parts, discarded: Int) {
        self.bytes = bytes
        self.startLine = parts.startLine
        self.startLineRange = parts.startLineRange
        self.reasonRange = parts.reasonRange
        self.headers = parts.section.fields
        self.body = parts.section.bodyStart..<parts.length
        self.headerEnd = parts.section.headerEnd
        self.discardedBytes = discarded
        self.requestURI = parts.requestURI
        self.vias = parts.vias
        self.from = parts.from
        self.to = parts.to
        self.contacts = parts.contacts
        self.isContactWildcard = parts.isContactWildcard
        self.routes = parts.routes
        self.recordRoutes = parts.recordRoutes
        self.callID = parts.callID
        self.maxForwards = parts.maxForwards
        self.contentLength = parts.contentLength
        self.cseqNumber = parts.cseqNumber
        self.cseqMethod = parts.cseqMethod
    }

    /// What ``parse(_:limits:)`` reads from the bytes, before it wraps them.
    private struct Parts {
        var section: SIPHeaderSection
        var startLine: StartLine
        var startLineRange: Range<Int>
        var reasonRange: Range<Int>?
        var length: Int
        var requestURI: SIPURI?
        var vias: [SIPVia] = []
        var from: SIPNameAddress
        var to: SIPNameAddress
        var contacts: [SIPNameAddress] = []
        var isContactWildcard = false
        var routes: [SIPNameAddress] = []
        var recordRoutes: [SIPNameAddress] = []
        var callID: String
        var maxForwards: Int?
        var contentLength: Int?
        var cseqNumber: UInt32
        var cseqMethod: String

        init(_ raw: UnsafeRawBufferPointer, limits: SIPLimits) throws(SIPParseError) {
            // 1. Framing.
            let section: SIPHeaderSection
            switch try SIPHeaderSection.scan(raw, limits: limits) {
            case .complete(let complete):
                section = complete
            case .incomplete(let startLine):
                // The scan judged a whole start line already; a datagram that ends inside its first line is
                // judged by what it has, so that junk is named junk, not a message missing its end.
                if startLine == nil { _ = try SIPStartLineParser.parse(raw, 0..<raw.count) }
                throw .noHeaderEnd
            }
            self.section = section
            let fields = section.fields
            var methodName: String? = nil
            switch try SIPStartLineParser.parse(raw, section.startLine) {
            case .request(let method, let uri):
                methodName = SIPGrammar.string(raw, method)
                startLine = .request(method: SIPGrammar.string(raw, method), uri: uri)
                reasonRange = nil
                let parsedURI = try SIPURI.parse(raw, in: uri)
                if parsedURI.headersRange != nil { throw .headersInRequestURI }
                requestURI = parsedURI
            case .response(let code, let reason):
                startLine = .response(code: code)
                reasonRange = reason
                requestURI = nil
            }
            startLineRange = 0..<(fields.first?.lineRange.lowerBound ?? section.headerEnd)

            func single(_ name: SIPHeaderName) throws(SIPParseError) -> SIPHeaderField? {
                var found: SIPHeaderField? = nil
                for field in fields where field.name == name {
                    guard found == nil else { throw .duplicateHeader(name.canonicalName) }
                    found = field
                }
                return found
            }

            let available = raw.count - section.bodyStart
            if let field = try single(.contentLength) {
                guard let declared = SIPGrammar.saturatingDecimal(raw, field.valueRange, cap: 1 << 40) else {
                    throw .badContentLength
                }
                guard section.bodyStart + declared <= limits.maxMessageBytes else { throw .tooLarge("message") }
                guard declared <= available else {
                    throw .contentLengthMismatch(declared: declared, actual: available)
                }
                contentLength = declared
                length = section.bodyStart + declared
            } else {
                contentLength = nil
                length = raw.count
            }

            // 2. Presence.
            guard fields.contains(where: { $0.name == .via }) else { throw .missingHeader("Via") }
            guard let fromField = fields.first(where: { $0.name == .from }) else { throw .missingHeader("From") }
            guard let toField = fields.first(where: { $0.name == .to }) else { throw .missingHeader("To") }
            guard let callIDField = try single(.callID) else { throw .missingHeader("Call-ID") }
            guard let cseqField = try single(.cseq) else { throw .missingHeader("CSeq") }
            let maxForwardsField = try single(.maxForwards)

            // 3. Values.
            (cseqNumber, cseqMethod) = try Parts.cseq(raw, cseqField.valueRange)
            if let methodName, methodName != cseqMethod { throw .cseqMethodMismatch }

            for field in fields where field.name == .via {
                for element in SIPGrammar.splitList(raw, field.valueRange) {
                    vias.append(try SIPVia.parse(raw, in: element))
                }
            }

            if let maxForwardsField {
                guard let value = SIPGrammar.decimal(raw, maxForwardsField.valueRange, maxDigits: 10), value <= 255
                else { throw .badMaxForwards }
                maxForwards = value
            } else {
                maxForwards = nil
            }

            callID = try Parts.callID(raw, callIDField.valueRange)
            from = try SIPNameAddress.parse(raw, in: fromField.valueRange, header: "From")
            to = try SIPNameAddress.parse(raw, in: toField.valueRange, header: "To")

            for field in fields where field.name == .contact {
                if field.valueRange.count == 1, raw[field.valueRange.lowerBound] == SIPGrammar.star {
                    isContactWildcard = true
                    continue
                }
                for element in SIPGrammar.splitList(raw, field.valueRange) {
                    contacts.append(try SIPNameAddress.parse(raw, in: element, header: "Contact"))
                }
            }
            if isContactWildcard, !contacts.isEmpty { throw .badNameAddress("Contact") }
            for field in fields where field.name == .route {
                for element in SIPGrammar.splitList(raw, field.valueRange) {
                    routes.append(try SIPNameAddress.parse(raw, in: element, header: "Route"))
                }
            }
            for field in fields where field.name == .recordRoute {
                for element in SIPGrammar.splitList(raw, field.valueRange) {
                    recordRoutes.append(try SIPNameAddress.parse(raw, in: element, header: "Record-Route"))
                }
            }
        }

        /// `1*DIGIT LWS Method`, the number below 2**31 (RFC 3261 8.1.1.5).
        static func cseq(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) throws(SIPParseError)
            -> (UInt32, String) {
            var index = range.lowerBound
            while index < range.upperBound, ASCII.isDigit(raw[index]) { index += 1 }
            guard let number = SIPGrammar.saturatingDecimal(raw, range.lowerBound..<index, cap: 1 << 40),
                  number < 1 << 31 else { throw .badCSeq }
            let methodStart = SIPGrammar.skipLWS(raw, index, range.upperBound)
            guard methodStart > index, methodStart < range.upperBound else { throw .badCSeq }
            for offset in methodStart..<range.upperBound where !SIPGrammar.isTokenChar(raw[offset]) {
                throw .badCSeq
            }
            return (UInt32(number), SIPGrammar.string(raw, methodStart..<range.upperBound))
        }

        /// `word [ "@" word ]` (RFC 3261 25.1), a word taken to be any visible ASCII: the gateway uses the Call-ID
        /// only as a key, and real phones put `=` (base64 padding) and `&` in theirs. Empty, whitespace, control
        /// bytes and a second `@` are refused.
        static func callID(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) throws(SIPParseError) -> String {
            guard !range.isEmpty else { throw .badCallID }
            var ats = 0
            for index in range {
                let byte = raw[index]
                if byte == SIPGrammar.at {
                    ats += 1
                    guard ats == 1, index > range.lowerBound, index + 1 < range.upperBound else { throw .badCallID }
                } else if byte <= 0x20 || byte >= 0x7F {
                    throw .badCallID
                }
            }
            return SIPGrammar.string(raw, range)
        }
    }
}
