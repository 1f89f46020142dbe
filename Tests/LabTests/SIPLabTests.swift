import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SIP calls through the NAT lab. A SIPp phone on the inside host (10.77.0.2, behind masquerade) registers with
/// Kamailio on the outside host (203.0.113.2:5060); a SIPp caller outside calls it through Kamailio, and the phone
/// calls a SIPp UAS outside (203.0.113.2:5070) through Kamailio. RTP is uac_pcap's g711a.pcap, echoed by the UAS;
/// it is counted where it arrives, by nftables counters on the end hosts (not by algate's own counters).
///
/// Three gateways: masquerade alone (the inbound call fails), the kernel's SIP helper (nf_conntrack_sip +
/// nf_nat_sip through a `ct helper` rule: the reference), and algate in reverse mode on the gateway as the phone's
/// outbound proxy, with each pinhole backend.
@Suite(.serialized, .enabled("needs root, `ip netns`, nft, sipp and kamailio") { SIPLab.isAvailable })
struct SIPLabTests {
    static let expected = SIPLab.rtpPacketsPerCall
    /// What algate's phones send to: its listener on the gateway's inside address.
    static let algate = "\(SIPLab.gatewayInside):5060"

    /// A lab (with `options`), its SIP peers and a running Kamailio; `body`; then every process stopped, and
    /// nothing left: no listening socket, no process, no algate table, no namespace.
    func withLab(_ options: [String] = [], _ body: (SIPLab) throws -> Void) throws {
        let lab = try Lab.up(options)
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let peers = try SIPLab(lab: lab)
        defer { peers.remove() }
        let kamailio = try peers.kamailio()
        defer {
            kamailio.stop()
            // Kamailio's workers exit after its main process; the leftovers are what is there after that.
            var left: [String] = []
            _ = Run.waitUntil(seconds: 10) { left = peers.leftovers(); return left.isEmpty }
            #expect(left.isEmpty, "left behind in the lab: \(left)")
        }
        try body(peers)
    }

    /// The UDP inbound call: the phone (registered already) answers with a UAS on its SIP port; RTP both ways.
    /// Returns whether the call completed (the caller's and the phone's counters) and the RTP each end received.
    /// `reaches`: whether the call is expected to reach the phone (else the phone is stopped once the caller is done).
    func inboundCall(_ peers: SIPLab, reaches: Bool = true)
        throws -> (caller: Int?, phone: Int?, atPhone: Int, atCaller: Int, context: String) {
        let phone = try peers.startPhoneUAS()
        defer { phone.stop() }
        try peers.callPhone()
        // The UAS exits by itself after its one call (and SIPp's timewait); SIGTERM ends it otherwise.
        if !reaches || !Run.waitUntil(seconds: 10, { !phone.process.isRunning }) { phone.stop() }
        let context = "\(peers.summary("caller"))\n\(peers.summary("phone"))\n--- kamailio\n"
            + peers.kamailioLines("<script>").suffix(12).joined(separator: "\n")
        return (peers.successfulCalls("caller"), peers.successfulCalls("phone"),
                peers.rtpPackets(.inside, SIPLab.Port.phoneMedia), peers.rtpPackets(.outside, SIPLab.Port.callerMedia),
                context)
    }

    /// The outbound call: the phone calls the UAS outside, sending to `via`; RTP both ways.
    func outboundCall(_ peers: SIPLab, via: String, tcp: Bool = false)
        throws -> (phone: Int?, uas: Int?, atUAS: Int, atPhone: Int, context: String) {
        let uas = try peers.startOutsideUAS()
        defer { uas.stop() }
        try peers.callOut(via: via, tcp: tcp)
        if !Run.waitUntil(seconds: 10, { !uas.process.isRunning }) { uas.stop() }
        let context = "\(peers.summary("outcall"))\n\(peers.summary("uas"))\n--- kamailio\n"
            + peers.kamailioLines("<script>").suffix(12).joined(separator: "\n")
        return (peers.successfulCalls("outcall"), peers.successfulCalls("uas"),
                peers.rtpPackets(.outside, SIPLab.Port.uasMedia), peers.rtpPackets(.inside, SIPLab.Port.phoneCallerMedia),
                context)
    }

