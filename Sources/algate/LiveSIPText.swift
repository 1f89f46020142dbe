import AlgateRewrite
import NIOCore

/// The text surgery the live SIP replay does on captured messages before a stand-in peer sends them: captured
/// addresses become the loopback endpoints of the live run, SDP media ports become the stand-in's own media
/// sockets, and Content-Length follows the body. Works on bytes; a message is split at its empty line first.
enum LiveSIPText {
    /// Which live address or endpoint each captured one becomes, for one side's messages.
    struct AddressMap: Sendable {
        /// Captured `address:port` -> live `address:port` (checked first).
        var endpoints: [Endpoint: Endpoint] = [:]
        /// Captured address -> live address (the port, if any, stays).
        var addresses: [IPAddress: IPAddress] = [:]
        /// Any other IPv4 literal becomes this (the other hosts of that side's world are played on it).
        var other: IPAddress
        /// In a Via sent-by without a port (5060): captured address -> live endpoint, so that responses find the
        /// live peer's port.
        var portless: [IPAddress: Endpoint] = [:]
    }

    /// One `m=` line of an SDP body: its index, port, first payload type and connection address (media-level `c=`
    /// over session-level), as text.
    struct MediaLine: Equatable, Sendable {
        var index: Int
        var port: Int
        var payloadType: UInt8
        var address: String?
    }

    // MARK: Message parts

