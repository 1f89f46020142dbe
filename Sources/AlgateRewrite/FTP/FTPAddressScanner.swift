/// Parsers for the address arguments of PORT, EPRT and LPRT, and scanners that find the address in 227, 228
/// and 229 replies.
///
/// Parsers take the whole argument and accept exactly the grammar (RFC 959, RFC 2428, RFC 1639). Scanners search a
/// reply line the way RFC 1123 4.1.2.6 tells clients to: the numbers may stand with or without parentheses, after
/// `=`, and be followed by any text. They return the byte range of what to replace, so a rewrite changes nothing
/// else in the line.
public enum FTPAddressScanner {
    /// What a scanner found in a reply line: the range of bytes that hold the address (and port), and its value.
    public struct Match: Hashable, Sendable {
        /// The bytes to replace, as offsets into the scanned line.
        public var range: Range<Int>
        /// The announced endpoint; for 229 only the port is meaningful and the address is unspecified.
        public var endpoint: Endpoint
    }

    // MARK: Commands

    /// Parses PORT's `h1,h2,h3,h4,p1,p2`.
    public static func parsePORT(_ bytes: UnsafeRawBufferPointer) throws(FTPParseError) -> Endpoint {
        var cursor = 0
        let numbers = try readNumberList(bytes, from: &cursor, max: 6)
        guard cursor == bytes.count else { throw .malformed("unexpected byte after the six numbers") }
        guard numbers.count == 6 else { throw .malformed("expected 6 numbers, found \(numbers.count)") }
        return try endpointFromSix(numbers)
    }

    /// Parses EPRT's `<d><family><d><address><d><port><d>` with any delimiter from 33 to 126 (RFC 2428 2).
    public static func parseEPRT(_ bytes: UnsafeRawBufferPointer) throws(FTPParseError) -> Endpoint {
        guard bytes.count >= 7 else { throw .malformed("too short") }
        let delimiter = bytes[0]
        guard delimiter >= 33, delimiter <= 126, !ASCII.isDigit(delimiter) else {
            throw .malformed("delimiter must be a printable, non-digit character")
        }
        var fields: [Range<Int>] = []
        var start = 1
        for index in 1..<bytes.count where bytes[index] == delimiter {
            fields.append(start..<index)
            start = index + 1
            if fields.count == 3 { break }
        }
        guard fields.count == 3, start == bytes.count else { throw .malformed("expected |family|address|port|") }
        let familyBytes = UnsafeRawBufferPointer(rebasing: bytes[fields[0]])
        guard familyBytes.count == 1, ASCII.isDigit(familyBytes[0]) else { throw .malformed("bad family field") }
        let family = Int(familyBytes[0] - ASCII.zero)
        let addressBytes = UnsafeRawBufferPointer(rebasing: bytes[fields[1]])
        let address: IPAddress
        switch family {
        case 1:
            guard let v4 = IPAddress.parseIPv4(addressBytes) else { throw .malformed("bad IPv4 address") }
            address = .v4(v4)
        case 2:
            guard let v6 = IPAddress.parseIPv6(addressBytes) else { throw .malformed("bad IPv6 address") }
            address = v6
        default:
            throw .unsupportedFamily(family)
        }
        let port = try parsePort(UnsafeRawBufferPointer(rebasing: bytes[fields[2]]))
        return Endpoint(address: address, port: port)
    }

    /// Parses LPRT's `af,hal,h1,...,pal,p1,p2` for af 4 (hal 4) and af 6 (hal 16), pal 2 (RFC 1639).
    public static func parseLPRT(_ bytes: UnsafeRawBufferPointer) throws(FTPParseError) -> Endpoint {
        var cursor = 0
        let numbers = try readNumberList(bytes, from: &cursor, max: 21)
        guard cursor == bytes.count else { throw .malformed("unexpected byte after the numbers") }
        return try endpointFromLong(numbers)
    }

    // MARK: Replies

