/// The `[log]` table.
public struct LogSettings: Hashable, Sendable {
    /// The levels key `level` accepts, lowest first (swift-log's names).
    static let levels: [String] = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Key `level`: `trace`, `debug`, `info` (the default), `notice`, `warning`, `error` or `critical`.
    public var level: String = "info"

    /// The defaults: level `info`.
    public init() {}
}
