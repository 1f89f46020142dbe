import Foundation
import Testing

extension SIPIntegration {
    /// The inbound call: a phone outside registers through the gateway with a real registrar (Kamailio on
    /// 127.0.0.3, upstream of the gateway); a caller inside (SIPp on 127.0.0.4, talking to Kamailio directly) calls
    /// the phone's AOR; Kamailio's location lookup yields the gateway's contact mapping, the INVITE reaches the
    /// phone through the gateway, and media flows through a relay both ways.
    @Suite("Inbound calls via Kamailio", .serialized, .timeLimit(.minutes(2)),
           .enabled(if: SIPITTools.hasKamailio, "needs kamailio (apt-get install kamailio)"))
    struct Registrar {
        /// Ports of one registrar test.
        struct Ports {
            var gateway, kamailio, phone, caller, probe: UInt16
            var registerControl, phoneControl, callerControl, probeControl: UInt16
            var pool: ClosedRange<UInt16>
            var phoneMedia, registerMedia, probeMedia: ClosedRange<UInt16>
            var callerMedia: ClosedRange<UInt16>

            init() throws {
                let sip = try SIPITPorts.block(10)
                gateway = sip.lowerBound
                kamailio = sip.lowerBound + 1
                phone = sip.lowerBound + 2
                caller = sip.lowerBound + 3
                probe = sip.lowerBound + 4
                registerControl = sip.lowerBound + 5
                phoneControl = sip.lowerBound + 6
                callerControl = sip.lowerBound + 7
                probeControl = sip.lowerBound + 8
                pool = try SIPITPorts.block(100)
                phoneMedia = try SIPITPorts.block(4)
                registerMedia = try SIPITPorts.block(4)
                probeMedia = try SIPITPorts.block(4)
                callerMedia = try SIPITPorts.block(8)
            }
        }

        static let phoneIP = "127.0.0.1"
        static let kamailioIP = "127.0.0.3"
        static let callerIP = "127.0.0.4"

        /// Gateway + Kamailio + capture, then `body`; everything stopped afterwards.
        private func withRegistrar(_ name: String,
                                   _ body: (URL, SIPITPeers, Ports, SIPGatewayHarness, KamailioRunner,
                                            LoopbackCapture) async throws -> Void) async throws {
            let ports = try Ports()
            try await SIPITScratch.with(name) { dir in
                try SIPITScratch.linkPcaps(in: dir)
                try await SIPITPeers.with { peers in
                    let kamailio = try await KamailioRunner(
                        address: Self.kamailioIP, port: ports.kamailio,
                        probe: (ports.probe, ports.probeMedia.lowerBound, ports.probeControl), in: dir, peers: peers)
                    let options = SIPGatewayHarness.Options(listen: "\(Self.phoneIP):\(ports.gateway)",
                                                            upstream: kamailio.endpoint, pool: ports.pool)
                    try await SIPGatewayHarness.with(options) { gateway in
                        let capture = try await LoopbackCapture(
                            ports: [ports.pool, ports.phoneMedia, ports.callerMedia], in: dir, peers: peers)
                        try await body(dir, peers, ports, gateway, kamailio, capture)
                    }
                    await kamailio.stop()
                }
            }
        }

        /// The caller inside: uac_pcap to the phone's AOR at Kamailio, one call with RTP.
        private func callPhone(_ dir: URL, _ peers: SIPITPeers, _ ports: Ports, _ kamailio: KamailioRunner)
            async throws -> SIPpRun {
            try await SIPpRun.client(
                SIPpConfig(name: "caller", scenario: .builtin("uac_pcap"), remote: kamailio.endpoint,
                           localIP: Self.callerIP, localPort: ports.caller, mediaIP: Self.callerIP,
                           mediaPort: ports.callerMedia.lowerBound, controlPort: ports.callerControl, calls: 1, rate: 1,
                           limit: 1, service: "phone", watchdog: .seconds(40)),
                in: dir, peers: peers, within: .seconds(45))
        }