    /// ``scan227(_:from:)`` on a line that starts a reply: the search starts after the code.
    public static func scan227(_ line: UnsafeRawBufferPointer) throws(FTPParseError) -> Match? {
        try scan227(line, from: 3)
    }

    /// ``scan228(_:from:)`` on a line that starts a reply.
    public static func scan228(_ line: UnsafeRawBufferPointer) throws(FTPParseError) -> Match? {
        try scan228(line, from: 3)
    }

    /// ``scan229(_:from:)`` on a line that starts a reply.
    public static func scan229(_ line: UnsafeRawBufferPointer) throws(FTPParseError) -> Match? {
        try scan229(line, from: 3)
    }

    /// Finds the six numbers of a 227 reply anywhere after the reply code.
    ///
    /// - Parameter start: where to search from: 3 (after the code) on a line that starts a reply, 0 on a
    ///   continuation line of a multi-line reply, which has no code.
    /// - Returns: nil when no run of six comma-separated numbers is present; throws when the run is there but a
    ///   number is out of range (a hostile or broken server).
    public static func scan227(_ line: UnsafeRawBufferPointer, from start: Int) throws(FTPParseError) -> Match? {
        var index = min(start, line.count)
        while index < line.count {
            defer { index += 1 }
            guard startsNumberRun(line, at: index) else { continue }
            var cursor = index
            guard let numbers = try? readNumberList(line, from: &cursor, max: 6), numbers.count == 6 else { continue }
            return Match(range: index..<cursor, endpoint: try endpointFromSix(numbers))
        }
        return nil
    }

    /// Finds `<d><d><d><port><d>` in a 229 reply, with any delimiter from 33 to 126 (RFC 2428 3).
    public static func scan229(_ line: UnsafeRawBufferPointer, from start: Int) throws(FTPParseError) -> Match? {
        var index = min(start, line.count)
        while index + 4 < line.count {
            defer { index += 1 }
            let delimiter = line[index]
            guard delimiter >= 33, delimiter <= 126, !ASCII.isDigit(delimiter),
                  line[index + 1] == delimiter, line[index + 2] == delimiter else { continue }
            var end = index + 3
            while end < line.count, ASCII.isDigit(line[end]) { end += 1 }
            guard end > index + 3, end < line.count, line[end] == delimiter else { continue }
            let port = try parsePort(UnsafeRawBufferPointer(rebasing: line[(index + 3)..<end]))
            return Match(range: (index + 3)..<end, endpoint: Endpoint(address: .v4(0), port: port))
        }
        return nil
    }

    /// Finds the `af,hal,h...,pal,p1,p2` list of a 228 reply (the answer to LPSV).
    public static func scan228(_ line: UnsafeRawBufferPointer, from start: Int) throws(FTPParseError) -> Match? {
        var index = min(start, line.count)
        while index < line.count {
            defer { index += 1 }
            guard startsNumberRun(line, at: index) else { continue }
            var cursor = index
            guard let numbers = try? readNumberList(line, from: &cursor, max: 21),
                  numbers.count == 9 || numbers.count == 21 else { continue }
            return Match(range: index..<cursor, endpoint: try endpointFromLong(numbers))
        }
        return nil
    }

    // MARK: Pieces

    /// Whether a run of numbers starts here: a digit at the start of the line, or not preceded by a digit or a
    /// comma (so that the tail of a longer list is never taken for a list of its own).
    static func startsNumberRun(_ line: UnsafeRawBufferPointer, at index: Int) -> Bool {
        guard ASCII.isDigit(line[index]) else { return false }
        guard index > 0 else { return true }
        guard !ASCII.isDigit(line[index - 1]) else { return false }
        var before = index - 1
        while before >= 0, line[before] == ASCII.space { before -= 1 }
        return before < 0 || line[before] != ASCII.comma
    }

