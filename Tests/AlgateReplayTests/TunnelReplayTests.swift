import AlgateReplay
import Foundation
import Testing

/// A crafted call carried in every tunnel the replay decapsulates (GRE, ERSPAN I/II/III, VXLAN, IP-in-IP, nested)
/// replays exactly as the same call does bare; a tunnel it cannot read past is counted and reported by kind.
@Suite struct TunnelReplayTests {
    /// How each IP packet of the call is wrapped, outer headers included (the frame's Ethernet header aside).
    enum Encapsulation: String, CaseIterable, Sendable {
        case greWithChecksumKeyAndSequence
        case greOverIPv6
        case greTransparentEthernet
        case erspanTypeI
        case erspanTypeII
        case erspanTypeIII
        case erspanTypeIIIWithPlatformSubheader
        case erspanTypeIIICarryingIP
        case vxlan
        case ipInIP
        case vxlanInGREInIPv6InIPv4

        func wrap(_ inner: [UInt8]) -> [UInt8] {
            let innerType = inner[0] >> 4 == 6 ? 0x86dd : 0x0800
            let frame = Packet.ethernet(inner)
            switch self {
            case .greWithChecksumKeyAndSequence:
                return Packet.ip("10.9.0.1", "10.9.0.2", 47,
                                 Packet.gre(protocolType: innerType, inner, checksum: true, key: 77, sequence: 5))
            case .greOverIPv6:
                return Packet.ip("2001:db8:9::1", "2001:db8:9::2", 47,
                                 Packet.gre(protocolType: innerType, inner, key: 1))
            case .greTransparentEthernet:
                return Packet.ip("10.9.0.1", "10.9.0.2", 47, Packet.gre(protocolType: 0x6558, frame, key: 9))
            case .erspanTypeI:
                return Packet.ip("10.9.0.1", "10.9.0.2", 47, Packet.gre(protocolType: 0x88be, frame))
            case .erspanTypeII:
                return Packet.ip("10.9.0.1", "10.9.0.2", 47,
                                 Packet.gre(protocolType: 0x88be, Packet.erspanII(frame), sequence: 3))
            case .erspanTypeIII:
                return Packet.ip("10.9.0.1", "10.9.0.2", 47,
                                 Packet.gre(protocolType: 0x22eb, Packet.erspanIII(frame), sequence: 3))
            case .erspanTypeIIIWithPlatformSubheader:
                return Packet.ip("10.9.0.1", "10.9.0.2", 47,
                                 Packet.gre(protocolType: 0x22eb, Packet.erspanIII(frame, platform: true), sequence: 3))
            case .erspanTypeIIICarryingIP:
                return Packet.ip("10.9.0.1", "10.9.0.2", 47,
                                 Packet.gre(protocolType: 0x22eb, Packet.erspanIII(inner, frameType: 2), sequence: 3))
            case .vxlan:
                return Packet.ip("10.9.0.1", "10.9.0.2", 17, Packet.udp(49_152, 4789, payload: Packet.vxlan(frame)))
            case .ipInIP:
                return Packet.ip("10.9.0.1", "10.9.0.2", inner[0] >> 4 == 6 ? 41 : 4, inner)
            case .vxlanInGREInIPv6InIPv4:
                let vxlan = Packet.ip("10.8.0.1", "10.8.0.2", 17,
                                      Packet.udp(50_000, 4789, payload: Packet.vxlan(frame)))
                let gre = Packet.ip("2001:db8:9::1", "2001:db8:9::2", 47, Packet.gre(protocolType: 0x0800, vxlan))
                return Packet.ip("10.9.0.1", "10.9.0.2", 41, gre)
            }
        }

