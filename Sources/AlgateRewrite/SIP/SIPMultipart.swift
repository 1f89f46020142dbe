/// The parts of a multipart body (RFC 2046 5.1; RFC 5621 for SIP), found by their boundary, so that one part (the
/// SDP) can be rewritten and every other byte stays as it was.
///
/// Delimiters are recognised only at the start of the body or of a line: `--boundary` then optional `--` (the
/// close delimiter), optional blanks (transport padding) and the line end. The CRLF before a delimiter belongs to
/// the delimiter, not to the part before it. Parts may themselves be multipart, up to
/// ``SIPLimits/maxBodyNesting`` levels.
public struct SIPMultipart: Hashable, Sendable {
    public struct Part: Hashable, Sendable {
        /// The part's headers and body, between its delimiter line and the CRLF of the next delimiter.
        public var range: Range<Int>
        /// The part's header lines (empty when it has none).
        public var headersRange: Range<Int>
        /// The part's content.
        public var bodyRange: Range<Int>
        /// The part's Content-Type; nil when it has none (then it is text/plain, RFC 2045 5.2).
        public var contentType: SIPContentType?
        /// The part's Content-Encoding, lower-cased, when it has one.
        public var contentEncoding: String?
        /// For a multipart part, its own parts.
        public var nested: SIPMultipart?
    }

    public var boundary: [UInt8]
    public var parts: [Part]

    /// Parses `body` (offsets relative to its start) with the boundary from its Content-Type.
    public static func parse(_ body: UnsafeRawBufferPointer, boundary: [UInt8],
                             limits: SIPLimits = .init()) throws(SIPParseError) -> SIPMultipart {
        var budget = limits.maxBodyParts
        return try parse(body, in: 0..<body.count, boundary: boundary, depth: 1, limits: limits, budget: &budget)
    }

    /// The range (in the message's offsets) of the first application/sdp content: the whole body when the message
    /// is application/sdp, the part's content when it is multipart and holds one; nil when there is none.
    ///
    /// Throws when the body cannot be read for sure: a malformed Content-Type or multipart body, a repeated
    /// Content-Type, or a Content-Encoding (on the message or the part) other than identity. A gateway must not
    /// forward an SDP it could not rewrite.
    public static func sdpBody(of message: SIPMessage,
                               limits: SIPLimits = .init()) throws(SIPParseError) -> Range<Int>? {
        try sdpBodies(of: message, limits: limits).first
    }

    /// Every application/sdp content of the message (multipart/alternative may carry more than one), in order.
    public static func sdpBodies(of message: SIPMessage,
                                 limits: SIPLimits = .init()) throws(SIPParseError) -> [Range<Int>] {
        let typeFields = message.fields(.contentType)
        guard let typeField = typeFields.first, !message.body.isEmpty else { return [] }
        guard typeFields.count == 1 else { throw .duplicateHeader("Content-Type") }
        for field in message.fields(named: "Content-Encoding") {
            let value = message.text(field.valueRange)
            guard SIPURI.lowercased(value) == "identity" else { throw .unsupportedContentEncoding }
        }
        return try message.bytes.withUnsafeReadableBytes { (raw) throws(SIPParseError) -> [Range<Int>] in
            let type = try SIPContentType.parse(raw, in: typeField.valueRange)
            if type.isSDP { return [message.body] }
            guard type.isMultipart else { return [] }
            guard let boundary = type.boundary else { throw .badContentType }
            var budget = limits.maxBodyParts
            let multipart = try parse(raw, in: message.body, boundary: boundary, depth: 1, limits: limits,
                                      budget: &budget)
            var found: [Range<Int>] = []
            try multipart.collectSDP(into: &found)
            return found
        }
    }

    private func collectSDP(into found: inout [Range<Int>]) throws(SIPParseError) {
        for part in parts {
            if let nested = part.nested {
                try nested.collectSDP(into: &found)
            } else if part.contentType?.isSDP == true {
                if let encoding = part.contentEncoding, encoding != "identity", encoding != "binary",
                   encoding != "7bit", encoding != "8bit" {
                    throw .unsupportedContentEncoding
                }
                found.append(part.bodyRange)
            }
        }
    }

    static func parse(_ raw: UnsafeRawBufferPointer, in range: Range<Int>, boundary: [UInt8], depth: Int,
                      limits: SIPLimits, budget: inout Int) throws(SIPParseError) -> SIPMultipart {
        guard depth <= limits.maxBodyNesting else { throw .tooLarge("multipart nesting") }
        guard !boundary.isEmpty, boundary.count <= 70 else { throw .badContentType }
        var parts: [Part] = []
        guard var delimiter = nextDelimiter(raw, in: range, from: range.lowerBound, boundary: boundary),
              !delimiter.isClose else { throw .badMultipart }
        while true {
            let partStart = delimiter.lineEnd
            guard let next = nextDelimiter(raw, in: range, from: partStart, boundary: boundary) else {
                throw .badMultipart
            }
            budget -= 1
            guard budget >= 0 else { throw .tooLarge("multipart parts") }
            parts.append(try part(raw, partStart..<next.partEnd, boundary: boundary, depth: depth, limits: limits,
                                  budget: &budget))
            if next.isClose { break }
            delimiter = next
        }
        return SIPMultipart(boundary: boundary, parts: parts)
    }

