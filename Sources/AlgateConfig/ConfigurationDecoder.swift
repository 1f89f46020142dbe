import AlgatePolicy
import AlgateRewrite

/// Turns the parsed value tree into ``AlgateConfiguration``, checking every key on the way.
///
/// Checks run in a fixed order, and the first failure is thrown: unknown and unsupported top-level keys, then
/// `shutdown-grace`, `[pinholes]`, each `[[ftp]]` in order, `[log]`, and last the checks across tables (no listener,
/// a listener inside the pinhole ports, two listeners on one endpoint). Within a table, unknown keys come first
/// (in the order of the file), then each known key.
struct ConfigurationDecoder {
    /// Top-level tables that later versions of algate will read; this one refuses them rather than ignore them.
    static let unsupportedTopLevelKeys: Set<String> = []
    static let topLevelKeys = ["pinholes", "ftp", "sip", "policy", "log", "shutdown-grace"]
    static let policyKeys = ["allow", "deny", "log", "match-limit", "depth-limit"]
    static let policyRuleKeys = ["protocol", "field", "header", "pattern", "sources", "response"]
    static let pinholeKeys = ["backend", "ports", "timeout", "per-session", "max"]
    static let ftpKeys = [
        "listen", "upstream", "mode", "public-address", "data-address", "max-line-length", "idle-timeout",
        "max-sessions", "allow-privileged-ports", "intercept-interface", "intercept-ports",
    ]
    static let sipKeys = [
        "listen", "upstream", "mode", "transports", "public-address", "inside-address", "media-timeout",
        "keepalive-interval", "max-message-size", "max-connections", "intercept-interface", "intercept-ports", "ice",
        "inside-networks",
    ]
    static let logKeys = ["level"]
    static let maxLineLengthRange = 512...1_048_576

    var root: [String: TOMLNode]
    var sources: ConfigurationSourceMap

    func decode() throws(ConfigurationError) -> AlgateConfiguration {
        try checkKeys(root, at: .root, known: Self.topLevelKeys, unsupported: Self.unsupportedTopLevelKeys)
        let top = TableReader(table: root, path: .root, sources: sources)
        let shutdownGrace = try top.duration("shutdown-grace", allowZero: true) ?? .seconds(10)

        let pinholes = try decodePinholes()
        let listeners = try decodeFTPListeners()
        let sip = try decodeSIPListeners()
        let policy = try decodePolicy()
        let log = try decodeLog()

        guard !listeners.isEmpty || !sip.isEmpty else {
            throw ConfigurationError(source: sources.source, message: "nothing to do: no [[ftp]] or [[sip]] listener")
        }
        try checkListeners(listeners, against: pinholes)
        try checkSIPListeners(sip, ftp: listeners, against: pinholes)
        return AlgateConfiguration(pinholes: pinholes, ftp: listeners, sip: sip, policy: policy, log: log,
                                   shutdownGrace: shutdownGrace)
    }

    // MARK: Tables

    private func decodePinholes() throws(ConfigurationError) -> PinholeSettings {
        var settings = PinholeSettings()
        guard let reader = try subtable("pinholes", known: Self.pinholeKeys) else { return settings }
        if let backend = try reader.string("backend") {
            guard let value = PinholeSettings.Backend(rawValue: backend) else {
                throw reader.error("backend", "expected \"userspace\" or \"nftables\"")
            }
            settings.backend = value
        }
        if let ports = try reader.portRange("ports") { settings.ports = ports }
        if let timeout = try reader.duration("timeout", allowZero: false) { settings.timeout = timeout }
        if let perSession = try reader.integer("per-session", atLeast: 1) { settings.perSession = perSession }
        if let maxTotal = try reader.integer("max", atLeast: 1) { settings.maxTotal = maxTotal }
        return settings
    }

    private func decodeLog() throws(ConfigurationError) -> LogSettings {
        var settings = LogSettings()
        guard let reader = try subtable("log", known: Self.logKeys) else { return settings }
        if let level = try reader.string("level") {
            guard LogSettings.levels.contains(level.lowercased()) else {
                throw reader.error("level", "expected one of " + LogSettings.levels.joined(separator: ", "))
            }
            settings.level = level.lowercased()
        }
        return settings
    }

    private func decodeFTPListeners() throws(ConfigurationError) -> [FTPListenerSettings] {
        try decodeArrayOfTables("ftp", known: Self.ftpKeys) { reader, _ throws(ConfigurationError) in
            try decodeFTPListener(reader)
        }
    }