    /// The offset of the body (after the empty line), or nil when the header section does not end.
    static func bodyStart(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            guard let newline = bytes[index...].firstIndex(of: 0x0a) else { return nil }
            let next = newline + 1
            if next < bytes.count, bytes[next] == 0x0a { return next + 1 }
            if next + 1 < bytes.count, bytes[next] == 0x0d, bytes[next + 1] == 0x0a { return next + 2 }
            index = next
        }
        return nil
    }

    /// The message with every address substituted, the SDP ports replaced by `ports` (by m= line index) and
    /// Content-Length set to the new body's length. `viaMap`, when given, substitutes the Via fields instead of
    /// `map` (a response's Via fields are the request sender's, in that sender's addresses).
    /// `body` is where the captured message's body is as its parser sees it (Content-Length may leave bytes out);
    /// by default everything after the empty line.
    static func rewrite(_ raw: [UInt8], map: AddressMap, ports: [Int: Int], viaMap: AddressMap? = nil,
                        body bodyRange: Range<Int>? = nil) -> [UInt8] {
        let split = bodyRange?.lowerBound ?? bodyStart(raw) ?? raw.count
        // Call-ID is a name, not an address, whatever it looks like: both sides must see the same one.
        let head = splitLines(Array(raw[..<split])).flatMap { line in
            if isField(line, "call-id", "i") { return line }
            if isField(line, "via", "v") { return substitute(line, map: viaMap ?? map, inVia: true) }
            return substitute(line, map: map)
        }
        var body = substitute(Array(raw[bodyRange ?? split..<raw.count]), map: map)
        if !ports.isEmpty { body = replacingMediaPorts(body, ports) }
        return settingContentLength(head, body.count) + body
    }

    /// The header section with the Content-Length (or `l`) field's value set to `length`; added when the body is
    /// not empty and there is none.
    static func settingContentLength(_ head: [UInt8], _ length: Int) -> [UInt8] {
        var lines = splitLines(head)
        var found = false
        for (index, line) in lines.enumerated() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[..<colon], as: UTF8.self).trimmingSpaces.lowercased()
            guard name == "content-length" || name == "l" else { continue }
            let ending: [UInt8] = line.last == 0x0a ? (line.dropLast().last == 0x0d ? [0x0d, 0x0a] : [0x0a]) : []
            lines[index] = Array(line[...colon]) + Array(" \(length)".utf8) + ending
            found = true
        }
        if !found, length > 0, lines.count >= 2 {
            let ending: [UInt8] = lines[0].suffix(2) == [0x0d, 0x0a] ? [0x0d, 0x0a] : [0x0a]
            lines.insert(Array("Content-Length: \(length)".utf8) + ending, at: lines.count - 1)
        }
        return lines.flatMap { $0 }
    }

    /// Whether a header line is the field called `name` (or its compact form).
    static func isField(_ line: [UInt8], _ name: String, _ compact: String) -> Bool {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return false }
        let found = String(decoding: line[..<colon], as: UTF8.self).trimmingSpaces.lowercased()
        return found == name || found == compact
    }

    /// Lines with their terminators.
    static func splitLines(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == 0x0a {
            lines.append(Array(bytes[start...index]))
            start = index + 1
        }
        if start < bytes.count { lines.append(Array(bytes[start...])) }
        return lines
    }

    // MARK: Addresses

    /// Replaces every IPv4 literal, and every IPv6 one (`[2001:db8::1]`, or bare as in SDP and `received=`), by
    /// the live IPv4 address (with its port, when the map names the endpoint); the live run is on IPv4 loopback.
    /// `inVia`: a Via line, where a literal without a port may stand for a live endpoint (``AddressMap/portless``).
    /// SDP `IN IP6` becomes `IN IP4` where its address was replaced.
    static func substitute(_ bytes: [UInt8], map: AddressMap, inVia: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var index = 0
        while index < bytes.count {
            guard let (address, end, bracketed) = literal(bytes, at: index) else {
                out.append(bytes[index])
                index += 1
                continue
            }
            var port: (value: UInt16, end: Int)? = nil
            if end < bytes.count, bytes[end] == UInt8(ascii: ":"), bracketed || address.isIPv4 {
                var cursor = end + 1
                var value = 0
                while cursor < bytes.count, isDigit(bytes[cursor]), value <= 65_535 {
                    value = value * 10 + Int(bytes[cursor] - 0x30)
                    cursor += 1
                }
                if cursor > end + 1, value <= 65_535 { port = (UInt16(value), cursor) }
            }
            if case .v4(0) = address {
                out += bytes[index..<end]  // 0.0.0.0: on hold, not an address to move
                index = end
                continue
            }
            if !address.isIPv4, out.suffix(4) == Array("IP6 ".utf8) {
                out.replaceSubrange((out.count - 4)..., with: Array("IP4 ".utf8))
            }
            if let port, let live = map.endpoints[Endpoint(address: address, port: port.value)] {
                out += Array("\(live.address):\(live.port)".utf8)
                index = port.end
                continue
            }
            if inVia, port == nil, let live = map.portless[address] {
                out += Array("\(live.address):\(live.port)".utf8)
            } else {
                out += Array("\(map.addresses[address] ?? map.other)".utf8)
            }
            index = end
        }
        return out
    }

    /// An address literal at `start` (not in the middle of a word or number): IPv4, bracketed IPv6, or bare IPv6
    /// (two colons at least); where it ends, and whether it was bracketed.
    static func literal(_ bytes: [UInt8], at start: Int) -> (IPAddress, Int, Bool)? {
        let previous = start > 0 ? bytes[start - 1] : 0x20
        if bytes[start] == UInt8(ascii: "[") {
            guard let close = bytes[start...].prefix(48).firstIndex(of: UInt8(ascii: "]")),
                  let address = IPAddress(String(decoding: bytes[(start + 1)..<close], as: UTF8.self)),
                  !address.isIPv4 else { return nil }
            return (address, close + 1, true)
        }
        guard !isHex(previous), previous != UInt8(ascii: "."), previous != UInt8(ascii: ":"), !isLetter(previous)
        else { return nil }
        if isHex(bytes[start]) || bytes[start] == UInt8(ascii: ":") {
            var cursor = start
            var colons = 0
            while cursor < bytes.count, cursor - start < 46,
                  isHex(bytes[cursor]) || bytes[cursor] == UInt8(ascii: ":") || bytes[cursor] == UInt8(ascii: ".") {
                if bytes[cursor] == UInt8(ascii: ":") { colons += 1 }
                cursor += 1
            }
            if colons >= 2, cursor == bytes.count || !isLetter(bytes[cursor]),
               let address = IPAddress(String(decoding: bytes[start..<cursor], as: UTF8.self)), !address.isIPv4,
               address != .v6(high: 0, low: 0) {
                return (address, cursor, false)
            }
        }
        guard isDigit(bytes[start]), let (address, end) = ipv4Literal(bytes, at: start) else { return nil }
        return (address, end, false)
    }

    static func isHex(_ byte: UInt8) -> Bool { isDigit(byte) || ((byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66) }

    /// An IPv4 literal starting at `start` and where it ends.
    static func ipv4Literal(_ bytes: [UInt8], at start: Int) -> (IPAddress, Int)? {
        var cursor = start
        var octets: [UInt32] = []
        while octets.count < 4 {
            var value: UInt32 = 0
            let first = cursor
            while cursor < bytes.count, isDigit(bytes[cursor]), cursor - first < 3 {
                value = value * 10 + UInt32(bytes[cursor] - 0x30)
                cursor += 1
            }
            guard cursor > first, value <= 255 else { return nil }
            octets.append(value)
            if octets.count < 4 {
                guard cursor < bytes.count, bytes[cursor] == UInt8(ascii: ".") else { return nil }
                cursor += 1
            }
        }
        if cursor < bytes.count, isDigit(bytes[cursor]) || isLetter(bytes[cursor]) { return nil }
        if cursor + 1 < bytes.count, bytes[cursor] == UInt8(ascii: "."), isDigit(bytes[cursor + 1]) { return nil }
        return (.v4(octets.reduce(0) { $0 << 8 | $1 }), cursor)
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7a }

    // MARK: SDP

    /// The `m=` lines of an SDP body (nil when the body is not SDP).
    static func mediaLines(_ body: [UInt8]) -> [MediaLine]? {
        let lines = splitLines(body).map { String(decoding: $0, as: UTF8.self).trimmingLineEnd }
        guard lines.first?.hasPrefix("v=") == true else { return nil }
        var sessionAddress: String? = nil
        var media: [MediaLine] = []
        for line in lines {
            if line.hasPrefix("m=") {
                let fields = line.dropFirst(2).split(separator: " ")
                let port = fields.count > 1 ? Int(fields[1].prefix { $0 != "/" }) ?? 0 : 0
                let type = fields.count > 3 ? UInt8(fields[3]) ?? 0 : 0
                media.append(MediaLine(index: media.count, port: port, payloadType: type & 0x7f,
                                       address: sessionAddress))
            } else if line.hasPrefix("c=") {
                let fields = line.dropFirst(2).split(separator: " ")
                let address = fields.count > 2 ? String(fields[2].prefix { $0 != "/" }) : nil
                if media.isEmpty { sessionAddress = address } else { media[media.count - 1].address = address }
            }
        }
        return media
    }

    /// The body with the port of each `m=` line named in `ports` (by index) replaced.
    static func replacingMediaPorts(_ body: [UInt8], _ ports: [Int: Int]) -> [UInt8] {
        var index = 0
        var out: [UInt8] = []
        for line in splitLines(body) {
            guard line.starts(with: Array("m=".utf8)) else {
                out += line
                continue
            }
            defer { index += 1 }
            guard let port = ports[index], let space = line.firstIndex(of: 0x20) else {
                out += line
                continue
            }
            let rest = line[(space + 1)...]
            let portEnd = rest.firstIndex { $0 == 0x20 || $0 == UInt8(ascii: "/") } ?? line.endIndex
            out += line[...space]
            out += Array("\(port)".utf8)
            out += line[portEnd...]
        }
        return out
    }

    // MARK: Comparison

    /// Whether the gateway changed a message on its way, as the offline replay counts it: the message that arrived
    /// against the captured one in live addresses (`baseline`), line by line, in any order (a response's Via fields
    /// show what the gateway wrote into its request's: received, rport).
    static func rewritten(baseline: ByteBuffer, received: ByteBuffer) -> Bool {
        let before = lines(baseline)
        let after = lines(received)
        let changed = before.sorted() != after.sorted()
        if changed, liveDebug {
            let gone = before.filter { !after.contains($0) }, came = after.filter { !before.contains($0) }
            liveTrace("rewritten: " + (gone.map { "- \($0)" } + came.map { "+ \($0)" }).joined(separator: " | "))
        }
        return changed
    }

    /// Every line of a message without its terminator (the empty line after the header section included).
    static func lines(_ message: ByteBuffer) -> [String] {
        splitLines(Array(message.readableBytesView)).map { String(decoding: $0, as: UTF8.self).trimmingLineEnd }
    }

    /// `INVITE`, `200`: what kind of message a start line starts.
    static func kind(_ startLine: String) -> String {
        let fields = startLine.split(separator: " ", maxSplits: 2)
        guard let first = fields.first else { return "" }
        return first.hasPrefix("SIP/") && fields.count > 1 ? String(fields[1]) : String(first)
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    /// Without a trailing CR LF or LF.
    var trimmingLineEnd: String {
        var text = Substring(self)
        while let last = text.last, last == "\n" || last == "\r" || last == "\r\n" { text = text.dropLast() }
        return String(text)
    }
}
