/// The host of a SIP URI or of a Via's sent-by.
public enum SIPHost: Hashable, Sendable {
    /// A dotted-quad IPv4 address.
    case ipv4(IPAddress)
    /// An IPv6 reference; written in brackets, `[2001:db8::1]`.
    case ipv6(IPAddress)
    /// A host name, as written.
    case name(String)

    /// The address for an IP host; nil for a name.
    public var address: IPAddress? {
        switch self {
        case .ipv4(let address), .ipv6(let address): return address
        case .name: return nil
        }
    }

    /// The host for an address: IPv4 for IPv4 and IPv4-mapped addresses, IPv6 otherwise.
    public init(_ address: IPAddress) {
        let plain = address.unmapped
        self = plain.isIPv4 ? .ipv4(plain) : .ipv6(plain)
    }

    /// Appends the host as a URI or Via writes it: a name as it is, IPv6 in brackets.
    public func appendASCII(to out: inout [UInt8]) {
        switch self {
        case .ipv4(let address):
            address.appendASCII(to: &out)
        case .ipv6(let address):
            out.append(ASCII.openBracket)
            address.appendASCII(to: &out)
            out.append(ASCII.closeBracket)
        case .name(let name):
            out.append(contentsOf: name.utf8)
        }
    }
}

/// A URI as SIP carries it: a SIP or SIPS URI parsed to its parts (RFC 3261 19.1, 25.1), any other scheme (tel:,
/// http:, urn:, ...) kept opaque with ``isSIP`` false.
///
/// All ranges are offsets into the bytes that were parsed (for the static `parse(_:)`: from the start of the given
/// buffer; for the URIs a ``SIPMessage`` hands out: into the message), so an editor can replace just the host and
/// port (``hostPortRange``) and leave the user part and parameters as they were.
public struct SIPURI: Hashable, Sendable {
    /// The scheme, lower-cased: `sip`, `sips`, `tel`, ...
    public var scheme: String
    /// True for sip: and sips: URIs; every other field below is only meaningful then.
    public var isSIP: Bool
    /// The whole URI.
    public var range: Range<Int>
    /// The user part as written (escapes kept), without the password; nil when there is no userinfo.
    public var user: String?
    public var userRange: Range<Int>?
    /// The password after `user:`, if any (deprecated by RFC 3261 but part of the grammar).
    public var passwordRange: Range<Int>?
    /// The host; `.name("")` for a URI that is not SIP.
    public var host: SIPHost
    /// The host as written, with the brackets of an IPv6 reference.
    public var hostRange: Range<Int>
    public var port: UInt16?
    /// The digits of the port, without the colon.
    public var portRange: Range<Int>?
    /// Host and `:port` together: what to replace to point the URI somewhere else.
    public var hostPortRange: Range<Int>
    /// The uri-parameters in order.
    public var parameters: [SIPParameter]
    /// Where the parameters end (before `?headers` or at the end): append a new `;param` here.
    public var parametersEnd: Int
    /// The headers after `?`, without the question mark.
    public var headersRange: Range<Int>?

    /// True for sips:.
    public var isSecure: Bool { scheme == "sips" }
    /// The `transport=` parameter, lower-cased.
    public var transport: String? { parameter(named: "transport")?.value.map(SIPURI.lowercased) }
    /// The `maddr=` parameter.
    public var maddr: String? { parameter(named: "maddr")?.value }
    /// Whether the `lr` parameter (loose routing, RFC 3261 19.1.1) is present.
    public var lr: Bool { parameter(named: "lr") != nil }
    /// Whether the `ob` parameter (RFC 5626 outbound) is present.
    public var ob: Bool { parameter(named: "ob") != nil }

    /// The first parameter called `name`, compared case-insensitively.
    public func parameter(named name: String) -> SIPParameter? {
        parameters.first(named: SIPURI.lowercased(name))
    }