    /// Each table of an array of tables (`[[key]]`), its keys checked, decoded in file order.
    private func decodeArrayOfTables<T>(
        _ key: String, known: [String],
        _ decode: (TableReader, [String: TOMLNode]) throws(ConfigurationError) -> T
    ) throws(ConfigurationError) -> [T] {
        let path = ConfigPath(keys: [key])
        guard let node = root[key] else { return [] }
        guard case .array(let items) = node else {
            if case .table = node {
                throw sources.error(at: path, value: nil, "expected [[\(key)]] (an array of tables), not [\(key)]")
            }
            throw sources.error(at: path, value: node, "expected [[\(key)]] tables, not \(node.typeName)")
        }
        var decoded: [T] = []
        for (index, item) in items.enumerated() {
            let itemPath = path.appending(index: index)
            guard case .table(let table) = item else {
                throw sources.error(at: itemPath, value: item, "expected a table, not \(item.typeName)")
            }
            try checkKeys(table, at: itemPath, known: known)
            decoded.append(try decode(TableReader(table: table, path: itemPath, sources: sources), table))
        }
        return decoded
    }

    private func decodeFTPListener(_ reader: TableReader) throws(ConfigurationError) -> FTPListenerSettings {
        let (listen, upstream, mode) = try decodeListenerBasics(reader)
        var settings = FTPListenerSettings(listen: listen, line: sources.exactLine(of: reader.path) ?? 0)
        settings.upstream = upstream
        settings.mode = mode
        settings.publicAddress = try reader.address("public-address")
        if let address = settings.publicAddress, address.isUnspecified {
            throw reader.error("public-address", "the unspecified address cannot be announced to clients")
        }
        settings.dataAddress = try reader.address("data-address")
        if let length = try reader.integer("max-line-length", in: Self.maxLineLengthRange) {
            settings.maxLineLength = length
        }
        if let timeout = try reader.duration("idle-timeout", allowZero: false) { settings.idleTimeout = timeout }
        if let sessions = try reader.integer("max-sessions", atLeast: 1) { settings.maxSessions = sessions }
        if let allow = try reader.bool("allow-privileged-ports") { settings.allowPrivilegedPorts = allow }
        if let (interfaces, ports) = try decodeIntercept(reader, mode: mode, protocolName: "FTP control") {
            settings.interceptInterfaces = interfaces
            if let ports { settings.interceptPorts = ports }
        }
        return settings
    }

    private func decodeSIPListeners() throws(ConfigurationError) -> [SIPListenerSettings] {
        try decodeArrayOfTables("sip", known: Self.sipKeys) { reader, table throws(ConfigurationError) in
            try decodeSIPListener(reader, table)
        }
    }

    /// An array of networks in CIDR notation (`sources`, `inside-networks`); empty when the key is absent.
    private static func networks(_ key: String, _ table: [String: TOMLNode], _ reader: TableReader)
        throws(ConfigurationError) -> [CIDR] {
        guard let node = table[key] else { return [] }
        guard case .array(let items) = node else {
            throw reader.error(key, "expected an array of networks such as [\"10.0.0.0/8\"]")
        }
        var networks: [CIDR] = []
        for item in items {
            guard case .string(let text) = item, let network = CIDR(text) else {
                throw reader.error(key, "expected networks in CIDR notation such as \"10.0.0.0/8\"")
            }
            networks.append(network)
        }
        return networks
    }

