public import AlgateConfig
public import AlgateRewrite

/// The nftables rules that steer the inside hosts' control traffic to algate's transparent listeners, and the
/// policy routing that TPROXY needs.
///
/// A pure value made from the configuration: it owns one table, `inet algate_intercept`, and never names any other.
/// Each transparent `[[ftp]]` listener, and each transparent `[[sip]]` listener with `tcp`, becomes NAT prerouting
/// rules (per address family it can accept):
/// - TCP from its `intercept-interface` to one of its `intercept-ports` is redirected to the listener (`redirect`
///   for a wildcard listen address, which picks the address of the incoming interface; `dnat` to the listen
///   address otherwise). The kernel remembers the address the client asked for, and the listener reads it back
///   with `SO_ORIGINAL_DST`.
/// - TCP from the same interfaces to a port of `[pinholes] ports` is sent, port unchanged, to the same gateway
///   address: that is where passive-mode pinholes listen. A client connects to the port of a 229 (EPSV) reply at
///   the address it believes it is talking to, the server's (and a transparent session's 227 names the server's
///   address too, with the pinhole's port); this rule delivers that connection to the pinhole,
///   which connects on to the server from the gateway's address, the one the server knows the control
///   connection by. (Inside hosts therefore cannot reach those ports on outside hosts directly.) Only with the
///   userspace pinhole backend: a kernel pinhole is a DNAT of its own, which this rule would pre-empt. (FTP
///   only: SIP media relays are announced at the gateway's own address.)
///
/// Each transparent `[[sip]]` listener with `udp` becomes a TPROXY rule in a filter chain at the mangle priority
/// (chain `divert`): a datagram from its `intercept-interface` to its intercept port, not addressed to the gateway
/// itself, is marked ``tproxyMark`` and handed, unchanged, to the listener's socket (`IP_TRANSPARENT`); its
/// destination address is the original one. The mark sends it to local delivery through policy routing, which is not
/// nftables (``policyRoutingInstall``): `ip route replace local 0.0.0.0/0 dev lo table 24940` and
/// `ip rule add fwmark 0x616c lookup 24940`, and the same with `-6` for IPv6.
///
/// ```
/// table inet algate_intercept {
///     chain prerouting {
///         type nat hook prerouting priority dstnat - 10; policy accept;
///         iifname { "lan0" } meta nfproto ipv4 tcp dport { 21 } redirect to :2100 comment "ftp[0] 0.0.0.0:2100"
///         iifname { "lan0" } meta nfproto ipv4 tcp dport 40000-44999 redirect comment "ftp[0] passive data"
///         iifname { "lan0" } meta nfproto ipv4 tcp dport { 5060 } redirect to :5060 comment "sip[0] 0.0.0.0:5060"
///     }
///     chain divert {
///         type filter hook prerouting priority mangle; policy accept;
///         iifname { "lan0" } meta nfproto ipv4 udp dport { 5060 } fib daddr type != local meta mark set 0x616c tproxy ip to :5060 comment "sip[0] 0.0.0.0:5060"
///     }
/// }
/// ```
public struct InterceptRules: Hashable, Sendable {
    /// The table algate owns (family `inet`).
    public static let tableName = "algate_intercept"
    /// The mark a TPROXY rule puts on the datagrams it diverts (`0x616c`, "al"), which the policy rule matches.
    public static let tproxyMark: UInt32 = 0x616c
    /// The routing table of the policy rule: one local route for everything, so marked datagrams are delivered
    /// here instead of forwarded.
    public static let routingTable: UInt32 = 24940

    /// The steering of one listener: connections that arrive on one of `interfaces` for one of `ports` go to
    /// `listen`, and those for a port in `dataPorts` (when set) go to the same address, port unchanged.
    public struct Rule: Hashable, Sendable {
        /// `ftp[0]`: the listener the rule serves, for the rule's comment.
        public var name: String
        /// The inside interfaces (`iifname`; a trailing `*` matches a prefix).
        public var interfaces: [String]
        /// The control ports steered to the listener.
        public var ports: [UInt16]
        /// The transparent listener's address.
        public var listen: Endpoint
        /// The pinhole ports (passive data connections to userspace pinholes); nil to steer none.
        public var dataPorts: ClosedRange<UInt16>?
        /// TCP connections to `ports` are redirected (NAT) to the listener.
        public var tcp: Bool
        /// UDP datagrams to `ports` are diverted (TPROXY) to the listener's socket.
        public var udp: Bool

