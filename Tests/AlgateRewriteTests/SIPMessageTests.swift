import AlgateRewrite
import NIOCore
import Testing

/// A request with the mandatory headers, then `extra` lines; Content-Length is computed unless `contentLength` is
/// given (pass `nil` to leave it out).
func sipRequest(_ method: String = "INVITE", uri: String = "sip:bob@biloxi.example.com", extra: [String] = [],
                body: String = "", contentLength: Int?? = .some(nil)) -> [String] {
    var lines = [
        "\(method) \(uri) SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>",
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: 314159 \(method)",
    ] + extra
    switch contentLength {
    case .none: break
    case .some(.none): lines.append("Content-Length: \(body.utf8.count)")
    case .some(.some(let value)): lines.append("Content-Length: \(value)")
    }
    return lines
}

let sampleSDP = crlf("""
    v=0
    o=alice 2890844526 2890844526 IN IP4 10.0.0.5
    s=-
    c=IN IP4 10.0.0.5
    t=0 0
    m=audio 49170 RTP/AVP 0
    a=rtpmap:0 PCMU/8000

    """)

@Suite struct SIPMessageTests {
    @Test func parsesARequest() throws {
        let message = try sipParse(sipRequest(extra: ["Contact: <sip:alice@pc33.atlanta.example.com>",
                                                      "Content-Type: application/sdp"], body: sampleSDP),
                                   body: sampleSDP)
        #expect(message.method == "INVITE")
        #expect(message.statusCode == nil)
        #expect(message.isRequest)
        #expect(message.requestURIRange.map(message.text) == "sip:bob@biloxi.example.com")
        #expect(message.requestURI?.host == .name("biloxi.example.com"))
        #expect(message.cseq?.number == 314159)
        #expect(message.cseq?.method == "INVITE")
        #expect(message.callID == "a84b4c76e66710@pc33.atlanta.example.com")
        #expect(message.callIDBytes == Array("a84b4c76e66710@pc33.atlanta.example.com".utf8))
        #expect(message.maxForwards == 70)
        #expect(message.contentLength == sampleSDP.utf8.count)
        #expect(message.text(message.body) == sampleSDP)
        #expect(message.from.tag == "1928301774")
        #expect(message.to.tag == nil)
        #expect(message.topVia.branch == "z9hG4bK776asdhds")
        #expect(message.topVia.transport == "UDP")
        #expect(message.contacts.count == 1)
        #expect(message.text(message.startLineRange) == "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n")
        #expect(message.text(message.headerEnd..<message.body.lowerBound) == "\r\n")
        #expect(message.headers.count == 9)
        #expect(message.discardedBytes == 0)
        for field in message.headers {
            #expect(message.text(field.lineRange).hasSuffix("\r\n"))
            #expect(message.text(field.lineRange).hasPrefix(message.text(field.nameRange)))
        }
    }

    @Test func parsesAResponse() throws {
        let message = try sipParse([
            "SIP/2.0 180 Ringing",
            "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1",
            "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
            "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
            "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
            "CSeq: 314159 INVITE",
            "Content-Length: 0",
        ])
        #expect(message.statusCode == 180)
        #expect(message.method == nil)
        #expect(message.reasonRange.map(message.text) == "Ringing")
        #expect(message.cseq?.method == "INVITE")
        #expect(message.maxForwards == nil)
        #expect(message.to.tag == "a6c85cf")
        #expect(message.topVia.received == IPAddress("192.0.2.1"))
        #expect(message.requestURI == nil)
    }

