import AlgateReplay
import AlgateRewrite
import Foundation
import Testing

/// SIP sessions crafted by the tests: over UDP and TCP, found by port and by content, carried in IPv4 and IPv6
/// fragments and behind IPv6 extension headers; and their media checked against the relays predicted.
@Suite struct SIPAndIPReplayTests {
    static let caller = ("192.0.2.20", 5062)
    static let pbx = ("198.51.100.6", 5060)

    /// A call over UDP: INVITE, 200, then RTP both ways to the SDP endpoints.
    static func call(pbx: (String, Int) = pbx, caller: (String, Int) = caller,
                     packet: (((String, Int), (String, Int), [UInt8]) -> [[UInt8]])? = nil) -> [[UInt8]] {
        let invite = CraftedSessions.invite(from: caller, to: pbx, mediaPort: 18000)
        let ok = CraftedSessions.ok(to: invite, from: pbx, mediaPort: 10000)
        let make = packet ?? { source, destination, payload in
            let datagram = Packet.udp(source.1, destination.1, payload: payload)
            return [source.0.contains(":")
                ? Packet.ipv6(source.0, destination.0, nextHeader: 17, payload: datagram)
                : Packet.ipv4(source.0, destination.0, protocolNumber: 17, payload: datagram)]
        }
        var packets = make(caller, pbx, Array(invite.utf8)) + make(pbx, caller, Array(ok.utf8))
        for sequence in 1...3 {
            packets += make((caller.0, 18000), (pbx.0, 10000), CraftedSessions.rtp(sequence: sequence))
            packets += make((pbx.0, 10000), (caller.0, 18000), CraftedSessions.rtp(sequence: sequence))
        }
        return packets
    }

