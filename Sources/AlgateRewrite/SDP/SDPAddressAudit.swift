/// The last check on an SDP body before the gateway passes it on: that no line of it names an address it must
/// not (the sender's own media addresses, the inside hosts), wherever the line is and whatever it is.
///
/// The rewrite changes the lines it reads (o=, c=, m=, a=rtcp, ICE); an address can still sit elsewhere (a
/// vendor attribute repeating the private c= address, a candidate at session level, a line the rewrite could not
/// reach). The audit reads every line of the rewritten body as tokens (split at blanks and `/`, and for a= lines
/// after the attribute name's `:`) and finds any token that is one of the forbidden addresses. The gateway refuses
/// a message it finds one in rather than pass it.
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

    /// The first line of `body` naming one of `forbidden`; nil when none does. With `skippingCandidates`, the
    /// a=candidate and a=remote-candidates lines are not read (ICE passed on as it came, by configuration).
    public static func firstForbidden(in body: UnsafeRawBufferPointer, forbidden: Set<IPAddress>,
                                      skippingCandidates: Bool = false) -> Finding? {
        guard !forbidden.isEmpty else { return nil }
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
                if hit == nil, forbidden.contains(address.unmapped) { hit = address }
            }
            if let hit { return Finding(line: number, address: hit) }
        }
        return nil
    }

    /// Calls `body` for every token of the line that is an IPv4 or IPv6 address (brackets allowed).
    static func forEachAddress(in bytes: UnsafeRawBufferPointer, line: Range<Int>, _ body: (IPAddress) -> Void) {
        var index = line.lowerBound
        // `x=`; for an attribute, its name up to the colon too (`a=rtcp:9 IN IP4 ...` yields `9`, `IN`, `IP4`, ...).
        if line.count >= 2, bytes[index + 1] == ASCII.equals {
            let isAttribute = bytes[index] == UInt8(ascii: "a")
            index += 2
            if isAttribute {
                var colon = index
                while colon < line.upperBound, bytes[colon] != ASCII.colon, !SIPGrammar.isBlank(bytes[colon]) { colon += 1 }
                if colon < line.upperBound, bytes[colon] == ASCII.colon { index = colon + 1 }
            }
        }
        while index < line.upperBound {
            while index < line.upperBound, isSeparator(bytes[index]) { index += 1 }
            var end = index
            while end < line.upperBound, !isSeparator(bytes[end]) { end += 1 }
            var token = index..<end
            index = end
            if token.count >= 2, bytes[token.lowerBound] == ASCII.openBracket, bytes[token.upperBound - 1] == ASCII.closeBracket {
                token = (token.lowerBound + 1)..<(token.upperBound - 1)
            }
            guard token.count >= 2, token.count <= 45 else { continue }
            if let address = IPAddress(ascii: UnsafeRawBufferPointer(rebasing: bytes[token])) { body(address) }
        }
    }

    private static func isSeparator(_ byte: UInt8) -> Bool {
        byte == ASCII.space || byte == ASCII.tab || byte == ASCII.cr || byte == SIPGrammar.slash
    }
}
