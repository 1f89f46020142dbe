import Foundation
import Testing

extension SIPIntegration {
    /// Hundreds of malformed messages (random bytes, hand-made broken messages, the RFC 4475 torture messages
    /// read from the corpus at test time) at the gateway's SIP port, over UDP and TCP, while a call with RTP is
    /// up: the call completes, its media keeps flowing, and the gateway answers the next call.
    @Suite("Malformed flood", .serialized, .timeLimit(.minutes(2)))
    struct Flood {
        /// The flood comes from this address (nothing listens there): responses to whatever the gateway forwards
        /// go back to it, never to anyone else's SIP port on 127.0.0.1.
        static let attacker = "127.0.0.5"

        @Test("A flood of malformed messages during a call: the call and its RTP survive, the next call works")
        func floodDuringCall() async throws {
            try await SIPCallPair.with("flood", calls: 2) { pair in
                let gateway = pair.gateway
                // The long call: uac_pcap plays 4.7 s of RTP, pauses, plays DTMF at 8 s and hangs up at ~9.3 s.
                let uac = try SIPpRun(pair.uacConfig(calls: 1, rate: 1, limit: 1), in: pair.directory, peers: pair.peers)
                let up = await gateway.log.wait(within: .seconds(10)) { $0.count("media relay open") == 1 }
                #expect(up, "the call did not get its relay\n\(uac.summary)\n\(gateway.log.tail())")
                guard up else { return }
                let callID = gateway.log.entries("media relay open").first?["call-id"] ?? "?"

                let flood = try await FloodSender.run(at: gateway.port, from: Self.attacker)
                let floodEnded = ContinuousClock.now
                await uac.process.waitForExit(within: .seconds(30))
                let closed = await gateway.waitForRelayCloses(1, callID: callID)

                let context = "\(uac.summary)\n\(pair.uas.summary)\n--- gateway\n\(gateway.log.tail(30))"
                #expect(uac.exitStatus == 0, "\(context)")
                #expect(uac.successfulCalls == 1, "\(context)")
                #expect(uac.failedCalls == 0, "\(context)")
                #expect(closed, "the call's relay did not close\n\(context)")
                let relayed = SIPGatewayHarness.packets(gateway.relayCloses(callID: callID))
                let expected = SIPITTools.rtpPacketsPerCall
                #expect(relayed.inbound >= expected - 2, "RTP caller -> UAS through the relay: \(relayed)")
                #expect(relayed.outbound >= expected - 2, "RTP echo UAS -> caller through the relay: \(relayed)")
                // The flood was seen (and refused) while the call was up.
                #expect(gateway.log.count("sip message refused") > 0, "\(gateway.log.tail())")

                // The gateway is still there: the next call (SIPp's plain uac, no RTP) goes through.
                let next = try await SIPpRun.client(
                    SIPpConfig(name: "next", scenario: .builtin("uac"), remote: gateway.address, localIP: pair.outsideIP,
                               localPort: pair.ports.extra.lowerBound, mediaIP: pair.outsideIP,
                               mediaPort: pair.ports.uacMedia.lowerBound + 8,
                               controlPort: pair.ports.extra.lowerBound + 1, calls: 1, rate: 1, limit: 1,
                               watchdog: .seconds(20), extra: ["-d", "500"]),
                    in: pair.directory, peers: pair.peers, within: .seconds(25))
                #expect(next.exitStatus == 0, "\(next.summary)\n\(gateway.log.tail())")
                #expect(next.successfulCalls == 1, "\(next.summary)")
                let refused = gateway.log.count("sip message refused")
                let relays = gateway.log.count("media relay open")
                print("SIPIntegration flood: \(flood); refused \(refused); relays opened \(relays); the call's relay in/out "
                    + "\(relayed.inbound)/\(relayed.outbound); the call ended \(ContinuousClock.now - floodEnded) "
                    + "after the flood; next call \(next.exitStatus == 0 ? "ok" : "FAILED")")
            }
        }
    }
}