        /// The tunnel layers each packet goes through, as the report counts them.
        var kinds: [String] {
            switch self {
            case .greWithChecksumKeyAndSequence, .greOverIPv6, .greTransparentEthernet: return ["GRE"]
            case .erspanTypeI: return ["ERSPAN type I"]
            case .erspanTypeII: return ["ERSPAN type II"]
            case .erspanTypeIII, .erspanTypeIIIWithPlatformSubheader, .erspanTypeIIICarryingIP:
                return ["ERSPAN type III"]
            case .vxlan: return ["VXLAN"]
            case .ipInIP: return []  // IPv4-in-IP or IPv6-in-IP, by the inner packet
            case .vxlanInGREInIPv6InIPv4: return ["IPv6-in-IP", "GRE", "VXLAN"]
            }
        }
    }

    static let ipv6Caller = ("2001:db8:2::20", 5062)
    static let ipv6PBX = ("2001:db8:1::6", 5060)

    /// The crafted UDP call (IPv4 or IPv6), each IP packet passed through `wrap`.
    static func call(ipv6: Bool, _ wrap: @escaping ([UInt8]) -> [[UInt8]]) -> [[UInt8]] {
        let (pbx, caller) = ipv6 ? (ipv6PBX, ipv6Caller) : (SIPAndIPReplayTests.pbx, SIPAndIPReplayTests.caller)
        return SIPAndIPReplayTests.call(pbx: pbx, caller: caller) { source, destination, payload in
            wrap(Packet.ip(source.0, destination.0, 17, Packet.udp(source.1, destination.1, payload: payload)))
        }
    }

    static func bare(ipv6: Bool) throws -> ReplayReport {
        try replayCrafted(PacketScript.frames(call(ipv6: ipv6) { [$0] }))
    }