    /// Both ends got the call's RTP: g711a.pcap's packets, less at most two.
    func rtpArrived(_ count: Int) -> Bool { count >= Self.expected - 2 }

    // MARK: Without algate

    /// Masquerade alone: the phone registers directly, Kamailio saves its private contact (10.77.0.2), and the
    /// inbound call cannot reach it: the outside host has no route inside, and the gateway forwards nothing new
    /// inbound.
    @Test func withoutAlgateTheInboundCallFails() throws {
        try withLab { peers in
            let register = try peers.register(via: SIPLab.registrarEndpoint)
            #expect(register.status == 0, "\(peers.summary("register"))")
            #expect(!peers.kamailioLines("saved sip:phone@").isEmpty)

            let call = try inboundCall(peers, reaches: false)
            #expect(peers.kamailioLines("lookup -> ").contains { $0.contains("sip:phone@10.77.0.2:5060") }, "\(call.context)")
            #expect(call.caller == 0 && peers.failedCalls("caller") == 1, "the inbound call passed masquerade alone: \(call.context)")
            #expect(call.phone == 0, "\(call.context)")
            #expect(!peers.read("phone_msgs.log").contains("INVITE sip:"), "an INVITE reached the phone")
            #expect(call.atPhone == 0, "RTP reached the phone: \(call.atPhone)")
        }
    }

    // MARK: The kernel's SIP helper

    /// nf_conntrack_sip + nf_nat_sip on UDP 5060: the helper rewrites the REGISTER's Contact and the SDP, so both
    /// calls work over UDP with RTP both ways. This is what algate is compared with.
    @Test func theKernelHelperCarriesBothCallsOverUDP() throws {
        try withLab(["--ct-helper", "sip"]) { peers in
            let register = try peers.register(via: SIPLab.registrarEndpoint)
            #expect(register.status == 0, "\(peers.summary("register"))")

            let inbound = try inboundCall(peers)
            // The helper put the gateway's address in the binding.
            #expect(peers.kamailioLines("lookup -> ").contains { $0.contains("sip:phone@\(SIPLab.gatewayOutside):") },
                    "\(inbound.context)")
            #expect(inbound.caller == 1 && inbound.phone == 1, "inbound call with the kernel helper: \(inbound.context)")
            #expect(rtpArrived(inbound.atPhone) && rtpArrived(inbound.atCaller),
                    "inbound RTP with the kernel helper: at the phone \(inbound.atPhone), at the caller \(inbound.atCaller)")

