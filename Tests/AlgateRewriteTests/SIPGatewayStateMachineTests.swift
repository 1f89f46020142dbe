import AlgateRewrite
import NIOCore
import Testing

@Suite struct SIPGatewayStateMachineTests {
    @Test func anInviteFromOutsideGoesUpstreamWithItsMediaRelayedAndNothingPrivateLeft() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        let sent = try #require(d.last)
        #expect(sent.to == SIPGatewayDriver.pbx)
        #expect(d.opened.count == 1)
        let request = d.opened[0]
        #expect(request.outsidePeer == Endpoint("192.168.1.20:18000"))
        #expect(request.outsideAllowed == IPAddress("198.51.100.20"))  // the signalling peer, not its SDP address
        let lines = sent.text.components(separatedBy: "\r\n")
        // Our Via on top, the phone's Via annotated (RFC 3581), Max-Forwards decremented.
        #expect(lines[1].hasPrefix("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-ag"))
        #expect(lines[2] == "Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-1;rport=31000;received=198.51.100.20")
        #expect(lines.contains("Max-Forwards: 69"))
        // Contact and SDP point inside at the gateway; the phone's private address is gone.
        #expect(lines.contains { $0.hasPrefix("Contact: <sip:alice@10.0.0.1:5060;algate=") })
        #expect(lines.contains("c=IN IP4 10.0.0.1"))
        #expect(lines.contains("m=audio 40002 RTP/AVP 8"))
        #expect(!sent.text.contains("192.168.1.20:18000"))
        #expect(!sent.text.contains("c=IN IP4 192.168.1.20"))
        // Content-Length follows the new body.
        let parsed = try SIPMessage.parse(ByteBuffer(string: sent.text))
        #expect(parsed.contentLength == parsed.body.count)
    }

    @Test func theAnswerGoesBackToWhereTheRequestCameFromWithPublicMedia() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        let forwarded = try #require(d.last).text
        d.fromPBX(SIPSamples.response(200, "OK", to: forwarded, sdpFrom: ("10.0.0.6", 10000)))
        let answer = try #require(d.last)
        // Via received/rport: the phone's real source, not what it wrote.
        #expect(answer.to == SIPGatewayDriver.phone)
        let lines = answer.text.components(separatedBy: "\r\n")
        #expect(!lines.contains { $0.contains("z9hG4bK-ag") })   // our Via is gone
        #expect(lines.contains("c=IN IP4 203.0.113.7"))
        #expect(lines.contains("m=audio 40000 RTP/AVP 8"))
        #expect(lines.contains { $0.hasPrefix("Contact: <sip:bob@203.0.113.7:5060;algate=") })
        #expect(!answer.text.contains("10.0.0.6"))
        #expect(d.updated.count == 1)   // the relay learned the PBX's media endpoint
    }

    @Test func aRegistrationMakesThePhoneReachableForInboundCalls() throws {
        var d = SIPGatewayDriver()
        let register = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-r1\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=r\r\nTo: <sip:alice@example.com>\r\n"
            + "Call-ID: reg-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.168.1.20:5062>\r\nExpires: 600\r\n"
            + "Content-Length: 0\r\n\r\n"
        d.fromPhone(register)
        let upstream = try #require(d.last).text
        let contactLine = try #require(upstream.components(separatedBy: "\r\n").first { $0.hasPrefix("Contact:") })
        #expect(contactLine.hasPrefix("Contact: <sip:alice@10.0.0.1:5060;algate="))
        let mapped = String(contactLine.dropFirst("Contact: <".count).dropLast())
        // The registrar answers with the binding as it knows it; the phone gets its own contact back.
        d.fromPBX(SIPSamples.response(200, "OK", to: upstream, cseq: "1 REGISTER",
                                      contact: "<\(mapped)>;expires=600", callID: "reg-1"))
        #expect(d.last?.text.contains("Contact: <sip:alice@192.168.1.20:5062>;expires=600") == true)
        #expect(d.machine.registrationCount == 1)
        #expect(d.machine.registeredFlows == [SIPGatewayDriver.phone])

        // An inbound INVITE to that contact reaches the phone at its real address, Request-URI restored.
        d.fromPBX(SIPSamples.invite(callID: "in-1", via: "SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bK-pbx1",
                                    contact: "<sip:pbx@10.0.0.6:5060>", uri: mapped))
        let inbound = try #require(d.last)
        #expect(inbound.to == SIPGatewayDriver.phone)
        #expect(inbound.text.hasPrefix("INVITE sip:alice@192.168.1.20:5062 SIP/2.0\r\n"))
        #expect(inbound.text.contains("Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK-ag"))
        #expect(inbound.text.contains("c=IN IP4 203.0.113.7"))
        #expect(d.opened.last?.outsideAllowed == IPAddress("198.51.100.20"))

        // The registration is refreshed with the same mapped contact (the registrar must not see a new one).
        d.fromPhone(register.replacingOccurrences(of: "z9hG4bK-r1", with: "z9hG4bK-r2"))
        let refreshed = try #require(d.last).text
        #expect(refreshed.contains(contactLine))

        // Expiry removes it.
        d.machine.expire(now: 10_000)
        #expect(d.machine.registrationCount == 0)
    }

    @Test func aRequestFromUpstreamForNoKnownContactIsAnswered404() throws {
        var d = SIPGatewayDriver()
        d.fromPBX(SIPSamples.invite(via: "SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bK-x", uri: "sip:carol@10.0.0.1:5060"))
        let answer = try #require(d.last)
        #expect(answer.to == SIPGatewayDriver.pbx)
        #expect(answer.text.hasPrefix("SIP/2.0 404 Not Found\r\n"))
        #expect(d.opened.isEmpty)
    }

    @Test func byeClosesTheDialogMedia() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        d.fromPBX(SIPSamples.response(200, "OK", to: try #require(d.last).text, sdpFrom: ("10.0.0.6", 10000)))
        let bye = "BYE sip:bob@10.0.0.6:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-b\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
            + "Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(bye)
        #expect(d.closed == [d.opened[0].id])
        #expect(d.machine.dialogCount == 0)
    }

    @Test func aFinalErrorClosesTheMediaOfAnUnansweredInvite() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        d.fromPBX(SIPSamples.response(486, "Busy Here", to: try #require(d.last).text, contact: nil))
        #expect(d.last?.text.hasPrefix("SIP/2.0 486 Busy Here") == true)
        #expect(d.closed == [d.opened[0].id])
    }

    @Test func noMediaRelayMeans503AndNothingForwarded() throws {
        var d = SIPGatewayDriver()
        d.failMedia = true
        d.fromPhone(SIPSamples.invite())
        let answer = try #require(d.last)
        #expect(answer.to == SIPGatewayDriver.phone)
        #expect(answer.text.hasPrefix("SIP/2.0 503 Service Unavailable"))
        #expect(d.sent.count == 1)
    }

    @Test func maxForwardsZeroIsAnswered483() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite(maxForwards: 0))
        #expect(d.last?.text.hasPrefix("SIP/2.0 483 Too Many Hops") == true)
        #expect(d.opened.isEmpty)
    }

    @Test func aMalformedRequestIsAnswered400AndOpensNothing() throws {
        var d = SIPGatewayDriver()
        d.fromPhone("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-m\r\n"
            + "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: m\r\nCSeq: 1 BYE\r\n"
            + "Content-Length: 0\r\n\r\n")
        #expect(d.last?.text.hasPrefix("SIP/2.0 400 Bad Request") == true)
        #expect(d.last?.to == SIPGatewayDriver.phone)
        #expect(d.opened.isEmpty)
        // Garbage without a Via cannot be answered: dropped, and logged.
        d.fromPhone("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(d.sent.count == 1)
        #expect(d.events.contains { if case .refused = $0 { true } else { false } })
    }

    @Test func aResponseNotCarryingOurViaIsDropped() throws {
        var d = SIPGatewayDriver()
        d.fromPBX(SIPSamples.response(200, "OK", to: "Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-1\r\n"))
        #expect(d.sent.isEmpty)
    }

    @Test func tcpRequestsUseThePairedUpstreamConnection() throws {
        var d = SIPGatewayDriver()
        let phone = SIPFlow(transport: .tcp, remote: Endpoint("198.51.100.20:40123")!, connection: 7)
        d.fromPhone(SIPSamples.invite(via: "SIP/2.0/TCP 192.168.1.20:5062;branch=z9hG4bK-t"), flow: phone)
        let sent = try #require(d.last)
        #expect(sent.to == SIPFlow(transport: .tcp, remote: Endpoint("10.0.0.6:5060")!, connection: 7))
        #expect(sent.text.contains("Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-ag"))
        #expect(sent.text.contains(";transport=tcp;algate="))
        d.fromPBX(SIPSamples.response(180, "Ringing", to: sent.text, contact: nil), flow: sent.to)
        #expect(d.last?.to == SIPFlow(transport: .tcp, remote: Endpoint("198.51.100.20:40123")!, connection: 7))
    }
}

