import Foundation
import Testing

extension SIPIntegration {
    /// SIPp UAC (outside, 127.0.0.1) -> gateway -> SIPp UAS with RTP echo (upstream, 127.0.0.2): calls succeed by
    /// SIPp's own counters, the caller only ever sees the gateway's public media address, and RTP crosses both
    /// ways, counted three times: by the gateway's relays, by the UAS's echo counter and on the wire.
    @Suite("Calls through the gateway", .serialized, .timeLimit(.minutes(3)))
    struct Calls {
        static let calls = 50
        static let packets = calls * SIPITTools.rtpPacketsPerCall

        @Test("50 calls with RTP over UDP")
        func udpCalls() async throws {
            try await fiftyCalls(tcp: false)
        }

        @Test("50 calls with RTP over TCP (one connection, one upstream connection)")
        func tcpCalls() async throws {
            try await fiftyCalls(tcp: true)
        }

        private func fiftyCalls(tcp: Bool) async throws {
            let calls = Self.calls
            try await SIPCallPair.with(tcp ? "calls-tcp" : "calls-udp", calls: calls, tcp: tcp) { pair in
                let gateway = pair.gateway
                let start = ContinuousClock.now
                // 10 calls/s, at most 20 at once; uac_pcap's calls last ~9.3 s: about 25 s in all.
                let uac = try await SIPpRun.client(pair.uacConfig(calls: calls, rate: 10, limit: 20), in: pair.directory,
                                                   peers: pair.peers, within: .seconds(100))
                let elapsed = ContinuousClock.now - start
                let closed = await gateway.waitForRelayCloses(calls)
                let echoed = await pair.uas.rtpEchoCount()
                let uasExit = await pair.uas.stop(grace: .seconds(8))
                let wire = try await pair.rtpOnTheWire()
                let context = "\(uac.summary)\n\(pair.uas.summary)\n--- gateway\n\(gateway.log.tail(20))"

                // Signalling, by SIPp's own counters.
                #expect(uac.exitStatus == 0, "\(context)")
                #expect(uac.successfulCalls == calls, "\(context)")
                #expect(uac.failedCalls == 0, "\(context)")
                #expect(uac.errors.isEmpty, "UAC -trace_err:\n\(uac.errors.sipitTail(10))")
                #expect(uasExit == 0, "\(pair.uas.summary)")
                #expect(pair.uas.successfulCalls == calls, "\(pair.uas.summary)")
                #expect(pair.uas.failedCalls == 0, "\(pair.uas.summary)")
                #expect(elapsed < .seconds(60), "the run took \(elapsed)")

                // Addresses: the caller sees the public side only, the callee the inside side only.
                pair.expectCallerSawOnlyPublicMedia(uac, calls: calls)
                pair.expectCalleeSawOnlyInsideMedia(calls: calls)

                // Media relays: one per call, opened and closed, RTP through each both ways.
                #expect(gateway.log.count("media relay open") == calls)
                #expect(closed, "only \(gateway.relayCloses().count) of \(calls) relays closed")
                let perCall = gateway.relayCloses()
                for entry in perCall {
                    let inbound = entry["packets-in"].flatMap { Int($0) } ?? 0
                    let outbound = entry["packets-out"].flatMap { Int($0) } ?? 0
                    #expect(inbound >= SIPITTools.rtpPacketsPerCall - 2 && outbound >= SIPITTools.rtpPacketsPerCall - 2,
                            "relay of \(entry["call-id"] ?? "?"): packets-in \(inbound), packets-out \(outbound)")
                }
                let relayed = SIPGatewayHarness.packets(perCall)
                // Independent witnesses: the UAS's echo counter, and the capture.
                #expect(wire.matches(wire.callerToRelay, Self.packets), "on the wire: \(wire)")
                #expect(wire.matches(wire.relayToCallee, relayed.inbound), "relays say in=\(relayed.inbound); wire: \(wire)")
                #expect(wire.matches(wire.calleeToRelay, echoed),
                        "UAS echo counter \(echoed.map(String.init) ?? "none"); wire: \(wire)")
                #expect(wire.matches(wire.relayToCaller, relayed.outbound), "relays say out=\(relayed.outbound); wire: \(wire)")
                #expect(relayed.inbound >= Self.packets * 99 / 100, "relays: \(relayed); wire: \(wire)")
                #expect(relayed.outbound >= Self.packets * 99 / 100, "relays: \(relayed); wire: \(wire)")
                #expect((echoed ?? 0) >= Self.packets * 99 / 100, "UAS echo counter: \(echoed.map(String.init) ?? "none")")
                print("SIPIntegration \(tcp ? "TCP" : "UDP"): \(calls) calls in \(elapsed); relays in/out "
                    + "\(relayed.inbound)/\(relayed.outbound); UAS echoed \(echoed ?? -1); wire: \(wire)")
            }
        }

        /// IPv6: UAC, gateway and UAS all on ::1. SIPp brackets IPv6 addresses it takes from `-i` in SDP
        /// ("c=IN IP6 [::1]"), so both ends use scenarios that write `[media_ip]` instead.
        @Test("IPv6 calls with RTP over UDP on [::1]")
        func ipv6Calls() async throws {
            let calls = 3
            try await SIPCallPair.with("calls-v6", calls: calls, v6: true) { pair in
                let gateway = pair.gateway
                let uac = try await SIPpRun.client(
                    pair.uacConfig(scenario: .fixture("uac_pcap_media_ip.xml"), calls: calls, rate: 3, limit: calls),
                    in: pair.directory, peers: pair.peers, within: .seconds(60))
                let closed = await gateway.waitForRelayCloses(calls)
                let echoed = await pair.uas.rtpEchoCount()
                let uasExit = await pair.uas.stop()
                let wire = try await pair.rtpOnTheWire()
                let context = "\(uac.summary)\n\(pair.uas.summary)\n--- gateway\n\(gateway.log.tail(20))"

                #expect(gateway.host == "::1")
                #expect(uac.exitStatus == 0, "\(context)")
                #expect(uac.successfulCalls == calls, "\(context)")
                #expect(uac.failedCalls == 0, "\(context)")
                #expect(uasExit == 0, "\(pair.uas.summary)")
                pair.expectCallerSawOnlyPublicMedia(uac, calls: calls)
                pair.expectCalleeSawOnlyInsideMedia(calls: calls)
                for answer in uac.messages where answer.received && answer.statusCode == 200 && answer.cseqMethod == "INVITE" {
                    #expect(answer.bodyLines.contains { $0 == "c=IN IP6 ::1" }, "\(answer.text)")
                }

                #expect(closed, "relays closed: \(gateway.relayCloses().count)\n\(gateway.log.tail())")
                let relayed = SIPGatewayHarness.packets(gateway.relayCloses())
                let expected = calls * SIPITTools.rtpPacketsPerCall
                #expect(relayed.inbound >= expected * 99 / 100, "relays: \(relayed); wire: \(wire)")
                #expect(relayed.outbound >= expected * 99 / 100, "relays: \(relayed); wire: \(wire)")
                #expect(wire.matches(wire.callerToRelay, expected), "wire: \(wire)")
                #expect(wire.matches(wire.relayToCallee, relayed.inbound), "relays: \(relayed); wire: \(wire)")
                #expect(wire.matches(wire.calleeToRelay, echoed), "UAS echo \(echoed.map(String.init) ?? "none"); wire: \(wire)")
                #expect(wire.matches(wire.relayToCaller, relayed.outbound), "relays: \(relayed); wire: \(wire)")
                print("SIPIntegration IPv6: relays in/out \(relayed.inbound)/\(relayed.outbound); "
                    + "UAS echoed \(echoed ?? -1); wire: \(wire)")
            }
        }
    }
}