    /// Reads comma-separated decimal numbers, each optionally preceded by spaces after the comma. Stops at the
    /// first byte that continues no number; fails when more than `max` numbers follow.
    static func readNumberList(_ bytes: UnsafeRawBufferPointer, from cursor: inout Int, max: Int)
        throws(FTPParseError) -> NumberList {
        var numbers = NumberList()
        while true {
            var value = 0
            var digits = 0
            while cursor < bytes.count, ASCII.isDigit(bytes[cursor]) {
                // Cap the value: a thousand digits must not overflow, and anything past 65535 is out of range anyway.
                value = Swift.min(value * 10 + Int(bytes[cursor] - ASCII.zero), 1_000_000)
                digits += 1
                cursor += 1
            }
            guard digits > 0 else { throw .malformed("expected a number") }
            guard numbers.count < max else { throw .malformed("more than \(max) numbers") }
            numbers.append(value)
            guard cursor < bytes.count, bytes[cursor] == ASCII.comma else { return numbers }
            // Only commit to the comma when a number follows it.
            var look = cursor + 1
            while look < bytes.count, bytes[look] == ASCII.space { look += 1 }
            guard look < bytes.count, ASCII.isDigit(bytes[look]) else { return numbers }
            cursor = look
        }
    }

    static func parsePort(_ bytes: UnsafeRawBufferPointer) throws(FTPParseError) -> UInt16 {
        guard !bytes.isEmpty, bytes.count <= 5, bytes.allSatisfy(ASCII.isDigit) else { throw .malformed("bad port") }
        let value = bytes.reduce(0) { $0 * 10 + Int($1 - ASCII.zero) }
        guard value >= 1, value <= 65535 else { throw .portOutOfRange(value) }
        return UInt16(value)
    }

    static func endpointFromSix(_ numbers: NumberList) throws(FTPParseError) -> Endpoint {
        for index in 0..<numbers.count where numbers[index] > 255 { throw .octetOutOfRange(numbers[index]) }
        let address = UInt32(numbers[0]) << 24 | UInt32(numbers[1]) << 16 | UInt32(numbers[2]) << 8 | UInt32(numbers[3])
        let port = numbers[4] << 8 | numbers[5]
        guard port != 0 else { throw .portOutOfRange(0) }
        return Endpoint(address: .v4(address), port: UInt16(port))
    }

    static func endpointFromLong(_ numbers: NumberList) throws(FTPParseError) -> Endpoint {
        guard numbers.count >= 2 else { throw .malformed("too few numbers") }
        for index in 0..<numbers.count where numbers[index] > 255 { throw .octetOutOfRange(numbers[index]) }
        let family = numbers[0]
        let length = numbers[1]
        switch (family, length) {
        case (4, 4), (6, 16): break
        case (4, _), (6, _): throw .malformed("address length \(length) does not fit family \(family)")
        default: throw .unsupportedFamily(family)
        }
        guard numbers.count == 2 + length + 3, numbers[2 + length] == 2 else {
            throw .malformed("expected a 2-byte port after the address")
        }
        guard let address = IPAddress(bytes: (2..<(2 + length)).lazy.map { UInt8(numbers[$0]) }) else {
            throw .malformed("bad address length")
        }
        let port = numbers[3 + length] << 8 | numbers[4 + length]
        guard port != 0 else { throw .portOutOfRange(0) }
        return Endpoint(address: address, port: UInt16(port))
    }
}

/// Up to 21 numbers (LPRT's longest list) kept inline, in a SIMD vector: scanning a reply allocates nothing.
struct NumberList {
    private var storage = SIMD32<Int>()
    private(set) var count = 0
    static let capacity = 21

    mutating func append(_ value: Int) {
        precondition(count < Self.capacity, "NumberList holds at most \(Self.capacity) numbers")
        storage[count] = value
        count += 1
    }

    subscript(index: Int) -> Int {
        precondition(index >= 0 && index < count, "index out of range")
        return storage[index]
    }
}
