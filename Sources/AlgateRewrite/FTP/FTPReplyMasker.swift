public import NIOCore

/// Finds what a server reply line says of the inside network outside the one address a passive rewrite replaces,
/// and writes the line with each such piece masked.
///
/// What counts as an address of the inside network in a reply:
/// - every address form of FTP's own grammar, whatever its value: the six numbers of PORT/227
///   (`h1,h2,h3,h4,p1,p2`, each 0-255), the list of LPRT/228 (`af,hal,h...,2,p1,p2`) and the port of EPRT/229
///   (`<d><d><d>port<d>`). A client reads such text as a data address (RFC 1123 4.1.2.6 tells it to search the
///   whole line), so it must never name the server's side;
/// - a textual IPv4 or IPv6 address (`10.0.0.5`, `fd00::5`) that is one of ``insideAddresses``: the server's
///   address, the gateway's own address towards it, and every address the server announced in this session. An
///   IPv4 address is read in any run of digits and dots, whatever letters stand around it (`x10.0.0.5D`).
///
/// Masking writes the public address in place of an address, and port 0 in place of a port, so the masked text
/// still parses as what it was and opens nothing (a connection to port 0 fails at once). Scanning allocates
/// nothing; only a line that has something to mask is copied.
public struct FTPReplyMasker: Sendable {
    /// One piece of a line to mask: its byte range in the line and what it is.
    public struct Finding: Hashable, Sendable {
        public enum Kind: Hashable, Sendable {
            /// `h1,h2,h3,h4,p1,p2`: the whole run of six numbers.
            case six
            /// `af,hal,h...,2,p1,p2`: the whole list.
            case long
            /// The port digits of `<d><d><d>port<d>`.
            case extendedPort
            /// A textual IPv4 or IPv6 address of the inside network.
            case literal
        }

        public var kind: Kind
        public var range: Range<Int>
        /// The address a six-number or long form named (learned as inside, see ``FTPReplyMasker/learn(_:)``).
        public var address: IPAddress?
    }

    /// How many announced addresses are kept besides the fixed ones; the oldest goes first.
    public static let learnedCapacity = 16

    /// What a masked address becomes.
    public let publicAddress: IPAddress
    /// The addresses whose textual form is masked: the fixed ones first, then the learned ones.
    public private(set) var insideAddresses: [IPAddress]
    private let fixedCount: Int

    /// - Parameters:
    ///   - publicAddress: written in place of every masked address.
    ///   - inside: addresses of the inside network known from the start (the server's, the gateway's own towards
    ///     it). The public address itself is never masked: masking it would change nothing but its spelling.
    public init(publicAddress: IPAddress, inside: [IPAddress]) {
        self.publicAddress = publicAddress.unmapped
        var fixed: [IPAddress] = []
        fixed.reserveCapacity(inside.count + 4)
        for address in inside where address.unmapped != self.publicAddress && !fixed.contains(address.unmapped) {
            fixed.append(address.unmapped)
        }
        insideAddresses = fixed
        fixedCount = fixed.count
    }

    /// Adds an address the server announced: its textual form is masked from now on.
    public mutating func learn(_ address: IPAddress) {
        let address = address.unmapped
        guard address != publicAddress, address != .v4(0), !insideAddresses.contains(address) else { return }
        if insideAddresses.count - fixedCount >= Self.learnedCapacity {
            insideAddresses.remove(at: fixedCount)
        }
        insideAddresses.append(address)
    }

    /// Whether `address` is one of ``insideAddresses``.
    public func isInside(_ address: IPAddress) -> Bool {
        insideAddresses.contains(address.unmapped)
    }

    // MARK: Finding

    /// The first piece to mask that starts at or after `start`, or nil when the rest of the line has none.
    public func firstFinding(in line: UnsafeRawBufferPointer, from start: Int = 0) -> Finding? {
        var index = start
        while index < line.count {
            if let found = finding(in: line, at: index) { return found }
            index += 1
        }
        return nil
    }

    /// What starts at `index`, if it is something to mask.
    private func finding(in line: UnsafeRawBufferPointer, at index: Int) -> Finding? {
        let byte = line[index]
        if ASCII.isDigit(byte), startsNumberList(line, at: index), let found = numberList(in: line, at: index) {
            return found
        }
        if let found = extendedPort(in: line, at: index) {
            return found
        }
        if isTokenByte(byte), index == 0 || !isTokenByte(line[index - 1]), let found = literal(in: line, at: index) {
            return found
        }
        if ASCII.isDigit(byte), index == 0 || !(ASCII.isDigit(line[index - 1]) || line[index - 1] == ASCII.dot) {
            return dottedLiteral(in: line, at: index)
        }
        return nil
    }

