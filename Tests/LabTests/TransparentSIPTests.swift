import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// algate in transparent mode for SIP on the NAT gateway. The SIPp phone on the inside host (10.77.0.2) knows
/// nothing of algate: it registers with Kamailio at 203.0.113.2:5060 directly, calls out through it, and is called
/// through it. algate installs `inet algate_intercept` on the gateway: UDP to port 5060 from the interface "inside"
/// is diverted by TPROXY (with the policy routing TPROXY needs, `ip rule` and a local route, installed with
/// iproute2) to its listener, which reads each datagram's original destination and answers the phone from that
/// address; TCP to port 5060 is redirected and the listener reads SO_ORIGINAL_DST. Kamailio's binding and its
/// requests name the gateway's outside address (203.0.113.1:5060), where they reach algate without interception.
/// RTP goes through algate's media pinholes, with each backend, and is counted where it arrives.
///
/// The peers, Kamailio and the calls are SIPLabTests' own (SIPLab.swift); the lab with masquerade alone, where the
/// inbound call fails, is SIPLabTests.withoutAlgateTheInboundCallFails.
@Suite(.serialized, .enabled("needs root, `ip netns`, nft, sipp and kamailio") { SIPLab.isAvailable })
struct TransparentSIPTests {
    /// The calls and checks of SIPLabTests, used as they are.
    let calls = SIPLabTests()

    /// The transparent listener: on every address of the gateway, port 5060, steered from "inside".
    static func listener(transports: String, listen: String = "0.0.0.0:5060") -> String {
        """
        listen = "\(listen)"
        intercept-interface = "inside"
        transports = \(transports)
        """
    }

    /// What algate installed on the gateway: the intercept table, the policy rule with its mark, its routing table.
    struct Steering {
        var table: Bool
        var rule: Bool
        var routes: Bool
    }

    func steering(_ peers: SIPLab) throws -> Steering {
        let tables = try peers.lab.run(.gateway, ["nft", "list", "tables"]).stdout
        // Both families: a dual-stack listener installs -4 and -6 policy routing.
        let rules = try peers.lab.run(.gateway, ["ip", "-4", "rule", "list"]).stdout
            + peers.lab.run(.gateway, ["ip", "-6", "rule", "list"]).stdout
        let routes = try peers.lab.run(.gateway, ["ip", "-4", "route", "show", "table", "all"]).stdout
            + peers.lab.run(.gateway, ["ip", "-6", "route", "show", "table", "all"]).stdout
        return Steering(table: tables.contains("algate_intercept"), rule: rules.contains("fwmark 0x616c"),
                        routes: routes.contains("table 24940"))
    }

