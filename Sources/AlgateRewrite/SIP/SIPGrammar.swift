/// Character classes and small scanners of RFC 3261's grammar (section 25), on bytes.
///
/// Scanners take the whole buffer and a range inside it and return absolute offsets, so that everything parsed from
/// a message names bytes of that message. Inside a header value, CR and LF only occur as parts of a fold (the field
/// scanner guarantees that), so they count as linear whitespace here.
enum SIPGrammar {
    static let doubleQuote: UInt8 = 0x22
    static let backslash: UInt8 = 0x5C
    static let semicolon: UInt8 = 0x3B
    static let lessThan: UInt8 = 0x3C
    static let greaterThan: UInt8 = 0x3E
    static let at: UInt8 = 0x40
    static let slash: UInt8 = 0x2F
    static let question: UInt8 = 0x3F
    static let percent: UInt8 = 0x25
    static let star: UInt8 = 0x2A

    /// `token` (RFC 3261 25.1): alphanum and `- . ! % * _ + ` ' ~`.
    @inline(__always)
    static func isTokenChar(_ byte: UInt8) -> Bool {
        if ASCII.isDigit(byte) || ASCII.isLetter(byte) { return true }
        switch byte {
        case 0x2D, 0x2E, 0x21, 0x25, 0x2A, 0x5F, 0x2B, 0x60, 0x27, 0x7E: return true
        default: return false
        }
    }

    /// `unreserved` of RFC 3261: alphanum and the marks `- _ . ! ~ * ' ( )`.
    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        if ASCII.isDigit(byte) || ASCII.isLetter(byte) { return true }
        switch byte {
        case 0x2D, 0x5F, 0x2E, 0x21, 0x7E, 0x2A, 0x27, 0x28, 0x29: return true
        default: return false
        }
    }

    /// SP or HTAB.
    @inline(__always)
    static func isBlank(_ byte: UInt8) -> Bool { byte == ASCII.space || byte == ASCII.tab }

    /// SP, HTAB, or the CR/LF of a fold.
    @inline(__always)
    static func isLWS(_ byte: UInt8) -> Bool {
        byte == ASCII.space || byte == ASCII.tab || byte == ASCII.cr || byte == ASCII.lf
    }

    /// The first offset at or after `index` that is not linear whitespace, at most `end`.
    @inline(__always)
    static func skipLWS(_ bytes: UnsafeRawBufferPointer, _ index: Int, _ end: Int) -> Int {
        var index = index
        while index < end, isLWS(bytes[index]) { index += 1 }
        return index
    }

    /// The range without leading and trailing linear whitespace.
    static func trimLWS(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isLWS(bytes[lower]) { lower += 1 }
        while upper > lower, isLWS(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    /// Given `index` at a double quote, the offset just after the closing quote; nil when the string never closes.
    /// A backslash escapes the byte after it (quoted-pair).
    static func endOfQuotedString(_ bytes: UnsafeRawBufferPointer, _ index: Int, _ end: Int) -> Int? {
        var index = index + 1
        while index < end {
            switch bytes[index] {
            case doubleQuote: return index + 1
            case backslash: index += 2
            default: index += 1
            }
        }
        return nil
    }

    /// Splits a header value at the commas that separate list elements (RFC 3261 7.3.1): commas inside quoted
    /// strings and inside `<...>` do not count. Elements are trimmed of linear whitespace; empty elements are kept
    /// (callers decide whether `a,,b` is an error). An unterminated quote or bracket swallows the rest of the
    /// value into the last element, whose own parser then refuses it.
    static func splitList(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> [Range<Int>] {
        var elements: [Range<Int>] = []
        var start = range.lowerBound
        var index = range.lowerBound
        let end = range.upperBound
        while index < end {
            switch bytes[index] {
            case doubleQuote:
                index = endOfQuotedString(bytes, index, end) ?? end
            case lessThan:
                var close = index + 1
                while close < end, bytes[close] != greaterThan { close += 1 }
                index = close < end ? close + 1 : end
            case ASCII.comma:
                elements.append(trimLWS(bytes, start..<index))
                index += 1
                start = index
            default:
                index += 1
            }
        }
        elements.append(trimLWS(bytes, start..<end))
        return elements
    }

    /// Whether the bytes equal `text` ignoring ASCII case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in
            var offset = 0
            for index in range {
                if ASCII.lower(bytes[index]) != ASCII.lower(expected[offset]) { return false }
                offset += 1
            }
            return true
        }
    }

    /// The bytes as a String (UTF-8, invalid sequences replaced), for small fields.
    static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// The bytes lower-cased as a String, for names compared case-insensitively.
    static func lowercasedString(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]).map(ASCII.lower), as: UTF8.self)
    }

    /// Parses 1 to `maxDigits` decimal digits; nil for anything else.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, maxDigits: Int) -> Int? {
        guard !range.isEmpty, range.count <= maxDigits else { return nil }
        var value = 0
        for index in range {
            guard ASCII.isDigit(bytes[index]) else { return nil }
            value = value * 10 + Int(bytes[index] - ASCII.zero)
        }
        return value
    }

    /// Parses a decimal number of any length made only of digits, saturating at `cap` (so a hundred digits do not
    /// overflow); nil when empty or when a byte is not a digit.
    static func saturatingDecimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, cap: Int) -> Int? {
        guard !range.isEmpty else { return nil }
        var value = 0
        for index in range {
            guard ASCII.isDigit(bytes[index]) else { return nil }
            value = Swift.min(value * 10 + Int(bytes[index] - ASCII.zero), cap)
        }
        return value
    }
}
