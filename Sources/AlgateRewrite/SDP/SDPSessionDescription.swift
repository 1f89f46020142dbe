/// An SDP body (RFC 8866, formerly RFC 4566) read for what a media gateway rewrites: the o= address, the session and
/// media c= addresses, the m= ports, a=rtcp (RFC 3605), a=rtcp-mux (RFC 5761), the direction attributes, and where
/// ICE (RFC 8839) puts addresses: the a=candidate and a=remote-candidates lines, and the ICE attribute lines
/// (a=ice-ufrag, a=ice-pwd, a=ice-options, a=ice-lite, a=ice-mismatch, a=ice-pacing, a=end-of-candidates).
///
/// Every other line is left unread and is never touched by ``SDPRewrite``. Lines may end in CRLF or a bare LF, the
/// last line may have no line end at all (a datagram cut at its Content-Length), and empty lines are skipped. A line
/// the gateway must read (o=, c=, m=, a=rtcp) that does not follow the grammar is refused, since guessing would
/// rewrite the wrong bytes. Ranges are offsets into the parsed bytes.
public struct SDPSessionDescription: Hashable, Sendable {
    /// The media direction (RFC 8866 6.7); sendrecv when nothing says otherwise.
    public enum Direction: Hashable, Sendable {
        case sendrecv, sendonly, recvonly, inactive
    }

    /// The address of a c= line: `c=IN IP4 192.0.2.1` (a `/ttl/count` suffix is outside ``addressRange``).
    public struct Connection: Hashable, Sendable {
        /// The address; nil for a host name or another network type.
        public var address: IPAddress?
        /// nettype `IN` with addrtype `IP4` or `IP6`: an Internet address (or host name) the gateway may replace.
        public var isInternet: Bool
        /// The address as written, without a `/ttl` or `/count` suffix.
        public var addressRange: Range<Int>
        /// addrtype IP6.
        public var isIPv6: Bool
        /// `IP4` or `IP6`, to change with the address family.
        public var addressTypeRange: Range<Int>
        /// The whole line with its line end.
        public var lineRange: Range<Int>

        /// `0.0.0.0` or `::`: RFC 2543's way to put a call on hold, kept as it is by ``SDPRewrite``.
        public var isUnspecified: Bool { address.map(SDPSessionDescription.isUnspecified) ?? false }
    }

    /// The address of the o= line: `o=user sess-id sess-version IN IP4 192.0.2.1`.
    public struct Origin: Hashable, Sendable {
        public var address: IPAddress?
        public var isInternet: Bool
        public var addressRange: Range<Int>
        public var isIPv6: Bool
        public var addressTypeRange: Range<Int>
        public var lineRange: Range<Int>

        public var isUnspecified: Bool { address.map(SDPSessionDescription.isUnspecified) ?? false }
    }

    /// `a=rtcp:port [IN IP4 address]` (RFC 3605).
    public struct RTCPAttribute: Hashable, Sendable {
        public var port: UInt16
        public var portRange: Range<Int>
        /// The address, when the attribute names one and it is an IP address.
        public var address: IPAddress?
        public var addressRange: Range<Int>?
        public var isInternet: Bool
        public var isIPv6: Bool
        public var addressTypeRange: Range<Int>?
        public var lineRange: Range<Int>

        public var isUnspecified: Bool { address.map(SDPSessionDescription.isUnspecified) ?? false }
    }

    /// One m= section.
    public struct Media: Hashable, Sendable {
        /// `audio`, `video`, `image`, `application`, `text`, `message`, ...
        public var kind: String
        public var port: UInt16
        public var portRange: Range<Int>
        /// The `/2` of `m=video 49170/2 RTP/AVP 31`.
        public var portCount: Int?
        /// `RTP/AVP`, `RTP/SAVP`, `udptl`, ...
        public var transport: String
        /// The first media-level c=, if any; without one the session-level c= applies.
        public var connection: Connection?
        /// Every media-level c= (layered multicast may have several).
        public var connections: [Connection]
        public var rtcp: RTCPAttribute?
        /// a=rtcp-mux: RTCP shares the RTP port.
        public var rtcpMux: Bool
        /// The media's own direction attribute, or else the session's.
        public var direction: Direction
        /// The m= line with its line end.
        public var lineRange: Range<Int>
        /// From the m= line to the end of the section's last line (trailing empty lines excluded).
        public var range: Range<Int>
        /// Where a media-level c= belongs: after the m= line and its i= lines.
        public var connectionInsertionPoint: Int
        /// The a=candidate lines (RFC 8839 5.1), with their line ends.
        public var candidateLines: [Range<Int>] = []
        /// The a=remote-candidates lines (RFC 8839 5.2).
        public var remoteCandidateLines: [Range<Int>] = []
        /// The other ICE attribute lines of this media (ufrag, pwd, options, ...).
        public var iceLines: [Range<Int>] = []

