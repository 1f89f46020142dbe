import Foundation
import Testing

extension SIPIntegration {
    /// WebRTC-size calls over UDP: SIPp's INVITE and its 200 OK carry an ICE offer and answer grown to 1,500 /
    /// 4,000 / 16,000 / 60,000 bytes. NIO reads datagrams into 2 KB buffers unless told otherwise; every such message
    /// must cross whole both ways (the request out to the callee, the response back to the caller), line for line,
    /// with c=, m= and the ICE candidates pointed at the relay.
    @Suite("Large SIP messages over UDP", .serialized, .timeLimit(.minutes(3)))
    struct LargeMessages {
        @Test("an INVITE and its 200 OK of this size cross whole", arguments: [1_500, 4_000, 16_000, 60_000])
        func largeCall(messageBytes: Int) async throws {
            // The SDP is what grows; the headers and the padding step leave it a little over the size.
            let bodyBytes = messageBytes - 300
            try await SIPITScratch.with("large-\(messageBytes)") { scenarios in
                let files = try WebRTCScenario.write(bodyBytes: bodyBytes, in: scenarios)
                try await SIPCallPair.with("large-call-\(messageBytes)", calls: 1, uasScenario: .file(files.uas)) { pair in
                    let expectedPadding = WebRTCScenario.ssrcLines(in: WebRTCScenario.sdp(bytes: bodyBytes, ufrag: "OFFR",
                                                                                          setup: "actpass"))
                    let uac = try await SIPpRun.client(
                        pair.uacConfig(scenario: .file(files.uac), calls: 1, rate: 1, limit: 1), in: pair.directory,
                        peers: pair.peers, within: .seconds(40))
                    _ = await pair.gateway.waitForRelayCloses(1)
                    let uasExit = await pair.uas.stop(grace: .seconds(8))
                    let context = "\(uac.summary)\n\(pair.uas.summary)\n--- gateway\n\(pair.gateway.log.tail(20))"
                    #expect(uac.exitStatus == 0, "\(context)")
                    #expect(uac.successfulCalls == 1, "\(context)")
                    #expect(uasExit == 0, "\(context)")

                    // What SIPp sent is as large as the test says (headers and all).
                    let sentInvite = uac.messages.first { !$0.received && $0.method == "INVITE" }
                    let sentAnswer = pair.uas.messages.first { !$0.received && $0.statusCode == 200 && $0.cseqMethod == "INVITE" }
                    #expect((sentInvite?.text.utf8.count ?? 0) >= messageBytes, "the UAC's INVITE")
                    #expect((sentAnswer?.text.utf8.count ?? 0) >= messageBytes, "the UAS's 200 OK")
                    let lastPadding = "a=ssrc:\(1_000_000 + expectedPadding - 1) "

                    // The request out: the callee got the whole INVITE, every padding line, pointed at the relay.
                    let invites = pair.uas.messages.filter { $0.received && $0.method == "INVITE" }
                    #expect(invites.count >= 1, "\(context)")
                    for invite in invites {
                        #expect(invite.text.contains(lastPadding), "INVITE at the UAS: \(invite.text.utf8.count) bytes")
                        #expect(WebRTCScenario.ssrcLines(in: invite.text) >= expectedPadding,
                                "INVITE at the UAS: \(WebRTCScenario.ssrcLines(in: invite.text)) of \(expectedPadding) ssrc lines")
                        #expect(invite.sdpConnection == pair.outsideIP)
                        Self.expectRelayCandidatesOnly(invite, address: pair.outsideIP, who: "INVITE at the UAS")
                        #expect(invite.sdpMediaPort.map { pair.ports.pool.contains($0) } == true,
                                "INVITE m= port \(invite.sdpMediaPort.map(String.init) ?? "none") is not a relay port")
                    }
                    // The response back: the caller got the whole 200 OK, pointed at the relay, naming no inside host.
                    pair.expectCallerSawOnlyPublicMedia(uac, calls: 1)
                    let answers = uac.messages.filter { $0.received && $0.statusCode == 200 && $0.cseqMethod == "INVITE" }
                    for answer in answers {
                        #expect(answer.text.contains(lastPadding), "200 OK at the UAC: \(answer.text.utf8.count) bytes")
                        Self.expectRelayCandidatesOnly(answer, address: pair.outsideIP, who: "200 OK at the UAC")
                        #expect(WebRTCScenario.ssrcLines(in: answer.text) >= expectedPadding)
                    }
                    #expect(pair.gateway.log.count("sip message refused") == 0, "\(pair.gateway.log.grep("refused"))")
                }
            }
        }

        /// ICE through the relay: the one host candidate algate writes (rtcp-mux: one component), on the relay's
        /// address and the m= port; neither side's host nor its server-reflexive candidate; ufrag, pwd and the
        /// DTLS fingerprint as the sender wrote them.
        static func expectRelayCandidatesOnly(_ message: SIPpMessage, address: String, who: String,
                                              sourceLocation: SourceLocation = #_sourceLocation) {
            let candidates = message.bodyLines.filter { $0.hasPrefix("a=candidate:") }
            let port = message.sdpMediaPort.map(String.init) ?? "?"
            #expect(candidates == ["a=candidate:1 1 UDP 2130706431 \(address) \(port) typ host"],
                    "\(who): \(candidates)", sourceLocation: sourceLocation)
            #expect(!message.text.contains(WebRTCScenario.reflexiveAddress), "\(who)", sourceLocation: sourceLocation)
            #expect(message.bodyLines.contains("a=fingerprint:\(WebRTCScenario.fingerprint)"), "\(who)",
                    sourceLocation: sourceLocation)
            #expect(message.bodyLines.contains { $0.hasPrefix("a=ice-pwd:x9cml/YzichV2+XlhiMu8gAb") }, "\(who)",
                    sourceLocation: sourceLocation)
            #expect(message.bodyLines.contains("a=rtcp-mux"), "\(who)", sourceLocation: sourceLocation)
        }
    }
}
