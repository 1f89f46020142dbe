public import NIOCore

/// Builds the responses the gateway itself sends (400, 404, 483, 488, 500, 503, 505, 513).
///
/// A response must match its request's transaction (RFC 3261 8.2.6.2): every Via, From, To (with a tag added when
/// it has none), Call-ID and CSeq, copied whole. Header fields may be folded over several lines (RFC 3261 7.3.1),
/// so copying physical lines would cut a Via off before its branch or a CSeq before its method: both builders
/// copy field *values*, with every fold (CRLF and the whitespace after it) turned into one space.
///
/// - The ``SIPMessage`` form takes a parsed request and writes one `Via:` line per Via value.
/// - The `ByteBuffer` form reads raw bytes leniently, so that even a request that does not parse can be answered
///   when its Via, From, To, Call-ID and CSeq are there.
public enum SIPResponseBuilder {
    /// The header names (long and compact, lower case) copied from a request into a response.
    private static let copied: [[UInt8]] = ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"].map { Array($0.utf8) }

    /// The tag the gateway puts on a To that has none.
    static let toTag = "algate"

    /// A response with `code` to a parsed request; nil for a response or an ACK (which is never answered).
    public static func response(to message: SIPMessage, code: Int, reason: String) -> ByteBuffer? {
        guard message.isRequest, message.method != "ACK", let cseq = message.cseq else { return nil }
        return message.bytes.withUnsafeReadableBytes { raw -> ByteBuffer in
            var out = Array("SIP/2.0 \(code) \(reason)\r\n".utf8)
            for via in message.vias {
                out.append(contentsOf: "Via: ".utf8)
                appendUnfolded(raw, via.range, to: &out)
                out.append(contentsOf: [ASCII.cr, ASCII.lf])
            }
            out.append(contentsOf: "From: ".utf8)
            appendUnfolded(raw, message.from.range, to: &out)
            out.append(contentsOf: "\r\nTo: ".utf8)
            appendUnfolded(raw, message.to.range, to: &out)
            if message.to.tag == nil { out.append(contentsOf: ";tag=\(toTag)".utf8) }
            out.append(contentsOf: "\r\nCall-ID: \(message.callID)\r\nCSeq: \(cseq.number) \(cseq.method)\r\n".utf8)
            out.append(contentsOf: "Content-Length: 0\r\n\r\n".utf8)
            return ByteBuffer(bytes: out)
        }
    }

    /// A response with `code` to the request in `bytes`, read leniently; nil when `bytes` is not a request, or when
    /// what it holds of Via, From, To, Call-ID and CSeq does not make a response that parses.
    public static func response(to bytes: ByteBuffer, code: Int, reason: String) -> ByteBuffer? {
        bytes.withUnsafeReadableBytes { raw -> ByteBuffer? in
            let skip = SIPHeaderSection.leadingLineEnds(raw)
            guard raw.count - skip > 4, !(raw[skip] == UInt8(ascii: "S") && raw[skip + 1] == UInt8(ascii: "I")
                                          && raw[skip + 2] == UInt8(ascii: "P") && raw[skip + 3] == UInt8(ascii: "/"))
            else { return nil }
            var out = Array("SIP/2.0 \(code) \(reason)\r\n".utf8)
            var sawVia = false
            // The request line's method, for a CSeq that does not say `number method` (the client matches its
            // transaction by branch and method; a 400 naming the CSeq must still reach it).
            var methodEnd = skip
            while methodEnd < raw.count, SIPGrammar.isTokenChar(raw[methodEnd]) { methodEnd += 1 }
            let method = Array(raw[skip..<methodEnd])
            // The copied field being written, while continuation lines may still extend it.
            var open: (isTo: Bool, isCSeq: Bool, valueStart: Int)? = nil
            func close() {
                guard let field = open else { return }
                if field.isTo, !out[field.valueStart...].map(ASCII.lower).contains(subsequence: Array(";tag=".utf8)) {
                    out.append(contentsOf: ";tag=\(toTag)".utf8)
                }
                if field.isCSeq, !Self.isCSeqValue(out[field.valueStart...]), !method.isEmpty {
                    out.removeSubrange(field.valueStart...)
                    out.append(contentsOf: "0 ".utf8)
                    out.append(contentsOf: method)
                }
                out.append(contentsOf: [ASCII.cr, ASCII.lf])
                open = nil
            }
            var lineStart = skip
            var first = true
            while lineStart < raw.count {
                var lineEnd = lineStart
                while lineEnd < raw.count, raw[lineEnd] != ASCII.lf { lineEnd += 1 }
                var contentEnd = lineEnd
                if contentEnd > lineStart, raw[contentEnd - 1] == ASCII.cr { contentEnd -= 1 }
                defer { lineStart = lineEnd + 1 }
                if first { first = false; continue }
                if contentEnd == lineStart { break }  // end of the header section
                if raw[lineStart] == ASCII.space || raw[lineStart] == ASCII.tab {
                    // A continuation of the field before (RFC 3261 7.3.1): one space stands for the fold.
                    if open != nil {
                        var start = lineStart
                        while start < contentEnd, raw[start] == ASCII.space || raw[start] == ASCII.tab { start += 1 }
                        if start < contentEnd {
                            out.append(ASCII.space)
                            out.append(contentsOf: raw[start..<contentEnd])
                        }
                    }
                    continue
                }
                close()
                let line = UnsafeRawBufferPointer(rebasing: raw[lineStart..<contentEnd])
                guard let colon = line.firstIndex(of: ASCII.colon) else { continue }
                var nameEnd = colon
                while nameEnd > 0, line[nameEnd - 1] == ASCII.space || line[nameEnd - 1] == ASCII.tab { nameEnd -= 1 }
                let name = line[..<nameEnd].map(ASCII.lower)
                guard copied.contains(name) else { continue }
                if name == Array("via".utf8) || name == Array("v".utf8) { sawVia = true }
                out.append(contentsOf: line[..<colon])
                out.append(contentsOf: ": ".utf8)
                var valueStart = colon + 1
                while valueStart < line.count, line[valueStart] == ASCII.space || line[valueStart] == ASCII.tab {
                    valueStart += 1
                }
                let isTo = name == Array("to".utf8) || name == Array("t".utf8)
                open = (isTo, name == Array("cseq".utf8), out.count)
                out.append(contentsOf: line[valueStart...])
            }
            close()
            guard sawVia else { return nil }
            out.append(contentsOf: "Content-Length: 0\r\n\r\n".utf8)
            // Only an answer that is itself a message, with everything its transaction is matched by, goes out:
            // copied lines may hold bytes (a bare CR, a NUL) or lack fields that no peer could match it with.
            let response = ByteBuffer(bytes: out)
            guard let parsed = try? SIPMessage.parse(response), parsed.statusCode == code else { return nil }
            return response
        }
    }

