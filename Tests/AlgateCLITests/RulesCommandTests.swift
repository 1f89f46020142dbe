import Foundation
import Testing

/// `algate rules --config FILE`: the nftables script for the transparent listeners, on stdout; config errors exit 2.
@Suite struct RulesCommandTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "algate-rules-\(UUID().uuidString).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func printsTheInterceptTable() throws {
        let path = try write("""
            [pinholes]
            ports = "41000-41099"

            [[ftp]]
            listen = "0.0.0.0:2100"
            intercept-interface = ["lan0", "wg*"]

            [[ftp]]
            listen = "[fd00::1]:2100"
            intercept-interface = "lan0"
            intercept-ports = [21, 2121]

            [[ftp]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:21"
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessRunner.algate(["rules", "--config", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        let expected = """
            # algate intercept rules for \(path); apply with: nft -f FILE
            add table inet algate_intercept
            delete table inet algate_intercept
            table inet algate_intercept {
                chain prerouting {
                    type nat hook prerouting priority dstnat - 10; policy accept;
                    iifname { "lan0", "wg*" } meta nfproto ipv4 tcp dport { 21 } redirect to :2100 comment "ftp[0] 0.0.0.0:2100"
                    iifname { "lan0", "wg*" } meta nfproto ipv4 tcp dport 41000-41099 redirect comment "ftp[0] passive data"
                    iifname { "lan0" } meta nfproto ipv6 tcp dport { 21, 2121 } dnat ip6 to [fd00::1]:2100 comment "ftp[1] [fd00::1]:2100"
                    iifname { "lan0" } meta nfproto ipv6 tcp dport 41000-41099 dnat ip6 to fd00::1 comment "ftp[1] passive data"
                }
            }

            """
        #expect(result.stdout == expected)
    }

    @Test func checkConfigNamesWhatIsIntercepted() throws {
        let path = try write("""
            [[ftp]]
            listen = "0.0.0.0:2100"
            intercept-interface = ["lan0", "wg*"]
            intercept-ports = [21, 2121]
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessRunner.algate(["check-config", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("  ftp 0.0.0.0:2100 (transparent: ports 21, 2121 on lan0, wg*)\n"), "\(result.stdout)")
    }

    @Test func aConfigWithoutTransparentListenersSteersNothing() throws {
        let config = ProcessRunner.repository.appendingPathComponent("Config/algate.toml").path
        let result = try ProcessRunner.algate(["rules", "--config", config])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "# \(config): no transparent listener, nothing to steer\n")
    }

    @Test func configErrorsExitTwoOnOneLine() throws {
        let path = try write("""
            [[ftp]]
            listen = "0.0.0.0:2100"
            intercept-interface = "eth0; flush ruleset"
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessRunner.algate(["rules", "--config", path])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("algate: \(path):3: ftp[0].intercept-interface = \"eth0; flush ruleset\": "))
        #expect(try ProcessRunner.algate(["rules", "--config", "/nonexistent/algate.toml"]).status == 2)
    }

    /// A transparent SIP listener: its TCP redirect, its UDP TPROXY rule, and the policy routing TPROXY needs as
    /// comments (iproute2 commands, which `algate run` installs itself), so the output still pipes into `nft -f -`.
    @Test func transparentSIPPrintsItsTPROXYRuleAndPolicyRouting() throws {
        let path = try write("""
            [[sip]]
            listen = "0.0.0.0:5060"
            intercept-interface = "lan0"
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessRunner.algate(["rules", "--config", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == """
            # algate intercept rules for \(path); apply with: nft -f FILE
            add table inet algate_intercept
            delete table inet algate_intercept
            table inet algate_intercept {
                chain prerouting {
                    type nat hook prerouting priority dstnat - 10; policy accept;
                    iifname { "lan0" } meta nfproto ipv4 tcp dport { 5060 } redirect to :5060 comment "sip[0] 0.0.0.0:5060"
                }
                chain divert {
                    type filter hook prerouting priority mangle; policy accept;
                    iifname { "lan0" } meta nfproto ipv4 udp dport { 5060 } fib daddr type != local meta mark set 0x616c tproxy ip to :5060 comment "sip[0] 0.0.0.0:5060"
                }
            }
            # TPROXY (transparent SIP over UDP) also needs this policy routing, which is not nftables;
            # algate run installs it with iproute2 and removes it at exit. By hand:
            #   ip -4 route replace local 0.0.0.0/0 dev lo table 24940
            #   ip -4 rule add fwmark 0x616c lookup 24940
            # and to remove it:
            #   ip -4 rule del fwmark 0x616c lookup 24940
            #   ip -4 route flush table 24940

            """)
        let check = try ProcessRunner.algate(["check-config", path])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("  sip 0.0.0.0:5060 tcp+udp (transparent: ports 5060 on lan0)\n"), "\(check.stdout)")
    }

    /// UDP learns a datagram's original address but not its port: two intercept ports with udp are a config error.
    @Test func transparentSIPOverUDPWithTwoPortsIsAConfigError() throws {
        let path = try write("""
            [[sip]]
            listen = "0.0.0.0:5060"
            intercept-interface = "lan0"
            intercept-ports = [5060, 5080]
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessRunner.algate(["rules", "--config", path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("sip[0].intercept-ports"), "\(result.stderr)")
        #expect(result.stderr.contains("intercepts one port"), "\(result.stderr)")
    }
}
