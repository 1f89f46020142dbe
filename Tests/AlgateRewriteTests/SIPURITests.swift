import AlgateRewrite
import Testing

@Suite struct SIPURITests {
    func text(_ source: String, _ range: Range<Int>?) -> String? {
        range.map { String(decoding: Array(source.utf8)[$0], as: UTF8.self) }
    }

    @Test func parsesTheParts() throws {
        let source = "sip:alice:secret@atlanta.example.com:5061;transport=TCP;lr;maddr=239.255.255.1;ob?subject=hi&x=y"
        let uri = try sipScan(source, SIPURI.parse)
        #expect(uri.scheme == "sip")
        #expect(uri.isSIP)
        #expect(!uri.isSecure)
        #expect(uri.user == "alice")
        #expect(text(source, uri.passwordRange) == "secret")
        #expect(uri.host == .name("atlanta.example.com"))
        #expect(uri.port == 5061)
        #expect(text(source, uri.portRange) == "5061")
        #expect(text(source, uri.hostPortRange) == "atlanta.example.com:5061")
        #expect(uri.transport == "tcp")
        #expect(uri.lr)
        #expect(uri.ob)
        #expect(uri.maddr == "239.255.255.1")
        #expect(uri.parameters.map(\.name) == ["transport", "lr", "maddr", "ob"])
        #expect(text(source, uri.parameters[0].range) == ";transport=TCP")
        #expect(text(source, uri.headersRange) == "subject=hi&x=y")
        #expect(text(source, 0..<uri.parametersEnd)?.hasSuffix(";ob") == true)
        #expect(uri.range == 0..<source.utf8.count)
    }

    @Test(arguments: [
        ("sip:192.0.2.4", SIPHost.ipv4(IPAddress("192.0.2.4")!), nil as UInt16?),
        ("sips:[2001:db8::10]:5061", .ipv6(IPAddress("2001:db8::10")!), 5061),
        ("SIP:Bob@Host-1.Example.COM", .name("Host-1.Example.COM"), nil),
        ("sip:+1-212-555-1212:1234@gateway.com;user=phone", .name("gateway.com"), nil),
        ("sip:%61lice@atlanta.com;transport=TCP", .name("atlanta.com"), nil),
        ("sip:host_with_underscore.example.com:0", .name("host_with_underscore.example.com"), 0),
        ("sip:256.1.1.1", .name("256.1.1.1"), nil),
    ])
    func hosts(source: String, host: SIPHost, port: UInt16?) throws {
        let uri = try sipScan(source, SIPURI.parse)
        #expect(uri.host == host)
        #expect(uri.port == port)
    }

    /// RFC 4475 3.1.1.2 and 3.1.1.9: the user part may hold `;`, `?`, `/`, `,` and marks.
    @Test func unusualUserParts() throws {
        let weird = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
        let uri = try sipScan(weird, SIPURI.parse)
        #expect(uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        #expect(uri.host == .name("example.com"))
        #expect(uri.parameters.isEmpty)
        let semi = try sipScan("sip:user;par=u%40example.net@example.com", SIPURI.parse)
        #expect(semi.user == "user;par=u%40example.net")
        #expect(semi.host == .name("example.com"))
    }

    @Test func otherSchemesStayOpaque() throws {
        for source in ["tel:+1-201-555-0123", "nobodyKnowsThisScheme:totallyopaquecontent",
                       "soap.beep://192.0.2.103:3002", "urn:service:sos", "http://www.example.com/a?b=c"] {
            let uri = try sipScan(source, SIPURI.parse)
            #expect(!uri.isSIP, "\(source)")
            #expect(uri.host == .name(""))
            #expect(uri.parameters.isEmpty)
            #expect(uri.range == 0..<source.utf8.count)
        }
        #expect(try sipScan("TEL:+1", SIPURI.parse).scheme == "tel")
    }

