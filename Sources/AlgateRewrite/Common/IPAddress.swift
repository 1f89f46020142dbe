/// An IPv4 or IPv6 address as the protocols carry it, parsed from and written to ASCII bytes.
///
/// The rewriters never resolve names and never touch sockets, so this is all they need: exact parsing of the
/// textual forms (dotted quad, RFC 4291 text with `::` and an embedded IPv4 tail), the canonical RFC 5952 output,
/// and comparisons that treat an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as the IPv4 address it maps.
public enum IPAddress: Hashable, Sendable {
    /// An IPv4 address, most significant octet first in the high byte.
    case v4(UInt32)
    /// An IPv6 address as two 64-bit halves, network order.
    case v6(high: UInt64, low: UInt64)

    /// The address family: 4 or 6, as RFC 1639 (LPRT) counts it; EPRT counts 1 and 2.
    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// The address with an IPv4-mapped IPv6 form folded to plain IPv4; every other address unchanged.
    public var unmapped: IPAddress {
        if case .v6(let high, let low) = self, high == 0, low >> 32 == 0xffff {
            return .v4(UInt32(truncatingIfNeeded: low))
        }
        return self
    }

    /// Whether two addresses name the same host, an IPv4-mapped IPv6 address matching its IPv4 form.
    public func isSameHost(as other: IPAddress) -> Bool {
        unmapped == other.unmapped
    }

    /// The address's bytes in network order: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                    UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
        case .v6(let high, let low):
            var out = [UInt8]()
            out.reserveCapacity(16)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
            return out
        }
    }

    /// Makes an address from 4 or 16 bytes in network order; nil for any other count.
    public init?<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            var high: UInt64 = 0
            var low: UInt64 = 0
            for (index, byte) in bytes.enumerated() {
                if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self = .v6(high: high, low: low)
        default:
            return nil
        }
    }

    /// Parses the textual form of an IPv4 (dotted quad) or IPv6 (RFC 4291) address; nil when it is neither.
    ///
    /// A zone index (`%eth0`) and brackets are not accepted: callers strip brackets themselves.
    public init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8({ IPAddress(ascii: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    /// Parses an address from ASCII bytes; nil when the bytes are not exactly one IPv4 or IPv6 address.
    public init?(ascii bytes: UnsafeRawBufferPointer) {
        if let v4 = IPAddress.parseIPv4(bytes) {
            self = .v4(v4)
        } else if let v6 = IPAddress.parseIPv6(bytes) {
            self = v6
        } else {
            return nil
        }
    }

    static func parseIPv4(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var index = 0
        while index < bytes.count {
            var octet: UInt32 = 0
            var digits = 0
            while index < bytes.count, ASCII.isDigit(bytes[index]) {
                octet = octet * 10 + UInt32(bytes[index] &- ASCII.zero)
                digits += 1
                index += 1
                // "010" style leading zeros are ambiguous (octal in some stacks): refuse them.
                if digits > 3 || octet > 255 { return nil }
            }
            if digits == 0 || (digits > 1 && bytes[index - digits] == ASCII.zero) { return nil }
            value = value << 8 | octet
            octets += 1
            if index == bytes.count { break }
            guard bytes[index] == ASCII.dot, octets < 4 else { return nil }
            index += 1
            if index == bytes.count { return nil }
        }
        return octets == 4 ? value : nil
    }

    static func parseIPv6(_ bytes: UnsafeRawBufferPointer) -> IPAddress? {
        guard bytes.count >= 2, bytes.count <= 45 else { return nil }
        var groups = [UInt16]()
        groups.reserveCapacity(8)
        var gapAt: Int? = nil
        var index = 0
        if bytes[0] == ASCII.colon {
            guard bytes[1] == ASCII.colon else { return nil }
            gapAt = 0
            index = 2
        }
        while index < bytes.count {
            // An IPv4 tail takes the last 32 bits.
            let start = index
            var value: UInt32 = 0
            var digits = 0
            while index < bytes.count, let nibble = ASCII.hexValue(bytes[index]) {
                value = value << 4 | UInt32(nibble)
                digits += 1
                index += 1
                if digits > 4 { break }
            }
            if index < bytes.count, bytes[index] == ASCII.dot {
                let tail = UnsafeRawBufferPointer(rebasing: bytes[start...])
                guard let v4 = parseIPv4(tail), groups.count <= 6 else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4))
                index = bytes.count
                break
            }
            guard digits >= 1, digits <= 4 else { return nil }
            groups.append(UInt16(value))
            if groups.count > 8 { return nil }
            if index == bytes.count { break }
            guard bytes[index] == ASCII.colon else { return nil }
            index += 1
            if index < bytes.count, bytes[index] == ASCII.colon {
                guard gapAt == nil else { return nil }
                gapAt = groups.count
                index += 1
            } else if index == bytes.count {
                return nil
            }
        }
        if let gapAt {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gapAt)
        }
        guard groups.count == 8 else { return nil }
        let high = groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return .v6(high: high, low: low)
    }
}

extension IPAddress: CustomStringConvertible {
    /// The canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as `::`).
    public var description: String {
        String(decoding: asciiBytes, as: UTF8.self)
    }

    /// The canonical text as ASCII bytes, for writing straight into a message.
    public var asciiBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(39)
        appendASCII(to: &out)
        return out
    }

    /// Appends the canonical text to `out` without an intermediate String.
    public func appendASCII(to out: inout some ASCIISink) {
        switch self {
        case .v4(let value):
            for shift in [24, 16, 8, 0] {
                ASCII.appendDecimal(Int(UInt8(truncatingIfNeeded: value >> UInt32(shift))), to: &out)
                if shift != 0 { out.appendByte(ASCII.dot) }
            }
        case .v6(let high, let low):
            // Group i of the eight, computed on demand (no array: this runs on every rewritten line).
            func group(_ i: Int) -> UInt16 {
                UInt16(truncatingIfNeeded: (i < 4 ? high : low) >> UInt64(48 - 16 * (i % 4)))
            }
            // RFC 5952 4.2: the longest run of two or more zero groups, the first one on a tie.
            var bestStart = -1
            var bestLength = 1
            var runStart = -1
            for i in 0...8 {
                if i < 8, group(i) == 0 {
                    if runStart < 0 { runStart = i }
                } else if runStart >= 0 {
                    if i - runStart > bestLength {
                        bestStart = runStart
                        bestLength = i - runStart
                    }
                    runStart = -1
                }
            }
            var i = 0
            while i < 8 {
                if i == bestStart {
                    out.appendByte(ASCII.colon)
                    if i == 0 { out.appendByte(ASCII.colon) }
                    i += bestLength
                    if i == 8 { break }
                    continue
                }
                ASCII.appendHex(Int(group(i)), to: &out)
                if i < 7 { out.appendByte(ASCII.colon) }
                i += 1
            }
        }
    }
}