        public init(name: String, interfaces: [String], ports: [UInt16], listen: Endpoint,
                    dataPorts: ClosedRange<UInt16>?, tcp: Bool = true, udp: Bool = false) {
            self.name = name
            self.interfaces = interfaces
            self.ports = ports
            self.listen = listen
            self.dataPorts = dataPorts
            self.tcp = tcp
            self.udp = udp
        }
    }

    /// The rules, in the order of the configuration's listeners.
    public var rules: [Rule]

    /// The rules of every transparent listener of `configuration`.
    public init(configuration: AlgateConfiguration) {
        rules = []
        // Kernel pinholes are DNATs of their own: no steering of data ports in front of them.
        let dataPorts = configuration.pinholes.backend == .userspace ? configuration.pinholes.ports : nil
        for (index, listener) in configuration.ftp.enumerated() where listener.mode == .transparent {
            rules.append(Rule(name: "ftp[\(index)]", interfaces: listener.interceptInterfaces,
                              ports: listener.interceptPorts, listen: listener.listen,
                              dataPorts: dataPorts))
        }
        for (index, listener) in configuration.sip.enumerated() where listener.mode == .transparent {
            rules.append(Rule(name: "sip[\(index)]", interfaces: listener.interceptInterfaces,
                              ports: listener.interceptPorts, listen: listener.listen, dataPorts: nil,
                              tcp: listener.transports.contains(.tcp), udp: listener.transports.contains(.udp)))
        }
    }

    /// Rules made directly, for tests and tools.
    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// Whether there is nothing to steer (no transparent listener): then nothing is installed.
    public var isEmpty: Bool { rules.isEmpty }

    /// The table with its chain and rules, in the syntax `nft -f` reads.
    public var table: String {
        var out = "table inet \(Self.tableName) {\n"
        if rules.contains(where: \.tcp) {
            out += "    chain prerouting {\n"
            // Before the usual dstnat priority, so that a site's own port forwards on the same ports do not take the
            // connection first (the first NAT rule that matches a new connection decides its mapping).
            out += "        type nat hook prerouting priority dstnat - 10; policy accept;\n"
            for rule in rules where rule.tcp {
                for family in Self.families(of: rule.listen.address) {
                    out += "        " + Self.controlStatement(rule, family: family) + "\n"
                    if let data = Self.dataStatement(rule, family: family) { out += "        " + data + "\n" }
                }
            }
            out += "    }\n"
        }
        if rules.contains(where: \.udp) {
            out += "    chain divert {\n"
            // TPROXY works before routing decides: mangle priority, ahead of NAT and of the routing decision.
            out += "        type filter hook prerouting priority mangle; policy accept;\n"
            for rule in rules where rule.udp {
                for family in Self.families(of: rule.listen.address) {
                    out += "        " + Self.divertStatement(rule, family: family) + "\n"
                }
            }
            out += "    }\n"
        }
        out += "}\n"
        return out
    }

    /// The address families whose UDP is diverted by TPROXY: the policy routing is needed for these.
    var divertedFamilies: [Family] {
        var families: [Family] = []
        for rule in rules where rule.udp {
            for family in Self.families(of: rule.listen.address) where !families.contains(family) {
                families.append(family)
            }
        }
        return families
    }

    /// The `ip` commands (arguments after `ip`) that put the policy routing for TPROXY in place, in order: per
    /// diverted family a local route for everything in ``routingTable`` and a rule sending ``tproxyMark`` there.
    /// Empty when nothing is diverted. Not nftables: `algate run` installs them with iproute2's `ip`.
    public var policyRoutingInstall: [[String]] {
        divertedFamilies.flatMap { family -> [[String]] in
            let version = family == .ipv4 ? "-4" : "-6"
            let everything = family == .ipv4 ? "0.0.0.0/0" : "::/0"
            return [
                [version, "route", "replace", "local", everything, "dev", "lo", "table", "\(Self.routingTable)"],
                [version, "rule", "add", "fwmark", Self.markText, "lookup", "\(Self.routingTable)"],
            ]
        }
    }