@Suite struct SIPRecordRouteTests {
    @Test func aDialogCreatingRequestIsDoubleRecordRoutedAndOurRoutesAreStripped() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        let forwarded = try #require(d.last).text
        #expect(forwarded.contains("Record-Route: <sip:10.0.0.1:5060;lr>\r\nRecord-Route: <sip:203.0.113.7:5060;lr>\r\n"))
        // An in-dialog BYE from the phone follows the route set: our entries are consumed, the rest stays.
        let bye = "BYE sip:bob@203.0.113.7:5060;algate=x SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-b\r\n"
            + "Route: <sip:203.0.113.7:5060;lr>, <sip:10.0.0.1:5060;lr>\r\nRoute: <sip:10.0.0.9;lr>\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
            + "Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(bye)
        let sent = try #require(d.last).text
        #expect(!sent.contains("Route: <sip:203.0.113.7"))
        #expect(sent.contains("Route: <sip:10.0.0.9;lr>\r\n"))
        #expect(!sent.contains("Record-Route"))
    }
}

@Suite struct SIPAdmissionTests {
    @Test func refusedRequestsAreAnsweredAndDroppedOnesGetSilence() throws {
        var d = SIPGatewayDriver()
        d.machine.admission = { message, _, _ in
            let agent = message.field(.userAgent).map { message.text($0.valueRange) } ?? ""
            if agent.contains("friendly-scanner") { return .drop }
            if message.method == "OPTIONS" { return .refuse(code: 403, reason: "Forbidden") }
            return .admit
        }
        let scanner = "OPTIONS sip:100@203.0.113.7 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-s\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:100@1.1.1.1>;tag=s\r\nTo: <sip:100@1.1.1.1>\r\nCall-ID: scan\r\n"
            + "CSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(scanner)
        #expect(d.sent.isEmpty)
        d.fromPhone(scanner.replacingOccurrences(of: "friendly-scanner", with: "Linphone"))
        #expect(d.last?.text.hasPrefix("SIP/2.0 403 Forbidden") == true)
        #expect(d.last?.to == SIPGatewayDriver.phone)
        d.fromPhone(SIPSamples.invite())
        #expect(d.last?.to == SIPGatewayDriver.pbx)
        #expect(d.opened.count == 1)
    }
}

