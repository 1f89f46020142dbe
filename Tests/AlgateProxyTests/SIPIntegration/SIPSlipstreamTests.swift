import Foundation
import NIOPosix
import Testing

extension SIPIntegration {
    /// NAT Slipstreaming (Samy Kamkar, 2020): a browser is made to send an HTTP POST to port 5060 whose body holds
    /// a SIP REGISTER, padded so that the REGISTER starts exactly at a TCP segment boundary; an ALG that parses
    /// every segment as if it began a message sees a REGISTER and opens what it asks for. The gateway must parse
    /// SIP only at message boundaries of a SIP flow: nothing of these goes upstream, no binding, no relay.
    ///
    /// Upstream is a ``SIPUpstreamSink`` that records everything and answers REGISTER with 200, so a forwarded
    /// REGISTER would both show up there and create a binding. Each test ends with a legitimate REGISTER over
    /// the same transport that does both: the negative result is not for want of a working path.
    @Suite("NAT Slipstreaming", .serialized, .timeLimit(.minutes(1)))
    struct Slipstreaming {
        static let attacker = "127.0.0.1"

        private func withSink(_ body: (SIPGatewayHarness, SIPUpstreamSink) async throws -> Void) async throws {
            try await SIPUpstreamSink.withGateway(poolSize: 20, body)
        }

        /// A REGISTER that would bind the attacker's chosen contact, and an INVITE whose SDP asks for media to
        /// an inside port (the Slipstreaming v2 goal): both with loopback addresses only.
        static func register(transport: String, port: UInt16) -> String {
            "REGISTER sip:127.0.0.2 SIP/2.0\r\n"
                + "Via: SIP/2.0/\(transport) 127.0.0.1:\(port);branch=z9hG4bKslip\(port)\r\n"
                + "From: <sip:victim@127.0.0.2>;tag=slip\r\n"
                + "To: <sip:victim@127.0.0.2>\r\n"
                + "Call-ID: slipstream-\(port)@127.0.0.1\r\n"
                + "CSeq: 1 REGISTER\r\n"
                + "Contact: <sip:victim@127.0.0.66:3306;transport=\(transport.lowercased())>\r\n"
                + "Expires: 3600\r\n"
                + "Max-Forwards: 70\r\n"
                + "Content-Length: 0\r\n\r\n"
        }

        static func invite(transport: String, port: UInt16) -> String {
            let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.66\r\ns=-\r\nc=IN IP4 127.0.0.66\r\nt=0 0\r\n"
                + "m=audio 3306 RTP/AVP 0\r\n"
            return "INVITE sip:victim@127.0.0.2 SIP/2.0\r\n"
                + "Via: SIP/2.0/\(transport) 127.0.0.1:\(port);branch=z9hG4bKslipinv\(port)\r\n"
                + "From: <sip:attacker@127.0.0.1>;tag=slipinv\r\n"
                + "To: <sip:victim@127.0.0.2>\r\n"
                + "Call-ID: slipstream-invite-\(port)@127.0.0.1\r\n"
                + "CSeq: 1 INVITE\r\n"
                + "Contact: <sip:attacker@127.0.0.66:3306>\r\n"
                + "Max-Forwards: 70\r\n"
                + "Content-Type: application/sdp\r\n"
                + "Content-Length: \(sdp.utf8.count)\r\n\r\n" + sdp
        }

        /// What must not have happened: nothing reached upstream, no binding, no relay, nothing forwarded.
        private func expectNothingGotThrough(_ gateway: SIPGatewayHarness, _ sink: SIPUpstreamSink) async {
            // Give the gateway time to do the wrong thing (there is no event to wait for when it does nothing).
            _ = await sipitWait(within: .seconds(1)) { sink.bytesReceived > 0 }
            #expect(sink.bytesReceived == 0, "upstream received: \(sink.messages.map(\.startLine))")
            #expect(gateway.log.count("registration binding") == 0, "\(gateway.log.tail())")
            #expect(gateway.log.count("media relay open") == 0, "\(gateway.log.tail())")
            #expect(gateway.log.count("sip") == 0, "forwarded: \(gateway.log.entries("sip"))")
        }

