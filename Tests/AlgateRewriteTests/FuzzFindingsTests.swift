import AlgateRewrite
import NIOCore
import Testing

/// What the fuzz harnesses (Fuzz/, `make fuzz`) found in the FTP and SIP engines and the SDP rewriter, each with
/// its minimized input, kept as regression tests now that each is fixed.
@Suite struct FuzzFindingsTests {
    /// sdp-trailing-cr: the parser takes a bare CR at the very end of a body for the line end; a line SDPRewrite
    /// adds after it gets only the missing LF before it, so the CR does not join the m= line (it did: its transport
    /// `0` became `0\r`).
    @Test func aLineAddedAfterALastLineEndingInABareCRLeavesThatLineAsItWas() throws {
        let result = try sdpRewrite("v=0\r\nm=a 4 0\r", SDPRewrite(media: [
            .init(address: IPAddress("2001:db8:1::5")!, port: 40000, rtcpPort: 40007),
        ]))
        let after = try sdpParse(result)
        #expect(after.media.first?.port == 40000)
        #expect(after.connectionAddress(of: after.media[0]) == IPAddress("2001:db8:1::5"))
        #expect(after.media.first?.transport == "0")
    }

    /// sip-answer-not-sip: a request that does not parse is answered only when the answer is itself a message with
    /// Via, From, To, Call-ID and CSeq (it was answered whenever it had a Via, its lines copied with a bare CR in
    /// them: a response no peer could match to a request).
    @Test func everyAnswerToAnUnparsableRequestIsItselfAMessage() throws {
        // The harness's minimized inputs: from the PBX over TCP, and from a phone over UDP.
        let inputs: [(bytes: [UInt8], flow: SIPFlow, side: SIPSide)] = [
            (Array("\nV: S".utf8), SIPFlow(transport: .tcp, remote: SIPGatewayDriver.context.upstream, connection: 2),
             .inside),
            ([0x0a, 0x56, 0x3a, 0x0d, 0xd2], SIPGatewayDriver.phone, .outside),
        ]
        for input in inputs {
            var d = SIPGatewayDriver()
            d.machine.receive(ByteBuffer(bytes: input.bytes), from: input.flow, side: input.side, now: 0)
            var sent: [ByteBuffer] = []
            while let action = d.machine.nextAction() {
                if case .send(let bytes, _) = action { sent.append(bytes) }
            }
            #expect(sent.count <= 1)
            for bytes in sent {
                #expect(throws: Never.self) { try SIPMessage.parse(bytes) }
            }
        }
    }
    /// sip-tcp-without-content-length: a request from the PBX over UDP without Content-Length (allowed there) to a
    /// phone registered over TCP leaves over TCP with one, where it is mandatory (RFC 3261 18.3: the phone could not
    /// frame it otherwise). The input is the harness's, written by hand from what it checks (a REGISTER and its 200
    /// over TCP, then the OPTIONS).
    @Test func aMessageLeavingOverTCPCarriesAContentLength() throws {
        var d = SIPGatewayDriver()
        let phone = SIPFlow(transport: .tcp, remote: Endpoint("198.51.100.10:5060")!, connection: 1)
        let pbx = SIPFlow(transport: .tcp, remote: SIPGatewayDriver.context.upstream, connection: 1)
        d.fromPhone("""
            REGISTER sip:203.0.113.7 SIP/2.0\r\nVia: SIP/2.0/TCP 198.51.100.10:5060;branch=z9hG4bK-r1\r\n\
            Max-Forwards: 70\r\nFrom: <sip:a@203.0.113.7>;tag=1\r\nTo: <sip:a@203.0.113.7>\r\nCall-ID: r1\r\n\
            CSeq: 1 REGISTER\r\nContact: <sip:a@198.51.100.10:5060;transport=tcp>\r\nExpires: 3600\r\n\
            Content-Length: 0\r\n\r\n
            """, flow: phone)
        let register = try SIPMessage.parse(ByteBuffer(string: try #require(d.last).text))
        let contact = register.text(try #require(register.contacts.first).uriRange)
        let vias = register.fields(.via).map { register.text($0.lineRange) }.joined()
        d.fromPBX("SIP/2.0 200 OK\r\n" + vias + """
            From: <sip:a@203.0.113.7>;tag=1\r\nTo: <sip:a@203.0.113.7>;tag=2\r\nCall-ID: r1\r\n\
            CSeq: 1 REGISTER\r\nContact: <\(contact)>\r\nContent-Length: 0\r\n\r\n
            """, flow: pbx)
        d.fromPBX("""
            OPTIONS \(contact) SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bK-o1\r\n\
            Max-Forwards: 70\r\nFrom: <sip:pbx@10.0.0.6>;tag=9\r\nTo: <sip:a@203.0.113.7>\r\nCall-ID: o1\r\n\
            CSeq: 1 OPTIONS\r\n\r\n
            """)
        let options = try #require(d.last)
        #expect(options.to == phone)
        let sent = try SIPMessage.parse(ByteBuffer(string: options.text))
        #expect(sent.contentLength == 0)
    }

    /// The FTP harness's addresses: the server and the gateway's inside address are the ones that must not leak.
    static let ftpContext = FTPSessionContext(
        client: Endpoint("198.51.100.7:50000")!, server: Endpoint("10.99.88.77:21")!,
        publicAddress: IPAddress("203.0.113.5")!, insideAddress: IPAddress("10.99.88.1")!)

    /// A passive reply of another kind than the pending command asked for (a 228 to EPSV) opens nothing and reaches
    /// the client masked (it was forwarded untouched, the server's address in it).
    @Test func aPassiveReplyOfTheWrongKindDoesNotReachTheClientWithTheServersAddress() {
        var d = FTPSessionDriver(context: Self.ftpContext)
        d.server("\n")  // the harness's minimized transcript
        d.client("EPSV\n")
        d.server("228 4,4,10,99,88,77,2,1,8")
        #expect(d.opened.isEmpty)
        #expect(!d.toClient.contains { $0.contains("10,99,88,77") })
    }

    /// ftp-reply-text: an inside address the server writes out in the text of a passive reply is masked like any
    /// other (it reached the client as the server wrote it).
    @Test func aPassiveReplyDoesNotTellTheClientAnInsideAddressInItsText() {
        var d = FTPSessionDriver(context: Self.ftpContext)
        d.server("\n")  // the harness's minimized transcript
        d.client("LPSV\n")
        d.server("228-10.99.88.1")
        #expect(!d.toClient.contains { $0.contains("10.99.88.1") })
    }

    /// An inside IPv4 address run into letters in a reply's text (`10.99.88.77D`): a reader still reads the address,
    /// so it is masked; it went through, read as one token with the letters (hex digits), which is no address.
    @Test(arguments: ["228 10.99.88.77D", "227-a10.99.88.1 ok", "227-x 10.99.88.77Doubl 10.99.88.1D"])
    func anInsideAddressRunIntoLettersIsMasked(line: String) {
        var d = FTPSessionDriver(context: Self.ftpContext)
        d.server(line + "\n")  // the first, as the harness's minimized transcript
        #expect(d.toClient.count == 1)
        #expect(!d.toClient.contains { $0.contains("10.99.88.77") || $0.contains("10.99.88.1") })
    }
}