    private func decodeSIPListener(_ reader: TableReader, _ table: [String: TOMLNode])
        throws(ConfigurationError) -> SIPListenerSettings {
        let (listen, upstream, mode) = try decodeListenerBasics(reader)
        var settings = SIPListenerSettings(listen: listen, line: sources.exactLine(of: reader.path) ?? 0)
        settings.upstream = upstream
        settings.mode = mode
        if let node = table["transports"] {
            guard case .array(let items) = node, !items.isEmpty else {
                throw reader.error("transports", "expected a non-empty array such as [\"udp\", \"tcp\"]")
            }
            var transports: Set<SIPTransport> = []
            for item in items {
                guard case .string(let name) = item, let transport = SIPTransport(rawValue: name.lowercased()) else {
                    throw reader.error("transports", "expected \"udp\" and/or \"tcp\"")
                }
                transports.insert(transport)
            }
            settings.transports = transports
        }
        settings.publicAddress = try reader.address("public-address")
        if let address = settings.publicAddress, address.isUnspecified {
            throw reader.error("public-address", "the unspecified address cannot be announced to peers")
        }
        settings.insideAddress = try reader.address("inside-address")
        // Transparent mode finds both addresses per destination (the gateway's address towards it, and towards the
        // phone); reverse mode has one of each, fixed, and a wildcard announces nothing.
        if mode == .reverse, settings.publicAddress == nil, listen.address.isUnspecified {
            throw reader.error("listen", "a wildcard listen address needs public-address (what peers are told)")
        }
        if mode == .reverse, settings.insideAddress == nil, listen.address.isUnspecified {
            throw reader.error("listen", "a wildcard listen address needs inside-address (what upstream is told)")
        }
        if let timeout = try reader.duration("media-timeout", allowZero: false) { settings.mediaTimeout = timeout }
        if let interval = try reader.duration("keepalive-interval", allowZero: false) {
            settings.keepAliveInterval = interval
        }
        if let size = try reader.integer("max-message-size", in: 1024...1_048_576) { settings.maxMessageSize = size }
        if let connections = try reader.integer("max-connections", atLeast: 1) { settings.maxConnections = connections }
        if let ice = try reader.string("ice") {
            guard let mode = SDPRewrite.ICEMode(rawValue: ice) else {
                throw reader.error("ice", "expected \"replace\", \"strip\" or \"pass\"")
            }
            settings.ice = mode
        }
        settings.insideNetworks = try Self.networks("inside-networks", table, reader)
        if let (interfaces, ports) = try decodeIntercept(reader, mode: mode, protocolName: "SIP") {
            settings.interceptInterfaces = interfaces
            if let ports { settings.interceptPorts = ports }
        }
        // TPROXY leaves an intercepted datagram as it was; the listener learns its destination address
        // (IP_PKTINFO) but not its port, so UDP intercepts one port, which is then known.
        if mode == .transparent, settings.transports.contains(.udp), settings.interceptPorts.count > 1 {
            throw reader.error("intercept-ports", "a transparent listener with udp intercepts one port (a datagram's "
                + "original port is not known after TPROXY); list one, or set transports = [\"tcp\"]")
        }
        return settings
    }

    /// `[policy]` limits and the `[[policy.allow]]`, `[[policy.deny]]`, `[[policy.log]]` rules, compiled and put in
    /// the order they stand in the file (first match wins across the three lists).
    private func decodePolicy() throws(ConfigurationError) -> PolicyEngine {
        guard let reader = try subtable("policy", known: Self.policyKeys) else { return PolicyEngine() }
        let matchLimit = try reader.integer("match-limit", in: 100...100_000_000) ?? 100_000
        let depthLimit = try reader.integer("depth-limit", in: 10...10_000_000) ?? 10_000
        var rules: [(line: Int, rule: PolicyRule)] = []
        for action in [PolicyRule.Action.allow, .deny, .log] {
            let path = ConfigPath(keys: ["policy", action.rawValue])
            guard let node = reader.table[action.rawValue] else { continue }
            guard case .array(let items) = node else {
                throw sources.error(at: path, value: nil, "expected [[policy.\(action.rawValue)]] tables")
            }
            for (index, item) in items.enumerated() {
                let itemPath = path.appending(index: index)
                guard case .table(let table) = item else {
                    throw sources.error(at: itemPath, value: item, "expected a table, not \(item.typeName)")
                }
                try checkKeys(table, at: itemPath, known: Self.policyRuleKeys)
                let line = sources.exactLine(of: itemPath) ?? 0
                let rule = try decodePolicyRule(TableReader(table: table, path: itemPath, sources: sources), table,
                                                action: action, line: line,
                                                limits: (UInt32(matchLimit), UInt32(depthLimit)))
                rules.append((line, rule))
            }
        }
        return PolicyEngine(rules: rules.sorted { $0.line < $1.line }.map(\.rule))
    }

