import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SIP peers in one NAT lab: Kamailio (registrar and proxy) on the outside host, SIPp phones and callers on either
/// side, RTP counted by nftables counters on the end hosts themselves, and algate on the gateway. The scenarios and
/// the Kamailio config template are the loopback SIP integration tests' own (Fixtures/sip).
///
/// Addresses: the phone 10.77.0.2 (behind masquerade), the gateway 10.77.0.1 | 203.0.113.1, Kamailio on
/// 203.0.113.2:5060, a SIPp UAS and a SIPp caller on 203.0.113.2:5070 and :5080.
struct SIPLab {
    static let phone = "10.77.0.2"
    static let gatewayInside = "10.77.0.1"
    static let gatewayOutside = "203.0.113.1"
    static let registrar = "203.0.113.2"
    static let registrarPort = 5060
    static var registrarEndpoint: String { "\(registrar):\(registrarPort)" }
    /// IPv6: no NAT, only the gateway's firewall (forward policy drop, established/related accepted).
    static let phone6 = "fd00:77::2"
    static let gatewayInside6 = "fd00:77::1"
    static let gatewayOutside6 = "2001:db8:77::1"
    static let registrar6 = "2001:db8:77::2"
    static var registrarEndpoint6: String { "[\(registrar6)]:\(registrarPort)" }

    static var isAvailable: Bool {
        guard Lab.isAvailable else { return false }
        for tool in ["/usr/bin/sipp", "/usr/sbin/kamailio", "/usr/share/sip-tester/g711a.pcap", "/usr/bin/python3"]
        where !FileManager.default.fileExists(atPath: tool) {
            print("SIPLabTests skipped: \(tool) is missing (Scripts/install-deps)")
            return false
        }
        return true
    }

    /// SIP and media ports of every peer (each namespace is the test's own, so fixed ports cannot collide).
    enum Port {
        static let phoneUDP = 5060, phoneTCP = 5064, phoneCaller = 5062, splitPhone = 5066
        static let uas = 5070, caller = 5080
        static let phoneMedia = 30000, phoneCallerMedia = 36000, uasMedia = 34000, callerMedia = 32000
        /// The phone's RTCP port in the RTCP test: announced by `a=rtcp` (RFC 3605), not RTP + 1.
        static let phoneRTCP = 30011, callerRTCP = 32011
    }

    /// Foundation spawns children with the spawning thread's signal mask, where most signals are blocked: peers
    /// that must see SIGTERM run through `env --default-signal` (as in the loopback SIP tests).
    static let defaultSignals = ["/usr/bin/env", "--default-signal"]

    /// RTP packets in g711a.pcap, which SIPp's uac_pcap plays (the loopback tests count the same).
    static let rtpPacketsPerCall = 246

    let lab: Lab
    /// Scratch directory: SIPp's working directory (with `pcap/`), Kamailio's config, every log.
    let directory: URL