    /// RFC 3261 7.3.3 and the IANA registry: every compact form, resolved case-insensitively.
    @Test func resolvesEveryCompactForm() throws {
        let message = try sipParse([
            "INVITE sip:bob@example.com SIP/2.0",
            "v: SIP/2.0/UDP host.example.com;branch=z9hG4bKa",
            "f: <sip:a@example.com>;tag=1",
            "T: <sip:bob@example.com>",
            "i: compact@example.com",
            "CSeq: 1 INVITE",
            "M: <sip:a@host.example.com>",
            "c: application/sdp",
            "e: identity",
            "s: hello",
            "k: 100rel",
            "o: presence",
            "r: <sip:c@example.com>",
            "b: <sip:a@example.com>",
            "u: presence",
            "x: 1800",
            "y: abc",
            "a: *;audio",
            "j: *;video",
            "d: proxy",
            "n: <https://example.com/cert>",
            "L: 0",
        ])
        let names = message.headers.map(\.name)
        #expect(names == [.via, .from, .to, .callID, .cseq, .contact, .contentType, .other, .other, .other, .other,
                          .other, .other, .other, .other, .other, .other, .other, .other, .other, .contentLength])
        let expanded = message.headers.map { SIPHeaderName.canonicalName(message.text($0.nameRange)) }
        #expect(expanded == ["via", "from", "to", "call-id", "cseq", "contact", "content-type", "content-encoding",
                             "subject", "supported", "event", "refer-to", "referred-by", "allow-events",
                             "session-expires", "identity", "accept-contact", "reject-contact",
                             "request-disposition", "identity-info", "content-length"])
        #expect(message.fields(named: "Event").map { message.text($0.valueRange) } == ["presence"])
        #expect(message.fields(named: "refer-to").count == 1)
        #expect(message.fields(named: "SUBJECT").map { message.text($0.nameRange) } == ["s"])
        #expect(message.contentLength == 0)
        #expect(message.callID == "compact@example.com")
    }

    @Test func namesAreCaseInsensitive() throws {
        let message = try sipParse([
            "OPTIONS sip:bob@example.com SIP/2.0",
            "VIA: SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
            "vIa: SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
            "fROM: <sip:a@example.com>;tag=1",
            "to: <sip:bob@example.com>",
            "CALL-id: x@y",
            "cseq: 1 OPTIONS",
            "MAX-FORWARDS: 7",
            "cOnTaCt: <sip:a@h.example.com>",
            "Record-ROUTE: <sip:p.example.com;lr>",
            "rOuTe: <sip:q.example.com;lr>",
            "CONTENT-LENGTH: 0",
            "EXPIRES: 60",
            "user-AGENT: test",
        ])
        #expect(message.vias.map(\.host) == [.name("a.example.com"), .name("b.example.com")])
        #expect(message.maxForwards == 7)
        #expect(message.recordRoutes.count == 1)
        #expect(message.routes.first?.uri.lr == true)
        #expect(message.fields(.expires).count == 1)
        #expect(message.fields(.userAgent).count == 1)
        #expect(SIPHeaderName.canonicalName("USER-AGENT") == "user-agent")
        #expect(SIPHeaderName.contentLength.canonicalName == "Content-Length")
    }

    /// RFC 3261 7.3.1: a line starting with whitespace continues the field before it.
    @Test func foldedHeadersAreOneField() throws {
        let message = try sipParse([
            "INVITE sip:bob@example.com SIP/2.0",
            "Via: SIP/2.0/UDP",
            "  host.example.com:5060",
            "\t;branch=z9hG4bKfold",
            "Max-Forwards: 70",
            "To:",
            " <sip:bob@example.com>",
            "From: <sip:a@example.com>",
            "  ;tag=folded",
            "Call-ID: fold@example.com",
            "CSeq: 1",
            "    INVITE",
            "Subject: a long",
            " subject line",
            "Content-Length: 0",
        ])
        let via = try #require(message.field(.via))
        #expect(message.text(via.valueRange) == "SIP/2.0/UDP\r\n  host.example.com:5060\r\n\t;branch=z9hG4bKfold")
        #expect(message.text(via.lineRange).hasSuffix(";branch=z9hG4bKfold\r\n"))
        #expect(message.topVia.port == 5060)
        #expect(message.topVia.branch == "z9hG4bKfold")
        #expect(message.from.tag == "folded")
        #expect(message.cseq?.method == "INVITE")
        #expect(message.text(try #require(message.field(.to)).valueRange) == "<sip:bob@example.com>")
        #expect(message.fields(named: "subject").map { message.text($0.valueRange) } == ["a long\r\n subject line"])
        #expect(message.headers.count == 8)
    }

    /// RFC 3261 7.3: values separated by commas, within one field and across repeated fields, in order.
    @Test func commaSeparatedValuesWithinAndAcrossLines() throws {
        let message = try sipParse([
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2",
            "Via: SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bK3,",
            " SIP/2.0/UDP c.example.com;branch=z9hG4bK4",
            "To: <sip:bob@example.com>;tag=2",
            "From: <sip:a@example.com>;tag=1",
            "Call-ID: list@example.com",
            "CSeq: 1 INVITE",
            "Contact: \"Smith, John\" <sip:j@h1.example.com>;q=0.5, <sip:j,x@h2.example.com;x=a>",
            "m: sip:j@h3.example.com;expires=60",
            "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
            "Record-Route: <sip:p3.example.com;lr>",
            "Content-Length: 0",
        ])
        #expect(message.vias.map(\.branch) == ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3", "z9hG4bK4"])
        #expect(message.vias.map(\.transport) == ["UDP", "TCP", "UDP", "UDP"])
        #expect(message.vias[2].host == .ipv6(try #require(IPAddress("2001:db8::9"))))
        #expect(message.vias[2].port == 5062)
        #expect(message.values(of: .via).count == 4)
        #expect(message.values(of: .contact).map(message.text) == [
            "\"Smith, John\" <sip:j@h1.example.com>;q=0.5", "<sip:j,x@h2.example.com;x=a>",
            "sip:j@h3.example.com;expires=60",
        ])
        #expect(message.contacts.map { message.text($0.uriRange) } == [
            "sip:j@h1.example.com", "sip:j,x@h2.example.com;x=a", "sip:j@h3.example.com",
        ])
        #expect(message.contacts[2].parameter(named: "expires")?.value == "60")
        #expect(message.recordRoutes.map { $0.uri.host } == [.name("p1.example.com"), .name("p2.example.com"),
                                                            .name("p3.example.com")])
        #expect(message.values(of: .recordRoute).count == 3)
    }

    @Test func ipv6ReferencesInURIsAndVia() throws {
        let message = try sipParse(sipRequest(uri: "sip:bob@[2001:db8::1]:5060;transport=udp", extra: [
            "Via: SIP/2.0/TCP [2001:db8::2];branch=z9hG4bK9;received=2001:db8::3;rport=5099",
            "Contact: <sip:alice@[2001:db8::4]:5070;ob>",
        ], body: ""))
        let uri = try #require(message.requestURI)
        #expect(uri.host == .ipv6(try #require(IPAddress("2001:db8::1"))))
        #expect(uri.port == 5060)
        #expect(message.text(uri.hostPortRange) == "[2001:db8::1]:5060")
        #expect(uri.transport == "udp")
        #expect(message.vias[1].host.address == IPAddress("2001:db8::2"))
        #expect(message.vias[1].received == IPAddress("2001:db8::3"))
        #expect(message.vias[1].rport == 5099)
        #expect(message.contacts[0].uri.host == .ipv6(try #require(IPAddress("2001:db8::4"))))
        #expect(message.contacts[0].uri.ob)
    }

    @Test func udpBodyLongerThanDeclaredIsCut() throws {
        let buffer = sipBytes(sipRequest("OPTIONS", contentLength: 4), body: "abcdEXTRA")
        let message = try SIPMessage.parse(buffer)
        #expect(message.text(message.body) == "abcd")
        #expect(message.discardedBytes == 5)
        #expect(message.bytes.readableBytes == buffer.readableBytes - 5)
    }

    @Test func withoutContentLengthTheBodyIsTheRest() throws {
        let message = try sipParse(sipRequest("MESSAGE", contentLength: .none), body: "hello")
        #expect(message.contentLength == nil)
        #expect(message.text(message.body) == "hello")
    }

    @Test func leadingLineEndsAreSkipped() throws {
        var buffer = ByteBuffer(string: "\r\n\r\n")
        var rest = sipBytes(sipRequest("OPTIONS"))
        buffer.writeBuffer(&rest)
        let message = try SIPMessage.parse(buffer)
        #expect(message.text(0..<7) == "OPTIONS")
        #expect(message.discardedBytes == 4)
        #expect(SIPMessage.isKeepAlive(ByteBuffer(string: "\r\n\r\n")))
        #expect(!SIPMessage.isKeepAlive(buffer))
        #expect(throws: SIPParseError.emptyMessage) { try SIPMessage.parse(ByteBuffer(string: "\r\n\r\n")) }
        #expect(throws: SIPParseError.emptyMessage) { try SIPMessage.parse(ByteBuffer()) }
    }

    @Test func bareLineFeedsAreTolerated() throws {
        let text = sipRequest("OPTIONS").joined(separator: "\n") + "\n\n"
        let message = try SIPMessage.parse(ByteBuffer(string: text))
        #expect(message.method == "OPTIONS")
        #expect(message.text(message.headerEnd..<message.body.lowerBound) == "\n")
        #expect(message.headers.allSatisfy { message.text($0.lineRange).hasSuffix("\n") })
    }

    @Test func removalRangeOfOneValue() throws {
        let message = try sipParse([
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1 , SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
            "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3",
            "To: <sip:bob@example.com>;tag=2",
            "From: <sip:a@example.com>;tag=1",
            "Call-ID: r@example.com",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
        ])
        let first = try #require(message.removalRange(ofValue: message.vias[0].range))
        #expect(message.text(first) == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1 , ")
        let second = try #require(message.removalRange(ofValue: message.vias[1].range))
        #expect(message.text(second) == " , SIP/2.0/UDP b.example.com;branch=z9hG4bK2")
        let third = try #require(message.removalRange(ofValue: message.vias[2].range))
        #expect(message.text(third) == "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\n")
    }

    @Test func wildcardContact() throws {
        let message = try sipParse(sipRequest("REGISTER", uri: "sip:example.com", extra: ["Contact: *", "Expires: 0"]))
        #expect(message.isContactWildcard)
        #expect(message.contacts.isEmpty)
        #expect(throws: SIPParseError.badNameAddress("Contact")) {
            try sipParse(sipRequest("REGISTER", uri: "sip:example.com", extra: ["Contact: *", "Contact: <sip:a@b>"]))
        }
    }

    /// Liberties taken with forms real phones send: base64 Call-IDs, unquoted UTF-8 display names, raw `#` in a
    /// dial string.
    @Test func realWorldLiberties() throws {
        let message = try sipParse(sipRequest(uri: "sip:*31#123@pbx.example.com", extra: [
            "Contact: Jörg Müller <sip:joerg@10.0.0.8>",
        ]).map {
            $0.hasPrefix("Call-ID") ? "Call-ID: YWJjZGVmZ2g=@10.0.0.8" : $0
        })
        #expect(message.callID == "YWJjZGVmZ2g=@10.0.0.8")
        #expect(message.requestURI?.user == "*31#123")
        #expect(message.contacts[0].displayNameRange.map(message.text) == "Jörg Müller")
    }

    @Test func textOfInvalidUTF8IsReplacedNotCrashing() throws {
        var lines = sipRequest("OPTIONS")
        lines.insert("X-Junk: ok", at: 2)
        var buffer = sipBytes(lines)
        let message = try SIPMessage.parse(buffer)
        buffer.setBytes([0xFF], at: buffer.readerIndex + message.fields(named: "x-junk")[0].valueRange.lowerBound)
        let patched = try SIPMessage.parse(buffer)
        #expect(patched.text(patched.fields(named: "X-Junk")[0].valueRange) == "\u{FFFD}k")
    }

    // MARK: Refusals

    @Test(arguments: [
        (["INVITE  sip:bob@example.com SIP/2.0"], SIPParseError.badStartLine),
        (["INVITE sip:bob@example.com SIP/2.0 "], .badStartLine),
        (["INVITE sip:bob@example.com"], .badStartLine),
        (["INVITE sip:bob@example.com SIP/3.0"], .badVersion),
        (["INVITE sip:bob@example.com HTTP/1.1"], .badStartLine),
        (["INV\"ITE sip:bob@example.com SIP/2.0"], .badMethod),
        (["SIP/2.0 99 Low"], .badStatusCode),
        (["SIP/2.0 700 High"], .badStatusCode),
        (["SIP/2.0 2000 Long"], .badStatusCode),
        (["SIP/2.0 OK"], .badStartLine),
        (["SIP/1.1 200 OK"], .badVersion),
        (["INVITE <sip:bob@example.com> SIP/2.0"], .badURI),
        (["INVITE sip:bob@example.com?Subject=x SIP/2.0"], .headersInRequestURI),
        (["INVITE sip:bob@exa mple.com SIP/2.0"], .badStartLine),
        (["INVITE sip:bob@:5060 SIP/2.0"], .badURI),
        (["INVITE sip:bob@example.com:99999 SIP/2.0"], .badURI),
        (["INVITE sip:b%ZZob@example.com SIP/2.0"], .badURI),
    ])
    func refusesBadStartLines(startLine: [String], error: SIPParseError) {
        var lines = sipRequest()
        lines[0] = startLine[0]
        #expect(throws: error) { try sipParse(lines) }
    }

    @Test func refusesBadHeaderLines() {
        var noColon = sipRequest()
        noColon.insert("NoColonHere", at: 3)
        #expect(throws: SIPParseError.badHeader(line: 4)) { try sipParse(noColon) }
        var badName = sipRequest()
        badName.insert("Bad Name: x", at: 2)
        #expect(throws: SIPParseError.badHeader(line: 3)) { try sipParse(badName) }
        var continuationFirst = sipRequest()
        continuationFirst.insert(" continued", at: 1)
        #expect(throws: SIPParseError.badHeader(line: 2)) { try sipParse(continuationFirst) }
        let bareCR = ByteBuffer(string: sipRequest().joined(separator: "\r\n").replacingOccurrences(
            of: "Max-Forwards: 70", with: "Max-Forwards:\r70") + "\r\n\r\n")
        #expect(throws: SIPParseError.badHeader(line: 3)) { try SIPMessage.parse(bareCR) }
        let noEnd = ByteBuffer(string: sipRequest().map { $0 + "\r\n" }.joined())
        #expect(throws: SIPParseError.noHeaderEnd) { try SIPMessage.parse(noEnd) }
        #expect(throws: SIPParseError.badStartLine) { try SIPMessage.parse(ByteBuffer(bytes: [0, 0, 0, 0])) }
    }

    @Test(arguments: [
        ("Via", SIPParseError.missingHeader("Via")),
        ("From", .missingHeader("From")),
        ("To", .missingHeader("To")),
        ("Call-ID", .missingHeader("Call-ID")),
        ("CSeq", .missingHeader("CSeq")),
    ])
    func refusesMissingHeaders(name: String, error: SIPParseError) {
        let lines = sipRequest().filter { !$0.hasPrefix(name + ":") }
        #expect(throws: error) { try sipParse(lines) }
    }

    @Test func maxForwardsIsOptionalButChecked() throws {
        let message = try sipParse(sipRequest().filter { !$0.hasPrefix("Max-Forwards") })
        #expect(message.maxForwards == nil)
        #expect(throws: SIPParseError.badMaxForwards) {
            try sipParse(sipRequest().map { $0.hasPrefix("Max-Forwards") ? "Max-Forwards: 256" : $0 })
        }
        #expect(throws: SIPParseError.badMaxForwards) {
            try sipParse(sipRequest().map { $0.hasPrefix("Max-Forwards") ? "Max-Forwards: -1" : $0 })
        }
        #expect(throws: SIPParseError.duplicateHeader("Max-Forwards")) {
            try sipParse(sipRequest(extra: ["Max-Forwards: 69"]))
        }
    }

    @Test func refusesBadValues() {
        func with(_ prefix: String, _ line: String) -> [String] {
            sipRequest().map { $0.hasPrefix(prefix) ? line : $0 }
        }
        #expect(throws: SIPParseError.badCSeq) { try sipParse(with("CSeq", "CSeq: 2147483648 INVITE")) }
        #expect(throws: SIPParseError.badCSeq) { try sipParse(with("CSeq", "CSeq: INVITE")) }
        #expect(throws: SIPParseError.badCSeq) { try sipParse(with("CSeq", "CSeq: 1")) }
        #expect(throws: SIPParseError.badCSeq) { try sipParse(with("CSeq", "CSeq: 1 INV/ITE")) }
        #expect(throws: SIPParseError.cseqMethodMismatch) { try sipParse(with("CSeq", "CSeq: 1 invite")) }
        #expect(throws: SIPParseError.badVia) { try sipParse(with("Via", "Via: SIP/2.0 host.example.com")) }
        #expect(throws: SIPParseError.badVia) { try sipParse(with("Via", "Via: SIP/2.0/UDP host.example.com;;")) }
        #expect(throws: SIPParseError.badVia) { try sipParse(with("Via", "Via: SIP/2.0/UDP a.example.com,")) }
        #expect(throws: SIPParseError.badVia) { try sipParse(with("Via", "Via: SIP/3.0/UDP a.example.com")) }
        #expect(throws: SIPParseError.badCallID) { try sipParse(with("Call-ID", "Call-ID: a@b@c")) }
        #expect(throws: SIPParseError.badCallID) { try sipParse(with("Call-ID", "Call-ID: a b")) }
        #expect(throws: SIPParseError.badCallID) { try sipParse(with("Call-ID", "Call-ID:")) }
        #expect(throws: SIPParseError.badNameAddress("From")) { try sipParse(with("From", "From: \"open <sip:a@b>")) }
        #expect(throws: SIPParseError.badNameAddress("To")) { try sipParse(with("To", "To: Smith, J <sip:a@b>")) }
        #expect(throws: SIPParseError.badNameAddress("Contact")) {
            try sipParse(sipRequest(extra: ["Contact: <sip:a@b>;;"]))
        }
        #expect(throws: SIPParseError.badNameAddress("Route")) { try sipParse(sipRequest(extra: ["Route: <sip:a@b"])) }
        #expect(throws: SIPParseError.badNameAddress("Record-Route")) {
            try sipParse(sipRequest(extra: ["Record-Route: <sip:p1>,,<sip:p2>"]))
        }
        #expect(throws: SIPParseError.duplicateHeader("Call-ID")) { try sipParse(sipRequest(extra: ["i: other@x"])) }
        #expect(throws: SIPParseError.duplicateHeader("CSeq")) { try sipParse(sipRequest(extra: ["CSeq: 2 INVITE"])) }
    }

    @Test func refusesBadContentLengths() {
        #expect(throws: SIPParseError.badContentLength) { try sipParse(sipRequest(contentLength: -1)) }
        #expect(throws: SIPParseError.badContentLength) {
            try sipParse(sipRequest(contentLength: .none) + ["Content-Length: ten"])
        }
        #expect(throws: SIPParseError.badContentLength) {
            try sipParse(sipRequest(contentLength: .none) + ["Content-Length:"])
        }
        #expect(throws: SIPParseError.contentLengthMismatch(declared: 10, actual: 4)) {
            try sipParse(sipRequest(contentLength: 10), body: "abcd")
        }
        #expect(throws: SIPParseError.duplicateHeader("Content-Length")) {
            try sipParse(sipRequest(contentLength: 0) + ["l: 0"])
        }
        #expect(throws: SIPParseError.tooLarge("message")) {
            try sipParse(sipRequest(contentLength: .none) + ["Content-Length: 99999999999999999999999"])
        }
    }

    @Test func enforcesEveryLimit() {
        var small = SIPLimits()
        small.maxMessageBytes = 200
        #expect(throws: SIPParseError.tooLarge("message")) {
            try sipParse(sipRequest(), body: String(repeating: "x", count: 0), limits: small)
        }
        var headerBytes = SIPLimits()
        headerBytes.maxHeaderBytes = 100
        #expect(throws: SIPParseError.tooLarge("header section")) { try sipParse(sipRequest(), limits: headerBytes) }
        var headerCount = SIPLimits()
        headerCount.maxHeaders = 5
        #expect(throws: SIPParseError.tooLarge("header count")) { try sipParse(sipRequest(), limits: headerCount) }
        var lineBytes = SIPLimits()
        lineBytes.maxLineBytes = 40
        #expect(throws: SIPParseError.tooLarge("header line")) { try sipParse(sipRequest(), limits: lineBytes) }
        #expect(throws: Never.self) { try sipParse(sipRequest()) }
    }

    @Test func everyErrorExplainsItself() {
        let errors: [SIPParseError] = [
            .emptyMessage, .badStartLine, .badMethod, .badVersion, .badStatusCode, .badURI, .headersInRequestURI,
            .badHeader(line: 3), .noHeaderEnd, .missingHeader("Via"), .duplicateHeader("CSeq"), .badContentLength,
            .contentLengthMismatch(declared: 9, actual: 1), .tooLarge("message"), .badVia, .badCSeq,
            .cseqMethodMismatch, .badMaxForwards, .badCallID, .badNameAddress("To"), .badContentType,
            .unsupportedContentEncoding, .badMultipart, .badSDP(line: 2),
        ]
        let explanations = errors.map(\.explanation)
        #expect(Set(explanations).count == errors.count)
        #expect(explanations.allSatisfy { !$0.isEmpty && !$0.contains("\n") })
    }
}