    /// A digit that starts a list of its own: not preceded by a digit, nor by a comma (spaces between).
    private func startsNumberList(_ line: UnsafeRawBufferPointer, at index: Int) -> Bool {
        guard index > 0 else { return true }
        guard !ASCII.isDigit(line[index - 1]) else { return false }
        var before = index - 1
        while before >= 0, line[before] == ASCII.space { before -= 1 }
        return before < 0 || line[before] != ASCII.comma
    }

    /// Six numbers of 0-255, or a valid LPRT/228 list, starting at `index`. Ports are not checked: `...,0,0`
    /// still names an address.
    private func numberList(in line: UnsafeRawBufferPointer, at index: Int) -> Finding? {
        var cursor = index
        let numbers = try? FTPAddressScanner.readNumberList(line, from: &cursor, max: NumberList.capacity)
        if let numbers, numbers.count == 6, (0..<6).allSatisfy({ numbers[$0] <= 255 }) {
            let address = UInt32(numbers[0]) << 24 | UInt32(numbers[1]) << 16 | UInt32(numbers[2]) << 8
                | UInt32(numbers[3])
            return Finding(kind: .six, range: index..<cursor, address: .v4(address))
        }
        if let numbers, numbers.count == 9 || numbers.count == 21, isLongForm(numbers),
           let address = IPAddress(bytes: (2..<(2 + numbers[1])).lazy.map { UInt8(numbers[$0]) }) {
            return Finding(kind: .long, range: index..<cursor, address: address)
        }
        // A longer list (of any length): clients read its first six numbers as h1-h4,p1,p2 (Python's ftplib and
        // curl do), so those six are masked when they name the inside; other lists of numbers are left alone.
        guard let (address, end) = Self.leadingSix(line, from: index), isInside(address) else { return nil }
        return Finding(kind: .six, range: index..<end, address: address)
    }

    /// The first six numbers of a list of more than six at `index`, each 0-255, as an IPv4 address and where the
    /// sixth ends; nil for a list of six or fewer, or whose first six are not all 0-255.
    private static func leadingSix(_ line: UnsafeRawBufferPointer, from index: Int) -> (IPAddress, Int)? {
        var cursor = index
        var host: UInt32 = 0
        for number in 0..<6 {
            let start = cursor
            var value = 0
            while cursor < line.count, ASCII.isDigit(line[cursor]) {
                guard cursor - start < 3 else { return nil }
                value = value * 10 + Int(line[cursor] - ASCII.zero)
                cursor += 1
            }
            guard cursor > start, value <= 255 else { return nil }
            if number < 4 { host = host << 8 | UInt32(value) }
            // A comma and a number must follow: the next of the six, or after the sixth, a seventh.
            let end = cursor
            guard cursor < line.count, line[cursor] == ASCII.comma else { return nil }
            cursor += 1
            while cursor < line.count, line[cursor] == ASCII.space { cursor += 1 }
            guard cursor < line.count, ASCII.isDigit(line[cursor]) else { return nil }
            if number == 5 { return (.v4(host), end) }
        }
        return nil
    }

    /// Whether a list of 9 or 21 numbers is an LPRT/228 long form (`4,4,h1-h4,2,p1,p2` or `6,16,...`).
    private func isLongForm(_ numbers: NumberList) -> Bool {
        let length = numbers[1]
        return ((numbers[0], length) == (4, 4) || (numbers[0], length) == (6, 16)) && numbers.count == 2 + length + 3
            && numbers[2 + length] == 2 && (0..<numbers.count).allSatisfy { numbers[$0] <= 255 }
    }

    /// `<d><d><d>digits<d>` at `index`, with a punctuation delimiter (letters and `.` are left alone: an
    /// ellipsis before a number is prose, not an address).
    private func extendedPort(in line: UnsafeRawBufferPointer, at index: Int) -> Finding? {
        let delimiter = line[index]
        guard delimiter >= 33, delimiter <= 126, !ASCII.isDigit(delimiter), !ASCII.isLetter(delimiter),
              delimiter != ASCII.dot, index + 4 < line.count,
              line[index + 1] == delimiter, line[index + 2] == delimiter else { return nil }
        var end = index + 3
        while end < line.count, ASCII.isDigit(line[end]) { end += 1 }
        guard end > index + 3, end - (index + 3) <= 5, end < line.count, line[end] == delimiter else { return nil }
        return Finding(kind: .extendedPort, range: (index + 3)..<end, address: nil)
    }

