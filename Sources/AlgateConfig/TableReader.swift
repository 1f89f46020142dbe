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
}
