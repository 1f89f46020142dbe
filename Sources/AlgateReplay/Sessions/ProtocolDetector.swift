/// Recognises the protocols the replay cares about, by port and by the first bytes of a flow.
enum ProtocolDetector {
    static let ftpPort: UInt16 = 21
    static let sipPorts: Set<UInt16> = [5060, 5061]
    /// Ports whose UDP traffic is never taken for RTP, whatever it looks like.
    static let nonMediaPorts: Set<UInt16> = [53, 67, 68, 123, 137, 138, 161, 162, 500, 514, 1900, 4500, 5060, 5061,
                                             5353]

    /// Whether the first bytes a server sent are an FTP greeting: `220` then a space or `-` (RFC 959). nil when
    /// fewer than four bytes are known yet.
    static func isFTPGreeting(_ bytes: some Collection<UInt8>) -> Bool? {
        guard bytes.count >= 4 else { return nil }
        let prefix = Array(bytes.prefix(4))
        return prefix[0] == UInt8(ascii: "2") && prefix[1] == UInt8(ascii: "2") && prefix[2] == UInt8(ascii: "0")
            && (prefix[3] == UInt8(ascii: " ") || prefix[3] == UInt8(ascii: "-"))
    }

    /// The first line of `bytes` (without CR LF) when it is complete; nil when no LF came yet.
    static func firstLine(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        guard let lf = bytes.firstIndex(of: 0x0a) else { return nil }
        var line = bytes[..<lf]
        if line.last == 0x0d { line = line.dropLast() }
        return line
    }

    /// Whether a line is a SIP start line: `SIP/2.0 NNN reason`, or `METHOD uri SIP/2.0` with a token method and
    /// a URI with a scheme (RFC 3261 7.1, 7.2).
    static func isSIPStartLine(_ line: some Collection<UInt8>) -> Bool {
        let bytes = Array(line)
        let version = Array("SIP/2.0".utf8)
        if bytes.starts(with: version + [0x20]) {
            let code = bytes.dropFirst(8).prefix(3)
            return code.count == 3 && code.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
                && (bytes.count == 11 || bytes[11] == 0x20)
        }
        let parts = bytes.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, Array(parts[2]) == version, !parts[0].isEmpty,
              parts[0].allSatisfy(isTokenByte), parts[1].contains(UInt8(ascii: ":")),
              !parts[1].contains(where: { $0 < 0x21 || $0 > 0x7e }) else { return false }
        return true
    }

    /// Whether a datagram begins a SIP message (its first line complete and a SIP start line).
    static func startsSIPMessage(_ bytes: [UInt8]) -> Bool {
        firstLine(bytes).map(isSIPStartLine) ?? false
    }

    /// Where the first SIP message begins in a stream that may start in the middle of one (a capture that began
    /// after the connection did): at the first line that starts at a line start (the beginning of `bytes` when
    /// `atLineStart`, else after a LF), is a SIP start line, and is followed by a whole header section (at most
    /// `maxHeaderBytes`) with a CSeq header field, which every request and response has (RFC 3261 8.1.1, 8.2.6)
    /// and which a SIP-looking line in a body (a `message/sipfrag`, an HTTP body) seldom has.
    ///
    /// `found` is its offset from the slice's start. Without one, `scanned` is the offset of the first byte not yet
    /// judged (an unfinished line, or a start line whose header section has not all arrived, or the end): every
    /// line before it starts no SIP message.
    static func sipResynchronization(_ bytes: ArraySlice<UInt8>, atLineStart: Bool,
                                     maxHeaderBytes: Int = 16_384) -> (found: Int?, scanned: Int) {
        var start = bytes.startIndex
        if !atLineStart {
            guard let lf = bytes.firstIndex(of: 0x0a) else { return (nil, bytes.count) }
            start = lf + 1
        }
        while let lf = bytes[start...].firstIndex(of: 0x0a) {
            var line = bytes[start..<lf]
            if line.last == 0x0d { line = line.dropLast() }
            if isSIPStartLine(line) {
                switch headerSectionHasCSeq(bytes[(lf + 1)...], limit: maxHeaderBytes - (lf + 1 - start)) {
                case true?: return (start - bytes.startIndex, start - bytes.startIndex)
                case nil: return (nil, start - bytes.startIndex)
                case false?: break
                }
            }
            start = lf + 1
        }
        return (nil, start - bytes.startIndex)
    }