    @Test(arguments: [
        "", "sip:", "sip:@host", "sip:user@", "sip:user@host:", "sip:user@host:65536", "sip:user@host:5o60",
        "sip:user@[2001:db8::1", "sip:user@[not-v6]", "sip:us er@host", "sip:user@ho st", "sip:user@host;",
        "sip:user@host;=x", "sip:user@host;x=", "sip:user@host;x=a b", "sip:%4@host", "sip:user@host?a=<b>",
        "<sip:user@host>", "1sip:host", "tel:", "tel:a b", "tel:<x>", "sip:user@host>",
    ])
    func refusesMalformedURIs(source: String) {
        #expect(throws: SIPParseError.badURI) { try sipScan(source, SIPURI.parse) }
    }

    @Test func hostPortForAnAddress() throws {
        let v4 = try #require(IPAddress("203.0.113.7"))
        let v6 = try #require(IPAddress("2001:db8::7"))
        #expect(String(decoding: SIPURI.hostPort(v4, port: 5060), as: UTF8.self) == "203.0.113.7:5060")
        #expect(String(decoding: SIPURI.hostPort(v6, port: 5060), as: UTF8.self) == "[2001:db8::7]:5060")
        #expect(String(decoding: SIPURI.hostPort(v6, port: nil), as: UTF8.self) == "[2001:db8::7]")
        let mapped = try #require(IPAddress("::ffff:192.0.2.1"))
        #expect(SIPHost(mapped) == .ipv4(try #require(IPAddress("192.0.2.1"))))
        #expect(SIPHost.name("x").address == nil)
    }
}

@Suite struct SIPViaTests {
    func text(_ source: String, _ range: Range<Int>?) -> String? {
        range.map { String(decoding: Array(source.utf8)[$0], as: UTF8.self) }
    }

    @Test func parsesAVia() throws {
        let source = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776;rport;received=192.0.2.1;maddr=224.2.0.1;ttl=16"
        let via = try sipScan(source, SIPVia.parse)
        #expect(via.transport == "UDP")
        #expect(via.host == .ipv4(try #require(IPAddress("10.0.0.1"))))
        #expect(via.port == 5060)
        #expect(text(source, via.sentByRange) == "10.0.0.1:5060")
        #expect(text(source, via.hostRange) == "10.0.0.1")
        #expect(text(source, via.portRange) == "5060")
        #expect(via.branch == "z9hG4bK776")
        #expect(via.hasMagicCookie)
        #expect(via.hasRPort)
        #expect(via.rport == nil)
        #expect(via.received == IPAddress("192.0.2.1"))
        #expect(via.maddr == "224.2.0.1")
        #expect(text(source, via.parameter(named: "RPORT")?.range) == ";rport")
        #expect(text(source, via.parameter(named: "received")?.valueRange) == "192.0.2.1")
        #expect(via.parametersEnd == source.utf8.count)
    }

    /// RFC 4475 3.1.1.1: whitespace and folds around every separator.
    @Test func toleratesLinearWhitespace() throws {
        let source = "SIP  /   2.0\r\n /UDP\r\n    192.0.2.2 : 5070 ;branch=\r\n z9hG4bK30239 ; rport = 5080"
        let via = try sipScan(source, SIPVia.parse)
        #expect(via.transport == "UDP")
        #expect(via.host == .ipv4(try #require(IPAddress("192.0.2.2"))))
        #expect(via.port == 5070)
        #expect(text(source, via.sentByRange) == "192.0.2.2 : 5070")
        #expect(via.branch == "z9hG4bK30239")
        #expect(via.rport == 5080)
    }

    @Test func ipv6SentByAndReceived() throws {
        let via = try sipScan("SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx;received=[2001:db8::2]", SIPVia.parse)
        #expect(via.transport == "TLS")
        #expect(via.host == .ipv6(try #require(IPAddress("2001:db8::1"))))
        #expect(via.port == 5061)
        #expect(via.received == IPAddress("2001:db8::2"))
        let plain = try sipScan("SIP/2.0/UDP host;received=not-an-address;branch=1", SIPVia.parse)
        #expect(plain.received == nil)
        #expect(!plain.hasMagicCookie)
        #expect(plain.port == nil)
        #expect(plain.portRange == nil)
    }