extension SIPIntegration.Flood {
    /// `[pinholes] per-session = 16`: at most this many pinholes per control session. One INVITE (one call, from
    /// one unauthenticated sender) with 40 m= lines must not take more relays than that; here the pool would
    /// hold all 40, so nothing but the per-session limit can stop it.
    @Test("One INVITE with 40 m= lines opens at most the per-session limit (16) of relays")
    func perCallRelayLimit() async throws {
        try await SIPUpstreamSink.withGateway(poolSize: 200) { gateway, sink in
            let socket = try SIPITSocket.udp(bind: "127.0.0.1")
            let port = socket.localPort
            let streams = 40
            let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                + (0..<streams).map { "m=audio \(30000 + 2 * $0) RTP/AVP 0\r\n" }.joined()
            let invite = "INVITE sip:service@127.0.0.2 SIP/2.0\r\n"
                + "Via: SIP/2.0/UDP 127.0.0.1:\(port);rport;branch=z9hG4bKmany\(port)\r\n"
                + "From: <sip:many@127.0.0.1>;tag=many\r\nTo: <sip:service@127.0.0.2>\r\n"
                + "Call-ID: many-streams-\(port)@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                + "Contact: <sip:many@127.0.0.1:\(port)>\r\nContent-Type: application/sdp\r\n"
                + "Content-Length: \(sdp.utf8.count)\r\n\r\n" + sdp
            #expect(socket.send(Array(invite.utf8), to: "127.0.0.1", gateway.port))
            // Done when the INVITE went upstream or the sender got an answer (503 when relays were refused).
            var answer: [UInt8] = []
            let settled = await sipitWait(within: .seconds(5)) {
                if let chunk = socket.receive(), !chunk.isEmpty { answer += chunk }
                return !sink.messages.isEmpty || !answer.isEmpty
            }
            let opened = gateway.log.entries("media relay open").count
            let refused = gateway.log.entries("media relay refused")
            let response = String(decoding: answer, as: UTF8.self).split(whereSeparator: \.isNewline).first ?? "none"
            print("SIPIntegration per-call limit: \(opened) relays opened, \(refused.count) refused, "
                + "\(gateway.backend.openCount) pinholes held; forwarded: \(!sink.messages.isEmpty); answer: \(response)")
            #expect(settled, "\(gateway.log.tail())")
            #expect(opened <= 16, """
                one INVITE opened \(opened) media relays (\(gateway.backend.openCount) pinholes held); per-session is 16.
                \(gateway.log.entries("media relay open").prefix(3).map(\.description).joined(separator: "\n"))
                """)
        }
    }
}

/// Sends the flood: garbage and broken messages over UDP, and some over TCP connections of their own.
enum FloodSender {
    struct Report: CustomStringConvertible {
        var datagrams = 0
        var connections = 0
        var tortureFiles = 0
        var skipped: [String] = []
        var elapsed: Duration = .zero
        var description: String {
            "\(datagrams) datagrams, \(connections) TCP connections (\(tortureFiles) RFC 4475 messages, skipped "
                + "\(skipped)) in \(elapsed)"
        }
    }

    static func run(at port: UInt16, from source: String) async throws -> Report {
        var report = Report()
        let start = ContinuousClock.now
        let socket = try SIPITSocket.udp(bind: source)
        let via = "Via: SIP/2.0/UDP \(source):\(socket.localPort);rport;branch=z9hG4bK"
        var random = SplitMix(seed: 4475)

        // 1. Random bytes, 1-1400 of them, 400 datagrams.
        for _ in 0..<400 {
            let length = Int(random.next() % 1400) + 1
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if socket.send(bytes, to: "127.0.0.1", port) { report.datagrams += 1 }
        }
        // 2. Hand-made broken messages, each a few times.
        let broken = brokenMessages(via: via)
        for _ in 0..<3 {
            for message in broken where socket.send(message, to: "127.0.0.1", port) {
                report.datagrams += 1
            }
            await Task.yield()
        }
        // 3. RFC 4475 torture messages, twice each over UDP and once each on a TCP connection of its own.
        let torture = tortureMessages()
        report.skipped = torture.skipped
        report.tortureFiles = torture.messages.count
        for _ in 0..<2 {
            for message in torture.messages where socket.send(message, to: "127.0.0.1", port) {
                report.datagrams += 1
            }
        }
        for message in torture.messages + broken.prefix(8) {
            guard let connection = try? SIPITSocket.tcp(to: "127.0.0.1", port, from: source) else { continue }
            report.connections += 1
            connection.send(message)
        }
        // Drain what the gateway answered, so its answers do not pile up in our socket.
        _ = socket.drain(within: .milliseconds(200))
        report.elapsed = ContinuousClock.now - start
        return report
    }

    /// Broken in the ways a parser can trip over. Addresses: loopback only.
    static func brokenMessages(via: String) -> [[UInt8]] {
        func request(_ method: String, headers: [String], body: String = "") -> String {
            "\(method) sip:flood@127.0.0.2 SIP/2.0\r\n" + headers.joined(separator: "\r\n") + "\r\n\r\n" + body
        }
        let common = ["\(via)flood", "From: <sip:flood@127.0.0.5>;tag=f", "To: <sip:flood@127.0.0.2>",
                      "Call-ID: flood@127.0.0.5", "CSeq: 1 INVITE", "Max-Forwards: 70"]
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.5\r\ns=-\r\nc=IN IP4 127.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        let manyMedia = "v=0\r\no=- 1 1 IN IP4 127.0.0.5\r\ns=-\r\nc=IN IP4 127.0.0.5\r\nt=0 0\r\n"
            + (0..<64).map { "m=audio \(4000 + 2 * $0) RTP/AVP 0\r\n" }.joined()
        let texts: [String] = [
            "INVITE sip:flood@127.0.0.2 SIP/2.0",                                   // start line only, no CRLF
            "INVITE sip:flood@127.0.0.2 SIP/2.0\r\n\r\n",                           // no headers
            "INVITE sip:flood@127.0.0.2\r\n\r\n",                                   // no version
            "INVITE  SIP/2.0\r\n\r\n",
            "\r\n\r\n",                                                             // a keep-alive
            "SIP/2.0\r\n\r\n",
            "SIP/2.0 99999999999999999999 Overflow\r\n" + common.joined(separator: "\r\n") + "\r\n\r\n",
            request("INVITE", headers: common + ["Content-Length: 99999"], body: sdp),
            request("INVITE", headers: common + ["Content-Length: -5"], body: sdp),
            request("INVITE", headers: common + ["Content-Length: 5", "Content-Length: 50"], body: sdp),
            request("INVITE", headers: common + ["Content-Length: 18446744073709551617"], body: sdp),
            request("INVITE", headers: common + ["This line has no colon", "Content-Length: 0"]),
            request("INVITE", headers: common + ["X-Nul: a\u{0}b", "Content-Length: 0"]),
            request("INVITE", headers: ["\(via)flood"] + Array(repeating: "\(via)x", count: 800)
                + ["Content-Length: 0"]),
            request("INVITE", headers: common + ["X-Long: " + String(repeating: "x", count: 60000),
                                                 "Content-Length: 0"]),
            request("INVITE", headers: common + ["Content-Type: application/sdp",
                                                 "Content-Length: \(manyMedia.utf8.count)"], body: manyMedia),
            request("INVITE", headers: common + ["Content-Type: application/sdp", "Content-Length: 60"],
                    body: "v=0\r\nc=IN IP4 999.1.1.1\r\nm=audio 70000 RTP/AVP 0\r\nm=audio x\r\n"),
            request("INVITE", headers: common + ["Content-Type: multipart/mixed;boundary=\"", "Content-Length: 10"],
                    body: "--\r\n--\r\n--"),
            request("INVITE", headers: ["Via: SIP/2.0/UDP [::1", "Contact: <sip:[::1>", "From: <", "To: >",
                                        "Call-ID:", "CSeq: x INVITE", "Content-Length: 0"]),
            request("REGISTER", headers: ["\(via)flreg", "From: <sip:flood@127.0.0.2>;tag=r", "To: <sip:flood@127.0.0.2>",
                                          "Call-ID: flood-reg@127.0.0.5", "CSeq: 1 REGISTER",
                                          "Contact: <sip:flood@127.0.0.5:1;algate=../../etc>;expires=-1",
                                          "Expires: 99999999999999999999", "Content-Length: 0"]),
            // A response nobody asked for, claiming to be the gateway's.
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-ag-forged\r\n\(via)resp\r\n"
                + "From: <sip:a@127.0.0.5>;tag=1\r\nTo: <sip:b@127.0.0.2>;tag=2\r\nCall-ID: forged@127.0.0.5\r\n"
                + "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            // A BYE for a dialog that does not exist, and an in-dialog request to a made-up mapping.
            request("BYE", headers: common.dropLast(2) + ["CSeq: 2 BYE", "Content-Length: 0"]),
            "BYE sip:127.0.0.1;algate=doesnotexist SIP/2.0\r\n" + common.joined(separator: "\r\n")
                + "\r\nContent-Length: 0\r\n\r\n",
        ]
        return texts.map { Array($0.utf8) }
    }

    /// The RFC 4475 messages from the shared corpus, read now (never copied into the repository). A message that
    /// carries a `received=` Via parameter of its own is left out: if the gateway trusted it (see the test
    /// "A forged received= ..."), the response would go to that address, which for longreq.dat (192.0.2.5) is
    /// off this machine.
    static func tortureMessages() -> (messages: [[UInt8]], skipped: [String]) {
        let directory = URL(fileURLWithPath: SIPITTools.tortureDirectory)
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else {
            return ([], ["corpus absent: \(directory.path)"])
        }
        var messages: [[UInt8]] = []
        var skipped: [String] = []
        for file in files.sorted() where file.hasSuffix(".dat") {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(file)) else { continue }
            let bytes = [UInt8](data)
            if bytes.firstRange(of: Array("received=".utf8)) != nil {
                skipped.append(file)
                continue
            }
            messages.append(bytes)
        }
        return (messages, skipped)
    }
}

/// A small deterministic generator, so every run floods the same bytes.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
