import Foundation
import AlgateConfig
import AlgateProxy
import AlgateRewrite
import Testing

/// The nftables script made from the transparent listeners: one table of algate's own; per listener and address
/// family a rule for the control port(s) and one for the passive data ports; nothing for reverse-mode listeners.
@Suite struct InterceptRulesTests {
    @Test func wildcardListenersAreRedirectedPerFamily() throws {
        let configuration = try AlgateConfiguration.parse("""
            [pinholes]
            ports = "41000-41099"

            [[ftp]]
            listen = "0.0.0.0:2100"
            intercept-interface = "inside"

            [[ftp]]
            listen = "[::]:2101"
            intercept-interface = ["inside", "vpn*"]
            intercept-ports = [21, 990]
            """)
        let rules = InterceptRules(configuration: configuration)
        #expect(rules.rules.map(\.name) == ["ftp[0]", "ftp[1]"])
        #expect(rules.table == """
            table inet algate_intercept {
                chain prerouting {
                    type nat hook prerouting priority dstnat - 10; policy accept;
                    iifname { "inside" } meta nfproto ipv4 tcp dport { 21 } redirect to :2100 comment "ftp[0] 0.0.0.0:2100"
                    iifname { "inside" } meta nfproto ipv4 tcp dport 41000-41099 redirect comment "ftp[0] passive data"
                    iifname { "inside", "vpn*" } meta nfproto ipv4 tcp dport { 21, 990 } redirect to :2101 comment "ftp[1] [::]:2101"
                    iifname { "inside", "vpn*" } meta nfproto ipv4 tcp dport 41000-41099 redirect comment "ftp[1] passive data"
                    iifname { "inside", "vpn*" } meta nfproto ipv6 tcp dport { 21, 990 } redirect to :2101 comment "ftp[1] [::]:2101"
                    iifname { "inside", "vpn*" } meta nfproto ipv6 tcp dport 41000-41099 redirect comment "ftp[1] passive data"
                }
            }

            """)
    }

    @Test func aSpecificListenAddressIsADNATToIt() {
        let rules = InterceptRules(rules: [
            .init(name: "ftp[0]", interfaces: ["lan0"], ports: [21], listen: Endpoint("10.0.0.1:2100")!, dataPorts: 40000...40099),
            .init(name: "ftp[1]", interfaces: ["lan0"], ports: [21], listen: Endpoint("[fd00::1]:2100")!, dataPorts: 40000...40000),
        ])
        let lines = rules.table.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.contains(#"iifname { "lan0" } meta nfproto ipv4 tcp dport { 21 } dnat ip to 10.0.0.1:2100 comment "ftp[0] 10.0.0.1:2100""#))
        #expect(lines.contains(#"iifname { "lan0" } meta nfproto ipv6 tcp dport { 21 } dnat ip6 to [fd00::1]:2100 comment "ftp[1] [fd00::1]:2100""#))
        // Passive data connections keep their port and go to the listener's address, where passive pinholes listen.
        #expect(lines.contains(#"iifname { "lan0" } meta nfproto ipv4 tcp dport 40000-40099 dnat ip to 10.0.0.1 comment "ftp[0] passive data""#))
        #expect(lines.contains(#"iifname { "lan0" } meta nfproto ipv6 tcp dport 40000 dnat ip6 to fd00::1 comment "ftp[1] passive data""#))
    }

    @Test func theInstallScriptReplacesAStaleTableInOneGo() {
        let rules = InterceptRules(rules: [
            .init(name: "ftp[0]", interfaces: ["lan0"], ports: [21], listen: Endpoint("0.0.0.0:2100")!, dataPorts: 40000...44999),
        ])
        #expect(rules.installScript.hasPrefix("add table inet algate_intercept\ndelete table inet algate_intercept\n"
            + "table inet algate_intercept {\n"))
        #expect(InterceptRules.removeScript == "delete table inet algate_intercept\n")
        // Only algate's own table is ever named.
        let tables = rules.installScript.split(separator: "\n").filter { $0.contains("table ") }
        #expect(tables.allSatisfy { $0.contains("table inet algate_intercept") })
    }

    /// A kernel pinhole is a DNAT of its own: the passive-data rule would take its connections first.
    @Test func noDataRuleWithTheNftablesBackend() throws {
        let configuration = try AlgateConfiguration.parse("""
            [pinholes]
            backend = "nftables"

            [[ftp]]
            listen = "0.0.0.0:2100"
            intercept-interface = "inside"
            """)
        let rules = InterceptRules(configuration: configuration)
        #expect(rules.rules.first?.dataPorts == nil)
        #expect(!rules.table.contains("passive data"))
        #expect(rules.table.contains("redirect to :2100"))
    }

    @Test func reverseModeListenersSteerNothing() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[ftp]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:21"
            """)
        #expect(InterceptRules(configuration: configuration).isEmpty)
    }

    /// A transparent SIP listener: TCP is redirected like FTP's control connections (no data ports: SIP media
    /// relays are announced at the gateway's own address); UDP is diverted by TPROXY in a filter chain at the mangle
    /// priority, with the mark that the policy routing sends to local delivery.
    @Test func transparentSIPIsRedirectedAndDiverted() throws {
        let configuration = try AlgateConfiguration.parse("""
            [pinholes]
            ports = "41000-41099"

            [[sip]]
            listen = "0.0.0.0:5060"
            intercept-interface = "lan0"
            """)
        let rules = InterceptRules(configuration: configuration)
        #expect(rules.rules.map(\.name) == ["sip[0]"])
        #expect(rules.table == """
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

            """)
        #expect(rules.policyRoutingInstall == [
            ["-4", "route", "replace", "local", "0.0.0.0/0", "dev", "lo", "table", "24940"],
            ["-4", "rule", "add", "fwmark", "0x616c", "lookup", "24940"],
        ])
        #expect(rules.policyRoutingRemove == [
            ["-4", "rule", "del", "fwmark", "0x616c", "lookup", "24940"],
            ["-4", "route", "flush", "table", "24940"],
        ])
    }

    /// UDP only on a dual-stack listener: no NAT chain at all, TPROXY per family (to the listener's address when it
    /// is not a wildcard), and policy routing for both families.
    @Test func transparentSIPOverUDPOnlyHasNoNATChain() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[sip]]
            listen = "[::]:5070"
            transports = ["udp"]
            intercept-interface = ["lan0", "wlan*"]

            [[sip]]
            listen = "[fd00:77::1]:5060"
            transports = ["udp"]
            intercept-interface = "lan1"
            intercept-ports = [5080]
            """)
        let rules = InterceptRules(configuration: configuration)
        #expect(rules.table == """
            table inet algate_intercept {
                chain divert {
                    type filter hook prerouting priority mangle; policy accept;
                    iifname { "lan0", "wlan*" } meta nfproto ipv4 udp dport { 5060 } fib daddr type != local meta mark set 0x616c tproxy ip to :5070 comment "sip[0] [::]:5070"
                    iifname { "lan0", "wlan*" } meta nfproto ipv6 udp dport { 5060 } fib daddr type != local meta mark set 0x616c tproxy ip6 to :5070 comment "sip[0] [::]:5070"
                    iifname { "lan1" } meta nfproto ipv6 udp dport { 5080 } fib daddr type != local meta mark set 0x616c tproxy ip6 to [fd00:77::1]:5060 comment "sip[1] [fd00:77::1]:5060"
                }
            }

            """)
        #expect(rules.policyRoutingInstall.map { $0.prefix(3).joined(separator: " ") }
            == ["-4 route replace", "-4 rule add", "-6 route replace", "-6 rule add"])
        #expect(rules.policyRoutingInstall[2][4] == "::/0")
    }

    /// FTP and TCP-only SIP need no policy routing.
    @Test func noPolicyRoutingWithoutUDP() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[sip]]
            listen = "10.0.0.1:5060"
            transports = ["tcp"]
            intercept-interface = "lan0"
            intercept-ports = [5060, 5080]
            """)
        let rules = InterceptRules(configuration: configuration)
        #expect(rules.policyRoutingInstall.isEmpty && rules.policyRoutingRemove.isEmpty)
        #expect(rules.table.contains("tcp dport { 5060, 5080 } dnat ip to 10.0.0.1:5060 comment \"sip[0] 10.0.0.1:5060\""))
        #expect(!rules.table.contains("divert"))
    }

    /// UDP learns a datagram's original address, not its port: one intercept port only.
    @Test func transparentSIPOverUDPInterceptsOnePort() throws {
        #expect(throws: ConfigurationError.self) {
            try AlgateConfiguration.parse("""
                [[sip]]
                listen = "0.0.0.0:5060"
                intercept-interface = "lan0"
                intercept-ports = [5060, 5080]
                """)
        }
    }
}