    @Test(arguments: [
        "", "SIP/2.0/UDP", "SIP/2.0/ host", "SIP/2.0/UDPhost", "SIP/2.0 UDP host", "HTTP/1.1/TCP host",
        "SIP/2.1/UDP host", "SIP/2.0/UDP host:", "SIP/2.0/UDP host:70000", "SIP/2.0/UDP host;", "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host;branch=", "SIP/2.0/UDP host;rport=x", "SIP/2.0/UDP [::1", "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",
    ])
    func refusesMalformedVias(source: String) {
        #expect(throws: SIPParseError.badVia) { try sipScan(source, SIPVia.parse) }
    }
}

@Suite struct SIPNameAddressTests {
    func text(_ source: String, _ range: Range<Int>?) -> String? {
        range.map { String(decoding: Array(source.utf8)[$0], as: UTF8.self) }
    }

    @Test(arguments: [
        ("\"Alice\" <sip:alice@atlanta.example.com>;tag=88", "\"Alice\"", "sip:alice@atlanta.example.com", "88"),
        ("Alice Liddell <sip:alice@a.example.com;transport=tcp>;tag=1", "Alice Liddell",
         "sip:alice@a.example.com;transport=tcp", "1"),
        ("caller<sip:caller@example.com>;tag=323", "caller", "sip:caller@example.com", "323"),
        ("<sip:b@example.com>", nil, "sip:b@example.com", nil),
        ("sip:b@example.com;tag=5", nil, "sip:b@example.com", "5"),
        ("sip:+19725552222@gw1.example.net;unknownparam", nil, "sip:+19725552222@gw1.example.net", nil),
        ("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8", "\"J Rosenberg \\\\\\\"\"",
         "sip:jdrosen@example.com", "98asjd8"),
        ("\"Watson, Thomas\" < sip:t.watson@example.org >", "\"Watson, Thomas\"", "sip:t.watson@example.org", nil),
        ("\\\"arik\\\" <sip:816666@voip.example.net>;tag=6433ef9", "\\\"arik\\\"", "sip:816666@voip.example.net",
         "6433ef9"),
        ("isbn:2983792873", nil, "isbn:2983792873", nil),
        ("<name:John_Smith>", nil, "name:John_Smith", nil),
        ("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>", nil,
         "sip:user@example.com?Route=%3Csip:sip.example.com%3E", nil),
    ])
    func parsesForms(source: String, display: String?, uri: String, tag: String?) throws {
        let value = try sipScan(source, SIPNameAddress.parse)
        #expect(text(source, value.displayNameRange) == display)
        #expect(text(source, value.uriRange) == uri)
        #expect(value.tag == tag)
        #expect(value.hasAngleBrackets == source.contains("<"))
    }

    @Test func parametersAndWhereToAddMore() throws {
        let source = "<sip:a@h.example.com>;expires=60;q=0.5;+sip.instance=\"<urn:uuid:1>\""
        let value = try sipScan(source, SIPNameAddress.parse)
        #expect(value.parameters.map(\.name) == ["expires", "q", "+sip.instance"])
        #expect(value.parameter(named: "Q")?.value == "0.5")
        #expect(value.parameter(named: "+sip.instance")?.value == "\"<urn:uuid:1>\"")
        #expect(value.parametersEnd == source.utf8.count)
        let bare = try sipScan("sip:a@h.example.com", SIPNameAddress.parse)
        #expect(bare.parametersEnd == "sip:a@h.example.com".utf8.count)
    }

    @Test(arguments: [
        "", "\"Mr. J. User <sip:j.user@example.com>", "Bell, Alexander <sip:a.g.bell@example.com>",
        "<sip:a@b", "<sip:a@b>;;", "<sip:a@b>;=1", "<sip:a@b> junk", "sip:user@example.com?Route=%3Csip:x%3E",
        "sip:a@b,c", "<>", "Joe <not a uri>", "<sip:a@b>;tag=\"open",
    ])
    func refusesMalformedValues(source: String) {
        #expect(throws: SIPParseError.badNameAddress("name-addr")) { try sipScan(source, SIPNameAddress.parse) }
    }
}