    /// The `ip` commands that take the policy routing out again (also run before installing, for a crashed run's).
    public var policyRoutingRemove: [[String]] {
        divertedFamilies.flatMap { family -> [[String]] in
            let version = family == .ipv4 ? "-4" : "-6"
            return [
                [version, "rule", "del", "fwmark", Self.markText, "lookup", "\(Self.routingTable)"],
                [version, "route", "flush", "table", "\(Self.routingTable)"],
            ]
        }
    }

    static var markText: String { "0x" + String(tproxyMark, radix: 16) }

    /// What `algate rules` prints and the gateway runs at start: it replaces a table of the same name, left over by a
    /// crashed run, with these rules in one transaction (`add` makes sure the `delete` has something to delete).
    public var installScript: String {
        "add table inet \(Self.tableName)\ndelete table inet \(Self.tableName)\n" + table
    }

    /// What the gateway runs at exit.
    public static var removeScript: String {
        "delete table inet \(tableName)\n"
    }

    enum Family: String {
        case ipv4, ipv6
    }

    /// The families a listener bound to `address` can accept: an IPv4 address (or 0.0.0.0) IPv4 only, `::` both
    /// (a dual-stack socket), any other IPv6 address IPv6 only.
    static func families(of address: IPAddress) -> [Family] {
        switch address {
        case .v4: return [.ipv4]
        case .v6(let high, let low) where high == 0 && low == 0: return [.ipv4, .ipv6]
        case .v6: return [.ipv6]
        }
    }

    static func controlStatement(_ rule: Rule, family: Family) -> String {
        let ports = rule.ports.map(String.init).joined(separator: ", ")
        return match(rule, family) + " tcp dport { \(ports) } " + target(rule.listen.address, port: rule.listen.port)
            + " comment \"\(rule.name) \(rule.listen)\""
    }

    /// TPROXY of the listener's UDP port: the datagram keeps its destination (the listener reads it), and the mark
    /// makes policy routing deliver it locally. Datagrams for the gateway's own addresses are left alone: they reach
    /// the listener (or whatever else listens) without help.
    static func divertStatement(_ rule: Rule, family: Family) -> String {
        let ports = rule.ports.map(String.init).joined(separator: ", ")
        let version = family == .ipv4 ? "ip" : "ip6"
        let port = rule.listen.port
        let target: String
        if rule.listen.address.isWildcard {
            target = ":\(port)"
        } else if case .v6 = rule.listen.address {
            target = "[\(rule.listen.address)]:\(port)"
        } else {
            target = "\(rule.listen.address):\(port)"
        }
        return match(rule, family) + " udp dport { \(ports) } fib daddr type != local meta mark set \(markText) "
            + "tproxy \(version) to \(target) comment \"\(rule.name) \(rule.listen)\""
    }

    static func dataStatement(_ rule: Rule, family: Family) -> String? {
        guard let range = rule.dataPorts else { return nil }
        let ports = range.lowerBound == range.upperBound
            ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
        return match(rule, family) + " tcp dport \(ports) " + target(rule.listen.address, port: nil)
            + " comment \"\(rule.name) passive data\""
    }

    private static func match(_ rule: Rule, _ family: Family) -> String {
        let interfaces = rule.interfaces.map { "\"\($0)\"" }.joined(separator: ", ")
        return "iifname { \(interfaces) } meta nfproto \(family.rawValue)"
    }

    /// `redirect` for a wildcard listen address (the address of the incoming interface), else `dnat` to it; the
    /// destination port becomes `port`, or stays when nil.
    private static func target(_ address: IPAddress, port: UInt16?) -> String {
        let suffix = port.map { ":\($0)" } ?? ""
        if address.isWildcard { return "redirect" + (port.map { " to :\($0)" } ?? "") }
        if case .v6 = address { return port == nil ? "dnat ip6 to \(address)" : "dnat ip6 to [\(address)]\(suffix)" }
        return "dnat ip to \(address)\(suffix)"
    }
}
