import Foundation
import Logging
import NIOConcurrencyHelpers

/// The gateway's log lines of one test, kept in memory so the test can assert on them.
///
/// A line reads `level message key=value key=value...` with the metadata sorted by key, e.g.
/// `info pinhole open listen=127.0.0.1:20001 peer=127.0.0.1 pinhole=1 purpose=passive session=ftp-1 ...`; a value
/// with a space in it is quoted: `original="PORT 127,0,0,1,4,1"`.
final class LogStore: Sendable {
    struct Entry: Sendable {
        var at: ContinuousClock.Instant
        var line: String
    }

    private let entries = NIOLockedValueBox<[Entry]>([])
    private let echo = ProcessInfo.processInfo.environment["ALGATE_ITEST_LOG"] != nil

    func append(_ line: String) {
        entries.withLockedValue { $0.append(Entry(at: .now, line: line)) }
        if echo { print("[gateway] \(line)") }
    }

    var all: [String] { entries.withLockedValue { $0.map(\.line) } }

    /// Entries whose message (the text after the level) starts with `message`, with the time they were logged.
    func entries(_ message: String) -> [Entry] {
        entries.withLockedValue { $0 }.filter { entry in
            guard let space = entry.line.firstIndex(of: " ") else { return false }
            return entry.line[entry.line.index(after: space)...].hasPrefix(message)
        }
    }

    /// Lines whose message (the text after the level) starts with `message`.
    func lines(_ message: String) -> [String] {
        entries(message).map(\.line)
    }

    func count(_ message: String) -> Int { lines(message).count }

    /// Waits (polling) until `predicate` holds for the log; false at the deadline.
    func wait(within limit: Duration = .seconds(10), until predicate: (LogStore) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while !predicate(self) {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    func tail(_ n: Int = 40) -> String {
        all.suffix(n).joined(separator: "\n")
    }
}

/// A swift-log handler that writes into a ``LogStore``.
struct CollectingLogHandler: LogHandler {
    let store: LogStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    init(store: LogStore) {
        self.store = store
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = merged.sorted { $0.key < $1.key }.map { key, value in
            let text = "\(value)"
            return text.contains(" ") ? "\(key)=\"\(text)\"" : "\(key)=\(text)"
        }
        store.append(([event.level.rawValue, "\(event.message)"] + fields).joined(separator: " "))
    }
}

extension Logger {
    /// A logger whose lines end up in `store`.
    static func collecting(into store: LogStore, label: String = "algate.itest") -> Logger {
        Logger(label: label) { _ in CollectingLogHandler(store: store) }
    }
}

/// Reads one field of a ``LogStore`` line: `field("listen", in: line)`.
func logField(_ key: String, in line: String) -> String? {
    guard let range = line.range(of: " \(key)=") else { return nil }
    let rest = line[range.upperBound...]
    if rest.hasPrefix("\"") {
        return String(rest.dropFirst().prefix { $0 != "\"" })
    }
    return String(rest.prefix { $0 != " " })
}
