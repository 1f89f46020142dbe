import AlgateRewrite

/// Typed reads of the keys of one table; each returns nil when the key is absent and throws a
/// ``ConfigurationError`` naming the key, its value and its line when the value is unusable.
struct TableReader {
    var table: [String: TOMLNode]
    var path: ConfigPath
    var sources: ConfigurationSourceMap

    /// An error about the value of `key` in this table.
    func error(_ key: String, _ message: String) -> ConfigurationError {
        sources.error(at: path.appending(key), value: table[key], message)
    }

    func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let node = table[key] else { return nil }
        guard case .string(let text) = node else { throw error(key, "expected a string, not \(node.typeName)") }
        return text
    }

    func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let node = table[key] else { return nil }
        guard case .boolean(let value) = node else {
            throw error(key, "expected true or false, not \(node.typeName)")
        }
        return value
    }

    func integer(_ key: String, atLeast minimum: Int) throws(ConfigurationError) -> Int? {
        guard let value = try integerValue(key) else { return nil }
        guard value >= minimum else { throw error(key, "must be at least \(minimum)") }
        return value
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let value = try integerValue(key) else { return nil }
        guard range.contains(value) else {
            throw error(key, "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    private func integerValue(_ key: String) throws(ConfigurationError) -> Int? {
        guard let node = table[key] else { return nil }
        guard case .integer(let value) = node else {
            throw error(key, "expected an integer, not \(node.typeName)")
        }
        return value
    }

    /// `"250ms"`, `"30s"`, `"1m30s"`; a bare number is refused with a hint to add a unit.
    func duration(_ key: String, allowZero: Bool) throws(ConfigurationError) -> Duration? {
        guard let node = table[key] else { return nil }
        let duration: Duration
        switch node {
        case .string(let text):
            do {
                duration = try DurationSyntax.parse(text)
            } catch {
                throw self.error(key, error.message)
            }
        case .integer, .float:
            throw error(key, DurationSyntax.needsUnit)
        default:
            throw error(key, "expected a duration string such as \"30s\", not \(node.typeName)")
        }
        if !allowZero, duration <= .zero { throw error(key, "must be greater than zero") }
        return duration
    }

    /// `"40000-44999"` or a single port `"40000"` (also written as the integer 40000).
    func portRange(_ key: String) throws(ConfigurationError) -> ClosedRange<UInt16>? {
        guard let node = table[key] else { return nil }
        let text: Substring
        switch node {
        case .string(let value): text = Substring(value)
        case .integer(let value): text = Substring(String(value))
        default: throw error(key, "expected a port range string such as \"40000-44999\", not \(node.typeName)")
        }
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            .map { $0.trimmingBlanks() }
        let malformed = "expected a port range such as \"40000-44999\", or a single port"
        var ports: [UInt16] = []
        for part in parts {
            guard !part.isEmpty, part.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw error(key, malformed)
            }
            guard let port = UInt16(part) else { throw error(key, "port \(part) is out of range (1-65535)") }
            guard port != 0 else { throw error(key, "port 0 is not allowed") }
            ports.append(port)
        }
        guard let first = ports.first, let last = ports.last else { throw error(key, malformed) }
        guard first <= last else { throw error(key, "range is reversed (\(first) is above \(last))") }
        return first...last
    }

    /// `"192.0.2.1:21"` or `"[2001:db8::1]:21"`; port 0 is refused.
    func endpoint(_ key: String) throws(ConfigurationError) -> Endpoint? {
        guard let text = try string(key) else { return nil }
        let example = "e.g. \"0.0.0.0:21\" or \"[::1]:2121\""
        guard let endpoint = Endpoint(text) else {
            if IPAddress(text) != nil {
                throw error(key, "missing port: expected ADDRESS:PORT, \(example)")
            }
            throw error(key, "expected ADDRESS:PORT with an IP address, \(example) (host names are not resolved)")
        }
        guard endpoint.port != 0 else { throw error(key, "port 0 is not allowed") }
        return endpoint
    }

    /// `"203.0.113.7"` or `"2001:db8::7"` (brackets allowed): an address only, without a port.
    func address(_ key: String) throws(ConfigurationError) -> IPAddress? {
        guard let text = try string(key) else { return nil }
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        guard let address = IPAddress(bare) else {
            if Endpoint(text) != nil {
                throw error(key, "expected an address without a port, e.g. \"203.0.113.7\"")
            }
            throw error(key, "not an IP address (host names are not resolved)")
        }
        return address
    }

    /// `"eth1"` or `["eth1", "wlan*"]`: network interface names as nftables matches them (at most 15 bytes of
    /// letters, digits, `.`, `_`, `-`, and a trailing `*` for a prefix). Anything else is refused, which also
    /// keeps the names safe to put in an nftables script.
    func interfaceNames(_ key: String) throws(ConfigurationError) -> [String]? {
        guard let node = table[key] else { return nil }
        let names: [String]
        switch node {
        case .string(let name): names = [name]
        case .array(let items):
            var collected: [String] = []
            for item in items {
                guard case .string(let name) = item else {
                    throw error(key, "expected interface names as strings, such as [\"eth1\", \"eth2\"]")
                }
                collected.append(name)
            }
            names = collected
        default: throw error(key, "expected an interface name or a list of them, not \(node.typeName)")
        }
        guard !names.isEmpty else { throw error(key, "expected at least one interface name") }
        for name in names {
            let body = name.hasSuffix("*") ? name.utf8.dropLast() : name.utf8[...]
            let allowed = body.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
            guard !body.isEmpty, body.count <= 15, allowed else {
                throw error(key, "\"\(name)\" is not an interface name (1-15 letters, digits, '.', '_', '-'; "
                    + "a trailing '*' matches a prefix)")
            }
        }
        return names
    }

    /// `21` or `[21, 2121]`: ports 1-65535, each once, in the order written.
    func portList(_ key: String) throws(ConfigurationError) -> [UInt16]? {
        guard let node = table[key] else { return nil }
        let items: [TOMLNode]
        switch node {
        case .integer: items = [node]
        case .array(let list): items = list
        default: throw error(key, "expected a port or a list of ports such as [21, 2121], not \(node.typeName)")
        }
        guard !items.isEmpty else { throw error(key, "expected at least one port") }
        var ports: [UInt16] = []
        for item in items {
            guard case .integer(let value) = item else {
                throw error(key, "expected ports as integers, such as [21, 2121]")
            }
            guard (1...65535).contains(value) else { throw error(key, "port \(value) is out of range (1-65535)") }
            guard !ports.contains(UInt16(value)) else { throw error(key, "port \(value) is listed twice") }
            ports.append(UInt16(value))
        }
        return ports
    }
}
