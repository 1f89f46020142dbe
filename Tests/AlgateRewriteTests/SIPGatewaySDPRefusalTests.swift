import AlgateRewrite
import NIOCore
import Testing

/// A message whose SDP the gateway cannot rewrite never crosses: a request is answered 488, a response is replaced
/// by a 500 to the caller and, for a 2xx, the callee's dialog is ended (ACK, BYE); ICE and BUNDLE offers are
/// rewritten onto the relays.
@Suite struct SIPGatewaySDPRefusalTests {
    static func invite(body: String, callID: String = "call-1", contentLength: Int? = nil) -> String {
        "INVITE sip:bob@203.0.113.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-1;rport\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
            + "Call-ID: \(callID)\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.168.1.20:5062>\r\n"
            + "Content-Type: application/sdp\r\nContent-Length: \(contentLength ?? body.utf8.count)\r\n\r\n" + body
    }

    static let brokenSDP = "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio eighteen RTP/AVP 0\r\n"

    @Test("a request whose SDP cannot be rewritten is answered 488 and opens nothing", arguments: [
        ("does not parse", brokenSDP),
        ("unknown network type", "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=TN RFC2543 5551234\r\nt=0 0\r\nm=audio 18000 RTP/AVP 0\r\n"),
        ("address left in a vendor line", SIPSamples.sdp("192.168.1.20", 18000) + "a=x-private:192.168.1.20\r\n"),
    ])
    func requestRefused(_ name: String, _ body: String) throws {
        var d = SIPGatewayDriver()
        d.fromPhone(Self.invite(body: body))
        #expect(d.sent.count == 1, "\(name): \(d.sent.map(\.text))")
        let answer = try #require(d.last)
        #expect(answer.to == SIPGatewayDriver.phone)
        #expect(answer.text.hasPrefix("SIP/2.0 488 Not Acceptable Here\r\n"), "\(name): \(answer.text)")
        #expect(!d.sent.contains { $0.to == SIPGatewayDriver.pbx }, "\(name)")
        // A relay the rewrite asked for before the audit is closed again.
        #expect(Set(d.closed) == Set(d.opened.map(\.id)), "\(name)")
        #expect(d.events.contains { if case .refused(_, _, 488?) = $0 { true } else { false } })
    }

    @Test func anSDPCutShortByItsContentLengthIsRefused() throws {
        var d = SIPGatewayDriver()
        let body = SIPSamples.sdp("192.168.1.20", 18000)
        // The declared length ends inside "c=IN IP4 192.168.1.20": the datagram has more, the message less.
        let cut = try #require(body.range(of: "192.168.1.20\r\nt="))
        let length = body.utf8.distance(from: body.utf8.startIndex, to: cut.lowerBound.samePosition(in: body.utf8)!) + 6
        d.fromPhone(Self.invite(body: body, contentLength: length))
        let answer = try #require(d.last)
        #expect(answer.text.hasPrefix("SIP/2.0 488 "), "\(answer.text)")
        #expect(d.opened.isEmpty)
    }

    @Test func aTwoHundredWhoseSDPCannotBeRewrittenEndsTheCallOnBothSides() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        let forwarded = try #require(d.last).text
        let relays = d.opened.map(\.id)
        let ok = SIPSamples.response(200, "OK", to: forwarded, contact: "<sip:bob@10.0.0.6:5060>")
            .replacingOccurrences(of: "Content-Length: 0\r\n\r\n", with: "Content-Type: application/sdp\r\n"
                + "Record-Route: <sip:pbx-edge@10.0.0.6;lr>\r\nContent-Length: \(Self.brokenSDP.utf8.count)\r\n\r\n"
                + Self.brokenSDP)
        let before = d.sent.count
        d.fromPBX(ok)
        let sent = Array(d.sent[before...])
        // To the caller: a 500 in place of the 200, with the caller's own Via stack.
        let toPhone = sent.filter { $0.to == SIPGatewayDriver.phone }
        #expect(toPhone.count == 1, "\(sent.map(\.text))")
        let replacement = try SIPMessage.parse(ByteBuffer(string: toPhone.first?.text ?? ""))
        #expect(replacement.statusCode == 500)
        #expect(replacement.vias.count == 1 && replacement.topVia.branch == "z9hG4bK-1")
        #expect(replacement.cseq?.method == "INVITE")
        #expect(!(toPhone.first?.text.contains("10.0.0.6") ?? true))
        // To the callee: ACK then BYE to its Contact, through its own route set, from the gateway's inside address.
        let toPBX = sent.filter { $0.to == SIPGatewayDriver.pbx }.map { try? SIPMessage.parse(ByteBuffer(string: $0.text)) }
        #expect(toPBX.count == 2)
        let ack = try #require(toPBX.first ?? nil)
        let bye = try #require(toPBX.last ?? nil)
        #expect(ack.method == "ACK" && ack.cseq?.number == 1 && ack.cseq?.method == "ACK")
        #expect(bye.method == "BYE" && bye.cseq?.number == 2)
        #expect(bye.text(bye.requestURIRange!) == "sip:bob@10.0.0.6:5060")
        #expect(bye.text(bye.topVia.sentByRange) == "10.0.0.1:5060")
        #expect(bye.routes.map { bye.text($0.uriRange) } == ["sip:pbx-edge@10.0.0.6;lr"])
        #expect(bye.to.tag == "b1" && bye.from.tag == "a1")
        // The call's relays close.
        #expect(Set(d.closed).isSuperset(of: relays))
        // The callee's 200 to the BYE ends at the gateway; so does a retransmitted 200 OK, which gets its ACK again.
        let afterTeardown = d.sent.count
        d.fromPBX(SIPSamples.response(200, "OK", to: d.sent[afterTeardown - 1].text, cseq: "2 BYE"))
        #expect(d.sent.count == afterTeardown)
        d.fromPBX(ok)
        #expect(!d.sent[afterTeardown...].contains { $0.to == SIPGatewayDriver.phone })
        #expect(d.sent[afterTeardown...].contains { $0.to == SIPGatewayDriver.pbx && $0.text.hasPrefix("ACK ") })
        // The caller's ACK of the 500 does not go on to the callee.
        let count = d.sent.count
        d.fromPhone("ACK sip:bob@203.0.113.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-1;rport\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
            + "Call-ID: call-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
        #expect(d.sent.count == count)
    }

