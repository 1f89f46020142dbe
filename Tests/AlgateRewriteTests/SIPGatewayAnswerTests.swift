import AlgateRewrite
import NIOCore
import Testing

/// The answers the gateway builds itself (400, 404, 483, 503, 505, 513) for requests whose header fields are
/// folded over several lines (RFC 3261 7.3.1): every answer re-parses and matches its request's transaction.
@Suite struct SIPGatewayAnswerTests {
    /// An OPTIONS with Via, From, To, Call-ID and CSeq each folded, and two Via values in one folded field.
    static func folded(maxForwards: String = "70", method: String = "OPTIONS", uri: String = "sip:bob@203.0.113.7",
                       extra: String = "", body: String = "") -> String {
        "\(method) \(uri) SIP/2.0\r\n"
            + "Via: SIP/2.0/UDP 192.168.1.20:5062\r\n ;branch=z9hG4bK-fold1;rport,\r\n"
            + "\tSIP/2.0/UDP 192.168.1.9:5060;branch=z9hG4bK-fold0\r\n"
            + "Max-Forwards: \(maxForwards)\r\n"
            + "From: \"Alice\"\r\n <sip:alice@example.com>\r\n ;tag=a1\r\n"
            + "To:\r\n <sip:bob@example.com>\r\n"
            + "Call-ID:\r\n fold-call-1\r\n"
            + "CSeq: 7\r\n \(method)\r\n"
            + extra
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    /// Checks that `text` is a response of `code` to `folded()`'s transaction.
    static func expectMatches(_ text: String, code: Int, method: String = "OPTIONS",
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let response = try SIPMessage.parse(ByteBuffer(string: text))
        #expect(response.statusCode == code, sourceLocation: sourceLocation)
        #expect(response.vias.count == 2, "\(text)", sourceLocation: sourceLocation)
        #expect(response.vias.first?.branch == "z9hG4bK-fold1", "\(text)", sourceLocation: sourceLocation)
        #expect(response.vias.first.map { response.text($0.hostRange) } == "192.168.1.20", sourceLocation: sourceLocation)
        #expect(response.vias.last?.branch == "z9hG4bK-fold0", sourceLocation: sourceLocation)
        #expect(response.cseq?.number == 7 && response.cseq?.method == method, "\(text)", sourceLocation: sourceLocation)
        #expect(response.callID == "fold-call-1", sourceLocation: sourceLocation)
        #expect(response.from.tag == "a1", "\(text)", sourceLocation: sourceLocation)
        #expect(response.text(response.to.uriRange) == "sip:bob@example.com", "\(text)", sourceLocation: sourceLocation)
        #expect(response.to.tag != nil, sourceLocation: sourceLocation)
        #expect(response.to.parameters.filter { $0.name == "tag" }.count == 1, "\(text)", sourceLocation: sourceLocation)
        #expect(response.contentLength == 0, sourceLocation: sourceLocation)
    }

    @Test func a483ToAFoldedRequestCarriesEveryViaAndTheWholeCSeq() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(Self.folded(maxForwards: "0"))
        let answer = try #require(d.last)
        #expect(answer.to == SIPGatewayDriver.phone)
        try Self.expectMatches(answer.text, code: 483)
    }

    @Test func a503ForAFoldedInviteWhoseRelayFailed() throws {
        var d = SIPGatewayDriver()
        d.failMedia = true
        let sdp = SIPSamples.sdp("192.168.1.20", 18000)
        d.fromPhone(Self.folded(method: "INVITE", extra: "Contact: <sip:alice@192.168.1.20:5062>\r\nContent-Type: application/sdp\r\n",
                                body: sdp))
        let answer = try #require(d.last)
        try Self.expectMatches(answer.text, code: 503, method: "INVITE")
    }

    @Test func a404FromUpstreamForNoKnownContactIsWhole() throws {
        var d = SIPGatewayDriver()
        d.fromPBX(Self.folded(uri: "sip:nobody@10.0.0.1"))
        let answer = try #require(d.last)
        #expect(answer.to == SIPGatewayDriver.pbx)
        try Self.expectMatches(answer.text, code: 404)
    }

    @Test func a400ToAFoldedRequestThatDoesNotParseKeepsItsFolds() throws {
        var d = SIPGatewayDriver()
        // The Content-Length is not a number: the request does not parse, and is answered from its raw lines.
        let bad = Self.folded().replacingOccurrences(of: "Content-Length: 0", with: "Content-Length: zero")
        d.fromPhone(bad)
        let answer = try #require(d.last)
        #expect(answer.text.hasPrefix("SIP/2.0 400 Bad Request (malformed Content-Length)\r\n"))
        try Self.expectMatches(answer.text, code: 400)
    }

    @Test func aRequestOverTheSizeLimitIsAnswered513() throws {
        var limits = SIPLimits()
        limits.maxMessageBytes = 2_000
        var d = SIPGatewayDriver(limits: limits)
        let padding = String(repeating: "x", count: 2_100)
        d.fromPhone(Self.folded(extra: "Subject: \(padding)\r\n"))
        let answer = try #require(d.last)
        try Self.expectMatches(answer.text, code: 513)
        #expect(d.events.contains { if case .refused(_, _, 513?) = $0 { true } else { false } })
    }

    @Test func anotherSIPVersionIsAnswered505() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(Self.folded().replacingOccurrences(of: "OPTIONS sip:bob@203.0.113.7 SIP/2.0",
                                                       with: "OPTIONS sip:bob@203.0.113.7 SIP/3.0"))
        let answer = try #require(d.last)
        try Self.expectMatches(answer.text, code: 505)
    }
}