    @Test(arguments: Encapsulation.allCases, [false, true])
    func aCallInATunnelReplaysAsTheBareCallDoes(_ encapsulation: Encapsulation, ipv6: Bool) throws {
        let bare = try Self.bare(ipv6: ipv6)
        let packets = Self.call(ipv6: ipv6) { [encapsulation.wrap($0)] }
        let report = try replayCrafted(PacketScript.frames(packets))
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.sessions.count == 1)
        #expect(report.sessions.first?.dataFlows == ReplaySession.DataFlows(observed: 1, predicted: 1, covered: 1))
        #expect(Digest(report) == Digest(bare))
        let kinds = encapsulation == .ipInIP ? [ipv6 ? "IPv6-in-IP" : "IPv4-in-IP"] : encapsulation.kinds
        #expect(report.capture.decapsulated == Dictionary(uniqueKeysWithValues: kinds.map { ($0, packets.count) }))
        #expect(report.capture.notDecapsulated.isEmpty)
        // The tunnel's own outer flow (VXLAN's UDP) is no flow of the capture's sessions.
        #expect(report.capture.udpFlows == bare.capture.udpFlows)
        #expect(report.capture.unrelatedFlows == 0)
        #expect(ReplayReportFormatter.text(report).contains("tunnels decapsulated: "
            + kinds.sorted().map { "\($0) \(packets.count)" }.joined(separator: ", ")))
    }

    @Test func outerFragmentsAreReassembledBeforeTheTunnelIsOpened() throws {
        var identification = 300
        let packets = Self.call(ipv6: false) { inner in
            identification += 1
            let gre = Packet.gre(protocolType: 0x6558, Packet.ethernet(inner), key: 1)
            return Packet.ipv4Fragments("10.9.0.1", "10.9.0.2", protocolNumber: 47, payload: gre, size: 128,
                                        identification: identification).reversed()
        }
        let report = try replayCrafted(PacketScript.frames(packets))
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.capture.reassembledDatagrams == 8)  // every packet of the call is longer than a fragment
        #expect(report.capture.decapsulated == ["GRE": 8])
        #expect(Digest(report) == Digest(try Self.bare(ipv6: false)))
    }

    @Test func tunnelsNestFourDeepAndAFifthIsReported() throws {
        func nested(_ depth: Int) -> ([UInt8]) -> [[UInt8]] {
            { inner in [(0..<depth).reduce(inner) { packet, _ in Packet.ip("10.9.0.1", "10.9.0.2", 4, packet) }] }
        }
        let four = try replayCrafted(PacketScript.frames(Self.call(ipv6: false, nested(4))))
        #expect(four.problems.isEmpty, "\(four.problems)")
        #expect(four.capture.decapsulated == ["IPv4-in-IP": 32])
        #expect(Digest(four) == Digest(try Self.bare(ipv6: false)))

        let five = try replayCrafted(PacketScript.frames(Self.call(ipv6: false, nested(5))))
        #expect(five.sessions.isEmpty)
        #expect(five.capture.notDecapsulated == ["tunnels nested more than 4 deep": 8])
        #expect(five.capture.undecodableFrames == 8)
        #expect(five.problems == ["8 frame(s) not decoded: tunnels nested more than 4 deep (first: frame 1)"])
    }

    @Test func aTunnelThatCannotBeOpenedIsReportedByKindInTextAndJSON() throws {
        let frame = Packet.ethernet(Packet.ip("192.0.2.20", "198.51.100.6", 17, Packet.udp(5062, 5060, payload: [1])))
        let inner = Packet.ip("192.0.2.20", "198.51.100.6", 17, Packet.udp(5062, 5060, payload: [1]))
        // The whole call in PPTP's enhanced GRE (version 1, PPP inside): zero flows, but never silently.
        var packets = Self.call(ipv6: false) { [Packet.ip("10.9.0.1", "10.9.0.2", 47,
                                                          Packet.gre(protocolType: 0x880b, $0, version: 1))] }
        packets += [
            Packet.ip("10.9.0.1", "10.9.0.2", 47, Packet.gre(protocolType: 0x883e, inner)),    // WCCP
            Packet.ip("10.9.0.1", "10.9.0.2", 47, [0x20, 0x00, 0x08, 0x00, 0, 0]),             // key bit, no key
            Packet.ip("10.9.0.1", "10.9.0.2", 47, Packet.gre(protocolType: 0x88be, [0x20, 0, 0, 7] + frame,
                                                             sequence: 1)),                    // ERSPAN II version 2
            Packet.ip("10.9.0.1", "10.9.0.2", 47, Packet.gre(protocolType: 0x22eb, Packet.erspanIII(frame,
                                                             frameType: 5), sequence: 1)),
            Packet.ip("10.9.0.1", "10.9.0.2", 17, Packet.udp(1234, 4789, payload: Packet.vxlan(frame, flags: 0))),
            Packet.ip("10.9.0.1", "10.9.0.2", 17, Packet.udp(1234, 4789, payload: [0x08, 0, 0])),
        ]
        let report = try replayCrafted(PacketScript.frames(packets))
        #expect(report.sessions.isEmpty)
        let expected = ["GRE version 1 (PPTP)": 8, "GRE protocol type 0x883e": 1, "GRE header truncated": 1,
                        "ERSPAN type II header with version 2": 1, "ERSPAN type III frame type 5": 1,
                        "VXLAN header without the I flag": 1, "VXLAN header truncated": 1]
        #expect(report.capture.notDecapsulated == expected)
        #expect(report.capture.decapsulated.isEmpty)
        #expect(report.capture.undecodableFrames == 14)
        #expect(report.capture.udpFlows == 0)
        #expect(report.problems.first == "8 frame(s) not decoded: GRE version 1 (PPTP) (first: frame 1)")
        #expect(report.problems.contains("1 frame(s) not decoded: VXLAN header truncated (first: frame 14)"))

        let text = ReplayReportFormatter.text(report)
        #expect(text.contains("problem: 8 frame(s) not decoded: GRE version 1 (PPTP) (first: frame 1)\n"), "\(text)")
        #expect(text.contains("problem: 1 frame(s) not decoded: GRE protocol type 0x883e (first: frame 9)\n"))
        #expect(text.contains("no FTP or SIP control session in this capture"))

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(report), as: UTF8.self)
        #expect(json.contains(#""notDecapsulated":{"ERSPAN type II header with version 2":1,"#), "\(json)")
        #expect(try JSONDecoder().decode(ReplayReport.self, from: Data(json.utf8)) == report)
    }
}