        /// The gateway sent Kamailio's INVITE to the phone (the flow its REGISTER came on), and nowhere else.
        private func expectInviteRoutedToPhone(_ gateway: SIPGatewayHarness, ports: Ports, transport: String) {
            let invites = gateway.log.entries("sip").filter { $0["message"]?.hasPrefix("INVITE ") == true }
            let phoneFlow = "\(transport):\(Self.phoneIP):\(ports.phone)"
            #expect(invites.contains { $0["to"]?.hasPrefix(phoneFlow) == true },
                    "no INVITE went to the phone (\(phoneFlow)):\n\(invites.prefix(4).map(\.description).joined(separator: "\n"))")
            let elsewhere = invites.filter { $0["to"]?.hasPrefix(phoneFlow) != true }
            #expect(elsewhere.isEmpty, """
                INVITEs from upstream to the phone's contact went elsewhere (\(elsewhere.count)):
                \(elsewhere.prefix(4).map(\.description).joined(separator: "\n"))
                """)
        }

        /// What the phone and the caller saw of each other's media, and what crossed.
        private func expectMediaThroughRelay(phoneMessages: [SIPpMessage], caller: SIPpRun, ports: Ports,
                                             gateway: SIPGatewayHarness, capture: LoopbackCapture) async throws {
            // The phone is offered the gateway's public address and a relay port, never the caller's.
            let invites = phoneMessages.filter { $0.received && $0.method == "INVITE" }
            #expect(invites.count >= 1, "the phone received no INVITE")
            for invite in invites {
                #expect(invite.sdpConnection == "127.0.0.1", "\(invite.text)")
                #expect(invite.sdpMediaPort.map { ports.pool.contains($0) } == true, "\(invite.text)")
                // From and Via name the caller (a proxy passes them on); the SDP and the Contact must not.
                #expect(!invite.bodyLines.joined().contains(Self.callerIP), "caller's address in the SDP:\n\(invite.text)")
                #expect(invite.header("Contact")?.contains(Self.callerIP) == false, "\(invite.text)")
            }
            // The caller gets the gateway's inside address and a relay port.
            let answers = caller.messages.filter { $0.received && $0.statusCode == 200 && $0.cseqMethod == "INVITE" }
            #expect(answers.count >= 1)
            for answer in answers {
                #expect(answer.sdpConnection == "127.0.0.1", "\(answer.text)")
                #expect(answer.sdpMediaPort.map { ports.pool.contains($0) } == true, "\(answer.text)")
            }
            // One relay, opened and closed (by the BYE), with RTP both ways: caller -> phone is "out" (from the
            // inside), the phone's echo is "in".
            let closed = await gateway.waitForRelayCloses(1)
            #expect(gateway.log.count("media relay open") == 1, "\(gateway.log.grep("media relay"))")
            #expect(closed, "\(gateway.log.tail())")
            let relayed = SIPGatewayHarness.packets(gateway.relayCloses())
            let expected = SIPITTools.rtpPacketsPerCall
            #expect(relayed.outbound >= expected - 2, "caller -> phone through the relay: \(relayed)")
            #expect(relayed.inbound >= expected - 2, "phone -> caller (echo) through the relay: \(relayed)")
            let flows = try await capture.udpFlows()
            let callerToRelay = flows.count(from: ports.callerMedia, to: ports.pool)
            let relayToPhone = flows.count(from: ports.pool, to: ports.phoneMedia)
            let phoneToRelay = flows.count(from: ports.phoneMedia, to: ports.pool)
            let relayToCaller = flows.count(from: ports.pool, to: ports.callerMedia)
            let dropped = capture.dropped ?? 0
            let wire = "caller->relay \(callerToRelay), relay->phone \(relayToPhone), phone->relay \(phoneToRelay), "
                + "relay->caller \(relayToCaller) (capture dropped \(dropped))"
            // Equal, but for what the capture itself lost on a busy machine.
            func matches(_ onWire: Int, _ counted: Int) -> Bool { onWire <= counted && counted - onWire <= dropped }
            #expect(matches(callerToRelay, expected), "\(wire)")
            #expect(matches(relayToPhone, relayed.outbound), "\(wire); relays \(relayed)")
            #expect(matches(phoneToRelay, relayed.inbound), "\(wire); relays \(relayed)")
            #expect(matches(relayToCaller, relayed.inbound), "\(wire); relays \(relayed)")
            print("SIPIntegration inbound: relay in/out \(relayed.inbound)/\(relayed.outbound); wire: \(wire)")
        }

        /// UDP: the phone registers from its SIP port (SIPp register.xml), then a SIPp UAS takes that same port
        /// and answers the inbound call; the gateway sends the INVITE to the address the REGISTER came from.
        @Test("A registered phone receives an inbound call over UDP, with media")
        func inboundCallUDP() async throws {
            try await withRegistrar("inbound-udp") { dir, peers, ports, gateway, kamailio, capture in
                let register = try await SIPpRun.client(
                    SIPpConfig(name: "register", scenario: .fixture("register.xml"), remote: gateway.address,
                               localIP: Self.phoneIP, localPort: ports.phone, mediaIP: Self.phoneIP,
                               mediaPort: ports.registerMedia.lowerBound, controlPort: ports.registerControl, calls: 1,
                               service: "phone", keys: ["domain": kamailio.endpoint, "expires": "120"],
                               watchdog: .seconds(15)),
                    in: dir, peers: peers, within: .seconds(20))
                #expect(register.exitStatus == 0, "\(register.summary)\n\(gateway.log.tail())")
                // The phone got its own contact back from the registrar's 200, through the gateway.
                #expect(register.logs.contains("<sip:phone@\(Self.phoneIP):\(ports.phone);transport=UDP>"),
                        "\(register.logs)")
                let bindings = gateway.log.entries("registration binding")
                #expect(bindings.count == 1, "\(gateway.log.tail())")
                #expect(bindings.first?["aor"]?.contains("phone@") == true)
                // Kamailio saved a binding for the AOR (which contact it holds shows in its lookup below).
                #expect(!kamailio.logLines(containing: "saved sip:phone@\(kamailio.endpoint)").isEmpty,
                        "\(kamailio.log.sipitTail(20))")

                let phone = try await SIPpRun.server(
                    SIPpConfig(name: "phone", scenario: .builtin("uas"), localIP: Self.phoneIP, localPort: ports.phone,
                               mediaIP: Self.phoneIP, mediaPort: ports.phoneMedia.lowerBound,
                               controlPort: ports.phoneControl, rtpEcho: true, calls: 1, watchdog: .seconds(60)),
                    in: dir, peers: peers)
                let caller = try await callPhone(dir, peers, ports, kamailio)
                // The phone's UAS exits by itself after its one call (and its 4 s timewait).
                let phoneExit = await phone.process.waitForExit(within: .seconds(15))
                let context = "\(caller.summary)\n\(phone.summary)\n--- kamailio\n"
                    + "\(kamailio.log.sipitTail(15))\n--- gateway\n\(gateway.log.tail(25))"

                let lookups = kamailio.logLines(containing: "lookup -> ")
                #expect(lookups.contains { $0.contains("@127.0.0.1:\(ports.gateway)") && $0.contains("algate=") },
                        "Kamailio's lookup did not yield the gateway's contact: \(lookups)")
                expectInviteRoutedToPhone(gateway, ports: ports, transport: "udp")
                #expect(caller.exitStatus == 0, "\(context)")
                #expect(caller.successfulCalls == 1, "\(context)")
                #expect(phoneExit == 0, "\(context)")
                #expect(phone.successfulCalls == 1, "\(context)")
                #expect(phone.failedCalls == 0, "\(context)")
                try await expectMediaThroughRelay(phoneMessages: phone.messages, caller: caller, ports: ports,
                                                  gateway: gateway, capture: capture)
            }
        }

        /// TCP: the phone keeps the connection its registration came on (register_hold.xml) and answers the
        /// inbound INVITE on it with an out-of-call scenario (phone_ooc.xml); the caller still talks UDP to
        /// Kamailio, which reaches the phone's contact (transport=TCP) through the gateway.
        @Test("A registered phone receives an inbound call over TCP, with media")
        func inboundCallTCP() async throws {
            try await withRegistrar("inbound-tcp") { dir, peers, ports, gateway, kamailio, capture in
                // Registered, it holds the connection for 25 s (-d), then unregisters.
                let phone = try SIPpRun(
                    SIPpConfig(name: "phone", scenario: .fixture("register_hold.xml"), remote: gateway.address,
                               localIP: Self.phoneIP, localPort: ports.phone, tcp: true, mediaIP: Self.phoneIP,
                               mediaPort: ports.phoneMedia.lowerBound, controlPort: ports.phoneControl, rtpEcho: true,
                               calls: 1, service: "phone", keys: ["domain": kamailio.endpoint, "expires": "120"],
                               oocScenario: "phone_ooc.xml", watchdog: .seconds(60), extra: ["-d", "25000"]),
                    in: dir, peers: peers)
                let registered = await gateway.log.wait(within: .seconds(10)) { $0.count("registration binding") > 0 }
                #expect(registered, "\(phone.summary)\n\(gateway.log.tail())")
                guard registered else { return }
                #expect(phone.logs.contains("<sip:phone@\(Self.phoneIP):\(ports.phone);transport=TCP>"),
                        "\(phone.logs)")

                let caller = try await callPhone(dir, peers, ports, kamailio)
                let completed = await sipitWait(within: .seconds(5)) { phone.logs.contains("phone: call complete") }
                let echoed = await phone.rtpEchoCount()
                await phone.stop(grace: .seconds(1))
                let context = "\(caller.summary)\n\(phone.summary)\n--- phone log\n\(phone.logs.sipitTail(12))\n"
                    + "--- kamailio\n\(kamailio.log.sipitTail(15))\n--- gateway\n\(gateway.log.tail(25))"

                let lookups = kamailio.logLines(containing: "lookup -> ")
                #expect(lookups.contains { $0.contains("@127.0.0.1:\(ports.gateway)") && $0.contains("algate=") },
                        "Kamailio's lookup did not yield the gateway's contact: \(lookups)")
                expectInviteRoutedToPhone(gateway, ports: ports, transport: "tcp")
                #expect(caller.exitStatus == 0, "\(context)")
                #expect(caller.successfulCalls == 1, "\(context)")
                #expect(completed, "the phone's out-of-call scenario did not complete the call\n\(context)")
                guard completed else { return }
                #expect(phone.stat("AutoAnswered(C)") == 1, "\(phone.summary)")
                #expect((echoed ?? 0) >= SIPITTools.rtpPacketsPerCall - 2,
                        "phone's RTP echo counter: \(echoed.map(String.init) ?? "none")")
                try await expectMediaThroughRelay(phoneMessages: phone.messages, caller: caller, ports: ports,
                                                  gateway: gateway, capture: capture)
            }
        }
    }
}