    /// The peers' directory and RTP counters on the inside and outside hosts for every media port.
    init(lab: Lab) throws {
        self.lab = lab
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("algate-siplab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // uac_pcap plays pcap/g711a.pcap relative to its working directory.
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("pcap").path,
                                                   withDestinationPath: "/usr/share/sip-tester")
        for (host, ports) in [(Lab.Host.inside, [Port.phoneMedia, Port.phoneCallerMedia, Port.phoneRTCP]),
                              (Lab.Host.outside, [Port.uasMedia, Port.callerMedia])] {
            var rules = "table inet siplab_rtp {\n"
            for port in ports { rules += "    counter rtp\(port) {}\n" }
            rules += "    chain input {\n        type filter hook input priority filter; policy accept;\n"
            for port in ports { rules += "        udp dport \(port) counter name \"rtp\(port)\"\n" }
            rules += "    }\n}\n"
            let file = directory.appendingPathComponent("rtp-\(host.rawValue).nft")
            try rules.write(to: file, atomically: true, encoding: .utf8)
            let result = try lab.run(host, ["nft", "-f", file.path])
            guard result.status == 0 else { throw LabError(message: "nft in \(host): \(result.output)") }
        }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    func file(_ name: String) -> URL { directory.appendingPathComponent(name) }
    func read(_ name: String) -> String { (try? String(contentsOf: file(name), encoding: .utf8)) ?? "" }

    /// UDP packets that arrived at `port` on `host` (inside or outside) so far.
    func rtpPackets(_ host: Lab.Host, _ port: Int) -> Int {
        guard let result = try? lab.run(host, ["nft", "list", "counter", "inet", "siplab_rtp", "rtp\(port)"]),
              let range = result.stdout.range(of: #"packets (\d+)"#, options: .regularExpression)
        else { return -1 }
        return Int(result.stdout[range].dropFirst("packets ".count)) ?? -1
    }

    // MARK: Kamailio

    /// Fixtures/sip/kamailio.cfg for the lab: on 203.0.113.2:5060; its safety net lets it relay only to the lab's
    /// own addresses instead of loopback; in-dialog requests without a Route to another host are relayed by their
    /// Request-URI (SIPp's uac_pcap ignores Record-Route and sends its ACK and BYE with the UAS's URI).
    func kamailioConfig() throws -> String {
        var config = try String(contentsOf: Run.repository.appendingPathComponent("Fixtures/sip/kamailio.cfg"),
                                encoding: .utf8)
        let edits = [
            ("listen=tcp:@ADDR@:@PORT@\n", "listen=tcp:@ADDR@:@PORT@\nlisten=udp:[\(Self.registrar6)]:@PORT@\n"
                + "listen=tcp:[\(Self.registrar6)]:@PORT@\n"),
            ("@ADDR@", Self.registrar), ("@PORT@", "\(Self.registrarPort)"),
            (#"($du =~ "^sips?:([^@]*@)?(127\.|\[::1\])")"#,
             #"($du =~ "^sips?:([^@]*@)?(203\.0\.113\.|10\.77\.0\.|\[2001:db8:77:|\[fd00:77:)")"#),
            (#"($rd =~ "^(127\.|\[::1\]$|::1$)")"#, #"($rd =~ "^(203\.0\.113\.|10\.77\.0\.|\[?2001:db8:77:|\[?fd00:77:)")"#),
            ("        if (uri==myself && lookup(\"location\")) { route(RELAY); exit; }\n",
             "        if (uri==myself && lookup(\"location\")) { route(RELAY); exit; }\n"
                + "        if (uri!=myself) { route(RELAY); exit; }\n"),
        ]
        for (old, new) in edits {
            guard config.contains(old) else {
                throw LabError(message: "Fixtures/sip/kamailio.cfg changed: no \(old) to replace")
            }
            config = config.replacingOccurrences(of: old, with: new)
        }
        return config
    }

    /// Starts Kamailio on the outside host and waits until its sockets exist and it answers an OPTIONS probe.
    func kamailio() throws -> Run.Background {
        let config = file("kamailio.cfg")
        try kamailioConfig().write(to: config, atomically: true, encoding: .utf8)
        let run = file("kam-run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        // Through timeout(1), as the loopback tests run it: Kamailio closes every descriptor it inherited, which
        // Foundation's Process takes for an exit (it then blocks in waitpid and reaps nothing else); timeout keeps
        // them, and forwards SIGTERM to Kamailio's main process, which takes its workers down.
        let kamailio = try lab.start(.outside, Self.defaultSignals + ["/usr/bin/timeout", "--kill-after=5", "300", "/usr/sbin/kamailio",
                                                "-f", config.path, "-DD", "-E", "-w", directory.path, "-Y", run.path],
                                     log: file("kamailio.log"), directory: directory)
        let sockets = Run.waitUntil(seconds: 15) {
            !kamailio.process.isRunning
                || (isListening(.outside, Self.registrar, Self.registrarPort, tcp: false)
                    && isListening(.outside, Self.registrar, Self.registrarPort, tcp: true)
                    && isListening(.outside, "[\(Self.registrar6)]", Self.registrarPort, tcp: false))
        }
        guard sockets, kamailio.process.isRunning else {
            kamailio.stop(signal: SIGKILL)
            throw LabError(message: "kamailio did not come up: \(kamailio.output.suffix(2000))")
        }
        // The sockets exist before its workers read them: the answer to an OPTIONS is the readiness signal.
        let answered = try Run.waitUntil(seconds: 15) {
            try sipp("probe", .outside, [Self.registrarEndpoint, "-sf", fixture("options.xml"),
                                         "-i", Self.registrar, "-p", "5090", "-m", "1"], timeout: 10).status == 0
        }
        guard answered else {
            kamailio.stop(signal: SIGKILL)
            throw LabError(message: "kamailio does not answer OPTIONS: \(kamailio.output.suffix(2000))")
        }
        return kamailio
    }

    /// Kamailio's log lines containing `text`.
    func kamailioLines(_ text: String) -> [String] {
        read("kamailio.log").split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }

    // MARK: SIPp

    func fixture(_ name: String) -> String { Run.repository.appendingPathComponent("Fixtures/sip/\(name)").path }

    /// SIPp's arguments common to every run named `name`: no stdin, a control socket on the host's own loopback,
    /// a watchdog, and its counters, messages, errors and logs in the scratch directory.
    func sippArguments(_ name: String, _ arguments: [String], watchdog: Int = 40) -> [String] {
        Self.defaultSignals + ["/usr/bin/sipp"] + arguments + [
            "-ci", "127.0.0.1", "-cp", "\(controlPort(name))", "-nostdin",
            "-timeout", "\(watchdog)s", "-timeout_error",
            "-trace_stat", "-stf", "\(name)_stat.csv", "-fd", "1",
            "-trace_msg", "-message_file", "\(name)_msgs.log",
            "-trace_err", "-error_file", "\(name)_err.log",
            "-trace_logs", "-log_file", "\(name)_logs.log",
        ]
    }

    /// A control port per run name (a UDP socket of SIPp on its host's loopback; runs at once have distinct names).
    func controlPort(_ name: String) -> Int {
        ["probe", "register", "phone", "tphone", "caller", "uas", "outcall"].firstIndex(of: name).map { 8801 + $0 } ?? 8899
    }

    /// Runs SIPp in `host` to completion.
    @discardableResult
    func sipp(_ name: String, _ host: Lab.Host, _ arguments: [String], timeout: Double = 45) throws -> Run.Result {
        let result = try lab.run(host, sippArguments(name, arguments, watchdog: Int(timeout) - 5), timeout: timeout,
                                 directory: directory)
        try? result.output.write(to: file("\(name).out"), atomically: true, encoding: .utf8)
        return result
    }

    /// Starts SIPp in `host`; waits until its SIP socket (`ip`:`port`) is bound.
    func startSIPp(_ name: String, _ host: Lab.Host, _ arguments: [String], ip: String, port: Int, tcp: Bool = false,
                   watchdog: Int = 60) throws -> Run.Background {
        let sipp = try lab.start(host, sippArguments(name, arguments, watchdog: watchdog), log: file("\(name).out"),
                                 directory: directory)
        guard Run.waitUntil(seconds: 10, { !sipp.process.isRunning || isListening(host, ip, port, tcp: tcp) }),
              sipp.process.isRunning else {
            sipp.stop(signal: SIGKILL)
            throw LabError(message: "SIPp \(name) did not come up on \(ip):\(port): \(sipp.output.suffix(2000))")
        }
        return sipp
    }

    /// The final `-trace_stat` counters of run `name`, by column.
    func stats(_ name: String) -> [String: Int] {
        let lines = read("\(name)_stat.csv").split(whereSeparator: \.isNewline)
        guard let header = lines.first, let last = lines.last, lines.count > 1 else { return [:] }
        var result: [String: Int] = [:]
        for (key, value) in zip(header.split(separator: ";", omittingEmptySubsequences: false),
                                last.split(separator: ";", omittingEmptySubsequences: false)) {
            if let number = Int(value) { result[String(key)] = number }
        }
        return result
    }

    func successfulCalls(_ name: String) -> Int? { stats(name)["SuccessfulCall(C)"] }
    func failedCalls(_ name: String) -> Int? { stats(name)["FailedCall(C)"] }

    /// Counters, errors and output of run `name`, for a failure message.
    func summary(_ name: String) -> String {
        let s = stats(name)
        let counters = ["SuccessfulCall(C)", "FailedCall(C)", "FailedMaxUDPRetrans(C)", "FailedUnexpectedMessage(C)",
                        "FailedTcpClosed(C)", "FailedTimeoutOnRecv(C)", "FailedCallRejected(C)", "OutOfCallMsgs(C)"]
            .compactMap { key in s[key].map { "\(key)=\($0)" } }.joined(separator: " ")
        return "SIPp \(name): \(counters)\n--- \(name)_err.log\n\(read("\(name)_err.log").suffix(1500))\n"
            + "--- \(name).out\n\(read("\(name).out").suffix(800))"
    }

    // MARK: The calls

    /// The phone registers as `phone` with Kamailio, sending to `via` (algate, or Kamailio itself). UDP.
    func register(via: String) throws -> Run.Result {
        try sipp("register", .inside, [via, "-sf", fixture("register.xml"), "-i", Self.phone, "-p", "\(Port.phoneUDP)",
                                       "-t", "u1", "-m", "1", "-s", "phone", "-key", "domain", Self.registrarEndpoint,
                                       "-key", "expires", "120"], timeout: 20)
    }

    /// The phone's UAS on its registered port (UDP), echoing media; one call, then it exits.
    func startPhoneUAS() throws -> Run.Background {
        try startSIPp("phone", .inside, ["-sn", "uas", "-i", Self.phone, "-p", "\(Port.phoneUDP)", "-t", "u1",
                                         "-mi", Self.phone, "-mp", "\(Port.phoneMedia)", "-rtp_echo", "-m", "1"],
                      ip: Self.phone, port: Port.phoneUDP)
    }

    /// IPv6: the phone registers as `phone` from [fd00:77::2]:5060 through `via`, then answers one call (a UAS
    /// writing its SDP address without brackets), echoing media; the caller on [2001:db8:77::2]:5080 calls it.
    func register6(via: String) throws -> Run.Result {
        try sipp("register", .inside, [via, "-sf", fixture("register.xml"), "-i", Self.phone6, "-p", "\(Port.phoneUDP)",
                                       "-t", "u1", "-m", "1", "-s", "phone", "-key", "domain", Self.registrarEndpoint6,
                                       "-key", "expires", "120"], timeout: 20)
    }

    func startPhoneUAS6() throws -> Run.Background {
        try startSIPp("phone", .inside, ["-sf", fixture("uas_no_timewait.xml"), "-i", Self.phone6, "-p", "\(Port.phoneUDP)",
                                         "-t", "u1", "-mi", Self.phone6, "-mp", "\(Port.phoneMedia)", "-rtp_echo", "-m", "1"],
                      ip: "[\(Self.phone6)]", port: Port.phoneUDP)
    }

    @discardableResult
    func callPhone6() throws -> Run.Result {
        try sipp("caller", .outside, [Self.registrarEndpoint6, "-sf", fixture("uac_pcap_media_ip.xml"), "-i", Self.registrar6,
                                      "-p", "\(Port.caller)", "-t", "u1", "-mi", Self.registrar6,
                                      "-mp", "\(Port.callerMedia)", "-m", "1", "-r", "1", "-l", "1", "-s", "phone"])
    }

    /// The RTCP call (RFC 3605): the phone answers with `a=rtcp:30011`; the caller, once answered, sends 20 RTCP
    /// receiver reports from its own RTCP port to the address and `a=rtcp` port of the answer it received, acks,
    /// and hangs up after 1.5 s. Both scenarios are written to the scratch directory.
    func startPhoneRTCP() throws -> Run.Background {
        try Self.phoneRTCPScenario.write(to: file("phone_rtcp.xml"), atomically: true, encoding: .utf8)
        return try startSIPp("phone", .inside, ["-sf", file("phone_rtcp.xml").path, "-i", Self.phone,
                                                "-p", "\(Port.phoneUDP)", "-t", "u1", "-mi", Self.phone,
                                                "-mp", "\(Port.phoneMedia)", "-m", "1"],
                             ip: Self.phone, port: Port.phoneUDP)
    }

    @discardableResult
    func callPhoneRTCP() throws -> Run.Result {
        try Self.callerRTCPScenario.write(to: file("caller_rtcp.xml"), atomically: true, encoding: .utf8)
        try Self.rtcpSender.write(to: file("rtcp_send.py"), atomically: true, encoding: .utf8)
        return try sipp("caller", .outside, [Self.registrarEndpoint, "-sf", file("caller_rtcp.xml").path,
                                             "-i", Self.registrar, "-p", "\(Port.caller)", "-t", "u1",
                                             "-mi", Self.registrar, "-mp", "\(Port.callerMedia)", "-m", "1",
                                             "-s", "phone"])
    }

    static let phoneRTCPScenario = #"""
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <!DOCTYPE scenario SYSTEM "sipp.dtd">
        <scenario name="phone answering with a=rtcp">
          <recv request="INVITE"/>
          <send retrans="500">
            <![CDATA[

              SIP/2.0 200 OK
              [last_Via:]
              [last_From:]
              [last_To:];tag=[pid]SIPpTag01[call_number]
              [last_Call-ID:]
              [last_CSeq:]
              Contact: <sip:[local_ip]:[local_port];transport=[transport]>
              Content-Type: application/sdp
              Content-Length: [len]

              v=0
              o=user1 53655765 2353687637 IN IP[media_ip_type] [media_ip]
              s=-
              c=IN IP[media_ip_type] [media_ip]
              t=0 0
              m=audio [media_port] RTP/AVP 8
              a=rtpmap:8 PCMA/8000
              a=rtcp:30011

            ]]>
          </send>
          <recv request="ACK"/>
          <recv request="BYE"/>
          <send>
            <![CDATA[

              SIP/2.0 200 OK
              [last_Via:]
              [last_From:]
              [last_To:]
              [last_Call-ID:]
              [last_CSeq:]
              Content-Length: 0

            ]]>
          </send>
        </scenario>
        """#

    static let callerRTCPScenario = #"""
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <!DOCTYPE scenario SYSTEM "sipp.dtd">
        <scenario name="caller sending RTCP to the answer's a=rtcp">
          <send retrans="500">
            <![CDATA[

              INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              To: <sip:[service]@[remote_ip]:[remote_port]>
              Call-ID: [call_id]
              CSeq: 1 INVITE
              Contact: sip:sipp@[local_ip]:[local_port]
              Max-Forwards: 70
              Content-Type: application/sdp
              Content-Length: [len]

              v=0
              o=user1 53655765 2353687637 IN IP[media_ip_type] [media_ip]
              s=-
              c=IN IP[media_ip_type] [media_ip]
              t=0 0
              m=audio [media_port] RTP/AVP 8
              a=rtpmap:8 PCMA/8000
              a=rtcp:32011

            ]]>
          </send>
          <recv response="100" optional="true"/>
          <recv response="180" optional="true"/>
          <recv response="200" rtd="true">
            <action>
              <ereg regexp="c=IN IP4 ([0-9.]+)" search_in="body" check_it="true" assign_to="c,address"/>
              <ereg regexp="a=rtcp:([0-9]+)" search_in="body" check_it="true" assign_to="r,port"/>
              <log message="answer ([$c] [$r]): RTCP to [$address]:[$port]"/>
              <exec command="/usr/bin/python3 rtcp_send.py [$address] [$port]"/>
            </action>
          </recv>
          <send>
            <![CDATA[

              ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
              Call-ID: [call_id]
              CSeq: 1 ACK
              Contact: sip:sipp@[local_ip]:[local_port]
              Max-Forwards: 70
              Content-Length: 0

            ]]>
          </send>
          <pause milliseconds="1500"/>
          <send retrans="500">
            <![CDATA[

              BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
              Call-ID: [call_id]
              CSeq: 2 BYE
              Contact: sip:sipp@[local_ip]:[local_port]
              Max-Forwards: 70
              Content-Length: 0

            ]]>
          </send>
          <recv response="200" crlf="true"/>
        </scenario>
        """#

    /// 20 RTCP receiver reports (RFC 3550 6.4.2, no report blocks) from 203.0.113.2:32011 to ADDRESS PORT; says so
    /// in rtcp_send.log (in SIPp's working directory).
    static let rtcpSender = #"""
        import socket, struct, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('203.0.113.2', 32011))
        for i in range(20):
            s.sendto(struct.pack('!BBHI', 0x80, 201, 1, 0x5150A1A1), (sys.argv[1], int(sys.argv[2])))
        with open('rtcp_send.log', 'w') as log:
            log.write('sent 20 RTCP RR to %s:%s\n' % (sys.argv[1], sys.argv[2]))
        """#

    /// The TCP phone: registers through `via` on one connection, keeps it for `hold` ms answering the inbound call
    /// on it (phone_ooc.xml, media echoed), then unregisters.
    func startPhoneTCP(via: String, hold: Int = 20000) throws -> Run.Background {
        let phone = try lab.start(.inside, sippArguments("tphone", [
            via, "-sf", fixture("register_hold.xml"), "-oocsf", fixture("phone_ooc.xml"), "-i", Self.phone,
            "-p", "\(Port.phoneTCP)", "-t", "t1", "-mi", Self.phone, "-mp", "\(Port.phoneMedia)", "-rtp_echo",
            "-m", "1", "-s", "phone", "-key", "domain", Self.registrarEndpoint, "-key", "expires", "120",
            "-d", "\(hold)",
        ]), log: file("tphone.out"), directory: directory)
        return phone
    }

    /// A caller on the outside host calls `phone` at Kamailio: uac_pcap, one call with RTP.
    @discardableResult
    func callPhone(tcp: Bool = false) throws -> Run.Result {
        try sipp("caller", .outside, [Self.registrarEndpoint, "-sn", "uac_pcap", "-i", Self.registrar,
                                      "-p", "\(Port.caller)", "-t", tcp ? "t1" : "u1", "-mi", Self.registrar,
                                      "-mp", "\(Port.callerMedia)", "-m", "1", "-r", "1", "-l", "1", "-s", "phone"])
    }

    /// A SIPp UAS on the outside host (203.0.113.2:5070), echoing media; one call, then it exits.
    func startOutsideUAS(tcp: Bool = false) throws -> Run.Background {
        try startSIPp("uas", .outside, ["-sn", "uas", "-i", Self.registrar, "-p", "\(Port.uas)", "-t", tcp ? "t1" : "u1",
                                        "-mi", Self.registrar, "-mp", "\(Port.uasMedia)", "-rtp_echo", "-m", "1"],
                      ip: Self.registrar, port: Port.uas, tcp: tcp)
    }

    /// The phone calls the UAS outside (sip:uas@203.0.113.2:5070), sending through `via` (algate or Kamailio),
    /// which hands it to Kamailio: uac_pcap, one call with RTP.
    @discardableResult
    func callOut(via: String, tcp: Bool = false) throws -> Run.Result {
        try sipp("outcall", .inside, ["\(Self.registrar):\(Port.uas)", "-rsa", via, "-sn", "uac_pcap",
                                      "-i", Self.phone, "-p", "\(Port.phoneCaller)", "-t", tcp ? "t1" : "u1",
                                      "-mi", Self.phone, "-mp", "\(Port.phoneCallerMedia)", "-m", "1", "-r", "1",
                                      "-l", "1", "-s", "uas"])
    }

    /// The raw TCP phone (split_phone.py) on 10.77.0.2:5066: registers through `via` (HOST PORT) with its REGISTER
    /// in two TCP segments when `split`, then waits on that connection for an INVITE.
    func startSplitPhone(via: (String, Int), split: Bool) throws -> Run.Background {
        let script = file("split_phone.py")
        try Self.splitPhoneScript.write(to: script, atomically: true, encoding: .utf8)
        let phone = try lab.start(.inside, Self.defaultSignals + ["/usr/bin/python3", script.path, via.0, "\(via.1)", Self.phone,
                                            "\(Port.splitPhone)", Self.registrarEndpoint, split ? "contact" : "0"],
                                  log: file("split_phone.out"))
        guard Run.waitUntil(seconds: 15, { !phone.process.isRunning || phone.output.contains("REGISTERED") }),
              phone.output.contains("REGISTERED ") else {
            phone.stop(signal: SIGKILL)
            throw LabError(message: "the split phone did not register: \(phone.output)")
        }
        return phone
    }

    /// A SIP phone over TCP in a few lines: REGISTER (optionally in two segments, split inside its Contact header,
    /// TCP_NODELAY and a pause between them), then it waits on the same connection for an INVITE, answers it
    /// 486 and prints `RESULT INVITE ...` (or `RESULT NO INVITE` when the connection closes).
    /// usage: split_phone.py NEXT_HOST NEXT_PORT LOCAL_IP LOCAL_PORT DOMAIN contact|0
    static let splitPhoneScript = #"""
        import socket, sys, time, re
        host, port, me, myport, domain, split = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
        def out(*a): print(*a, flush=True)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((me, myport)); s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        register = ('REGISTER sip:%s SIP/2.0\r\n'
                    'Via: SIP/2.0/TCP %s:%d;branch=z9hG4bK-split-%d\r\n'
                    'From: <sip:phone@%s>;tag=split%d\r\n'
                    'To: <sip:phone@%s>\r\n'
                    'Call-ID: split-%d@%s\r\n'
                    'CSeq: 1 REGISTER\r\n'
                    'Contact: <sip:phone@%s:%d;transport=tcp>\r\n'
                    'Expires: 120\r\n'
                    'Max-Forwards: 70\r\n'
                    'User-Agent: split_phone.py\r\n'
                    'Content-Length: 0\r\n\r\n') % (domain, me, myport, myport, domain, myport, domain, myport, me, me, myport)
        data = register.encode()
        at = data.index(b'Contact: ') + 16 if split == 'contact' else 0
        if at:
            out('REGISTER in two segments: %r + %r' % (data[:at], data[at:]))
            s.sendall(data[:at]); time.sleep(0.3); s.sendall(data[at:])
        else:
            out('REGISTER in one segment')
            s.sendall(data)
        buf = b''
        def message():
            global buf
            while True:
                while buf.startswith(b'\r\n'): buf = buf[2:]
                end = buf.find(b'\r\n\r\n')
                if end >= 0:
                    head = buf[:end].decode(errors='replace')
                    m = re.search(r'(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)', head)
                    total = end + 4 + (int(m.group(1)) if m else 0)
                    if len(buf) >= total:
                        msg, buf = buf[:total], buf[total:]
                        return msg.decode(errors='replace')
                b = s.recv(65536)
                if not b: return None
                buf += b
        r = message()
        if not r or not r.startswith('SIP/2.0 200'):
            out('RESULT NOT REGISTERED', r); sys.exit(1)
        out('REGISTERED', ' | '.join(l for l in r.split('\r\n') if l.lower().startswith(('contact', 'm:'))))
        while True:
            m = message()
            if m is None:
                out('RESULT NO INVITE (connection closed)'); sys.exit(1)
            if m.startswith('INVITE '):
                out('RESULT INVITE', m.split('\r\n')[0])
                keep = [l for l in m.split('\r\n') if re.match(r'(?i)(via|v|from|f|call-id|i|cseq)[ \t]*:', l)]
                to = [l for l in m.split('\r\n') if re.match(r'(?i)(to|t)[ \t]*:', l)][0] + ';tag=busy'
                s.sendall(('SIP/2.0 486 Busy Here\r\n' + '\r\n'.join(keep + [to]) + '\r\nContent-Length: 0\r\n\r\n').encode())
                ack = message()
                out('then', ack.split('\r\n')[0] if ack else 'connection closed')
                sys.exit(0)
        """#

    // MARK: Sockets, processes, tables

    /// Whether something listens on `address`:`port` in `host` (UDP: a bound socket).
    func isListening(_ host: Lab.Host, _ address: String, _ port: Int, tcp: Bool) -> Bool {
        guard let result = try? lab.run(host, ["ss", "-Hln", tcp ? "-t" : "-u", "src", "\(address):\(port)"], timeout: 10)
        else { return false }
        return !result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// What is still there in the lab's namespaces: listening sockets, processes, algate_* nftables tables on the
    /// gateway. Empty when every peer and algate have stopped cleanly.
    func leftovers() -> [String] {
        var left: [String] = []
        for host in [Lab.Host.inside, .gateway, .outside] {
            if let sockets = try? lab.run(host, ["ss", "-Hlntu"]), !sockets.stdout.isEmpty {
                left.append("listening in \(host): \(sockets.stdout)")
            }
            if let pids = try? Run.program("/usr/bin/env", ["ip", "netns", "pids", "\(lab.name)-\(host.rawValue)"]),
               !pids.stdout.isEmpty {
                left.append("processes in \(host): \(pids.stdout)")
            }
        }
        if let tables = try? lab.run(.gateway, ["nft", "list", "tables"]) {
            left += tables.stdout.split(separator: "\n").filter { $0.contains("algate_") && !$0.contains("algate_lab") }
                .map { "nftables on the gateway: \($0)" }
        }
        return left
    }
}

/// The pinhole backend algate runs with (`[pinholes] backend`).
enum PinholeBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case userspace, nftables
    var testDescription: String { rawValue }
}

/// algate on the lab's gateway: `algate run --config FILE`, the configuration in the lab's scratch directory.
struct LabAlgate {
    let process: Run.Background

    /// The refusal of a build without the nftables pinhole backend (Sources/AlgateProxy/Gateway.swift).
    static let nftablesRefusal = "only the userspace backend is available in this build"

    /// Starts algate with `sip` as its `[[sip]]` table and waits for "algate ready". A build that refuses the
    /// nftables backend cancels the test case with that reason.
    static func start(_ peers: SIPLab, backend: PinholeBackend, sip: String) throws -> LabAlgate {
        let config = peers.file("algate.toml")
        try """
            [pinholes]
            backend = "\(backend.rawValue)"
            ports = "41000-41099"
            timeout = "20s"

            [[sip]]
            \(sip)
            """.write(to: config, atomically: true, encoding: .utf8)
        let process = try peers.lab.start(.gateway, [Run.algate.path, "run", "--config", config.path],
                                          log: peers.file("algate.log"))
        let ready = Run.waitUntil(seconds: 15) { !process.process.isRunning || process.output.contains("algate ready") }
        if !ready || !process.process.isRunning {
            let status = process.stop(signal: SIGKILL)
            if backend == .nftables, process.output.contains(nftablesRefusal) {
                try Test.cancel("""
                    the nftables pinhole backend is not in this build yet: `algate run` refuses \
                    backend = "nftables" ("\(nftablesRefusal)", Sources/AlgateProxy/Gateway.swift)
                    """)
            }
            throw LabError(message: "algate did not start (exit \(status)): \(process.output.suffix(3000))")
        }
        // The nftables backend owns its table on the gateway while it runs (and removes it at exit: leftovers()).
        if backend == .nftables {
            let tables = try peers.lab.run(.gateway, ["nft", "list", "tables"]).stdout
            guard tables.contains("algate_pinholes") else {
                process.stop()
                throw LabError(message: "backend = \"nftables\" but no algate_pinholes table on the gateway: \(tables)")
            }
        }
        return LabAlgate(process: process)
    }

    var log: String { process.output }

    func lines(_ text: String) -> [String] {
        log.split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }

    /// packets-in / packets-out of every "media relay close" line.
    var relayPackets: [(inbound: Int, outbound: Int)] {
        lines("media relay close").map { line in
            func value(_ key: String) -> Int {
                guard let range = line.range(of: "\(key)=(\\d+)", options: .regularExpression) else { return -1 }
                return Int(line[range].dropFirst(key.count + 1)) ?? -1
            }
            return (value("packets-in"), value("packets-out"))
        }
    }

    /// SIGTERM; returns the exit status.
    @discardableResult
    func stop() -> Int32 { process.stop() }
}