    private struct Delimiter {
        /// Where the part before it ends: before the CRLF (or LF) that precedes `--`.
        var partEnd: Int
        /// After the delimiter line's own line end.
        var lineEnd: Int
        var isClose: Bool
    }

    /// The next delimiter line at or after `from`, which must be a line start.
    private static func nextDelimiter(_ raw: UnsafeRawBufferPointer, in range: Range<Int>, from: Int,
                                      boundary: [UInt8]) -> Delimiter? {
        let end = range.upperBound
        var index = from
        while index + 2 + boundary.count <= end {
            let atLineStart = index == from || raw[index - 1] == ASCII.lf
            if atLineStart, raw[index] == ASCII.hyphen, raw[index + 1] == ASCII.hyphen,
               matches(raw, index + 2, boundary) {
                var cursor = index + 2 + boundary.count
                var isClose = false
                if cursor + 1 < end, raw[cursor] == ASCII.hyphen, raw[cursor + 1] == ASCII.hyphen {
                    isClose = true
                    cursor += 2
                }
                while cursor < end, SIPGrammar.isBlank(raw[cursor]) { cursor += 1 }
                var lineEnd: Int? = nil
                if cursor == end, isClose {
                    lineEnd = end
                } else if cursor < end, raw[cursor] == ASCII.lf {
                    lineEnd = cursor + 1
                } else if cursor + 1 < end, raw[cursor] == ASCII.cr, raw[cursor + 1] == ASCII.lf {
                    lineEnd = cursor + 2
                } else if cursor + 1 == end, raw[cursor] == ASCII.cr, isClose {
                    lineEnd = end
                }
                if let lineEnd {
                    var partEnd = index
                    if partEnd > from, raw[partEnd - 1] == ASCII.lf {
                        partEnd -= 1
                        if partEnd > from, raw[partEnd - 1] == ASCII.cr { partEnd -= 1 }
                    }
                    return Delimiter(partEnd: partEnd, lineEnd: lineEnd, isClose: isClose)
                }
            }
            // Move to the next line start.
            while index < end, raw[index] != ASCII.lf { index += 1 }
            index += 1
        }
        return nil
    }

    private static func matches(_ raw: UnsafeRawBufferPointer, _ index: Int, _ boundary: [UInt8]) -> Bool {
        for (offset, byte) in boundary.enumerated() where raw[index + offset] != byte { return false }
        return true
    }

    /// One part: MIME header lines, an empty line, the content. A part that starts with its empty line has no
    /// headers; one with no empty line at all is all headers and no content.
    private static func part(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, boundary: [UInt8], depth: Int,
                             limits: SIPLimits, budget: inout Int) throws(SIPParseError) -> Part {
        var lineStart = range.lowerBound
        var contentType: SIPContentType? = nil
        var contentEncoding: String? = nil
        var headersEnd = range.upperBound
        var bodyStart = range.upperBound
        var fieldStart: Int? = nil

        func finishField(_ end: Int) throws(SIPParseError) {
            guard let start = fieldStart else { return }
            fieldStart = nil
            var colon = start
            while colon < end, raw[colon] != ASCII.colon { colon += 1 }
            guard colon < end else { throw .badMultipart }
            let name = SIPGrammar.trimLWS(raw, start..<colon)
            let value = SIPGrammar.trimLWS(raw, (colon + 1)..<end)
            if SIPGrammar.equalsIgnoringCase(raw, name, "content-type") {
                contentType = try SIPContentType.parse(raw, in: value)
            } else if SIPGrammar.equalsIgnoringCase(raw, name, "content-transfer-encoding")
                        || SIPGrammar.equalsIgnoringCase(raw, name, "content-encoding") {
                contentEncoding = SIPGrammar.lowercasedString(raw, value)
            }
        }

        while lineStart < range.upperBound {
            var lineEnd = lineStart
            while lineEnd < range.upperBound, raw[lineEnd] != ASCII.lf { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart, raw[contentEnd - 1] == ASCII.cr { contentEnd -= 1 }
            let next = Swift.min(lineEnd + 1, range.upperBound)
            if contentEnd == lineStart {
                try finishField(contentEnd)
                headersEnd = lineStart
                bodyStart = next
                break
            }
            if SIPGrammar.isBlank(raw[lineStart]), fieldStart != nil {
                // a folded continuation: the field goes on
            } else {
                try finishField(lineStart)
                fieldStart = lineStart
            }
            lineStart = next
        }
        if bodyStart == range.upperBound, headersEnd == range.upperBound { try finishField(range.upperBound) }

        var nested: SIPMultipart? = nil
        if let type = contentType, type.isMultipart {
            guard let innerBoundary = type.boundary else { throw .badContentType }
            nested = try parse(raw, in: bodyStart..<range.upperBound, boundary: innerBoundary, depth: depth + 1,
                               limits: limits, budget: &budget)
        }
        return Part(range: range, headersRange: range.lowerBound..<headersEnd, bodyRange: bodyStart..<range.upperBound,
                    contentType: contentType, contentEncoding: contentEncoding, nested: nested)
    }
}
