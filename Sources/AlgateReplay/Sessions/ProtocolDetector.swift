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
