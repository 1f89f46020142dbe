/// The last check on an SDP body before the gateway passes it on: that no line of it names an address it must
/// not (the sender's own media addresses, the inside hosts), wherever the line is and whatever it is.
///
/// The rewrite changes the lines it reads (o=, c=, m=, a=rtcp, ICE); an address can still sit elsewhere (a
/// vendor attribute repeating the private c= address, a candidate at session level, a line the rewrite could not
/// reach). The audit reads every line of the rewritten body for anything written as an address (four dotted
/// octets anywhere, an IPv6 address in a run of hex digits and colons) and finds any that is forbidden. The
/// gateway refuses a message it finds one in rather than pass it.
public enum SDPAddressAudit {
    /// A line that names a forbidden address (line numbers count from 1 within the body).
    public struct Finding: Hashable, Sendable, CustomStringConvertible {
        public var line: Int
        public var address: IPAddress

        public var description: String { "SDP line \(line) names \(address)" }
    }

    /// The addresses the description announces where the gateway reads them: o=, c= (media and session), a=rtcp,
    /// and, when `candidates` is true, the connection and related addresses of a=candidate and
    /// a=remote-candidates. The unspecified addresses (hold) are left out.
    public static func announcedAddresses(_ sdp: SDPSessionDescription, body: UnsafeRawBufferPointer,
                                          candidates: Bool = true) -> Set<IPAddress> {
        var found = Set<IPAddress>()
        func add(_ address: IPAddress?) {
            if let address, !SDPSessionDescription.isUnspecified(address) { found.insert(address.unmapped) }
        }
        add(sdp.origin?.address)
        add(sdp.connection?.address)
        var candidateLines = candidates ? sdp.sessionICELines : []
        for media in sdp.media {
            for connection in media.connections { add(connection.address) }
            add(media.rtcp?.address)
            if candidates { candidateLines += media.candidateLines + media.remoteCandidateLines }
        }
        for line in candidateLines {
            forEachAddress(in: body, line: line) { add($0) }
        }
        return found
    }

    /// The first line of `body` naming one of `forbidden`, or an address of `networks` other than those in
    /// `allowed`; nil when none does. With `skippingCandidates`, the a=candidate and a=remote-candidates lines are
    /// not read (ICE passed on as it came, by configuration).
    public static func firstForbidden(in body: UnsafeRawBufferPointer, forbidden: Set<IPAddress>,
                                      networks: [CIDR] = [], allowed: Set<IPAddress> = [],
                                      skippingCandidates: Bool = false) -> Finding? {
        guard !forbidden.isEmpty || !networks.isEmpty else { return nil }
        var lineStart = 0
        var number = 0
        while lineStart < body.count {
            var lineEnd = lineStart
            while lineEnd < body.count, body[lineEnd] != ASCII.lf { lineEnd += 1 }
            number += 1
            let line = lineStart..<lineEnd
            lineStart = lineEnd + 1
            if skippingCandidates, SDPRewrite.startsWith(body, line, "a=candidate")
                || SDPRewrite.startsWith(body, line, "a=remote-candidates") { continue }
            var hit: IPAddress? = nil
            forEachAddress(in: body, line: line) { address in
                guard hit == nil else { return }
                let plain = address.unmapped
                if forbidden.contains(plain)
                    || (!allowed.contains(plain) && !SDPSessionDescription.isUnspecified(plain)
                        && networks.contains(where: { $0.contains(plain) })) {
                    hit = address
                }
            }
            if let hit { return Finding(line: number, address: hit) }
        }
        return nil
    }

    /// Calls `body` for every address written in the line, wherever it stands: every run of digits and dots
    /// holding four dotted octets (`10.0.0.9`, `x10.0.0.9:5060`, each four-octet window of `10.0.0.9.7`), and every
    /// run of hex digits, colons and dots that is an IPv6 address (`[fd00::9]:5060`). The line's type letter and
    /// `=`, and an attribute's name up to its colon, are skipped.
    static func forEachAddress(in bytes: UnsafeRawBufferPointer, line: Range<Int>, _ body: (IPAddress) -> Void) {
        var start = line.lowerBound
        if line.count >= 2, bytes[start + 1] == ASCII.equals {
            let isAttribute = bytes[start] == UInt8(ascii: "a")
            start += 2
            if isAttribute {
                var colon = start
                while colon < line.upperBound, bytes[colon] != ASCII.colon, !SIPGrammar.isBlank(bytes[colon]) { colon += 1 }
                if colon < line.upperBound, bytes[colon] == ASCII.colon { start = colon + 1 }
            }
        }
        let content = start..<max(start, line.upperBound)
        // IPv4: runs of digits and dots, read as octets; every window of four that are octets is an address.
        var index = content.lowerBound
        while index < content.upperBound {
            guard ASCII.isDigit(bytes[index]) else { index += 1; continue }
            var end = index
            while end < content.upperBound, ASCII.isDigit(bytes[end]) || bytes[end] == ASCII.dot { end += 1 }
            // The last four parts as one number, and how many of them in a row are octets.
            var value: UInt32 = 0
            var octetsInARow = 0
            var part = index
            while part < end {
                var partEnd = part
                while partEnd < end, bytes[partEnd] != ASCII.dot { partEnd += 1 }
                if let octet = SIPGrammar.decimal(bytes, part..<partEnd, maxDigits: 3), octet <= 255 {
                    value = value << 8 | UInt32(octet)
                    octetsInARow += 1
                    if octetsInARow >= 4 { body(.v4(value)) }
                } else {
                    octetsInARow = 0
                }
                part = partEnd + 1
            }
            index = end
        }
        // IPv6: runs of hex digits, colons and dots with two colons at least.
        index = content.lowerBound
        while index < content.upperBound {
            guard Self.isIPv6Byte(bytes[index]) else { index += 1; continue }
            var end = index
            var colons = 0
            while end < content.upperBound, Self.isIPv6Byte(bytes[end]) {
                if bytes[end] == ASCII.colon { colons += 1 }
                end += 1
            }
            if colons >= 2, end - index <= 45,
               let address = IPAddress(ascii: UnsafeRawBufferPointer(rebasing: bytes[index..<end])), !address.isIPv4 {
                body(address)
            }
            index = end
        }
    }

    private static func isIPv6Byte(_ byte: UInt8) -> Bool {
        ASCII.isHexDigit(byte) || byte == ASCII.colon || byte == ASCII.dot
    }
}
