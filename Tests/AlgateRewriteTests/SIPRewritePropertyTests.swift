import AlgateRewrite
import NIOCore
import Testing

/// Messages made up from a seed: random header order, full or compact names in any case, folds, comma lists,
/// IPv6 hosts, CRLF or bare LF, with or without Content-Length, with or without SDP (holds, disabled streams,
/// media-level c=, a=rtcp, IPv6).
struct SIPMessageGenerator {
    var random: SIPTestRandom

    init(seed: UInt64) {
        random = SIPTestRandom(seed: seed)
    }

    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(random.next() % UInt64(choices.count))] }
    mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }
    mutating func number(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(random.next() % UInt64(range.count))
    }

    mutating func name(_ full: String, _ compact: String?) -> String {
        let base = compact != nil && chance(40) ? compact! : full
        switch random.next() % 4 {
        case 0: return base.uppercased()
        case 1: return base.lowercased()
        default: return base
        }
    }

    mutating func host() -> String {
        pick(["10.0.0.\(number(1...254))", "[2001:db8::\(number(1...999))]", "pc\(number(1...99)).example.com",
              "192.168.\(number(0...255)).\(number(1...254))"])
    }

    mutating func hostPort() -> String {
        let host = host()
        return chance(50) ? "\(host):\(number(1024...65535))" : host
    }

    mutating func sdp(_ end: String) -> String {
        let v6 = chance(20)
        let address = v6 ? "2001:db8::\(number(1...99))" : "10.0.\(number(0...9)).\(number(1...254))"
        let type = v6 ? "IP6" : "IP4"
        var lines = ["v=0", "o=- \(number(1...99999)) \(number(1...9)) IN \(type) \(address)", "s=-"]
        let held = chance(15)
        if chance(80) { lines.append("c=IN \(held ? "IP4 0.0.0.0" : "\(type) \(address)")") }
        lines.append("t=0 0")
        if chance(20) { lines.append(pick(["a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv"])) }
        for _ in 0..<number(1...3) {
            let port = chance(15) ? 0 : number(1024...65000)
            lines.append("m=\(pick(["audio", "video", "image"])) \(port) \(pick(["RTP/AVP", "RTP/SAVP", "udptl"])) 0 8")
            if chance(30) { lines.append("i=stream info") }
            if chance(30) { lines.append("c=IN IP4 \(chance(10) ? "0.0.0.0" : "10.1.\(number(0...9)).\(number(1...254))")") }
            lines.append("a=rtpmap:0 PCMU/8000")
            if chance(30) {
                lines.append(chance(50) ? "a=rtcp:\(number(1024...65000))" : "a=rtcp:\(number(1024...65000)) IN IP4 10.2.0.1")
            }
            if chance(15) { lines.append("a=rtcp-mux") }
            if chance(15) { lines.append(pick(["a=sendonly", "a=inactive"])) }
        }
        var text = lines.joined(separator: end)
        if chance(90) { text += end }
        return text
    }

    /// A message and whether it carries SDP.
    mutating func message() -> String {
        let end = chance(10) ? "\n" : "\r\n"
        let method = pick(["INVITE", "OPTIONS", "REGISTER", "BYE", "UPDATE", "MESSAGE"])
        let isRequest = chance(60)
        let start = isRequest ? "\(method) sip:\(pick(["bob@", "", "+1555@"]))\(hostPort())\(pick(["", ";transport=tcp", ";lr"])) SIP/2.0"
            : "SIP/2.0 \(pick([100, 180, 183, 200, 401, 486])) \(pick(["OK", "Ringing", "", "Busy Here"]))"

        var fields: [String] = []
        var vias = (0..<number(1...3)).map { index in
            "SIP/2.0/\(pick(["UDP", "TCP", "TLS"])) \(hostPort());branch=z9hG4bK\(index)x\(number(1...99999))"
                + (chance(30) ? ";rport" : "")
        }
        while !vias.isEmpty {
            let take = number(1...vias.count)
            let separator = chance(30) ? "," + end + " " : ", "
            fields.append("\(name("Via", "v")): " + vias[0..<take].joined(separator: separator))
            vias.removeFirst(take)
        }
        fields.append("\(name("From", "f")): \(pick(["\"Alice, A.\" ", "Alice ", ""]))<sip:alice@\(host())>;tag=\(number(1...99999))")
        fields.append("\(name("To", "t")): <sip:bob@example.com>" + (isRequest ? "" : ";tag=\(number(1...999))"))
        fields.append("\(name("Call-ID", "i")): \(number(1...999999))@\(host())")
        fields.append("\(name("CSeq", nil)): \(number(1...9999))" + (chance(20) ? end + "  " : " ") + method)
        if isRequest && chance(80) { fields.append("\(name("Max-Forwards", nil)): \(number(0...255))") }
        let contacts = number(0...2)
        if contacts > 0 {
            fields.append("\(name("Contact", "m")): " + (0..<contacts).map { _ in
                "<sip:alice@\(hostPort());transport=\(pick(["udp", "tcp"]))>;expires=\(number(0...3600))"
            }.joined(separator: ", "))
        }
        if chance(40) { fields.append("\(name("Record-Route", nil)): <sip:p1.example.com;lr>, <sip:\(host());lr>") }
        if chance(50) { fields.append("\(name("Subject", "s")): a subject" + end + "\tthat is folded") }
        if chance(50) { fields.append("User-Agent: generator/1.0 (\(number(1...9)))") }
        let hasSDP = chance(60)
        let body = hasSDP ? sdp(end) : (chance(20) ? "plain text body" : "")
        if hasSDP { fields.append("\(name("Content-Type", "c")): application/sdp") }
        if chance(85) { fields.append("\(name("Content-Length", "l")): \(body.utf8.count)") }

        // Shuffle, keeping the Via fields in their order.
        var shuffled: [String] = []
        for field in fields {
            shuffled.insert(field, at: number(0...shuffled.count))
        }
        let viaFields = fields.filter { $0.lowercased().hasPrefix("via:") || $0.lowercased().hasPrefix("v:") }
        var viaIndex = 0
        for index in shuffled.indices where viaFields.contains(shuffled[index]) {
            shuffled[index] = viaFields[viaIndex]
            viaIndex += 1
        }
        return ([start] + shuffled).joined(separator: end) + end + end + body
    }
}