            let outbound = try outboundCall(peers, via: SIPLab.registrarEndpoint)
            #expect(outbound.phone == 1 && outbound.uas == 1, "outbound call with the kernel helper: \(outbound.context)")
            #expect(rtpArrived(outbound.atUAS) && rtpArrived(outbound.atPhone),
                    "outbound RTP with the kernel helper: at the UAS \(outbound.atUAS), at the phone \(outbound.atPhone)")
        }
    }

    /// The TCP phone of the algate test, registering with Kamailio directly through the helper: the outbound call
    /// over TCP works (responses come back on the phone's connection), the inbound call does not: the helper
    /// translates the REGISTER's contact, Kamailio sends the INVITE on the phone's connection, and the gateway
    /// drops it (every retransmission again) until Kamailio gives up with 408.
    @Test func theKernelHelperCarriesOutboundButNotInboundCallsOverTCP() throws {
        try withLab(["--ct-helper", "sip"]) { peers in
            let phone = try peers.startPhoneTCP(via: SIPLab.registrarEndpoint)
            defer { phone.stop() }
            let registered = Run.waitUntil(seconds: 10) {
                !phone.process.isRunning || peers.read("tphone_logs.log").contains("200 OK binding")
            }
            try #require(registered && phone.process.isRunning, "\(peers.summary("tphone"))")

            try peers.callPhone()
            let lookups = peers.kamailioLines("lookup -> ")
            #expect(lookups.contains { $0.contains("sip:phone@\(SIPLab.gatewayOutside):\(SIPLab.Port.phoneTCP);transport=TCP") },
                    "the helper did not translate the TCP REGISTER: \(lookups)")
            #expect(peers.successfulCalls("caller") == 0 && peers.read("caller_msgs.log").contains("SIP/2.0 408"),
                    "inbound call over TCP with the kernel helper: \(peers.summary("caller"))")
            #expect(!peers.read("tphone_logs.log").contains("phone: INVITE"), "\(peers.read("tphone_logs.log"))")
            #expect(peers.rtpPackets(.inside, SIPLab.Port.phoneMedia) == 0)
            phone.stop()

            let outbound = try outboundCall(peers, via: SIPLab.registrarEndpoint, tcp: true)
            #expect(outbound.phone == 1 && outbound.uas == 1, "outbound call over TCP with the kernel helper: \(outbound.context)")
            #expect(rtpArrived(outbound.atUAS) && rtpArrived(outbound.atPhone),
                    "outbound RTP with the kernel helper: at the UAS \(outbound.atUAS), at the phone \(outbound.atPhone)")
        }
    }

    /// A raw TCP phone (split_phone.py) registering directly. In one segment, the helper translates the contact,
    /// but the INVITE Kamailio sends back on the phone's connection is dropped at the gateway (as above). In two
    /// segments (split inside the Contact header) the helper does not even translate it: nf_conntrack_sip parses
    /// a TCP segment only when it holds whole messages, so Kamailio binds the private 10.77.0.2. Either way no
    /// INVITE reaches the phone; through algate (below) the same phone gets it.
    @Test(arguments: [false, true])
    func theKernelHelperLosesTheInboundCallOfARawTCPPhone(split: Bool) throws {
        try withLab(["--ct-helper", "sip"]) { peers in
            let phone = try peers.startSplitPhone(via: (SIPLab.registrar, SIPLab.registrarPort), split: split)
            defer { phone.stop(signal: SIGKILL) }
            try peers.callPhone()
            // The caller has its final answer: the INVITE has reached the phone by now, or it never will.
            let answered = Run.waitUntil(seconds: 2) { !phone.process.isRunning }
            phone.stop(signal: SIGKILL)
            #expect(!answered && !phone.output.contains("RESULT INVITE"), "an INVITE reached the phone: \(phone.output)")
            #expect(peers.successfulCalls("caller") == 0 && !peers.read("caller_msgs.log").contains("486 Busy Here"))
            let lookups = peers.kamailioLines("lookup -> ")
            let bound = split ? "sip:phone@10.77.0.2:\(SIPLab.Port.splitPhone)" : "sip:phone@\(SIPLab.gatewayOutside):"
            #expect(lookups.last?.contains(bound) == true, "Kamailio's binding (\(split ? "split" : "whole") REGISTER): \(lookups)")
        }
    }

    // MARK: algate

    /// algate in reverse mode on the gateway, the phone's outbound proxy on 10.77.0.1:5060, Kamailio upstream
    /// (the listener takes the wildcard address: Kamailio sends to the contact on inside-address, 203.0.113.1):
    /// registration, the inbound call and the outbound call over UDP, RTP both ways through its pinholes.
    @Test(arguments: PinholeBackend.allCases)
    func algateCarriesBothCallsOverUDP(backend: PinholeBackend) throws {
        try withLab { peers in
            let algate = try LabAlgate.start(peers, backend: backend, sip: """
                listen = "0.0.0.0:5060"
                upstream = "\(SIPLab.registrarEndpoint)"
                public-address = "\(SIPLab.gatewayInside)"
                inside-address = "\(SIPLab.gatewayOutside)"
                transports = ["udp"]
                """)
            defer { algate.stop() }

            let register = try peers.register(via: Self.algate)
            #expect(register.status == 0, "\(peers.summary("register"))\n\(algate.log)")
            // The phone gets its own contact back; Kamailio holds the gateway's.
            #expect(peers.read("register_logs.log").contains("<sip:phone@\(SIPLab.phone):5060;transport=UDP>"),
                    "\(peers.read("register_logs.log"))")
            #expect(algate.lines("registration binding").count == 1, "\(algate.log)")

            let inbound = try inboundCall(peers)
            #expect(peers.kamailioLines("lookup -> ").contains {
                $0.contains("@\(SIPLab.gatewayOutside):5060") && $0.contains("algate=")
            }, "Kamailio's binding is not algate's: \(inbound.context)")
            #expect(inbound.caller == 1 && inbound.phone == 1, "inbound call through algate: \(inbound.context)\n\(algate.log)")
            #expect(rtpArrived(inbound.atPhone) && rtpArrived(inbound.atCaller),
                    "inbound RTP through algate: at the phone \(inbound.atPhone), at the caller \(inbound.atCaller)")

            let outbound = try outboundCall(peers, via: Self.algate)
            #expect(outbound.phone == 1 && outbound.uas == 1, "outbound call through algate: \(outbound.context)\n\(algate.log)")
            #expect(rtpArrived(outbound.atUAS) && rtpArrived(outbound.atPhone),
                    "outbound RTP through algate: at the UAS \(outbound.atUAS), at the phone \(outbound.atPhone)")

            #expect(algate.stop() == 0, "\(algate.log)")
            try expectPinholesClosed(algate, backend: backend, calls: 2)
        }
    }

    /// The same over TCP between the phone and algate (algate keeps its own TCP connection to Kamailio). Kamailio
    /// reaches a TCP contact by connecting to it, and algate's contact names its outside address
    /// (inside-address, 203.0.113.1:5060): the listener must listen there too, so it takes the wildcard address.
    @Test(arguments: PinholeBackend.allCases)
    func algateCarriesBothCallsOverTCP(backend: PinholeBackend) throws {
        try withLab { peers in
            let algate = try LabAlgate.start(peers, backend: backend, sip: """
                listen = "0.0.0.0:5060"
                upstream = "\(SIPLab.registrarEndpoint)"
                public-address = "\(SIPLab.gatewayInside)"
                inside-address = "\(SIPLab.gatewayOutside)"
                """)
            defer { algate.stop() }

            let phone = try peers.startPhoneTCP(via: Self.algate)
            defer { phone.stop() }
            let registered = Run.waitUntil(seconds: 10) {
                !phone.process.isRunning || peers.read("tphone_logs.log").contains("200 OK binding")
            }
            #expect(registered && peers.read("tphone_logs.log").contains("<sip:phone@\(SIPLab.phone):\(SIPLab.Port.phoneTCP);transport=TCP>"),
                    "\(peers.summary("tphone"))\n\(algate.log)")
            try #require(registered)

            try peers.callPhone()
            let complete = Run.waitUntil(seconds: 10) { peers.read("tphone_logs.log").contains("phone: call complete") }
            let context = "\(peers.summary("caller"))\n\(peers.summary("tphone"))\n--- phone log\n"
                + "\(peers.read("tphone_logs.log").suffix(600))\n--- kamailio\n"
                + peers.kamailioLines("<script>").suffix(12).joined(separator: "\n") + "\n--- algate\n\(algate.log.suffix(3000))"
            #expect(peers.successfulCalls("caller") == 1 && complete, "inbound call to the TCP phone: \(context)")
            let atPhone = peers.rtpPackets(.inside, SIPLab.Port.phoneMedia)
            let atCaller = peers.rtpPackets(.outside, SIPLab.Port.callerMedia)
            #expect(rtpArrived(atPhone) && rtpArrived(atCaller), "inbound RTP (TCP signalling): at the phone \(atPhone), at the caller \(atCaller)")

            let outbound = try outboundCall(peers, via: Self.algate, tcp: true)
            #expect(outbound.phone == 1 && outbound.uas == 1, "outbound call over TCP through algate: \(outbound.context)\n\(algate.log.suffix(3000))")
            #expect(rtpArrived(outbound.atUAS) && rtpArrived(outbound.atPhone),
                    "outbound RTP (TCP signalling): at the UAS \(outbound.atUAS), at the phone \(outbound.atPhone)")

            phone.stop()
            #expect(algate.stop() == 0, "\(algate.log)")
            try expectPinholesClosed(algate, backend: backend, calls: 2)
        }
    }

    /// The REGISTER the kernel helper misses (two TCP segments, split inside the Contact header) through algate:
    /// it frames the stream, so the binding is its own and the inbound INVITE reaches the phone's connection.
    @Test(arguments: PinholeBackend.allCases)
    func algateTakesARegisterSplitAcrossTCPSegments(backend: PinholeBackend) throws {
        try withLab { peers in
            let algate = try LabAlgate.start(peers, backend: backend, sip: """
                listen = "0.0.0.0:5060"
                upstream = "\(SIPLab.registrarEndpoint)"
                public-address = "\(SIPLab.gatewayInside)"
                inside-address = "\(SIPLab.gatewayOutside)"
                """)
            defer { algate.stop() }
            let phone = try peers.startSplitPhone(via: (SIPLab.gatewayInside, 5060), split: true)
            defer { phone.stop(signal: SIGKILL) }
            try peers.callPhone()
            let invited = Run.waitUntil(seconds: 10) { !phone.process.isRunning }
            #expect(invited && phone.output.contains("RESULT INVITE"), "\(phone.output)\n\(peers.summary("caller"))\n\(algate.log)")
            #expect(peers.kamailioLines("lookup -> ").last?.contains("@\(SIPLab.gatewayOutside):5060") == true)
            // The phone answered 486: the caller's call fails, as it should.
            #expect(peers.read("caller_msgs.log").contains("SIP/2.0 486 Busy Here"), "\(peers.summary("caller"))")
            #expect(algate.stop() == 0, "\(algate.log)")
        }
    }

    // MARK: RTCP (RFC 3605)

    /// The phone's answer names its RTCP port with `a=rtcp:30011` (not RTP + 1). The caller sends RTCP to the
    /// address and `a=rtcp` port of the answer it received. The kernel helper translates c= and m= but not a=rtcp,
    /// and expects RTCP on RTP + 1 only: nothing reaches 30011. algate rewrites a=rtcp to its pinhole's RTCP port
    /// and relays to 30011.
    @Test(arguments: ["kernel helper", "algate userspace", "algate nftables"])
    func rtcpToThePortOfARTCPLine(through gateway: String) throws {
        try withLab(gateway == "kernel helper" ? ["--ct-helper", "sip"] : []) { peers in
            var algate: LabAlgate?
            defer { algate?.stop() }
            var via = SIPLab.registrarEndpoint
            if gateway.hasPrefix("algate") {
                via = Self.algate
                algate = try LabAlgate.start(peers, backend: gateway.hasSuffix("nftables") ? .nftables : .userspace, sip: """
                    listen = "0.0.0.0:5060"
                    upstream = "\(SIPLab.registrarEndpoint)"
                    public-address = "\(SIPLab.gatewayInside)"
                    inside-address = "\(SIPLab.gatewayOutside)"
                    transports = ["udp"]
                    """)
            }
            let register = try peers.register(via: via)
            #expect(register.status == 0, "\(peers.summary("register"))")
            let phone = try peers.startPhoneRTCP()
            defer { phone.stop() }
            try peers.callPhoneRTCP()
            if !Run.waitUntil(seconds: 10, { !phone.process.isRunning }) { phone.stop() }
            let rtcp = peers.rtpPackets(.inside, SIPLab.Port.phoneRTCP)
            let answer = peers.read("caller_logs.log")
            let context = "RTCP at the phone's a=rtcp port: \(rtcp); \(answer)\(peers.read("rtcp_send.log"))\n"
                + "\(peers.summary("caller"))\n\(peers.summary("phone"))\n\(algate?.log.suffix(2500) ?? "")"
            #expect(peers.successfulCalls("caller") == 1 && peers.read("rtcp_send.log").contains("sent 20"), "\(context)")
            if gateway == "kernel helper" {
                // The answer still says a=rtcp:30011 (untranslated), and the gateway drops what is sent there.
                #expect(answer.contains("RTCP to \(SIPLab.gatewayOutside):30011"), "\(context)")
                #expect(rtcp == 0, "\(context)")
            } else {
                #expect(!answer.contains(":30011"), "algate left a=rtcp untranslated: \(context)")
                #expect(rtcp >= 18, "\(context)")
            }
        }
    }

    // MARK: IPv6

    /// What stands between the IPv6 phone and the outside: the firewall alone, the kernel helper, or algate.
    enum IPv6Gateway: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case firewallOnly, kernelHelper, algateUserspace, algateNftables
        var testDescription: String { rawValue }
    }

    /// IPv6 has no NAT here, but the gateway's forward chain drops new inbound flows. The phone [fd00:77::2]
    /// registers with Kamailio [2001:db8:77::2] (through algate on [fd00:77::1]:5060 in the algate cases) and is
    /// called from outside. With the firewall alone the INVITE gets in (it is the reverse of the REGISTER's UDP
    /// flow) and the call is answered, but the caller's RTP is a new inbound flow: dropped, the phone hears nothing.
    @Test(arguments: IPv6Gateway.allCases)
    func anInboundIPv6Call(through gateway: IPv6Gateway) throws {
        try withLab(gateway == .kernelHelper ? ["--ct-helper", "sip"] : []) { peers in
            var algate: LabAlgate?
            defer { algate?.stop() }
            var via = SIPLab.registrarEndpoint6
            if gateway == .algateUserspace || gateway == .algateNftables {
                // Kamailio sends the INVITE to algate's contact, [2001:db8:77::1]:5060 (inside-address): without NAT
                // nothing maps that to an inside listener, so the listener takes the wildcard address.
                via = "[\(SIPLab.gatewayInside6)]:5060"
                algate = try LabAlgate.start(peers, backend: gateway == .algateNftables ? .nftables : .userspace, sip: """
                    listen = "[::]:5060"
                    upstream = "\(SIPLab.registrarEndpoint6)"
                    public-address = "\(SIPLab.gatewayInside6)"
                    inside-address = "\(SIPLab.gatewayOutside6)"
                    transports = ["udp"]
                    """)
            }
            let register = try peers.register6(via: via)
            #expect(register.status == 0, "\(peers.summary("register"))\n\(algate?.log ?? "")")

            let phone = try peers.startPhoneUAS6()
            defer { phone.stop() }
            try peers.callPhone6()
            if !Run.waitUntil(seconds: 10, { !phone.process.isRunning }) { phone.stop() }
            let atPhone = peers.rtpPackets(.inside, SIPLab.Port.phoneMedia)
            let atCaller = peers.rtpPackets(.outside, SIPLab.Port.callerMedia)
            let context = "at the phone \(atPhone), at the caller \(atCaller)\n\(peers.summary("caller"))\n"
                + "\(peers.summary("phone"))\n--- kamailio\n" + peers.kamailioLines("<script>").suffix(12).joined(separator: "\n")
                + "\n--- algate\n\(algate?.log.suffix(3000) ?? "")"
            #expect(peers.successfulCalls("caller") == 1 && peers.successfulCalls("phone") == 1, "\(gateway): \(context)")
            switch gateway {
            case .firewallOnly:
                #expect(atPhone == 0 && atCaller == 0, "RTP got through the firewall without a pinhole: \(context)")
            case .kernelHelper, .algateUserspace, .algateNftables:
                #expect(rtpArrived(atPhone) && rtpArrived(atCaller), "\(gateway): \(context)")
            }
            if let algate {
                #expect(algate.stop() == 0, "\(algate.log)")
                try expectPinholesClosed(algate, backend: gateway == .algateNftables ? .nftables : .userspace, calls: 1)
            }
        }
    }

    /// Every pinhole algate opened is closed again (userspace: its relays carried the RTP of `calls` calls).
    func expectPinholesClosed(_ algate: LabAlgate, backend: PinholeBackend, calls: Int) throws {
        let opened = algate.lines("media relay open").count
        let closed = algate.lines("media relay close").count
        #expect(opened == calls && closed == opened, "pinholes opened \(opened), closed \(closed)\n\(algate.log)")
        if backend == .userspace {
            for relay in algate.relayPackets {
                #expect(rtpArrived(relay.inbound) && rtpArrived(relay.outbound), "relay counters \(relay)")
            }
        }
    }
}