        /// The control: a REGISTER at a message boundary goes through and binds.
        private func expectLegitimateRegisterWorks(_ gateway: SIPGatewayHarness, _ sink: SIPUpstreamSink,
                                                   send: (String) throws -> Void, transport: String, port: UInt16)
            async throws {
            try send(Self.register(transport: transport, port: port))
            let bound = await gateway.log.wait(within: .seconds(5)) { $0.count("registration binding") == 1 }
            #expect(bound, "the legitimate REGISTER did not bind\n\(gateway.log.tail())")
            let registers = sink.messages.filter { $0.startLine.hasPrefix("REGISTER ") }
            #expect(registers.count == 1 && registers.first?.transport == transport,
                    "upstream saw \(sink.messages.map { "\($0.transport) \($0.startLine)" })")
            #expect(registers.first?.text.contains("branch=z9hG4bK-ag") == true, "no gateway Via")
        }

        @Test("An HTTP POST whose body holds a REGISTER at a segment boundary opens nothing (TCP)")
        func httpPostWithRegisterOverTCP() async throws {
            try await withSink { gateway, sink in
                let connection = try SIPITSocket.tcp(to: "127.0.0.1", gateway.port, from: Self.attacker)
                let hidden = Self.register(transport: "TCP", port: connection.localPort)
                    + Self.invite(transport: "TCP", port: connection.localPort)
                // As the browser sends it: headers and padding in the first segment(s), the SIP message at the
                // start of a segment of its own (TCP_NODELAY, one send per segment).
                let padding = String(repeating: "A", count: 1200)
                let form = "x=\(padding)&"
                let head = "POST /slipstream HTTP/1.1\r\nHost: 127.0.0.1:\(gateway.port)\r\n"
                    + "User-Agent: Mozilla/5.0\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                    + "Content-Length: \(form.utf8.count + hidden.utf8.count)\r\n\r\n"
                #expect(connection.send(Array((head + form).utf8)))
                try await Task.sleep(for: .milliseconds(50))
                _ = connection.send(Array(hidden.utf8))
                let (answer, closed) = connection.drain(within: .seconds(2))
                await expectNothingGotThrough(gateway, sink)
                print("SIPIntegration slipstream TCP: gateway answered \(answer.count) bytes, closed: \(closed); "
                    + "log: \(gateway.log.all.filter { $0.level >= .warning }.map(\.description).prefix(3))")
                // Whatever the gateway answered, it was not a SIP response to the hidden REGISTER.
                #expect(!String(decoding: answer, as: UTF8.self).contains("slipstream-"))

                let legit = try SIPITSocket.tcp(to: "127.0.0.1", gateway.port, from: Self.attacker)
                try await expectLegitimateRegisterWorks(gateway, sink, send: { text in
                    guard legit.send(Array(text.utf8)) else { throw SIPITError("send failed") }
                }, transport: "TCP", port: legit.localPort)
            }
        }

