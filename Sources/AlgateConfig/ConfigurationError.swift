/// A configuration that cannot be used, and where it went wrong.
///
/// Every startup error names the file, the line, the key and the value, so that one line on stderr is enough to
/// fix the file:
///
/// ```
/// /etc/algate.toml:4: pinholes.ports = "45000-44999": range is reversed (first port above last)
/// ```
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file path, `<config>` for text parsed without one, or `<override>` for a value given by an override.
    public var source: String
    /// The 1-based line, when known.
    public var line: Int?
    /// The dotted path of the key, e.g. `ftp[1].upstream` or `pinholes.ports`; `[[ftp]]` tables count from 0.
    public var key: String?
    /// The offending value in TOML syntax, as written (`"45000-44999"`, `0`, `true`).
    public var value: String?
    /// What is wrong: lower case, no trailing period.
    public var message: String

    /// Makes an error; leave out what is not known.
    public init(source: String, line: Int? = nil, key: String? = nil, value: String? = nil, message: String) {
        self.source = source
        self.line = line
        self.key = key
        self.value = value
        self.message = message
    }

    /// One line: `<source>:<line>: <key> = <value>: <message>`, parts left out when unknown.
    public var description: String {
        var out = source
        if let line { out += ":\(line)" }
        out += ": "
        switch (key, value) {
        case let (key?, value?): out += "\(key) = \(value): "
        case let (key?, nil): out += "\(key): "
        case let (nil, value?): out += "\(value): "
        case (nil, nil): break
        }
        out += message
        return out
    }

    /// Turns a library's message ("Error while parsing X.") into this type's style ("error while parsing X").
    static func sentence(_ text: String) -> String {
        var text = Substring(text)
        while let last = text.last, last == "." || last.isWhitespace || last.isNewline { text.removeLast() }
        while let first = text.first, first.isWhitespace || first.isNewline { text.removeFirst() }
        // Lower-case a capitalised first word, but leave acronyms ("TOML", "UTF-8") alone.
        var out = String(text)
        let head = text.prefix(2)
        if head.count == 2, head.first?.isUppercase == true, head.last?.isLowercase == true {
            out = text.prefix(1).lowercased() + text.dropFirst()
        }
        return out.replacingNewlines()
    }
}

extension String {
    /// The text with line breaks turned into spaces, so that an error stays on one line.
    fileprivate func replacingNewlines() -> String {
        String(self.map { $0.isNewline ? " " : $0 })
    }
}