        /// Port 0: a stream that was refused or removed (RFC 3264 5.1, 6); never rewritten.
        public var isDisabled: Bool { port == 0 }
    }

    /// The o= line, if the description has one.
    public var origin: Origin?
    /// The session-level c=.
    public var connection: Connection?
    /// The session-level direction (sendrecv when none is given).
    public var direction: Direction
    public var media: [Media]
    /// Session-level ICE attribute lines (a=ice-ufrag, a=ice-pwd, a=ice-options, a=ice-lite, ...), and any
    /// a=candidate or a=remote-candidates line written at session level (not valid there, but seen).
    public var sessionICELines: [Range<Int>] = []
    /// The line end the description uses (that of its first line): CRLF or LF.
    public var lineEnding: [UInt8]
    /// The byte count of the parsed description.
    public var byteCount: Int

    /// The address a media stream goes to: its own c=, or the session's.
    public func connectionAddress(of media: Media) -> IPAddress? {
        (media.connection ?? connection)?.address
    }

    /// Parses a whole SDP body.
    public static func parse(_ body: UnsafeRawBufferPointer, limits: SDPLimits = .init())
        throws(SIPParseError) -> SDPSessionDescription {
        var parser = Parser(body, limits: limits)
        return try parser.run()
    }

    static func isUnspecified(_ address: IPAddress) -> Bool {
        address == .v4(0) || address == .v6(high: 0, low: 0)
    }

    // MARK: Parser

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        let limits: SDPLimits
        var origin: Origin? = nil
        var connection: Connection? = nil
        var sessionDirection: Direction? = nil
        var media: [Media] = []
        var sessionICELines: [Range<Int>] = []
        var mediaDirections: [Direction?] = []
        var lineEnding: [UInt8]? = nil
        var lastContentEnd = 0
        var seenVersion = false
        var lineNumber = 0

        init(_ bytes: UnsafeRawBufferPointer, limits: SDPLimits) {
            self.bytes = bytes
            self.limits = limits
        }

        mutating func run() throws(SIPParseError) -> SDPSessionDescription {
            var lineStart = 0
            let count = bytes.count
            while lineStart < count {
                var lineEnd = lineStart
                while lineEnd < count, bytes[lineEnd] != ASCII.lf { lineEnd += 1 }
                let next = lineEnd < count ? lineEnd + 1 : count
                var contentEnd = lineEnd
                if contentEnd > lineStart, bytes[contentEnd - 1] == ASCII.cr { contentEnd -= 1 }
                lineNumber += 1
                guard lineNumber <= limits.maxLines else { throw .tooLarge("SDP lines") }
                guard next - lineStart <= limits.maxLineBytes else { throw .tooLarge("SDP line") }
                if lineEnding == nil, lineEnd < count {
                    lineEnding = contentEnd < lineEnd ? [ASCII.cr, ASCII.lf] : [ASCII.lf]
                }
                if contentEnd > lineStart {
                    try line(lineStart..<next, content: lineStart..<contentEnd)
                    if !media.isEmpty { media[media.count - 1].range = media[media.count - 1].range.lowerBound..<next }
                }
                lineStart = next
            }
            guard seenVersion else { throw .badSDP(line: 1) }
            for index in media.indices {
                media[index].direction = mediaDirections[index] ?? sessionDirection ?? .sendrecv
            }
            return SDPSessionDescription(origin: origin, connection: connection,
                                         direction: sessionDirection ?? .sendrecv, media: media,
                                         sessionICELines: sessionICELines,
                                         lineEnding: lineEnding ?? [ASCII.cr, ASCII.lf], byteCount: count)
        }