@Suite struct SIPViaTrustTests {
    /// A sender cannot steer responses with its own received= (they would go to a third host).
    @Test func aForgedReceivedIsReplacedByTheRealSource() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite(via: "SIP/2.0/UDP 198.51.100.20:31000;received=192.0.2.99;branch=z9hG4bK-f"))
        let forwarded = try #require(d.last).text
        #expect(forwarded.contains("Via: SIP/2.0/UDP 198.51.100.20:31000;received=198.51.100.20;branch=z9hG4bK-f"))
        d.fromPBX(SIPSamples.response(180, "Ringing", to: forwarded, contact: nil))
        #expect(d.last?.to.remote.address == IPAddress("198.51.100.20"))
    }

    /// A registrar that opens its own TCP connection to reach a phone gets the phone's answer on that connection.
    @Test func answersToRequestsOnAnUpstreamOpenedConnectionGoBackOnIt() throws {
        var d = SIPGatewayDriver()
        let phone = SIPFlow(transport: .tcp, remote: Endpoint("198.51.100.20:40123")!, connection: 3)
        let register = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.1.20:5062;branch=z9hG4bK-r1\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=r\r\nTo: <sip:alice@example.com>\r\n"
            + "Call-ID: reg-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.168.1.20:5062;transport=tcp>\r\n"
            + "Expires: 600\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(register, flow: phone)
        let mapped = try #require(d.last?.text.components(separatedBy: "\r\n").first { $0.hasPrefix("Contact:") })
            .dropFirst("Contact: <".count).dropLast()
        // The registrar connects anew, from an ephemeral port, and sends the INVITE there.
        let registrarConnection = SIPFlow(transport: .tcp, remote: Endpoint("10.0.0.6:45000")!, connection: 9)
        d.fromPBX(SIPSamples.invite(callID: "in-1", via: "SIP/2.0/TCP 10.0.0.6:5060;branch=z9hG4bK-k1",
                                    contact: "<sip:caller@10.0.0.6:5060;transport=tcp>", uri: String(mapped)),
                  flow: registrarConnection)
        let inbound = try #require(d.last)
        #expect(inbound.to == phone)
        d.fromPhone(SIPSamples.response(200, "OK", to: inbound.text, sdpFrom: ("192.168.1.20", 18000), callID: "in-1"),
                    flow: phone)
        #expect(d.last?.to == registrarConnection)
    }

    /// Relays of one dialog count together against the per-session limit.
    @Test func mediaRequestsNameTheirDialog() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite(callID: "a"))
        d.fromPhone(SIPSamples.invite(callID: "b"))
        #expect(d.opened.count == 2)
        #expect(d.opened[0].dialog != d.opened[1].dialog)
        #expect(d.opened[0].dialog != 0)
    }
}