@Suite struct SIPRewritePropertyTests {
    static let seeds: [UInt64] = Array(1...60)

    /// What a gateway does to a message in one direction: a new top Via, received/rport on the old top one, every
    /// Contact and the Request-URI pointed at itself, a Record-Route, and the SDP moved. The result parses, its
    /// Content-Length is its body length, and it equals an independent splice of exactly those edits (plus the
    /// Content-Length value) into the original: nothing outside the edited fields changes.
    @Test(arguments: SIPRewritePropertyTests.seeds)
    func gatewayRewriteIsWellFormedAndLocal(seed: UInt64) throws {
        var generator = SIPMessageGenerator(seed: seed)
        let text = generator.message()
        let message = try SIPMessage.parse(ByteBuffer(string: text))
        let original = message.bytes.bytesArray
        var editor = SIPMessageEditor(message)
        var edits: [(range: Range<Int>, bytes: [UInt8])] = []
        func edit(_ range: Range<Int>, _ bytes: [UInt8]) {
            let accepted = editor.replace(range, with: bytes)
            #expect(accepted, "seed \(seed): \(range)")
            edits.append((range, bytes))
        }
        let gateway = try #require(IPAddress("203.0.113.7"))
        let lineEnd: [UInt8] = message.body.lowerBound - message.headerEnd == 1 ? [0x0A] : [0x0D, 0x0A]

        let firstVia = try #require(message.field(.via))
        edit(firstVia.lineRange.lowerBound..<firstVia.lineRange.lowerBound,
             Array("Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKgw\(seed)".utf8) + lineEnd)
        let top = message.topVia
        if let rport = top.parameter(named: "rport") {
            edit(rport.range, Array(";rport=40123".utf8))
        }
        edit(top.parametersEnd..<top.parametersEnd, Array(";received=192.0.2.99".utf8))
        for contact in message.contacts {
            edit(contact.uri.hostPortRange, SIPURI.hostPort(gateway, port: 5060))
        }
        if let uri = message.requestURI, uri.isSIP {
            edit(uri.hostPortRange, SIPURI.hostPort(gateway, port: 5070))
        }
        edit(message.headerEnd..<message.headerEnd, Array("Record-Route: <sip:203.0.113.7;lr>".utf8) + lineEnd)

        var sdpEdits: [SDPRewrite.Edit] = []
        var sdpRange: Range<Int>? = nil
        if let (range, sdp) = try message.sdp() {
            sdpRange = range
            let rewrite = SDPRewrite(media: sdp.media.indices.map {
                .init(address: gateway, port: UInt16(40000 + 2 * $0), rtcpPort: UInt16(41000 + 2 * $0))
            })
            sdpEdits = message.bytes.withUnsafeReadableBytes { raw in
                rewrite.edits(for: sdp, body: UnsafeRawBufferPointer(rebasing: raw[range]))
            }
            let accepted = rewrite.apply(to: sdp, at: range, in: &editor)
            #expect(accepted, "seed \(seed)")
            for sdpEdit in sdpEdits {
                edits.append((sdpEdit.range.offset(by: range.lowerBound), sdpEdit.bytes))
            }
        }
        #expect(editor.conflicts.isEmpty, "seed \(seed)")

        let built = editor.build()
        let result = try SIPMessage.parse(built)
        // Content-Length: the expected edit, computed here on its own.
        let newBodyLength = message.body.count + edits.filter { $0.range.lowerBound >= message.body.lowerBound }
            .reduce(0) { $0 + $1.bytes.count - $1.range.count }
        var expectedEdits = edits
        if let field = message.field(.contentLength) {
            if newBodyLength != message.contentLength {
                expectedEdits.append((field.valueRange, Array(String(newBodyLength).utf8)))
            }
        } else if newBodyLength != message.body.count {
            expectedEdits.append((message.headerEnd..<message.headerEnd,
                                  Array("Content-Length: \(newBodyLength)".utf8) + lineEnd))
        }
        #expect(built.bytesArray == crlfHeaders(referenceSplice(original, expectedEdits), bodyCount: newBodyLength),
                "seed \(seed):\n\(text)")
        #expect(result.body.count == newBodyLength, "seed \(seed)")
        if result.contentLength != nil || message.contentLength != nil {
            #expect(result.contentLength == result.body.count, "seed \(seed)")
        }
        #expect(result.vias.count == message.vias.count + 1)
        #expect(result.vias[1].received == IPAddress("192.0.2.99"))
        #expect(result.vias[1].rport == (top.hasRPort ? 40123 : nil))
        #expect(result.contacts.allSatisfy { $0.uri.host == .ipv4(gateway) })
        #expect(result.recordRoutes.count == message.recordRoutes.count + 1)
        if sdpRange != nil {
            let (_, rewritten) = try #require(try result.sdp(), "seed \(seed)")
            #expect(rewritten.media.count == (try message.sdp()?.sdp.media.count))
        }
    }

    /// Random replacements, insertions and removals at random places, given in random order: the editor's output
    /// is always the reference splice, and every edit inside the body moves Content-Length with it.
    @Test(arguments: SIPRewritePropertyTests.seeds)
    func randomEditsMatchTheReferenceSplice(seed: UInt64) throws {
        var generator = SIPMessageGenerator(seed: seed &* 7919)
        let message = try SIPMessage.parse(ByteBuffer(string: generator.message()))
        let original = message.bytes.bytesArray
        var editor = SIPMessageEditor(message)
        var accepted: [(range: Range<Int>, bytes: [UInt8])] = []
        let lengthLine = message.field(.contentLength)?.lineRange
        for _ in 0..<generator.number(1...12) {
            let lower = generator.number(0...original.count)
            let upper = min(original.count, lower + generator.number(0...8))
            let range = lower..<upper
            let bytes = Array("x\(generator.number(0...999))".utf8).prefix(generator.number(0...4))
            let touchesLength = lengthLine.map { range.isEmpty ? ($0.lowerBound < lower && lower < $0.upperBound)
                                                                : range.overlaps($0) } ?? false
            let emptyLine = message.headerEnd..<message.body.lowerBound
            let touchesEmptyLine = range.isEmpty ? (emptyLine.lowerBound < lower && lower < emptyLine.upperBound)
                                                 : range.overlaps(emptyLine)
            let overlaps = accepted.contains { other in
                if range.isEmpty && other.range.isEmpty { return false }
                if range.isEmpty { return other.range.lowerBound < lower && lower < other.range.upperBound }
                if other.range.isEmpty { return lower < other.range.lowerBound && other.range.lowerBound < upper }
                return range.overlaps(other.range)
            }
            let ok = editor.replace(range, with: Array(bytes))
            #expect(ok == !(touchesLength || touchesEmptyLine || overlaps), "seed \(seed): \(range)")
            if ok { accepted.append((range, Array(bytes))) }
        }
        let newBodyLength = message.body.count + accepted.filter { $0.range.lowerBound >= message.body.lowerBound }
            .reduce(0) { $0 + $1.bytes.count - $1.range.count }
        var expected = accepted
        if let field = message.field(.contentLength), newBodyLength != message.contentLength {
            expected.append((field.valueRange, Array(String(newBodyLength).utf8)))
        } else if message.field(.contentLength) == nil, newBodyLength != message.body.count {
            let lineEnd: [UInt8] = message.body.lowerBound - message.headerEnd == 1 ? [0x0A] : [0x0D, 0x0A]
            expected.append((message.headerEnd..<message.headerEnd,
                             Array("Content-Length: \(newBodyLength)".utf8) + lineEnd))
        }
        #expect(editor.build().bytesArray == crlfHeaders(referenceSplice(original, expected), bodyCount: newBodyLength),
                "seed \(seed)")
    }

    /// Moving media twice to the same place is moving them once.
    @Test(arguments: SIPRewritePropertyTests.seeds)
    func sdpRewriteIsIdempotent(seed: UInt64) throws {
        var generator = SIPMessageGenerator(seed: seed &+ 1_000_003)
        let body = generator.sdp(generator.chance(20) ? "\n" : "\r\n")
        let sdp = try sdpParse(body)
        let gateway = try #require(IPAddress(generator.chance(20) ? "2001:db8::7" : "203.0.113.7"))
        let rewrite = SDPRewrite(media: sdp.media.indices.map {
            .init(address: gateway, port: UInt16(40000 + 2 * $0), rtcpPort: UInt16(45000 + $0))
        })
        let once = try sdpRewrite(body, rewrite)
        let twice = try sdpRewrite(once, rewrite)
        #expect(once == twice, "seed \(seed):\n\(body)")
        let reparsed = try sdpParse(once)
        #expect(reparsed.media.count == sdp.media.count)
        #expect(reparsed.media.map(\.direction) == sdp.media.map(\.direction))
    }

    /// The valid RFC 4475 messages with SDP, through the same media rewrite as the captures.
    @Test(.enabled(if: SIPCorpus.hasTorture, "the RFC 4475 messages are not there"),
          arguments: ["wsinv", "esc01", "longreq", "dblreq", "unreason", "bcast", "sdp01", "inv2543", "baddate"])
    func tortureMessagesRewrite(name: String) throws {
        let message = try SIPMessage.parse(ByteBuffer(bytes: try SIPCorpus.torture(name)))
        let result = try verifyMediaRewrite(message, context: name)
        #expect(result != nil || name == "dblreq", "\(name) has SDP")
    }
}
