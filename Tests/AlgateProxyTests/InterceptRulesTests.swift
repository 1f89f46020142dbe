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
        let rules = try InterceptRules(configuration: configuration)
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
        let rules = try InterceptRules(configuration: configuration)
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
        #expect(try InterceptRules(configuration: configuration).isEmpty)
    }

    @Test func transparentSIPIsRefused() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[sip]]
            listen = "10.0.0.1:5060"
            intercept-interface = "lan0"
            """)
        #expect(throws: GatewayError.self) { try InterceptRules(configuration: configuration) }
    }
}