@Suite struct SIPBareContactTests {
    /// `Contact: sip:a@host;expires=60` has no <>: the mapping parameter must go inside the URI, in brackets.
    @Test func aBareContactGetsBracketsSoTheMappingStaysInTheURI() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite(contact: "sip:alice@192.168.1.20:5062;expires=60"))
        let line = try #require(d.last?.text.components(separatedBy: "\r\n").first { $0.hasPrefix("Contact:") })
        #expect(line.hasPrefix("Contact: <sip:alice@10.0.0.1:5060;algate="))
        #expect(line.hasSuffix(">;expires=60"))
        let parsed = try SIPMessage.parse(ByteBuffer(string: try #require(d.last).text))
        #expect(parsed.contacts.first?.uri.parameter(named: "algate") != nil)
    }
}

@Suite struct SIPDialogMediaTests {
    @Test func aReInviteUpdatesTheSameRelayInsteadOfOpeningAnother() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        d.fromPBX(SIPSamples.response(200, "OK", to: try #require(d.last).text, sdpFrom: ("10.0.0.6", 10000)))
        let relay = d.opened[0].id
        let updatesBefore = d.updated.count
        // The phone moves its media (a re-INVITE in the dialog, new port).
        let reinvite = SIPSamples.invite(via: "SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-re;rport")
            .replacingOccurrences(of: "To: <sip:bob@example.com>", with: "To: <sip:bob@example.com>;tag=b1")
            .replacingOccurrences(of: "CSeq: 1 INVITE", with: "CSeq: 2 INVITE")
            .replacingOccurrences(of: "m=audio 18000", with: "m=audio 18002")
        d.fromPhone(reinvite)
        #expect(d.opened.count == 1)
        #expect(d.updated.count == updatesBefore + 1)
        #expect(d.updated.last == relay)
        // The PBX still sees the same relay port.
        #expect(d.last?.text.contains("m=audio 40002 RTP/AVP 8") == true)
    }

    @Test func cancelClosesTheMediaOfTheInvite() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite())
        let cancel = "CANCEL sip:bob@203.0.113.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-1;rport\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
            + "Call-ID: call-1\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(cancel)
        #expect(d.closed == [d.opened[0].id])
        // The CANCEL carries the INVITE's branch, so the PBX matches it to the INVITE transaction.
        let inviteBranch = try #require(d.sent[0].text.components(separatedBy: "\r\n").first { $0.contains("z9hG4bK-ag") })
        let cancelBranch = try #require(d.sent[1].text.components(separatedBy: "\r\n").first { $0.contains("z9hG4bK-ag") })
        #expect(inviteBranch == cancelBranch)
    }

    @Test func aDisabledStreamAndHoldAreLeftAlone() throws {
        var d = SIPGatewayDriver()
        let body = "v=0\r\no=u 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            + "m=audio 18000 RTP/AVP 8\r\na=sendonly\r\nm=video 0 RTP/AVP 96\r\n"
        let invite = SIPSamples.invite()
        let head = invite.components(separatedBy: "Content-Length:")[0]
        d.fromPhone(head + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
        let sent = try #require(d.last).text
        #expect(sent.contains("c=IN IP4 0.0.0.0"))      // hold stays hold
        #expect(sent.contains("a=sendonly"))
        #expect(sent.contains("m=video 0 RTP/AVP 96"))   // disabled stays disabled
        #expect(d.opened.count == 1)                      // one relay: the audio stream only
        #expect(d.opened[0].outsidePeer == nil)           // 0.0.0.0 names no peer
    }
}

@Suite struct SIPMappingLifetimeTests {
    /// Two calls from one phone share its contact mapping; the first call's end must not strand the second.
    @Test func aSharedContactMappingOutlivesTheFirstDialog() throws {
        var d = SIPGatewayDriver()
        d.fromPhone(SIPSamples.invite(callID: "c1"))
        let first = try #require(d.last).text
        d.fromPhone(SIPSamples.invite(callID: "c2", via: "SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-2;rport"))
        let mapped = try #require(first.components(separatedBy: "\r\n").first { $0.hasPrefix("Contact:") })
            .dropFirst("Contact: <".count).dropLast()
        let bye = "BYE sip:bob@203.0.113.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-b1\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
            + "Call-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        d.fromPhone(bye)
        // The PBX hangs up the second call: its BYE to the shared mapped contact still reaches the phone.
        let pbxBye = "BYE \(mapped) SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bK-pb\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b2\r\nTo: <sip:alice@example.com>;tag=a1\r\n"
            + "Call-ID: c2\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
        d.fromPBX(pbxBye)
        #expect(d.last?.to == SIPGatewayDriver.phone)
        #expect(d.last?.text.hasPrefix("BYE sip:alice@192.168.1.20:5062 SIP/2.0") == true)
        // Unused for longer than the lifetime, it goes.
        d.machine.expire(now: 4000)
        d.fromPBX(pbxBye.replacingOccurrences(of: "z9hG4bK-pb", with: "z9hG4bK-pc"))
        #expect(d.last?.text.hasPrefix("SIP/2.0 404") == true)
    }
}
