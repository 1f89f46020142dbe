public import AlgateRewrite

/// The nftables table that holds the kernel backend's pinholes, as nft script text. Pure: it runs nothing.
///
/// One table of the `inet` family, owned by algate and named by ``name``: maps from "who may connect to which
/// public port" to the target (DNAT), a set that makes a TCP pinhole admit one connection (the rule deletes the
/// element when the first connection uses it), and maps that give a DNAT'ed flow the source address (and, for
/// media, the port) the target expects (SNAT). Established flows are left to conntrack: deleting an element
/// never cuts a flow that already passed.
///
/// A forward chain with policy drop must accept `ct status dnat` for the pinholed flows to pass it; the table
/// only translates, it filters nothing.
public struct NftablesPinholeTable: Hashable, Sendable {
    /// The table's name in the `inet` family.
    public var name: String

    public init(name: String = "algate_pinholes") {
        self.name = name
    }

    /// IPv4 or IPv6: the maps come in one of each.
    public enum Family: String, Hashable, Sendable {
        case v4 = "4"
        case v6 = "6"

        init(_ address: IPAddress) { self = address.isIPv4 ? .v4 : .v6 }

        var addressType: String { self == .v4 ? "ipv4_addr" : "ipv6_addr" }
        var nat: String { self == .v4 ? "ip" : "ip6" }
    }

    /// The transport a pinhole admits.
    public enum Transport: String, Hashable, Sendable {
        case tcp, udp
    }

    /// One element of one of the table's maps or sets, as algate added it (removal needs the same value).
    public struct Element: Hashable, Sendable {
        /// The set or map it belongs to.
        public var set: String
        /// The key, in nft syntax.
        public var key: String
        /// The value, in nft syntax, for a map; nil for a set.
        public var value: String?
    }

    /// A DNAT element: `peer` (or anyone, when nil and UDP) reaching `local` over `transport` goes to `target`.
    /// TCP pinholes always name their peer and also get a one-use element.
    public func dnat(peer: IPAddress?, local: Endpoint, transport: Transport, target: Endpoint) -> [Element] {
        let family = Family(local.address)
        let service = "\(transport.rawValue) . \(local.port)"
        let value = "\(target.address) . \(target.port)"
        guard let peer else {
            return [Element(set: "dnat\(family.rawValue)any", key: "\(local.address) . \(service)", value: value)]
        }
        let key = "\(peer) . \(local.address) . \(service)"
        var elements = [Element(set: "dnat\(family.rawValue)", key: key, value: value)]
        if transport == .tcp { elements.append(Element(set: "once\(family.rawValue)", key: key, value: nil)) }
        return elements
    }

    /// An SNAT element: a DNAT'ed flow to `target` leaves from `source` (its port too, when it has one).
    public func snat(target: Endpoint, transport: Transport, source: IPAddress, port: UInt16?) -> Element {
        let family = Family(target.address)
        let key = "\(target.address) . \(transport.rawValue) . \(target.port)"
        if let port {
            return Element(set: "snat\(family.rawValue)", key: key, value: "\(source) . \(port)")
        }
        return Element(set: "snataddr\(family.rawValue)", key: key, value: "\(source)")
    }

    /// Adds `elements`, each expiring after `timeout` in the kernel.
    public func addScript(_ elements: [Element], timeout: Duration) -> String {
        let seconds = max(1, Int(timeout.components.seconds) + (timeout.components.attoseconds > 0 ? 1 : 0))
        var script = ""
        for element in elements {
            script += "add element inet \(name) \(element.set) { \(element.key) timeout \(seconds)s"
            if let value = element.value { script += " : \(value)" }
            script += " }\n"
        }
        return script
    }

    /// Removes `elements` whether or not the kernel still has them (they may have expired): each is added
    /// again, which changes nothing when it is there, and then deleted.
    public func removeScript(_ elements: [Element]) -> String {
        var script = addScript(elements, timeout: .seconds(1))
        for element in elements {
            script += "delete element inet \(name) \(element.set) { \(element.key) }\n"
        }
        return script
    }

    /// Deletes the one-use element of a TCP pinhole: fails when its connection already used (or it expired).
    public func consumeScript(_ element: Element) -> String {
        "delete element inet \(name) \(element.set) { \(element.key) }\n"
    }

    /// Removes the table with everything in it; harmless when it is not there.
    public var removeTableScript: String {
        "table inet \(name)\ndelete table inet \(name)\n"
    }

    /// Creates the table from nothing, dropping a table of the same name that a crashed run left behind. One
    /// batch: the old table never coexists with a half-made new one.
    public var installScript: String {
        var script = removeTableScript
        script += "table inet \(name) {\n"
        for family in [Family.v4, .v6] {
            let address = family.addressType
            let f = family.rawValue
            script += """
                  map dnat\(f) { type \(address) . \(address) . inet_proto . inet_service : \(address) . inet_service; flags timeout; }
                  map dnat\(f)any { type \(address) . inet_proto . inet_service : \(address) . inet_service; flags timeout; }
                  set once\(f) { type \(address) . \(address) . inet_proto . inet_service; flags timeout; }
                  map snat\(f) { type \(address) . inet_proto . inet_service : \(address) . inet_service; flags timeout; }
                  map snataddr\(f) { type \(address) . inet_proto . inet_service : \(address); flags timeout; }

                """
        }
        // Prerouting for traffic that crosses the gateway, output for the gateway's own clients; just before
        // the usual DNAT priority (-100; nft 1.0.6 takes the name `dstnat` for prerouting only).
        for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
            script += "  chain \(chain) {\n    type nat hook \(hook) priority -105; policy accept;\n"
            for family in [Family.v4, .v6] {
                let nat = family.nat
                let f = family.rawValue
                let tuple = "\(nat) saddr . \(nat) daddr . meta l4proto . th dport"
                script += "    meta l4proto tcp \(tuple) @once\(f) delete @once\(f) { \(tuple) } "
                    + "dnat \(nat) to \(tuple) map @dnat\(f)\n"
                script += "    meta l4proto udp dnat \(nat) to \(tuple) map @dnat\(f)\n"
                script += "    meta l4proto udp dnat \(nat) to \(nat) daddr . meta l4proto . th dport map @dnat\(f)any\n"
            }
            script += "  }\n"
        }
        script += "  chain postrouting {\n    type nat hook postrouting priority srcnat - 5; policy accept;\n"
        for family in [Family.v4, .v6] {
            let nat = family.nat
            let f = family.rawValue
            let target = "\(nat) daddr . meta l4proto . th dport"
            script += "    ct status dnat snat \(nat) to \(target) map @snat\(f)\n"
            script += "    ct status dnat snat \(nat) to \(target) map @snataddr\(f)\n"
        }
        script += "  }\n}\n"
        return script
    }
}