    /// Bytes that may form an address literal: hex digits, `.` and `:`.
    private func isTokenByte(_ byte: UInt8) -> Bool {
        ASCII.hexValue(byte) != nil || byte == ASCII.dot || byte == ASCII.colon
    }

    /// An inside IPv6 address spelled out in the token (a maximal run of hex digits, `.` and `:`) at `index`.
    private func literal(in line: UnsafeRawBufferPointer, at index: Int) -> Finding? {
        var end = index
        var colons = 0
        while end < line.count, isTokenByte(line[end]) {
            if line[end] == ASCII.colon { colons += 1 }
            end += 1
        }
        // The shortest literal is `::1`.
        guard end - index >= 3, colons >= 2 else { return nil }
        // IPv6, maybe with a dotted tail; a sentence may end it with `.`, a list with a single `:`.
        var candidate = index..<end
        while candidate.count > 2, line[candidate.upperBound - 1] == ASCII.dot { candidate = candidate.dropLast() }
        if let found = insideLiteral(line, candidate, v6: true) { return found }
        if line[candidate.upperBound - 1] == ASCII.colon, line[candidate.upperBound - 2] != ASCII.colon {
            return insideLiteral(line, candidate.dropLast(), v6: true)
        }
        return nil
    }

    /// An inside IPv4 address in the run of digits and dots at `index`, whatever stands around it: a port after a
    /// colon (`10.0.0.5:21`), letters (`10.0.0.5D`, which the token of ``literal(in:at:)`` would swallow), a
    /// sentence's full stop. A run of more than four numbers (`10.0.0.5.1`) is none.
    private func dottedLiteral(in line: UnsafeRawBufferPointer, at index: Int) -> Finding? {
        var end = index
        while end < line.count, ASCII.isDigit(line[end]) || line[end] == ASCII.dot { end += 1 }
        var run = index..<end
        while !run.isEmpty, line[run.upperBound - 1] == ASCII.dot { run = run.dropLast() }
        return insideLiteral(line, run, v6: false)
    }

    private func insideLiteral(_ line: UnsafeRawBufferPointer, _ range: Range<Int>, v6: Bool) -> Finding? {
        guard range.count >= 3 else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: line[range])
        let address: IPAddress? = v6 ? IPAddress.parseIPv6(bytes) : IPAddress.parseIPv4(bytes).map { .v4($0) }
        guard let address, isInside(address) else { return nil }
        return Finding(kind: .literal, range: range, address: address)
    }

    // MARK: Masking

    /// Learns the addresses of the six-number and long forms in `line`, so that the same addresses spelled out
    /// elsewhere in it (and in later lines) are masked too.
    public mutating func learnForms(in line: UnsafeRawBufferPointer) {
        var index = 0
        while let found = firstFinding(in: line, from: index) {
            if found.kind == .six || found.kind == .long, let address = found.address { learn(address) }
            index = found.range.upperBound
        }
    }

    /// Appends `bytes` to `out` with every finding masked; returns how many pieces were masked.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer, to out: inout ByteBuffer) -> Int {
        var copied = 0
        var masked = 0
        while let found = firstFinding(in: bytes, from: copied) {
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied..<found.range.lowerBound]))
            appendReplacement(for: found.kind, to: &out)
            copied = found.range.upperBound
            masked += 1
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied...]))
        return masked
    }

    /// What a masked piece becomes: the public address (in the piece's own form), port 0.
    private func appendReplacement(for kind: Finding.Kind, to out: inout ByteBuffer) {
        switch kind {
        case .six:
            if publicAddress.isIPv4 {
                FTPAddressWriter.appendSix(Endpoint(address: publicAddress, port: 0), to: &out)
            } else {
                // Six numbers cannot carry an IPv6 address: the unspecified address, which reaches nothing.
                out.writeStaticString("0,0,0,0,0,0")
            }
        case .long:
            FTPAddressWriter.appendLong(Endpoint(address: publicAddress, port: 0), to: &out)
        case .extendedPort:
            out.writeStaticString("0")
        case .literal:
            publicAddress.appendASCII(to: &out)
        }
    }
}