    /// What a run killed with SIGKILL leaves on the gateway (its policy rule, twice as two such runs would, the
    /// local route, its table) is replaced at start, with one rule, and all of it is gone after a clean exit.
    @Test func aCrashedRunsSteeringIsReplacedAtStartAndRemovedAtExit() throws {
        let lab = try Lab.up()
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let peers = try SIPLab(lab: lab)
        defer { peers.remove() }
        let stale = [
            ["ip", "-4", "rule", "add", "fwmark", "0x616c", "lookup", "24940"],
            ["ip", "-4", "rule", "add", "fwmark", "0x616c", "lookup", "24940"],
            ["ip", "-4", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "24940"],
            ["nft", "add", "table", "inet", "algate_intercept"],
        ]
        for command in stale {
            let result = try lab.run(.gateway, command)
            try #require(result.status == 0, "\(command): \(result.output)")
        }
        let algate = try LabAlgate.start(peers, backend: .userspace, sip: Self.listener(transports: #"["udp"]"#))
        defer { algate.stop() }
        let rules = try lab.run(.gateway, ["ip", "-4", "rule", "list"]).stdout
        #expect(rules.components(separatedBy: "fwmark 0x616c").count == 2, "one policy rule expected:\n\(rules)")
        let table = try lab.run(.gateway, ["nft", "list", "table", "inet", "algate_intercept"]).stdout
        #expect(table.contains("tproxy ip to :5060"), "\(table)")

        #expect(algate.stop() == 0, "\(algate.log)")
        let removed = try steering(peers)
        #expect(!removed.table && !removed.rule && !removed.routes, "left behind: \(removed)\n\(algate.log)")
        #expect(peers.leftovers().isEmpty, "\(peers.leftovers())")
    }

    /// IPv6 (no NAT, the same steering): a dual-stack listener on `[::]:5060`; a phone at fd00:77::2 sends an
    /// OPTIONS to a SIP server at [2001:db8:77::2]:5060 (both small Python peers, sip6_peer.py). TPROXY diverts it
    /// (`tproxy ip6`, the `-6` policy routing), algate forwards it from the gateway's outside address, and the 200
    /// comes back to the phone from [2001:db8:77::2]:5060 (a socket bound there with IPV6_TRANSPARENT).
    @Test func anOptionsOverIPv6IsInterceptedAndAnsweredFromItsDestination() throws {
        let lab = try Lab.up()
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let peers = try SIPLab(lab: lab)
        defer { peers.remove() }
        let script = peers.file("sip6_peer.py")
        try Self.ipv6PeerScript.write(to: script, atomically: true, encoding: .utf8)
        let algate = try LabAlgate.start(peers, backend: .userspace, sip: """
            listen = "[::]:5060"
            intercept-interface = "inside"
            transports = ["udp"]
            """)
        defer { algate.stop() }
        let installed = try lab.run(.gateway, ["ip", "-6", "rule", "list"]).stdout
        #expect(installed.contains("fwmark 0x616c lookup 24940"), "\(installed)")

        let server = try lab.start(.outside, SIPLab.defaultSignals + ["/usr/bin/python3", script.path, "server",
                                                                      "2001:db8:77::2", "5060"],
                                   log: peers.file("sip6_server.out"))
        defer { server.stop(signal: SIGKILL) }
        #expect(Run.waitUntil(seconds: 10) { peers.isListening(.outside, "[2001:db8:77::2]", 5060, tcp: false) })
        let phone = try lab.run(.inside, ["/usr/bin/python3", script.path, "phone", "fd00:77::2", "5062",
                                          "2001:db8:77::2", "5060"], timeout: 20)
        _ = Run.waitUntil(seconds: 5) { !server.process.isRunning }
        let context = "phone:\n\(phone.output)\nserver:\n\(server.output)\nalgate:\n\(algate.log.suffix(3000))"
        #expect(phone.stdout.contains("REPLY from [2001:db8:77::2]:5060 SIP/2.0 200 OK"), "\(context)")
        #expect(phone.stdout.contains("top Via is mine"), "\(context)")
        // The server saw the request come from the gateway, through algate's Via.
        #expect(server.output.contains("REQUEST from [2001:db8:77::1]:5060 OPTIONS sip:"), "\(context)")
        #expect(server.output.contains("Via: SIP/2.0/UDP [2001:db8:77::1]:5060;branch=z9hG4bK-ag"), "\(context)")

        #expect(algate.stop() == 0, "\(algate.log)")
        let rules = try lab.run(.gateway, ["ip", "-6", "rule", "list"]).stdout
        let routes = try lab.run(.gateway, ["ip", "-6", "route", "show", "table", "all"]).stdout
        #expect(!rules.contains("0x616c") && !routes.contains("table 24940"), "\(rules)\n\(routes)")
        #expect(peers.leftovers().isEmpty, "\(peers.leftovers())")
    }

    /// usage: sip6_peer.py server ADDRESS PORT  (answers one request 200, prints what it got, exits)
    ///        sip6_peer.py phone ADDRESS PORT SERVER SERVER_PORT  (sends one OPTIONS, prints the reply)
    static let ipv6PeerScript = #"""
        import socket, sys
        mode, me, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((me, port)); s.settimeout(10)
        def out(*a): print(*a, flush=True)
        crlf = '\r\n'
        if mode == 'server':
            data, peer = s.recvfrom(65535)
            lines = data.decode(errors='replace').split(crlf)
            out('REQUEST from [%s]:%d %s' % (peer[0], peer[1], lines[0]))
            for l in lines[1:]:
                if l: out(l)
            keep = [l for l in lines if l.split(':')[0].lower() in ('via', 'from', 'to', 'call-id', 'cseq')]
            s.sendto(crlf.join(['SIP/2.0 200 OK'] + keep + ['Content-Length: 0', '', '']).encode(), peer)
        else:
            server, sport = sys.argv[4], int(sys.argv[5])
            branch = 'z9hG4bK-sip6-%d' % port
            request = crlf.join([
                'OPTIONS sip:[%s]:%d SIP/2.0' % (server, sport),
                'Via: SIP/2.0/UDP [%s]:%d;branch=%s;rport' % (me, port, branch),
                'Max-Forwards: 70',
                'From: <sip:phone@[%s]>;tag=p6' % me,
                'To: <sip:[%s]>' % server,
                'Call-ID: sip6@[%s]' % me,
                'CSeq: 1 OPTIONS',
                'Content-Length: 0', '', ''])
            s.sendto(request.encode(), (server, sport))
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                out('NO REPLY'); sys.exit(1)
            lines = data.decode(errors='replace').split(crlf)
            out('REPLY from [%s]:%d %s' % (peer[0], peer[1], lines[0]))
            vias = [l for l in lines if l.lower().startswith('via:')]
            out('top Via is mine' if vias and branch in vias[0] else 'top Via: %r' % vias[:1])
        """#

    @Test(arguments: PinholeBackend.allCases)
    func theUnawarePhoneRegistersAndCallsBothWaysOverUDP(backend: PinholeBackend) throws {
        try callsOverUDP(backend: backend, listen: "0.0.0.0:5060")
    }

    /// The same through a dual-stack listener (`[::]:5060`): the IPv4 phone and registrar arrive IPv4-mapped, and
    /// are answered over IPv4.
    @Test func aDualStackListenerCarriesTheIPv4Calls() throws {
        try callsOverUDP(backend: .userspace, listen: "[::]:5060")
    }

    func callsOverUDP(backend: PinholeBackend, listen: String) throws {
        try calls.withLab { peers in
            let algate = try LabAlgate.start(peers, backend: backend,
                                             sip: Self.listener(transports: #"["udp"]"#, listen: listen))
            defer { algate.stop() }
            let installed = try steering(peers)
            #expect(installed.table && installed.rule && installed.routes, "\(installed)\n\(algate.log)")

            // The phone sends to Kamailio itself.
            let register = try peers.register(via: SIPLab.registrarEndpoint)
            #expect(register.status == 0, "\(peers.summary("register"))\n\(algate.log)")
            // It gets its own contact back; Kamailio holds algate's, at the gateway's outside address.
            #expect(peers.read("register_logs.log").contains("<sip:phone@\(SIPLab.phone):5060;transport=UDP>"),
                    "\(peers.read("register_logs.log"))")
            #expect(algate.lines("registration binding").count == 1, "\(algate.log)")
            #expect(!algate.lines("sip upstream").filter { $0.contains("upstream=\(SIPLab.registrarEndpoint)") }.isEmpty,
                    "\(algate.log)")

            let inbound = try calls.inboundCall(peers)
            #expect(peers.kamailioLines("lookup -> ").contains {
                $0.contains("@\(SIPLab.gatewayOutside):5060") && $0.contains("algate=")
            }, "Kamailio's binding is not algate's: \(inbound.context)")
            #expect(inbound.caller == 1 && inbound.phone == 1, "inbound call: \(inbound.context)\n\(algate.log)")
            #expect(calls.rtpArrived(inbound.atPhone) && calls.rtpArrived(inbound.atCaller),
                    "inbound RTP: at the phone \(inbound.atPhone), at the caller \(inbound.atCaller)")
            // The phone saw the INVITE come from where it registered, not from the gateway.
            #expect(peers.read("phone_msgs.log").contains("Via: SIP/2.0/UDP \(SIPLab.registrarEndpoint);branch="),
                    "\(peers.read("phone_msgs.log").prefix(1500))")

            let outbound = try calls.outboundCall(peers, via: SIPLab.registrarEndpoint)
            #expect(outbound.phone == 1 && outbound.uas == 1, "outbound call: \(outbound.context)\n\(algate.log)")
            #expect(calls.rtpArrived(outbound.atUAS) && calls.rtpArrived(outbound.atPhone),
                    "outbound RTP: at the UAS \(outbound.atUAS), at the phone \(outbound.atPhone)")

            #expect(algate.stop() == 0, "\(algate.log)")
            try calls.expectPinholesClosed(algate, backend: backend, calls: 2)
            let removed = try steering(peers)
            #expect(!removed.table && !removed.rule && !removed.routes, "left behind: \(removed)\n\(algate.log)")
        }
    }

    /// The same over TCP: the phone's connection to Kamailio is redirected to algate, which connects on to
    /// Kamailio; Kamailio reaches the phone's binding by connecting to algate's contact on the gateway's outside
    /// address, and the INVITE goes down the phone's own connection.
    @Test(arguments: PinholeBackend.allCases)
    func theUnawarePhoneRegistersAndCallsBothWaysOverTCP(backend: PinholeBackend) throws {
        try calls.withLab { peers in
            let algate = try LabAlgate.start(peers, backend: backend, sip: Self.listener(transports: #"["udp", "tcp"]"#))
            defer { algate.stop() }

            let phone = try peers.startPhoneTCP(via: SIPLab.registrarEndpoint)
            defer { phone.stop() }
            let registered = Run.waitUntil(seconds: 10) {
                !phone.process.isRunning || peers.read("tphone_logs.log").contains("200 OK binding")
            }
            #expect(registered && peers.read("tphone_logs.log").contains(
                "<sip:phone@\(SIPLab.phone):\(SIPLab.Port.phoneTCP);transport=TCP>"),
                "\(peers.summary("tphone"))\n\(algate.log)")
            try #require(registered)

            _ = try peers.callPhone()
            let complete = Run.waitUntil(seconds: 10) { peers.read("tphone_logs.log").contains("phone: call complete") }
            let context = "\(peers.summary("caller"))\n\(peers.summary("tphone"))\n--- kamailio\n"
                + peers.kamailioLines("<script>").suffix(12).joined(separator: "\n") + "\n--- algate\n\(algate.log.suffix(3000))"
            #expect(peers.successfulCalls("caller") == 1 && complete, "inbound call to the TCP phone: \(context)")
            let atPhone = peers.rtpPackets(.inside, SIPLab.Port.phoneMedia)
            let atCaller = peers.rtpPackets(.outside, SIPLab.Port.callerMedia)
            #expect(calls.rtpArrived(atPhone) && calls.rtpArrived(atCaller),
                    "inbound RTP (TCP signalling): at the phone \(atPhone), at the caller \(atCaller)")

            let outbound = try calls.outboundCall(peers, via: SIPLab.registrarEndpoint, tcp: true)
            #expect(outbound.phone == 1 && outbound.uas == 1,
                    "outbound call over TCP: \(outbound.context)\n\(algate.log.suffix(3000))")
            #expect(calls.rtpArrived(outbound.atUAS) && calls.rtpArrived(outbound.atPhone),
                    "outbound RTP (TCP signalling): at the UAS \(outbound.atUAS), at the phone \(outbound.atPhone)")

            phone.stop()
            #expect(algate.stop() == 0, "\(algate.log)")
            try calls.expectPinholesClosed(algate, backend: backend, calls: 2)
            let removed = try steering(peers)
            #expect(!removed.table && !removed.rule && !removed.routes, "left behind: \(removed)\n\(algate.log)")
        }
    }
}
