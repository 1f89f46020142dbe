public import NIOCore

/// Builds the responses the gateway itself sends (400, 404, 483, 503) from the bytes of the request, leniently, so
/// that even a request that does not parse can be answered when its Via, From, To, Call-ID and CSeq are there.
public enum SIPResponseBuilder {
    /// The header names (long and compact, lower case) copied from a request into a response (RFC 3261 8.2.6.2).
    private static let copied: [[UInt8]] = ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"].map { Array($0.utf8) }

    /// A response with `code` to the request in `bytes`; nil when `bytes` is not a request or lacks a Via.
    public static func response(to bytes: ByteBuffer, code: Int, reason: String) -> ByteBuffer? {
        bytes.withUnsafeReadableBytes { raw -> ByteBuffer? in
            guard raw.count > 4, !(raw[0] == UInt8(ascii: "S") && raw[1] == UInt8(ascii: "I") && raw[2] == UInt8(ascii: "P")
                                   && raw[3] == UInt8(ascii: "/")) else { return nil }
            var out = Array("SIP/2.0 \(code) \(reason)\r\n".utf8)
            var sawVia = false
            var lineStart = 0
            var first = true
            while lineStart < raw.count {
                var lineEnd = lineStart
                while lineEnd < raw.count, raw[lineEnd] != ASCII.lf { lineEnd += 1 }
                var contentEnd = lineEnd
                if contentEnd > lineStart, raw[contentEnd - 1] == ASCII.cr { contentEnd -= 1 }
                defer { lineStart = lineEnd + 1 }
                if first { first = false; continue }
                if contentEnd == lineStart { break }  // end of the header section
                let line = UnsafeRawBufferPointer(rebasing: raw[lineStart..<contentEnd])
                guard let colon = line.firstIndex(of: ASCII.colon) else { continue }
                var nameEnd = colon
                while nameEnd > 0, line[nameEnd - 1] == ASCII.space || line[nameEnd - 1] == ASCII.tab { nameEnd -= 1 }
                let name = line[..<nameEnd].map(ASCII.lower)
                guard copied.contains(name) else { continue }
                if name == Array("via".utf8) || name == Array("v".utf8) { sawVia = true }
                out.append(contentsOf: line)
                let isTo = name == Array("to".utf8) || name == Array("t".utf8)
                if isTo, !line.map(ASCII.lower).contains(subsequence: Array(";tag=".utf8)) {
                    out.append(contentsOf: ";tag=algate".utf8)
                }
                out.append(contentsOf: [ASCII.cr, ASCII.lf])
            }
            guard sawVia else { return nil }
            out.append(contentsOf: "Content-Length: 0\r\n\r\n".utf8)
            return ByteBuffer(bytes: out)
        }
    }

    /// A 400 naming what is wrong, for a request that did not parse.
    public static func badRequest(_ bytes: ByteBuffer, explanation: String) -> ByteBuffer? {
        let reason = "Bad Request (" + String(explanation.prefix(100).map { $0.isASCII && $0 >= " " ? $0 : "?" }) + ")"
        return response(to: bytes, code: 400, reason: reason)
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