    private func decodePolicyRule(
        _ reader: TableReader, _ table: [String: TOMLNode], action: PolicyRule.Action, line: Int,
        limits: (match: UInt32, depth: UInt32)
    ) throws(ConfigurationError) -> PolicyRule {
        guard let protocolName = try reader.string("protocol") else {
            throw sources.error(at: reader.path.appending("protocol"), value: nil, "required key is missing (\"sip\" or \"ftp\")")
        }
        guard let application = PolicyRule.Application(rawValue: protocolName.lowercased()) else {
            throw reader.error("protocol", "expected \"sip\" or \"ftp\"")
        }
        let header = try reader.string("header")
        let fieldName = try reader.string("field")
        let field: PolicyRule.Field
        switch (application, fieldName?.lowercased(), header) {
        case (_, _?, _?):
            throw reader.error("header", "give either field or header, not both")
        case (.sip, nil, let name?):
            field = .sipHeader(name.lowercased())
        case (.sip, "method"?, nil): field = .sipMethod
        case (.sip, "request-uri"?, nil): field = .sipRequestURI
        case (.sip, let name?, nil) where ["from", "to", "user-agent", "contact"].contains(name):
            field = .sipHeader(name)
        case (.ftp, "verb"?, nil): field = .ftpVerb
        case (.ftp, "argument"?, nil): field = .ftpArgument
        case (.ftp, "user"?, nil): field = .ftpUser
        case (.ftp, nil, _?):
            throw reader.error("header", "FTP has no headers: use field = \"verb\", \"argument\" or \"user\"")
        case (_, nil, nil):
            throw sources.error(at: reader.path.appending("field"), value: nil, application == .sip
                ? "required: field (method, request-uri, from, to, user-agent) or header = \"Name\""
                : "required: field (verb, argument, user)")
        case (_, _?, nil):
            throw reader.error("field", application == .sip
                ? "expected method, request-uri, from, to, user-agent or contact (or use header = \"Name\")"
                : "expected verb, argument or user")
        }
        guard let patternText = try reader.string("pattern") else {
            throw sources.error(at: reader.path.appending("pattern"), value: nil, "required key is missing")
        }
        let pattern: PolicyPattern
        do {
            pattern = try PolicyPattern(patternText, matchLimit: limits.match, depthLimit: limits.depth)
        } catch {
            throw reader.error("pattern", "does not compile at offset \(error.offset): \(error.message)")
        }
        let networks = try Self.networks("sources", table, reader)
        var response: PolicyRule.Response = application == .sip ? .reply(403) : .reply(field == .ftpUser ? 530 : 550)
        if let text = try reader.string("response") {
            if text.lowercased() == "drop" {
                guard application == .sip else { throw reader.error("response", "FTP denials are answered: give a 4xx or 5xx code") }
                response = .drop
            } else if let code = Int(text), application == .sip ? (400...699).contains(code) : (400...599).contains(code) {
                response = .reply(code)
            } else {
                throw reader.error("response", application == .sip ? "expected a code 400-699 or \"drop\"" : "expected a code 400-599")
            }
        }
        let name = "\(reader.path)" + (line > 0 ? " (line \(line))" : "")
        return PolicyRule(name: name, action: action, application: application, field: field, pattern: pattern,
                          sources: networks, response: response)
    }

    /// The keys every listener has: `listen` (required), `upstream`, and `mode` (reverse with an upstream,
    /// transparent without one; the two must agree).
    private func decodeListenerBasics(_ reader: TableReader)
        throws(ConfigurationError) -> (Endpoint, Endpoint?, FTPListenerSettings.Mode) {
        guard let listen = try reader.endpoint("listen") else {
            throw sources.error(at: reader.path.appending("listen"), value: nil, "required key is missing")
        }
        let upstream = try reader.endpoint("upstream")
        if let upstream, upstream.address.isUnspecified {
            throw reader.error("upstream", "the unspecified address cannot be an upstream")
        }
        let mode: FTPListenerSettings.Mode
        if let text = try reader.string("mode") {
            guard let value = FTPListenerSettings.Mode(rawValue: text) else {
                throw reader.error("mode", "expected \"reverse\" or \"transparent\"")
            }
            mode = value
        } else {
            mode = upstream == nil ? .transparent : .reverse
        }
        switch (mode, upstream) {
        case (.reverse, nil):
            throw reader.error("mode", "reverse mode needs an upstream (add upstream = \"ADDRESS:PORT\")")
        case (.transparent, _?):
            throw reader.error(
                "upstream", "transparent mode takes no upstream (each session goes to its original destination)"
            )
        default:
            return (listen, upstream, mode)
        }
    }

    /// `intercept-interface` and `intercept-ports`: required (the first) in transparent mode, refused in reverse
    /// mode, where nothing is intercepted. Nil in reverse mode; the ports are nil when the default applies.
    private func decodeIntercept(_ reader: TableReader, mode: FTPListenerSettings.Mode, protocolName: String)
        throws(ConfigurationError) -> ([String], [UInt16]?)? {
        let interfaces = try reader.interfaceNames("intercept-interface")
        let ports = try reader.portList("intercept-ports")
        guard mode == .transparent else {
            for key in ["intercept-interface", "intercept-ports"] where reader.table[key] != nil {
                throw reader.error(key, "only for transparent mode (a reverse-mode listener intercepts nothing)")
            }
            return nil
        }
        guard let interfaces else {
            throw sources.error(at: reader.path.appending("intercept-interface"), value: nil,
                                "required in transparent mode: the inside interface(s) whose \(protocolName) "
                                    + "traffic is steered here, e.g. intercept-interface = \"eth1\"")
        }
        return (interfaces, ports)
    }