    @Test func aCallOverUDPOpensARelayThatCoversItsMedia() throws {
        let report = try replayCrafted(PacketScript.frames(Self.call()), settings: ReplaySettings(side: .server))
        let session = try #require(report.sessions.first)
        #expect(session.protocol == .sip)
        #expect(session.client == "192.0.2.20:5062")
        #expect(session.server == "198.51.100.6:5060")
        #expect(session.messages.map(\.text) == ["INVITE sip:bob@198.51.100.6:5060 SIP/2.0", "SIP/2.0 200 OK"])
        #expect(session.errors.isEmpty, "\(session.errors)")
        #expect(session.pinholes.count == 1)
        #expect(Set(session.pinholes[0].relaysTo) == ["192.0.2.20:18000", "192.0.2.20:18001", "198.51.100.6:10000",
                                                      "198.51.100.6:10001"])
        #expect(session.pinholes[0].admits == "192.0.2.20")
        // Towards the PBX the SDP names the gateway's inside side; towards the caller the public address.
        let ok = try #require(session.rewrites.first { session.messages[$0.message].text == "SIP/2.0 200 OK" })
        #expect(ok.after.contains("c=IN IP4 203.0.113.7"))
        #expect(ok.before.contains("c=IN IP4 198.51.100.6"))
        #expect(session.dataFlows == ReplaySession.DataFlows(observed: 1, predicted: 1, covered: 1))
    }

    @Test func ipv4FragmentsAreReassembledOutOfOrderAndOverlapsKeepTheFirstBytes() throws {
        let whole = try replayCrafted(PacketScript.frames(Self.call()))
        var identification = 100
        let fragmented = Self.call { source, destination, payload in
            identification += 1
            let datagram = Packet.udp(source.1, destination.1, payload: payload)
            var fragments = Packet.ipv4Fragments(source.0, destination.0, protocolNumber: 17, payload: datagram,
                                                 size: 96, identification: identification)
            guard fragments.count > 2 else { return fragments.reversed() }
            // The second fragment first, then a copy of it carrying other bytes (ignored: the first bytes win),
            // then the rest in reverse order, and a late duplicate after the datagram is complete.
            var forged = fragments[1]
            for index in 20..<forged.count { forged[index] = UInt8(ascii: "Z") }
            let second = fragments.remove(at: 1)
            return [second, forged] + fragments.reversed() + [second]
        }
        let report = try replayCrafted(PacketScript.frames(fragmented))
        #expect(report.capture.reassembledDatagrams >= 2)
        #expect(report.capture.incompleteDatagrams == 0)
        #expect(Digest(report) == Digest(whole))
    }

    @Test func incompleteFragmentsAreReported() throws {
        let datagram = Packet.udp(5062, 5060, payload: Array(CraftedSessions.invite(from: Self.caller, to: Self.pbx,
                                                                                       mediaPort: 18000).utf8))
        let fragments = Packet.ipv4Fragments(Self.caller.0, Self.pbx.0, protocolNumber: 17, payload: datagram,
                                             size: 200, identification: 9)
        let report = try replayCrafted(PacketScript.frames(Array(fragments.dropLast())))
        #expect(report.sessions.isEmpty)
        #expect(report.capture.incompleteDatagrams == 1)
        #expect(report.problems.contains { $0.contains("incomplete IP datagram 192.0.2.20 -> 198.51.100.6 id 9") })
    }

    @Test func ipv6ExtensionHeadersAndFragmentsAreReadThrough() throws {
        let caller = ("2001:db8::20", 5062)
        let pbx = ("2001:db8:1::6", 5060)
        let plain = try replayCrafted(PacketScript.frames(Self.call(pbx: pbx, caller: caller)))
        #expect(plain.sessions.first?.dataFlows.covered == 1)
        var identification: UInt32 = 7
        let wrapped = Self.call(pbx: pbx, caller: caller) { source, destination, payload in
            let datagram = Packet.udp(source.1, destination.1, payload: payload)
            identification += 1
            if payload.count > 300 {
                // Fragmented, the fragments in reverse order.
                return Packet.ipv6Fragments(source.0, destination.0, nextHeader: 17, payload: datagram, size: 128,
                                            identification: identification).reversed()
            }
            // Hop-by-hop options and destination options before the UDP header.
            return [Packet.ipv6(source.0, destination.0, nextHeader: 17, payload: datagram,
                                extensions: [(0, [1, 4, 0, 0, 0, 0]), (60, [1, 4, 0, 0, 0, 0])])]
        }
        let report = try replayCrafted(PacketScript.frames(wrapped))
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.capture.reassembledDatagrams == 2)
        #expect(Digest(report) == Digest(plain))
    }

    @Test func sipOverTCPIsFramedByContentLengthAcrossAndWithinSegments() throws {
        let client = ("192.0.2.30", 40500)
        let invite = CraftedSessions.invite(from: client, to: Self.pbx, mediaPort: 18000, transport: "TCP")
        let ok = CraftedSessions.ok(to: invite, from: Self.pbx, mediaPort: 10000)
        let options = "OPTIONS sip:bob@198.51.100.6 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.30:40500;branch=z9hG4bK-o1\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=o\r\nTo: <sip:bob@example.com>\r\n"
            + "Call-ID: options-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        let script = PacketScript()
        let connection = script.connect(client: client, server: Self.pbx)
        script.send(connection, fromClient: true, invite, segmentSize: 50)  // one message, many segments
        script.send(connection, fromClient: false, ok, segmentSize: 1460)
        script.send(connection, fromClient: true, "\r\n\r\n" + options + options.replacingOccurrences(
            of: "branch=z9hG4bK-o1", with: "branch=z9hG4bK-o2").replacingOccurrences(of: "CSeq: 1", with: "CSeq: 2"))
        script.close(connection)
        let report = try replayCrafted(PacketScript.frames(script.packets.map(\.bytes)))
        let session = try #require(report.sessions.first)
        #expect(session.transport == "tcp")
        #expect(session.messages.map(\.text) == ["INVITE sip:bob@198.51.100.6:5060 SIP/2.0", "SIP/2.0 200 OK",
                                                  "OPTIONS sip:bob@198.51.100.6 SIP/2.0",
                                                  "OPTIONS sip:bob@198.51.100.6 SIP/2.0"])
        #expect(session.errors.isEmpty, "\(session.errors)")
        #expect(session.pinholes.count == 1)
    }

    @Test func sipIsFoundByContentOnOtherPorts() throws {
        let pbx = ("198.51.100.6", 5080)
        let udp = try replayCrafted(PacketScript.frames(Self.call(pbx: pbx, caller: ("192.0.2.20", 6000))))
        #expect(udp.sessions.first?.detectedBy == "content (SIP start line)")
        #expect(udp.sessions.first?.dataFlows.covered == 1)

        // Over TCP, HTTP on 5060 is not searched for SIP: the stream is refused as the proxy refuses it.
        let script = PacketScript()
        let connection = script.connect(client: ("192.0.2.30", 40501), server: ("198.51.100.6", 5060))
        script.send(connection, fromClient: true, "POST / HTTP/1.1\r\nContent-Length: 60\r\n\r\n"
            + "REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bK1\r\n\r\n")
        let slipstream = try replayCrafted(PacketScript.frames(script.packets.map(\.bytes)))
        let session = try #require(slipstream.sessions.first)
        #expect(session.messages.isEmpty)
        #expect(session.pinholes.isEmpty)
        #expect(session.errors.first?.problem.contains("is not SIP at a message boundary") == true)
        // On another port, an HTTP stream is not SIP at all.
        let other = PacketScript()
        let web = other.connect(client: ("192.0.2.30", 40502), server: ("198.51.100.6", 8080))
        other.send(web, fromClient: true, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nINVITE sip:x SIP/2.0\r\n")
        #expect(try replayCrafted(PacketScript.frames(other.packets.map(\.bytes))).sessions.isEmpty)
    }

    @Test func keepAlivesAndJunkOnTheSIPPortAreReported() throws {
        let script = PacketScript()
        script.udp(Self.caller, Self.pbx, Array(CraftedSessions.invite(from: Self.caller, to: Self.pbx,
                                                                       mediaPort: 18000).utf8))
        script.udp(Self.caller, Self.pbx, Array("\r\n\r\n".utf8))
        script.udp(Self.caller, Self.pbx, [0, 0, 0, 0])
        let report = try replayCrafted(PacketScript.frames(script.packets.map(\.bytes)))
        let session = try #require(report.sessions.first)
        #expect(session.messages.count == 2)
        #expect(session.notes.contains { $0.hasPrefix("1 keep-alive") })
        #expect(session.errors.count == 1)
        #expect(session.errors.first?.action == "dropped")
    }
}