    /// The answer to a request that did not parse: 513 for one over a size limit (RFC 3261 21.5.14), 505 for another
    /// SIP version (21.5.19), else 400 naming what is wrong.
    public static func refusal(_ bytes: ByteBuffer, error: SIPParseError) -> (code: Int, response: ByteBuffer?) {
        switch error {
        case .tooLarge:
            return (513, response(to: bytes, code: 513, reason: "Message Too Large"))
        case .badVersion:
            return (505, response(to: bytes, code: 505, reason: "Version Not Supported"))
        default:
            return (400, badRequest(bytes, explanation: error.explanation))
        }
    }

    /// A 400 naming what is wrong, for a request that did not parse.
    public static func badRequest(_ bytes: ByteBuffer, explanation: String) -> ByteBuffer? {
        response(to: bytes, code: 400, reason: badRequestReason(explanation))
    }

    /// `Bad Request (explanation)`, printable ASCII only, at most 100 characters of explanation.
    public static func badRequestReason(_ explanation: String) -> String {
        "Bad Request (" + String(explanation.prefix(100).map { $0.isASCII && $0 >= " " ? $0 : "?" }) + ")"
    }

    /// `1*DIGIT LWS token`, the number below 2**31.
    static func isCSeqValue(_ value: ArraySlice<UInt8>) -> Bool {
        let digits = value.prefix { ASCII.isDigit($0) }
        let rest = value.dropFirst(digits.count)
        let method = rest.drop { $0 == ASCII.space || $0 == ASCII.tab }
        return !digits.isEmpty && digits.count <= 10 && (Int(String(decoding: digits, as: UTF8.self)) ?? .max) < 1 << 31
            && method.count < rest.count && !method.isEmpty && method.allSatisfy(SIPGrammar.isTokenChar)
    }

    /// The bytes of `range` with every line fold (CR and/or LF and the blanks after it) as one space.
    static func appendUnfolded(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, to out: inout [UInt8]) {
        var index = range.lowerBound
        while index < range.upperBound {
            let byte = raw[index]
            if byte == ASCII.cr || byte == ASCII.lf {
                while index < range.upperBound,
                      [ASCII.cr, ASCII.lf, ASCII.space, ASCII.tab].contains(raw[index]) { index += 1 }
                out.append(ASCII.space)
                continue
            }
            out.append(byte)
            index += 1
        }
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in the array.
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, count >= needle.count else { return needle.isEmpty }
        for start in 0...(count - needle.count) where self[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}