    /// SIP listeners: none inside the pinhole ports, none on an endpoint another listener has.
    private func checkSIPListeners(
        _ listeners: [SIPListenerSettings], ftp: [FTPListenerSettings], against pinholes: PinholeSettings
    ) throws(ConfigurationError) {
        var seen = Set(ftp.map(\.listen))
        for (index, listener) in listeners.enumerated() {
            let path = ConfigPath(keys: ["sip"]).appending(index: index).appending("listen")
            let value = TOMLNode.string(listener.listen.description)
            if pinholes.ports.contains(listener.listen.port) {
                let range = "\(pinholes.ports.lowerBound)-\(pinholes.ports.upperBound)"
                throw sources.error(at: path, value: value, "overlaps pinholes.ports (\(range))")
            }
            guard seen.insert(listener.listen).inserted else {
                throw sources.error(at: path, value: value, "another listener already uses this endpoint")
            }
        }
    }

    /// Checks across listeners: none inside the pinhole ports, no two on one endpoint.
    private func checkListeners(
        _ listeners: [FTPListenerSettings], against pinholes: PinholeSettings
    ) throws(ConfigurationError) {
        var seen: [Endpoint: Int] = [:]
        for (index, listener) in listeners.enumerated() {
            let path = ConfigPath(keys: ["ftp"]).appending(index: index).appending("listen")
            let value = TOMLNode.string(listener.listen.description)
            if pinholes.ports.contains(listener.listen.port) {
                let range = "\(pinholes.ports.lowerBound)-\(pinholes.ports.upperBound)"
                throw sources.error(at: path, value: value, "overlaps pinholes.ports (\(range))")
            }
            if let other = seen[listener.listen] {
                let where_ = listeners[other].line > 0 ? " (line \(listeners[other].line))" : ""
                throw sources.error(at: path, value: value, "same listen endpoint as ftp[\(other)]\(where_)")
            }
            seen[listener.listen] = index
        }
    }

    // MARK: Keys

    /// The reader for a top-level table, after checking its keys; nil when the table is absent.
    private func subtable(_ key: String, known: [String]) throws(ConfigurationError) -> TableReader? {
        guard let node = root[key] else { return nil }
        let path = ConfigPath(keys: [key])
        guard case .table(let table) = node else {
            throw sources.error(at: path, value: node, "expected a table ([\(key)]), not \(node.typeName)")
        }
        try checkKeys(table, at: path, known: known)
        return TableReader(table: table, path: path, sources: sources)
    }

    /// Throws for the first key (in file order) of `table` that is not `known`.
    private func checkKeys(
        _ table: [String: TOMLNode], at path: ConfigPath, known: [String], unsupported: Set<String> = []
    ) throws(ConfigurationError) {
        let strangers = table.keys.filter { !known.contains($0) }.sorted { a, b in
            let lineA = sources.location(of: path.appending(a)).line ?? Int.max
            let lineB = sources.location(of: path.appending(b)).line ?? Int.max
            return (lineA, a) < (lineB, b)
        }
        guard let key = strangers.first else { return }
        let keyPath = path.appending(key)
        let node = table[key]
        let value: TOMLNode? = if case .table = node { nil } else { node }
        if unsupported.contains(key) {
            throw sources.error(at: keyPath, value: nil, "not supported by this version of algate")
        }
        if !path.isRoot, key == "shutdown-grace" {
            let header: String
            if case .index? = path.components.last { header = "[[\(path.parent)]]" } else { header = "[\(path)]" }
            throw sources.error(
                at: keyPath, value: value,
                "unknown key in \(header): shutdown-grace is a top-level key, write it before the first [table]"
            )
        }
        throw sources.error(at: keyPath, value: value, "unknown key" + Self.suggestion(for: key, among: known))
    }

    /// "; did you mean per-session?" for `per_session` or `Per-Session`; otherwise the list of known keys.
    static func suggestion(for key: String, among known: [String]) -> String {
        let normalized = String(key.lowercased().map { $0 == "_" ? "-" : $0 })
        if let match = known.first(where: { $0 == normalized }) {
            return "; did you mean \(match)?"
        }
        return " (known keys: " + known.joined(separator: ", ") + ")"
    }
}

extension IPAddress {
    /// 0.0.0.0 or ::, the "any" address.
    var isUnspecified: Bool {
        switch self {
        case .v4(let value): return value == 0
        case .v6(let high, let low): return high == 0 && low == 0
        }
    }
}