        mutating func line(_ line: Range<Int>, content: Range<Int>) throws(SIPParseError) {
            let start = content.lowerBound
            guard content.count >= 2, ASCII.isLetter(bytes[start]), bytes[start + 1] == ASCII.equals else {
                throw .badSDP(line: lineNumber)
            }
            let type = bytes[start]
            let value = (start + 2)..<content.upperBound
            if !seenVersion {
                // RFC 8866 5: the description starts with v=0.
                guard type == UInt8(ascii: "v"), SIPGrammar.equalsIgnoringCase(bytes, value, "0") else {
                    throw .badSDP(line: lineNumber)
                }
                seenVersion = true
                return
            }
            switch type {
            case UInt8(ascii: "o") where media.isEmpty:
                let fields = self.fields(value)
                guard fields.count == 6 else { throw .badSDP(line: lineNumber) }
                let (address, isIPv6, isInternet) = Parser.address(bytes, network: fields[3], type: fields[4],
                                                                   address: fields[5])
                origin = Origin(address: address, isInternet: isInternet, addressRange: fields[5], isIPv6: isIPv6,
                                addressTypeRange: fields[4], lineRange: line)
            case UInt8(ascii: "c"):
                let fields = self.fields(value)
                guard fields.count == 3 else { throw .badSDP(line: lineNumber) }
                var addressEnd = fields[2].lowerBound
                while addressEnd < fields[2].upperBound, bytes[addressEnd] != SIPGrammar.slash { addressEnd += 1 }
                let addressRange = fields[2].lowerBound..<addressEnd
                guard !addressRange.isEmpty else { throw .badSDP(line: lineNumber) }
                let (address, isIPv6, isInternet) = Parser.address(bytes, network: fields[0], type: fields[1],
                                                                   address: addressRange)
                let parsed = Connection(address: address, isInternet: isInternet, addressRange: addressRange,
                                        isIPv6: isIPv6, addressTypeRange: fields[1], lineRange: line)
                if media.isEmpty {
                    guard connection == nil else { throw .badSDP(line: lineNumber) }
                    connection = parsed
                } else {
                    if media[media.count - 1].connection == nil { media[media.count - 1].connection = parsed }
                    media[media.count - 1].connections.append(parsed)
                }
            case UInt8(ascii: "m"):
                try mediaLine(line, value: value)
            case UInt8(ascii: "i") where !media.isEmpty:
                let index = media.count - 1
                if media[index].connections.isEmpty, media[index].connectionInsertionPoint == line.lowerBound {
                    media[index].connectionInsertionPoint = line.upperBound
                }
            case UInt8(ascii: "a"):
                try attribute(line, value: value)
            default:
                break
            }
        }

        mutating func mediaLine(_ line: Range<Int>, value: Range<Int>) throws(SIPParseError) {
            guard media.count < limits.maxMedia else { throw .tooLarge("SDP media") }
            let fields = self.fields(value)
            guard fields.count >= 3 else { throw .badSDP(line: lineNumber) }
            var portEnd = fields[1].lowerBound
            while portEnd < fields[1].upperBound, ASCII.isDigit(bytes[portEnd]) { portEnd += 1 }
            let portRange = fields[1].lowerBound..<portEnd
            guard let port = SIPGrammar.decimal(bytes, portRange, maxDigits: 5), port <= 65535 else {
                throw .badSDP(line: lineNumber)
            }
            var portCount: Int? = nil
            if portEnd < fields[1].upperBound {
                guard bytes[portEnd] == SIPGrammar.slash,
                      let count = SIPGrammar.decimal(bytes, (portEnd + 1)..<fields[1].upperBound, maxDigits: 5) else {
                    throw .badSDP(line: lineNumber)
                }
                portCount = count
            }
            media.append(Media(kind: SIPGrammar.string(bytes, fields[0]), port: UInt16(port), portRange: portRange,
                               portCount: portCount, transport: SIPGrammar.string(bytes, fields[2]),
                               connection: nil, connections: [], rtcp: nil, rtcpMux: false, direction: .sendrecv,
                               lineRange: line, range: line, connectionInsertionPoint: line.upperBound))
            mediaDirections.append(nil)
        }

