/// One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport;received=...` (RFC 3261 20.42, RFC 3581).
///
/// Whitespace and folds are allowed around the slashes, the colon and the parameters, as RFC 3261's SLASH, COLON,
/// SEMI and EQUAL allow (RFC 4475 3.1.1.1 tortures exactly this). All ranges are offsets into the parsed bytes.
public struct SIPVia: Hashable, Sendable {
    /// The whole value (one element of a comma-separated Via list).
    public var range: Range<Int>
    /// The transport, upper-cased: `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, or any other token.
    public var transport: String
    public var transportRange: Range<Int>
    public var host: SIPHost
    /// The host as written, brackets of an IPv6 reference included.
    public var hostRange: Range<Int>
    public var port: UInt16?
    /// The port digits.
    public var portRange: Range<Int>?
    /// Host and port with whatever stands between them: replace it to change the sent-by.
    public var sentByRange: Range<Int>
    /// The via-params in order.
    public var parameters: [SIPParameter]
    /// Where the parameters end: append `;received=...` here.
    public var parametersEnd: Int

    /// The `branch` parameter.
    public var branch: String? { parameter(named: "branch")?.value }
    /// Whether the branch carries RFC 3261's magic cookie (`z9hG4bK`, case-sensitive).
    public var hasMagicCookie: Bool { branch?.hasPrefix("z9hG4bK") ?? false }
    /// The address in `received=` (with or without brackets); nil when absent or not an address.
    public var received: IPAddress? {
        guard let value = parameter(named: "received")?.value else { return nil }
        var text = Substring(value)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        return IPAddress(String(text))
    }
    /// Whether `rport` is present (RFC 3581), with or without a value.
    public var hasRPort: Bool { parameter(named: "rport") != nil }
    /// The value of `rport=`, if it has one.
    public var rport: UInt16? {
        guard let value = parameter(named: "rport")?.value, let number = UInt16(value) else { return nil }
        return number
    }
    /// The `maddr` parameter.
    public var maddr: String? { parameter(named: "maddr")?.value }

    /// The first parameter called `name`, compared case-insensitively.
    public func parameter(named name: String) -> SIPParameter? {
        parameters.first(named: SIPURI.lowercased(name))
    }

    /// Parses a whole buffer as one Via value.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SIPParseError) -> SIPVia {
        try parse(bytes, in: SIPGrammar.trimLWS(bytes, 0..<bytes.count))
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>) throws(SIPParseError) -> SIPVia {
        let end = range.upperBound
        var index = range.lowerBound

        func token() throws(SIPParseError) -> Range<Int> {
            index = SIPGrammar.skipLWS(bytes, index, end)
            let start = index
            while index < end, SIPGrammar.isTokenChar(bytes[index]) { index += 1 }
            guard index > start else { throw .badVia }
            return start..<index
        }
        func slash() throws(SIPParseError) {
            index = SIPGrammar.skipLWS(bytes, index, end)
            guard index < end, bytes[index] == SIPGrammar.slash else { throw .badVia }
            index += 1
        }

        let name = try token()
        try slash()
        let version = try token()
        try slash()
        let transportRange = try token()
        guard SIPGrammar.equalsIgnoringCase(bytes, name, "SIP"), SIPGrammar.equalsIgnoringCase(bytes, version, "2.0")
        else { throw .badVia }

        // sent-by: LWS host [ COLON port ]
        let afterTransport = index
        index = SIPGrammar.skipLWS(bytes, index, end)
        guard index > afterTransport, index < end else { throw .badVia }
        let hostStart = index
        let host: SIPHost
        if bytes[index] == ASCII.openBracket {
            var close = index + 1
            while close < end, bytes[close] != ASCII.closeBracket { close += 1 }
            guard close < end,
                  let address = IPAddress.parseIPv6(UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<close]))
            else { throw .badVia }
            host = .ipv6(address)
            index = close + 1
        } else {
            while index < end, SIPURI.isHostChar(bytes[index]) { index += 1 }
            guard index > hostStart else { throw .badVia }
            host = SIPURI.hostFromText(bytes, hostStart..<index)
        }
        let hostRange = hostStart..<index

        var port: UInt16? = nil
        var portRange: Range<Int>? = nil
        let afterHost = SIPGrammar.skipLWS(bytes, index, end)
        if afterHost < end, bytes[afterHost] == ASCII.colon {
            let digitsStart = SIPGrammar.skipLWS(bytes, afterHost + 1, end)
            var digitsEnd = digitsStart
            while digitsEnd < end, ASCII.isDigit(bytes[digitsEnd]) { digitsEnd += 1 }
            guard let value = SIPGrammar.decimal(bytes, digitsStart..<digitsEnd, maxDigits: 5), value <= 65535 else {
                throw .badVia
            }
            port = UInt16(value)
            portRange = digitsStart..<digitsEnd
            index = digitsEnd
        }
        let sentByRange = hostStart..<index

        let parameters = try SIPParameter.scanHeaderParameters(bytes, from: index, to: end, error: .badVia)
        for parameter in parameters where parameter.name == "rport" {
            if let value = parameter.value, UInt16(value) == nil { throw .badVia }
        }
        return SIPVia(range: range, transport: SIPGrammar.string(bytes, transportRange).uppercased(),
                      transportRange: transportRange, host: host, hostRange: hostRange, port: port,
                      portRange: portRange, sentByRange: sentByRange, parameters: parameters,
                      parametersEnd: parameters.last?.range.upperBound ?? sentByRange.upperBound)
    }
}