    @Test func anICEOfferIsPointedAtTheRelay() throws {
        var d = SIPGatewayDriver()
        let sdp = SIPSamples.sdp("192.168.1.20", 18000)
            + "a=candidate:1 1 udp 2122260223 192.168.1.20 18000 typ host\r\n"
            + "a=candidate:2 1 udp 1686052607 198.51.100.20 31000 typ srflx raddr 192.168.1.20 rport 18000\r\n"
            + "a=ice-ufrag:F7gI\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\na=rtcp-mux\r\n"
        d.fromPhone(Self.invite(body: sdp))
        let forwarded = try #require(d.last)
        #expect(forwarded.to == SIPGatewayDriver.pbx)
        #expect(forwarded.text.contains("a=candidate:1 1 UDP 2130706431 10.0.0.1 40002 typ host\r\n"), "\(forwarded.text)")
        #expect(!forwarded.text.contains("a=candidate:1 2 "))   // rtcp-mux: one component
        let body = try #require(forwarded.text.components(separatedBy: "\r\n\r\n").last)
        #expect(!body.contains("192.168.1.20") && !body.contains("198.51.100.20"), "\(body)")
        #expect(forwarded.text.contains("a=ice-ufrag:F7gI\r\n"))
    }

    @Test func bundledStreamsShareOneRelay() throws {
        var d = SIPGatewayDriver()
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n"
            + "a=group:BUNDLE a v\r\nm=audio 18000 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=rtcp-mux\r\n"
            + "m=video 18000 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=rtcp-mux\r\n"
        d.fromPhone(Self.invite(body: sdp))
        #expect(d.opened.count == 1)
        let forwarded = try #require(d.last).text
        #expect(forwarded.contains("m=audio 40002 UDP/TLS/RTP/SAVPF 111\r\n"))
        #expect(forwarded.contains("m=video 40002 UDP/TLS/RTP/SAVPF 96\r\n"))
        #expect(forwarded.contains("a=group:BUNDLE a v\r\n"))
    }
}

/// `inside-networks`: an address of those networks anywhere in an SDP refuses the message, even one the SDP's
/// own c=/o= never named.
@Suite struct SIPGatewayInsideNetworksTests {
    @Test func anInsideAddressInAnUnreadLineRefusesTheAnswer() throws {
        var d = SIPGatewayDriver()
        d.machine.insideNetworks = [CIDR("10.0.0.0/24")!]
        d.fromPhone(SIPSamples.invite())
        let forwarded = try #require(d.last).text
        let before = d.sent.count
        let body = SIPSamples.sdp("10.0.0.6", 10000) + "a=x-media-server:10.0.0.9\r\n"
        d.fromPBX(SIPSamples.response(200, "OK", to: forwarded, sdpFrom: ("10.0.0.6", 10000))
            .replacingOccurrences(of: SIPSamples.sdp("10.0.0.6", 10000), with: body)
            .replacingOccurrences(of: "Content-Length: \(SIPSamples.sdp("10.0.0.6", 10000).utf8.count)",
                                  with: "Content-Length: \(body.utf8.count)"))
        let toPhone = d.sent[before...].filter { $0.to == SIPGatewayDriver.phone }
        #expect(toPhone.count == 1)
        #expect(toPhone.first?.text.hasPrefix("SIP/2.0 500 ") == true, "\(toPhone.first?.text ?? "")")
        #expect(!(toPhone.first?.text.contains("10.0.0.9") ?? true))
    }

    @Test func withoutInsideNetworksOnlyAnnouncedAddressesCount() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        let forwarded = try #require(d.last).text
        let body = SIPSamples.sdp("10.0.0.6", 10000) + "a=x-media-server:10.0.0.9\r\n"
        d.fromPBX(SIPSamples.response(200, "OK", to: forwarded, sdpFrom: ("10.0.0.6", 10000))
            .replacingOccurrences(of: SIPSamples.sdp("10.0.0.6", 10000), with: body)
            .replacingOccurrences(of: "Content-Length: \(SIPSamples.sdp("10.0.0.6", 10000).utf8.count)",
                                  with: "Content-Length: \(body.utf8.count)"))
        #expect(d.last?.text.hasPrefix("SIP/2.0 200 OK") == true)
    }
}