        mutating func attribute(_ line: Range<Int>, value: Range<Int>) throws(SIPParseError) {
            var nameEnd = value.lowerBound
            while nameEnd < value.upperBound, bytes[nameEnd] != ASCII.colon { nameEnd += 1 }
            let name = value.lowerBound..<nameEnd
            let direction: Direction?
            if SIPGrammar.equalsIgnoringCase(bytes, name, "sendrecv") {
                direction = .sendrecv
            } else if SIPGrammar.equalsIgnoringCase(bytes, name, "sendonly") {
                direction = .sendonly
            } else if SIPGrammar.equalsIgnoringCase(bytes, name, "recvonly") {
                direction = .recvonly
            } else if SIPGrammar.equalsIgnoringCase(bytes, name, "inactive") {
                direction = .inactive
            } else {
                direction = nil
            }
            if let direction {
                if media.isEmpty { sessionDirection = direction } else { mediaDirections[media.count - 1] = direction }
                return
            }
            let isCandidate = SIPGrammar.equalsIgnoringCase(bytes, name, "candidate")
            let isRemoteCandidates = SIPGrammar.equalsIgnoringCase(bytes, name, "remote-candidates")
            let isICE = SIPGrammar.equalsIgnoringCase(bytes, name, "ice-ufrag")
                || SIPGrammar.equalsIgnoringCase(bytes, name, "ice-pwd")
                || SIPGrammar.equalsIgnoringCase(bytes, name, "ice-options")
                || SIPGrammar.equalsIgnoringCase(bytes, name, "ice-lite")
                || SIPGrammar.equalsIgnoringCase(bytes, name, "ice-mismatch")
                || SIPGrammar.equalsIgnoringCase(bytes, name, "ice-pacing")
                || SIPGrammar.equalsIgnoringCase(bytes, name, "end-of-candidates")
            guard !media.isEmpty else {
                if isCandidate || isRemoteCandidates || isICE { sessionICELines.append(line) }
                return
            }
            let index = media.count - 1
            if isCandidate {
                media[index].candidateLines.append(line)
                return
            }
            if isRemoteCandidates {
                media[index].remoteCandidateLines.append(line)
                return
            }
            if isICE {
                media[index].iceLines.append(line)
                return
            }
            if SIPGrammar.equalsIgnoringCase(bytes, name, "rtcp-mux") {
                media[index].rtcpMux = true
            } else if SIPGrammar.equalsIgnoringCase(bytes, name, "rtcp") {
                guard nameEnd < value.upperBound, media[index].rtcp == nil else { throw .badSDP(line: lineNumber) }
                let fields = self.fields((nameEnd + 1)..<value.upperBound)
                guard fields.count == 1 || fields.count == 4,
                      let port = SIPGrammar.decimal(bytes, fields[0], maxDigits: 5), port <= 65535 else {
                    throw .badSDP(line: lineNumber)
                }
                var rtcp = RTCPAttribute(port: UInt16(port), portRange: fields[0], address: nil, addressRange: nil,
                                         isInternet: false, isIPv6: false, addressTypeRange: nil, lineRange: line)
                if fields.count == 4 {
                    let (address, isIPv6, isInternet) = Parser.address(bytes, network: fields[1], type: fields[2],
                                                                       address: fields[3])
                    rtcp.address = address
                    rtcp.isInternet = isInternet
                    rtcp.addressRange = fields[3]
                    rtcp.isIPv6 = isIPv6
                    rtcp.addressTypeRange = fields[2]
                }
                media[index].rtcp = rtcp
            }
        }

        /// The fields of a value, separated by runs of spaces (RFC 8866 asks for one; more are tolerated).
        func fields(_ range: Range<Int>) -> [Range<Int>] {
            var result: [Range<Int>] = []
            var index = range.lowerBound
            while index < range.upperBound {
                while index < range.upperBound, SIPGrammar.isBlank(bytes[index]) { index += 1 }
                let start = index
                while index < range.upperBound, !SIPGrammar.isBlank(bytes[index]) { index += 1 }
                if index > start { result.append(start..<index) }
            }
            return result
        }

        /// An `IN IP4` / `IN IP6` address: the address (nil for a host name), whether it is IPv6, and whether it
        /// is an Internet address at all.
        static func address(_ bytes: UnsafeRawBufferPointer, network: Range<Int>, type: Range<Int>,
                            address: Range<Int>) -> (IPAddress?, Bool, Bool) {
            let isIPv6 = SIPGrammar.equalsIgnoringCase(bytes, type, "IP6")
            let isIPv4 = SIPGrammar.equalsIgnoringCase(bytes, type, "IP4")
            guard SIPGrammar.equalsIgnoringCase(bytes, network, "IN"), isIPv4 || isIPv6 else {
                return (nil, isIPv6, false)
            }
            let text = UnsafeRawBufferPointer(rebasing: bytes[address])
            if isIPv4 { return (IPAddress.parseIPv4(text).map { .v4($0) }, false, true) }
            return (IPAddress.parseIPv6(text), true, true)
        }
    }
}