    /// Whether the header fields at the start of `bytes` (up to the empty line) include CSeq; nil when the empty
    /// line has not come yet within `limit` bytes, false past the limit.
    private static func headerSectionHasCSeq(_ bytes: ArraySlice<UInt8>, limit: Int) -> Bool? {
        var start = bytes.startIndex
        var hasCSeq = false
        while let lf = bytes[start...].firstIndex(of: 0x0a) {
            guard lf + 1 - bytes.startIndex <= limit else { return false }
            var line = bytes[start..<lf]
            if line.last == 0x0d { line = line.dropLast() }
            if line.isEmpty { return hasCSeq }
            // The field name, case-insensitive, with the blanks RFC 3261 allows before the colon.
            let name = line.prefix { $0 != UInt8(ascii: ":") }.filter { $0 != 0x20 && $0 != 0x09 }.map { $0 | 0x20 }
            if name == Array("cseq".utf8), line.contains(UInt8(ascii: ":")) { hasCSeq = true }
            start = lf + 1
        }
        return bytes.count > limit ? false : nil
    }

    /// Whether the first bytes of a mid-stream TCP direction hold the start of a SIP message (see
    /// ``sipResynchronization(_:atLineStart:maxHeaderBytes:)``).
    static func containsSIPMessageStart(_ bytes: [UInt8]) -> Bool {
        sipResynchronization(bytes[...], atLineStart: true).found != nil
    }

    /// Whether a line is shaped like an FTP reply: three digits, the first 1 to 5, then a space, a `-` or the end
    /// (RFC 959 4.2).
    static func isFTPReplyLine(_ line: some Collection<UInt8>) -> Bool {
        let bytes = Array(line.prefix(4))
        guard bytes.count >= 3, (UInt8(ascii: "1")...UInt8(ascii: "5")).contains(bytes[0]),
              bytes[1...2].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return false }
        return bytes.count == 3 || bytes[3] == 0x20 || bytes[3] == UInt8(ascii: "-")
    }

    /// FTP commands (RFC 959, 2228, 2389, 2428, 3659, 7151, and the X- forms of RFC 1123), upper case.
    static let ftpCommands: Set<String> = [
        "ABOR", "ACCT", "ADAT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CONF", "CWD", "DELE", "ENC", "EPRT", "EPSV",
        "FEAT", "HELP", "HOST", "LANG", "LIST", "LPRT", "LPSV", "MDTM", "MIC", "MKD", "MLSD", "MLST", "MODE", "NLST",
        "NOOP", "OPTS", "PASS", "PASV", "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REIN", "REST", "RETR", "RMD", "RNFR",
        "RNTO", "SITE", "SIZE", "SMNT", "STAT", "STOR", "STOU", "STRU", "SYST", "TYPE", "USER", "XCUP", "XCWD",
        "XMKD", "XPWD", "XRMD",
    ]
    /// FTP commands that SMTP or NNTP have too (with numeric replies as well): alone they do not make a stream FTP.
    static let sharedCommands: Set<String> = ["AUTH", "HELP", "LIST", "MODE", "NOOP", "QUIT", "STAT"]

    /// Whether the complete lines at the start of a mid-stream client direction are FTP commands: true at the first
    /// one only FTP has (all before it FTP commands too), false at the first line that is no FTP command, nil while
    /// the lines seen are all shared with other protocols or none is complete yet.
    static func looksLikeFTPCommands(_ bytes: [UInt8]) -> Bool? {
        var rest = bytes[...]
        while let lf = rest.firstIndex(of: 0x0a) {
            var line = rest[..<lf]
            if line.last == 0x0d { line = line.dropLast() }
            rest = rest[(lf + 1)...]
            let verb = line.prefix { $0 != 0x20 }
            guard (3...4).contains(verb.count), verb.count == line.count || line[line.startIndex + verb.count] == 0x20,
                  case let name = String(decoding: verb, as: UTF8.self).uppercased(),
                  ftpCommands.contains(name) else { return false }
            if !sharedCommands.contains(name) { return true }
        }
        return nil
    }

    /// RTP (RFC 3550 5.1: version 2, at least the 12-byte header) or RTCP (version 2, packet types 200-207).
    enum MediaKind: String {
        case rtp
        case rtcp
    }

    static func mediaKind(_ payload: ArraySlice<UInt8>, ports: (UInt16, UInt16)) -> MediaKind? {
        guard !nonMediaPorts.contains(ports.0), !nonMediaPorts.contains(ports.1),
              let first = payload.first, first >> 6 == 2, payload.count >= 8 else { return nil }
        let type = payload[payload.startIndex + 1]
        if (200...207).contains(type) { return .rtcp }
        return payload.count >= 12 ? .rtp : nil
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("-.!%*_+`'~".utf8).contains(byte)
        }
    }
}