    /// Parses a whole buffer as one URI.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> SIPURI {
        try parse(bytes, in: 0..<bytes.count)
    }

    /// Writes `host[:port]` for an address, IPv6 in brackets: the bytes that replace ``hostPortRange``.
    public static func hostPort(_ address: IPAddress, port: UInt16?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(48)
        SIPHost(address).appendASCII(to: &out)
        if let port {
            out.append(ASCII.colon)
            ASCII.appendDecimal(Int(port), to: &out)
        }
        return out
    }

    // MARK: Parsing

    /// Parses the URI that occupies exactly `range` of `bytes`; ranges in the result are offsets into `bytes`.
    static func parse(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>) throws(SIPParseError) -> SIPURI {
        let end = range.upperBound
        var index = range.lowerBound
        guard index < end, ASCII.isLetter(bytes[index]) else { throw .badURI }
        while index < end, isSchemeChar(bytes[index]) { index += 1 }
        guard index < end, bytes[index] == ASCII.colon else { throw .badURI }
        let schemeRange = range.lowerBound..<index
        let scheme = SIPGrammar.lowercasedString(bytes, schemeRange)
        index += 1
        guard scheme == "sip" || scheme == "sips" else {
            // Any other scheme: an opaque absolute URI, checked only for bytes no URI may hold.
            guard index < end else { throw .badURI }
            for offset in index..<end where !isOpaqueChar(bytes[offset]) { throw .badURI }
            return SIPURI(scheme: scheme, isSIP: false, range: range, user: nil, userRange: nil,
                          passwordRange: nil, host: .name(""), hostRange: end..<end, port: nil, portRange: nil,
                          hostPortRange: end..<end, parameters: [], parametersEnd: end, headersRange: nil)
        }

        // userinfo: everything up to the first '@' (no '@' may follow it anywhere in a SIP URI).
        var userRange: Range<Int>? = nil
        var passwordRange: Range<Int>? = nil
        var at = index
        while at < end, bytes[at] != SIPGrammar.at { at += 1 }
        if at < end {
            var colon: Int? = nil
            var cursor = index
            while cursor < at {
                let byte = bytes[cursor]
                if byte == SIPGrammar.percent {
                    try checkEscape(bytes, cursor, at)
                    cursor += 3
                    continue
                }
                guard isUserInfoChar(byte) else { throw .badURI }
                if byte == ASCII.colon, colon == nil { colon = cursor }
                cursor += 1
            }
            let userEnd = colon ?? at
            guard userEnd > index else { throw .badURI }
            userRange = index..<userEnd
            if let colon { passwordRange = (colon + 1)..<at }
            index = at + 1
        }

        // host
        let hostStart = index
        let host: SIPHost
        if index < end, bytes[index] == ASCII.openBracket {
            var close = index + 1
            while close < end, bytes[close] != ASCII.closeBracket { close += 1 }
            guard close < end,
                  let address = IPAddress.parseIPv6(UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<close]))
            else { throw .badURI }
            host = .ipv6(address)
            index = close + 1
        } else {
            while index < end, isHostChar(bytes[index]) { index += 1 }
            guard index > hostStart else { throw .badURI }
            host = hostFromText(bytes, hostStart..<index)
        }
        let hostRange = hostStart..<index

        // port
        var port: UInt16? = nil
        var portRange: Range<Int>? = nil
        if index < end, bytes[index] == ASCII.colon {
            let digitsStart = index + 1
            index = digitsStart
            while index < end, ASCII.isDigit(bytes[index]) { index += 1 }
            guard let value = SIPGrammar.decimal(bytes, digitsStart..<index, maxDigits: 5), value <= 65535 else {
                throw .badURI
            }
            port = UInt16(value)
            portRange = digitsStart..<index
        }
        let hostPortRange = hostStart..<index

        // uri-parameters
        var parameters: [SIPParameter] = []
        while index < end, bytes[index] == SIPGrammar.semicolon {
            let start = index
            index += 1
            let nameStart = index
            index = try scanParamChars(bytes, index, end)
            guard index > nameStart else { throw .badURI }
            let nameRange = nameStart..<index
            var valueRange: Range<Int>? = nil
            if index < end, bytes[index] == ASCII.equals {
                let valueStart = index + 1
                index = try scanParamChars(bytes, valueStart, end)
                guard index > valueStart else { throw .badURI }
                valueRange = valueStart..<index
            }
            parameters.append(SIPParameter(
                name: SIPGrammar.lowercasedString(bytes, nameRange),
                value: valueRange.map { SIPGrammar.string(bytes, $0) },
                range: start..<index, nameRange: nameRange, valueRange: valueRange))
        }
        let parametersEnd = index

        // headers
        var headersRange: Range<Int>? = nil
        if index < end, bytes[index] == SIPGrammar.question {
            let headersStart = index + 1
            index = headersStart
            while index < end {
                let byte = bytes[index]
                if byte == SIPGrammar.percent {
                    try checkEscape(bytes, index, end)
                    index += 3
                    continue
                }
                guard isHeaderChar(byte) else { throw .badURI }
                index += 1
            }
            headersRange = headersStart..<end
        }
        guard index == end else { throw .badURI }

        return SIPURI(scheme: scheme, isSIP: true, range: range,
                      user: userRange.map { SIPGrammar.string(bytes, $0) }, userRange: userRange,
                      passwordRange: passwordRange, host: host, hostRange: hostRange, port: port,
                      portRange: portRange, hostPortRange: hostPortRange, parameters: parameters,
                      parametersEnd: parametersEnd, headersRange: headersRange)
    }

    /// An IPv4 host when the text is a dotted quad, a name otherwise (the character set is already checked).
    static func hostFromText(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> SIPHost {
        if let v4 = IPAddress.parseIPv4(UnsafeRawBufferPointer(rebasing: bytes[range])) {
            return .ipv4(.v4(v4))
        }
        return .name(SIPGrammar.string(bytes, range))
    }

    static func lowercased(_ text: String) -> String {
        String(decoding: text.utf8.map(ASCII.lower), as: UTF8.self)
    }

    /// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    @inline(__always)
    static func isSchemeChar(_ byte: UInt8) -> Bool {
        ASCII.isLetter(byte) || ASCII.isDigit(byte) || byte == 0x2B || byte == 0x2D || byte == 0x2E
    }

    /// Printable ASCII that may appear in an absolute URI (no space, no `<>"`, nothing above 0x7E).
    @inline(__always)
    static func isOpaqueChar(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != SIPGrammar.lessThan && byte != SIPGrammar.greaterThan
            && byte != SIPGrammar.doubleQuote
    }

    /// hostname characters (and `_`, which real hosts use although RFC 1123 does not allow it).
    @inline(__always)
    static func isHostChar(_ byte: UInt8) -> Bool {
        ASCII.isLetter(byte) || ASCII.isDigit(byte) || byte == 0x2D || byte == 0x2E || byte == 0x5F
    }

    /// user and password characters: unreserved, `& = + $ , ; ? /` and the `:` before a password, and `#`, which
    /// RFC 3261 wants escaped but phones send raw in dial strings (`sip:*31#123@pbx`).
    @inline(__always)
    static func isUserInfoChar(_ byte: UInt8) -> Bool {
        if SIPGrammar.isUnreserved(byte) { return true }
        switch byte {
        case 0x26, 0x3D, 0x2B, 0x24, 0x2C, 0x3B, 0x3F, 0x2F, 0x3A, 0x23: return true
        default: return false
        }
    }

    /// paramchar: unreserved and `[ ] / : & + $` (escapes handled by the caller).
    @inline(__always)
    static func isParamChar(_ byte: UInt8) -> Bool {
        if SIPGrammar.isUnreserved(byte) { return true }
        switch byte {
        case 0x5B, 0x5D, 0x2F, 0x3A, 0x26, 0x2B, 0x24: return true
        default: return false
        }
    }

    /// header characters: unreserved, `[ ] / ? : + $` and the `=` and `&` that structure them.
    @inline(__always)
    static func isHeaderChar(_ byte: UInt8) -> Bool {
        if SIPGrammar.isUnreserved(byte) { return true }
        switch byte {
        case 0x5B, 0x5D, 0x2F, 0x3F, 0x3A, 0x2B, 0x24, 0x3D, 0x26: return true
        default: return false
        }
    }

    static func scanParamChars(_ bytes: UnsafeRawBufferPointer, _ index: Int, _ end: Int) throws(SIPParseError) -> Int {
        var index = index
        while index < end {
            let byte = bytes[index]
            if byte == SIPGrammar.percent {
                try checkEscape(bytes, index, end)
                index += 3
            } else if isParamChar(byte) {
                index += 1
            } else {
                break
            }
        }
        return index
    }

    /// `%` HEXDIG HEXDIG.
    static func checkEscape(_ bytes: UnsafeRawBufferPointer, _ index: Int, _ end: Int) throws(SIPParseError) {
        guard index + 2 < end, ASCII.hexValue(bytes[index + 1]) != nil, ASCII.hexValue(bytes[index + 2]) != nil else {
            throw .badURI
        }
    }
}
