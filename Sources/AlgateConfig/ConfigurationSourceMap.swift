/// Where each value of the configuration came from: a line of the file, or an override.
struct ConfigurationSourceMap {
    /// What errors about an override name as their source.
    static let overrideSource = "<override>"

    /// The file path or `<config>`.
    var source: String
    var fileLines: TOMLLineIndex
    /// Paths set (or created) by overrides; everything below them came from an override too.
    private(set) var overridden: [ConfigPath] = []

    init(source: String, text: String) {
        self.source = source
        self.fileLines = TOMLLineIndex(scanning: text)
    }

    mutating func markOverridden(_ path: ConfigPath) {
        overridden.append(path)
    }

    func isOverridden(_ path: ConfigPath) -> Bool {
        overridden.contains { path.hasPrefix($0) }
    }

    /// The source and line to name in an error about `path`.
    func location(of path: ConfigPath) -> (source: String, line: Int?) {
        if isOverridden(path) { return (Self.overrideSource, nil) }
        return (source, fileLines.line(of: path))
    }

    /// The line written for exactly `path` (no enclosing table), or `nil` for an override or a path not written.
    func exactLine(of path: ConfigPath) -> Int? {
        isOverridden(path) ? nil : fileLines.lines[path]
    }

    /// An error about the value at `path`.
    func error(at path: ConfigPath, value: TOMLNode?, _ message: String) -> ConfigurationError {
        let (source, line) = location(of: path)
        return ConfigurationError(
            source: source, line: line, key: path.isRoot ? nil : path.description, value: value?.rendered,
            message: message
        )
    }
}