        @Test("A SIP message inside the body of a SIP message is not parsed (TCP)")
        func registerInsideAMessageBodyOverTCP() async throws {
            try await withSink { gateway, sink in
                let connection = try SIPITSocket.tcp(to: "127.0.0.1", gateway.port, from: Self.attacker)
                let port = connection.localPort
                let hidden = Self.register(transport: "TCP", port: port)
                let message = "MESSAGE sip:victim@127.0.0.2 SIP/2.0\r\n"
                    + "Via: SIP/2.0/TCP 127.0.0.1:\(port);branch=z9hG4bKslipmsg\(port)\r\n"
                    + "From: <sip:attacker@127.0.0.1>;tag=slipmsg\r\nTo: <sip:victim@127.0.0.2>\r\n"
                    + "Call-ID: slipstream-message-\(port)@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
                    + "Content-Type: text/plain\r\nContent-Length: \(hidden.utf8.count)\r\n\r\n"
                // The body (a whole REGISTER) starts a segment of its own.
                #expect(connection.send(Array(message.utf8)))
                try await Task.sleep(for: .milliseconds(50))
                #expect(connection.send(Array(hidden.utf8)))
                let forwarded = await sipitWait(within: .seconds(3)) { !sink.messages.isEmpty }
                _ = await sipitWait(within: .milliseconds(500)) { sink.messages.count > 1 }
                #expect(forwarded, "the MESSAGE itself was not forwarded\n\(gateway.log.tail())")
                #expect(sink.messages.map(\.startLine) == ["MESSAGE sip:victim@127.0.0.2 SIP/2.0"],
                        "upstream saw \(sink.messages.map(\.startLine))")
                #expect(gateway.log.count("registration binding") == 0, "\(gateway.log.tail())")
                #expect(gateway.log.count("media relay open") == 0)
            }
        }

        @Test("A datagram that starts mid-message opens nothing (UDP)")
        func datagramStartingMidMessage() async throws {
            try await withSink { gateway, sink in
                let socket = try SIPITSocket.udp(bind: Self.attacker)
                let port = socket.localPort
                let register = Self.register(transport: "UDP", port: port)
                let invite = Self.invite(transport: "UDP", port: port)
                let datagrams: [String] = [
                    // Garbage, then a REGISTER.
                    "\u{1}\u{2}GARBAGE garbage \r\n" + register,
                    // An HTTP request whose body is the REGISTER, in one datagram.
                    "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(register.utf8.count)\r\n\r\n" + register,
                    // The tail of some message, then an INVITE with SDP.
                    "tag=foo\r\nContent-Length: 0\r\n\r\n" + invite,
                ]
                for datagram in datagrams {
                    #expect(socket.send(Array(datagram.utf8), to: "127.0.0.1", gateway.port))
                }
                let answers = socket.receive(within: .seconds(1)) { _ in false }
                await expectNothingGotThrough(gateway, sink)
                #expect(!String(decoding: answers, as: UTF8.self).contains("200 OK"))
                let answered = String(decoding: answers, as: UTF8.self).split(whereSeparator: \.isNewline)
                    .filter { $0.hasPrefix("SIP/2.0 ") }
                print("SIPIntegration slipstream UDP: refused \(gateway.log.count("sip message refused")), "
                    + "answered \(answered)")

                try await expectLegitimateRegisterWorks(gateway, sink, send: { text in
                    guard socket.send(Array(text.utf8), to: "127.0.0.1", gateway.port) else {
                        throw SIPITError("send failed")
                    }
                }, transport: "UDP", port: port)
            }
        }

        /// RFC 3261 18.2.1 / RFC 3581: the gateway itself says where a request came from. A `received` parameter
        /// the sender put in its own Via is a lie; if the gateway keeps it, it sends the response (and so any
        /// amplified answer) wherever the sender chose (here 127.0.0.9; in the RFC 4475 message longreq.dat,
        /// 192.0.2.5, which is off this machine).
        @Test("A forged received= in the sender's Via does not redirect the response (UDP)")
        func forgedReceivedParameter() async throws {
            try await withSink { gateway, sink in
                let socket = try SIPITSocket.udp(bind: "127.0.0.1")
                let port = socket.localPort
                let decoy = try SIPITSocket.udp(bind: "127.0.0.9", port: port)
                let options = "OPTIONS sip:127.0.0.2 SIP/2.0\r\n"
                    + "Via: SIP/2.0/UDP 127.0.0.1:\(port);received=127.0.0.9;rport;branch=z9hG4bKforged\(port)\r\n"
                    + "From: <sip:probe@127.0.0.1>;tag=forged\r\nTo: <sip:127.0.0.2>\r\n"
                    + "Call-ID: forged-received-\(port)@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                    + "Content-Length: 0\r\n\r\n"
                #expect(socket.send(Array(options.utf8), to: "127.0.0.1", gateway.port))
                let forwarded = await sipitWait(within: .seconds(3)) { !sink.messages.isEmpty }
                #expect(forwarded, "\(gateway.log.tail())")
                let atSource = socket.receive(within: .seconds(2)) { !$0.isEmpty }
                let atDecoy = String(decoding: decoy.receive(within: .milliseconds(300)) { !$0.isEmpty }, as: UTF8.self)
                #expect(String(decoding: atSource, as: UTF8.self).hasPrefix("SIP/2.0 200"),
                        "the 200 OK did not come back to the request's source 127.0.0.1:\(port)")
                #expect(atDecoy.isEmpty, """
                    the response went to the forged received=127.0.0.9:\(port) instead:
                    \(atDecoy)
                    upstream saw: \(sink.messages.first?.text ?? "")
                    gateway: \(gateway.log.entries("sip").map(\.description).joined(separator: "\n"))
                    """)
            }
        }
    }
}
