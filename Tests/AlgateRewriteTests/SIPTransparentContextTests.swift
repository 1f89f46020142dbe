import AlgateRewrite
import Testing

/// The engine as a transparent listener runs it, one per original destination: the phone (10.77.0.2) sent to its
/// registrar 203.0.113.2:5060 and is told that address in signalling (what it sends there is intercepted again),
/// but media relays are on the gateway's own addresses: 10.77.0.1 towards the phone, 203.0.113.1 towards the
/// registrar, which is also what the registrar is told.
@Suite struct SIPTransparentContextTests {
    static let context = SIPGatewayContext(
        publicAddress: IPAddress("203.0.113.2")!, publicPort: 5060,
        insideAddress: IPAddress("203.0.113.1")!, insidePort: 5060,
        upstream: Endpoint("203.0.113.2:5060")!, publicMediaAddress: IPAddress("10.77.0.1")!)
    static let phone = SIPFlow(transport: .udp, remote: Endpoint("10.77.0.2:5060")!)
    static let registrar = SIPFlow(transport: .udp, remote: Endpoint("203.0.113.2:5060")!)

    @Test func signallingNamesTheOriginalDestinationAndMediaTheGateway() throws {
        var d = SIPGatewayDriver(context: Self.context)
        d.fromPhone(SIPSamples.invite(uri: "sip:uas@203.0.113.2:5070"), flow: Self.phone)
        let forwarded = try #require(d.last)
        #expect(forwarded.to == Self.registrar)
        #expect(forwarded.text.contains("c=IN IP4 203.0.113.1\r\n"))
        #expect(forwarded.text.contains("Record-Route: <sip:203.0.113.1:5060;lr>\r\nRecord-Route: <sip:203.0.113.2:5060;lr>\r\n"))
        #expect(forwarded.text.contains("Contact: <sip:alice@203.0.113.1:5060;algate="))

        d.fromPBX(SIPSamples.response(200, "OK", to: forwarded.text, contact: "<sip:uas@203.0.113.2:5070>",
                                      sdpFrom: ("203.0.113.2", 34000)), flow: Self.registrar)
        let answer = try #require(d.last)
        #expect(answer.to == Self.phone)
        #expect(answer.text.contains("c=IN IP4 10.77.0.1\r\n"))
        #expect(!answer.text.contains("c=IN IP4 203.0.113.2"))
        #expect(answer.text.contains("o=user1 53655765 2353687637 IN IP4 10.77.0.1\r\n"))
        #expect(answer.text.contains("Contact: <sip:uas@203.0.113.2:5060;algate="))
        let opened = try #require(d.opened.first)
        #expect(opened.outsideAllowed == IPAddress("10.77.0.2"))
    }

    /// The phone's in-dialog request follows the route set: the gateway's two entries lead it and go; the
    /// registrar's own Record-Route entry names the same address and port as the gateway's public entry (the
    /// destination the gateway impersonates), and stays.
    @Test func onlyTheLeadingRoutesAreTheGatewaysOwn() throws {
        var d = SIPGatewayDriver(context: Self.context)
        d.fromPhone(SIPSamples.invite(uri: "sip:uas@203.0.113.2:5070"), flow: Self.phone)
        let forwarded = try #require(d.last).text
        d.fromPBX(SIPSamples.response(200, "OK", to: forwarded, contact: "<sip:uas@203.0.113.2:5070>"),
                  flow: Self.registrar)
        let answer = try #require(d.last).text
        let contact = try #require(answer.components(separatedBy: "\r\n").first { $0.hasPrefix("Contact: ") })
        let uri = String(contact.dropFirst("Contact: <".count).dropLast())
        let bye = "BYE \(uri) SIP/2.0\r\nVia: SIP/2.0/UDP 10.77.0.2:5060;branch=z9hG4bK-b\r\n"
            + "Route: <sip:203.0.113.2:5060;lr>, <sip:203.0.113.1:5060;lr>\r\nRoute: <sip:203.0.113.2;lr>\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
            + "Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(bye, flow: Self.phone)
        let sent = try #require(d.last)
        #expect(sent.to == Self.registrar)
        #expect(sent.text.hasPrefix("BYE sip:uas@203.0.113.2:5070 SIP/2.0\r\n"))
        #expect(sent.text.contains("Route: <sip:203.0.113.2;lr>\r\n"))
        #expect(!sent.text.contains("Route: <sip:203.0.113.2:5060;lr>"))
        #expect(!sent.text.contains("<sip:203.0.113.1:5060;lr>"))
    }
}
