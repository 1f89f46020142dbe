/// One `dotted.key=value` override, as `algate run` flags give them.
///
/// The key is a dotted path; a number steps into an array of tables (`ftp.0.listen`, also written `ftp[0].listen`),
/// and the index one past the last element adds an element. The value is TOML (`16`, `true`, `"30s"`); for keys
/// that take a string, and for anything that is not valid TOML, the text itself is the string, so
/// `pinholes.timeout=10s` and `ftp.0.listen=127.0.0.1:2121` work without quotes.
struct ConfigurationOverride {
    /// Keys whose value is a string whatever the text looks like (`ports=40000` is the port range "40000").
    static let stringKeys: Set<String> = [
        "listen", "upstream", "mode", "public-address", "data-address",
        "backend", "ports", "timeout", "idle-timeout", "shutdown-grace", "level",
    ]

    var text: String
    var components: [ConfigPath.Component]
    var value: TOMLNode

    init(parsing text: String) throws(ConfigurationError) {
        self.text = text
        guard let equals = text.firstIndex(of: "=") else {
            throw Self.error(value: text, "expected key=value, e.g. \"pinholes.timeout=10s\"")
        }
        let keyText = text[..<equals].trimmingBlanks()
        let rawValue = String(text[text.index(after: equals)...].trimmingBlanks())
        guard let components = Self.parseKey(keyText) else {
            throw Self.error(value: text, "expected a dotted key before \"=\", e.g. \"ftp.0.listen\"")
        }
        self.components = components
        guard !rawValue.contains(where: \.isNewline) else {
            throw Self.error(key: String(keyText), value: rawValue, "an override value must be on one line")
        }
        let isQuoted = rawValue.hasPrefix("\"") || rawValue.hasPrefix("'")
        if case .key(let last)? = components.last, Self.stringKeys.contains(last), !isQuoted {
            self.value = .string(rawValue)
        } else if let parsed = Self.parseTOMLValue(rawValue) {
            self.value = parsed
        } else if isQuoted || rawValue.isEmpty {
            throw Self.error(key: String(keyText), value: rawValue, "not a valid TOML value")
        } else {
            self.value = .string(rawValue)
        }
    }

    /// Sets the value in `root`, creating tables and array elements on the way, and records in `sources` what the
    /// override set and created.
    func apply(to root: inout [String: TOMLNode], sources: inout ConfigurationSourceMap) throws(ConfigurationError) {
        var node: TOMLNode? = .table(root)
        var created: [ConfigPath] = []
        let path = try assign(at: components[...], in: &node, walked: .root, created: &created)
        if case .table(let table)? = node { root = table }
        sources.markOverridden(path)
        for path in created { sources.markOverridden(path) }
    }

    /// Returns the path that was set, in the form validation uses (array steps as indices).
    private func assign(
        at components: ArraySlice<ConfigPath.Component>,
        in node: inout TOMLNode?,
        walked: ConfigPath,
        created: inout [ConfigPath]
    ) throws(ConfigurationError) -> ConfigPath {
        guard let first = components.first else {
            node = value
            return walked
        }
        let rest = components.dropFirst()
        if node == nil {
            // A missing step: an array when the override counts from 0, a table otherwise.
            if case .index(0) = first { node = .array([]) } else { node = .table([:]) }
            created.append(walked)
        }
        switch (node, first) {
        case (.array(var items)?, .index(let index)):
            guard index <= items.count else {
                throw Self.error(
                    key: walked.description, value: text,
                    "index \(index) is out of range: \(walked) has \(items.count) element(s), the next one is \(items.count)"
                )
            }
            var element: TOMLNode? = index < items.count ? items[index] : nil
            let path = try assign(at: rest, in: &element, walked: walked.appending(index: index), created: &created)
            if let element {
                if index < items.count { items[index] = element } else { items.append(element) }
            }
            node = .array(items)
            return path
        case (.table(var table)?, _):
            let key: String
            switch first {
            case .key(let name): key = name
            case .index(let index): key = String(index)
            }
            var child = table[key]
            let path = try assign(at: rest, in: &child, walked: walked.appending(key), created: &created)
            table[key] = child
            node = .table(table)
            return path
        default:
            let step: String
            switch first {
            case .key(let name): step = name
            case .index(let index): step = String(index)
            }
            throw Self.error(
                key: walked.description, value: text,
                "cannot set \"\(step)\" inside \(walked): it is \(node?.typeName ?? "missing")"
            )
        }
    }

    private static func error(key: String? = nil, value: String, _ message: String) -> ConfigurationError {
        ConfigurationError(source: ConfigurationSourceMap.overrideSource, key: key, value: value, message: message)
    }

    /// `ftp.0.listen` or `ftp[0].listen`; nil when a step is empty or not a bare key.
    static func parseKey(_ text: Substring) -> [ConfigPath.Component]? {
        var normalized = ""
        for character in text {
            switch character {
            case "[": normalized.append(".")
            case "]": continue
            default: normalized.append(character)
            }
        }
        var components: [ConfigPath.Component] = []
        for step in normalized.split(separator: ".", omittingEmptySubsequences: false) {
            let step = String(step.trimmingBlanks())
            guard ConfigPath.isBareKey(step) else { return nil }
            if step.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let index = Int(step) {
                components.append(.index(index))
            } else {
                components.append(.key(step))
            }
        }
        return components.isEmpty ? nil : components
    }

    /// The value of `v = text` as TOML, or nil when that is not a TOML document with exactly that one key.
    static func parseTOMLValue(_ text: String) -> TOMLNode? {
        guard !text.isEmpty,
              let document = try? TOMLNode.parseDocument("v = " + text, source: ConfigurationSourceMap.overrideSource),
              document.count == 1
        else { return nil }
        return document["v"]
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    func trimmingBlanks() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}
