import AlgateRewrite
import NIOCore
import Testing

/// Fields that routing, registration and media depend on must be what they say, or the request is refused with a
/// 400 naming the field, nothing is forwarded and no relay opens; line ends leave as CRLF; the CANCEL and ACK of an
/// INVITE the gateway refused end at the gateway.
@Suite struct SIPGatewayStrictnessTests {
    static func invite(_ change: (String) -> String) -> String {
        change(SIPSamples.invite())
    }

    @Test("a request with a malformed field is answered 400 naming it, and nothing crosses", arguments: [
        ("Expires", "CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\r\nExpires: soon\r\n", "malformed Expires"),
        ("Contact expires", "<sip:alice@192.168.1.20:5062>", "<sip:alice@192.168.1.20:5062>;expires=later",
         "malformed Contact expires"),
        ("From tag", "From: <sip:alice@example.com>;tag=a1", "From: <sip:alice@example.com>", "From has no tag"),
        ("CSeq number", "CSeq: 1 INVITE", "CSeq: one INVITE", "malformed CSeq"),
        ("Max-Forwards", "Max-Forwards: 70", "Max-Forwards: seventy", "malformed Max-Forwards"),
        ("Content-Length", "Content-Length: ", "Content-Length: x", "malformed Content-Length"),
    ])
    func malformedFieldIsRefused(_ name: String, _ from: String, _ to: String, _ explanation: String) throws {
        var d = SIPGatewayDriver()
        d.fromPhone(Self.invite { $0.replacingOccurrences(of: from, with: to) })
        #expect(d.sent.count == 1, "\(name): \(d.sent.map(\.text))")
        let answer = try #require(d.last)
        #expect(answer.to == SIPGatewayDriver.phone, "\(name)")
        #expect(answer.text.hasPrefix("SIP/2.0 400 Bad Request (\(explanation))\r\n"), "\(name): \(answer.text)")
        #expect(d.opened.isEmpty, "\(name): a relay opened")
        let parsed = try SIPMessage.parse(ByteBuffer(string: answer.text))
        #expect(parsed.statusCode == 400)
        // A CSeq that is not `number method` is answered with the request line's method, which the client
        // matches its transaction by (with the branch).
        #expect(parsed.cseq?.method == "INVITE")
    }

    @Test func bareLineFeedsLeaveAsCRLF() throws {
        var d = SIPGatewayDriver()
        // Bare LFs in the header section only; the body (and so Content-Length) stays as it is.
        let parts = SIPSamples.invite().components(separatedBy: "\r\n\r\n")
        let lf = parts[0].replacingOccurrences(of: "\r\n", with: "\n") + "\n\n" + parts[1...].joined(separator: "\r\n\r\n")
        d.fromPhone(lf)
        let forwarded = try #require(d.last)
        #expect(forwarded.to == SIPGatewayDriver.pbx, "\(forwarded.text)")
        let message = try SIPMessage.parse(ByteBuffer(string: forwarded.text))
        let head = String(forwarded.text.utf8.prefix(message.body.lowerBound))!
        #expect(head.hasSuffix("\r\n\r\n"))
        #expect(!head.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "\(head)")
        #expect(message.contentLength == message.body.count)
    }

    @Test func theCancelAndAckOfARefusedInviteEndAtTheGateway() throws {
        var d = SIPGatewayDriver()
        d.failMedia = true
        d.fromPhone(SIPSamples.invite(callID: "refused-1"))
        #expect(d.last?.text.hasPrefix("SIP/2.0 503 ") == true)
        let before = d.sent.count
        let cancel = "CANCEL sip:bob@203.0.113.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-1;rport\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
            + "Call-ID: refused-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(cancel)
        #expect(d.sent.count == before + 1)
        let answer = try #require(d.last)
        #expect(answer.to == SIPGatewayDriver.phone, "the CANCEL went upstream: \(answer.text)")
        #expect(answer.text.hasPrefix("SIP/2.0 200 OK\r\n"))
        #expect(try SIPMessage.parse(ByteBuffer(string: answer.text)).cseq?.method == "CANCEL")
        let ack = cancel.replacingOccurrences(of: "CANCEL sip", with: "ACK sip")
            .replacingOccurrences(of: "1 CANCEL", with: "1 ACK")
        d.fromPhone(ack)
        #expect(d.sent.count == before + 1, "the ACK of the 503 went on: \(d.sent.last?.text ?? "")")
        // Another call's CANCEL still goes upstream.
        d.fromPhone(cancel.replacingOccurrences(of: "refused-1", with: "other-call"))
        #expect(d.last?.to == SIPGatewayDriver.pbx)
    }
}
