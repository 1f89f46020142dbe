public import AlgatePolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything `algate run` needs to start: pinholes, listeners, logging, shutdown.
///
/// Made from a TOML file by ``load(path:overrides:)`` or from text by ``parse(_:source:overrides:)``. Both check
/// the whole configuration before anything starts, and a problem is a ``ConfigurationError`` that names the
/// source, line, key and value.
public struct AlgateConfiguration: Hashable, Sendable {
    /// The `[pinholes]` table.
    public var pinholes: PinholeSettings
    /// The `[[ftp]]` tables, in the order of the file (parsing requires at least one `[[ftp]]` or `[[sip]]`).
    public var ftp: [FTPListenerSettings]
    /// The `[[sip]]` tables, in the order of the file.
    public var sip: [SIPListenerSettings]
    /// The `[[policy.allow]]`, `[[policy.deny]]` and `[[policy.log]]` rules, compiled, in the order of the file.
    public var policy: PolicyEngine
    /// The `[log]` table.
    public var log: LogSettings
    /// Top-level key `shutdown-grace` (default `"10s"`): how long running sessions may finish after SIGTERM.
    public var shutdownGrace: Duration

    /// Makes a configuration from its parts, unchecked.
    public init(
        pinholes: PinholeSettings = PinholeSettings(),
        ftp: [FTPListenerSettings] = [],
        sip: [SIPListenerSettings] = [],
        policy: PolicyEngine = PolicyEngine(),
        log: LogSettings = LogSettings(),
        shutdownGrace: Duration = .seconds(10)
    ) {
        self.pinholes = pinholes
        self.ftp = ftp
        self.sip = sip
        self.policy = policy
        self.log = log
        self.shutdownGrace = shutdownGrace
    }

    /// Parses and validates TOML text.
    ///
    /// - Parameters:
    ///   - text: The TOML document.
    ///   - source: What errors name as the source: the file path, or `<config>`.
    ///   - overrides: `dotted.key=value` strings applied after parsing, in order, e.g. `pinholes.timeout="10s"`,
    ///     `pinholes.timeout=10s` (a string or duration needs no quotes), `ftp.0.listen=127.0.0.1:2121` (a number
    ///     steps into `[[ftp]]`, counting from 0; one past the last adds a listener). Errors about a value set by
    ///     an override name `<override>` as their source.
    /// - Throws: ``ConfigurationError`` for a syntax error, an unknown or unsupported key, a value of the wrong
    ///   type or out of range, or settings that contradict each other.
    public static func parse(
        _ text: String, source: String = "<config>", overrides: [String] = []
    ) throws(ConfigurationError) -> AlgateConfiguration {
        var root = try TOMLNode.parseDocument(text, source: source)
        var sources = ConfigurationSourceMap(source: source, text: text)
        for overrideText in overrides {
            let override = try ConfigurationOverride(parsing: overrideText)
            try override.apply(to: &root, sources: &sources)
        }
        return try ConfigurationDecoder(root: root, sources: sources).decode()
    }

    /// Reads a file and parses it; see ``parse(_:source:overrides:)``.
    ///
    /// - Throws: ``ConfigurationError`` with `path` as the source, also when the file is missing, unreadable or
    ///   not UTF-8.
    public static func load(path: String, overrides: [String] = []) throws(ConfigurationError) -> AlgateConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory = false
            let message: String
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                message = "no such file"
            } else if isDirectory {
                message = "is a directory, not a configuration file"
            } else {
                message = "cannot read the file (permissions?)"
            }
            throw ConfigurationError(source: path, message: message)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(source: path, message: "the file is not valid UTF-8")
        }
        return try parse(text, source: path, overrides: overrides)
    }
}
