import Foundation
import Logging
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

struct SIPITError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: Ports

/// Ports for the SIP integration tests.
///
/// Handed out block by block from 10000-19999: below the kernel's ephemeral range (32768-60999 here), so no
/// client's own port lands in a test's range, and apart from the FTP integration tests' 20000-31999. Every port of
/// a block is checked free (UDP and TCP, any address, v4 and v6) before it is handed out; a block that is not is
/// skipped. The start moves with the process id, so two test processes at once are unlikely to race for a port.
enum SIPITPorts {
    private static let first = 10000
    private static let last = 19999
    private static let next = NIOLockedValueBox<Int>(Int(getpid()) % 40 * 250)

    /// `count` consecutive ports, all free a moment ago.
    static func block(_ count: Int) throws -> ClosedRange<UInt16> {
        precondition(count > 0 && count <= 2000)
        for _ in 0..<200 {
            let start = next.withLockedValue { offset -> Int in
                if first + offset + count - 1 > last { offset = 0 }
                defer { offset += count }
                return first + offset
            }
            let range = UInt16(start)...UInt16(start + count - 1)
            if range.allSatisfy(isFree) { return range }
        }
        throw SIPITError("no free block of \(count) ports in \(first)-\(last)")
    }

    /// A single free port.
    static func one() throws -> UInt16 { try block(1).lowerBound }

    /// Whether `port` can be bound for UDP and for TCP on the dual-stack wildcard (which conflicts with any
    /// socket on any address of that port).
    static func isFree(_ port: UInt16) -> Bool {
        for type in [Int32(SOCK_DGRAM.rawValue), Int32(SOCK_STREAM.rawValue)] {
            let fd = socket(AF_INET6, type, 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var off: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
            if rc != 0 { return false }
        }
        return true
    }
}

/// Sockets in the kernel's tables (/proc/net), for readiness checks without fixed sleeps.
enum SIPITSockets {
    /// Whether something is bound (UDP) or listening (TCP) on `address`:`port`.
    static func isListening(_ address: String, _ port: UInt16, tcp: Bool) -> Bool {
        let v6 = address.contains(":")
        let file = "/proc/net/" + (tcp ? "tcp" : "udp") + (v6 ? "6" : "")
        guard let table = try? String(contentsOfFile: file, encoding: .utf8),
              let wanted = procAddress(address) else { return false }
        let suffix = String(format: ":%04X", port)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3 else { continue }
            let local = fields[1]
            guard local.hasSuffix(suffix) else { continue }
            let host = local.dropLast(suffix.count)
            let wildcard = host.allSatisfy { $0 == "0" }
            guard host == wanted || wildcard else { continue }
            // TCP: 0A = LISTEN. UDP: 07 = unconnected (bound).
            if fields[3] == (tcp ? "0A" : "07") { return true }
        }
        return false
    }

    /// The address as /proc/net shows it: each 32-bit word in host (little-endian) order, in hex.
    private static func procAddress(_ text: String) -> String? {
        if text.contains(":") {
            var bytes = [UInt8](repeating: 0, count: 16)
            guard inet_pton(AF_INET6, text, &bytes) == 1 else { return nil }
            return stride(from: 0, to: 16, by: 4).map { i in
                String(format: "%02X%02X%02X%02X", bytes[i + 3], bytes[i + 2], bytes[i + 1], bytes[i])
            }.joined()
        }
        var bytes = [UInt8](repeating: 0, count: 4)
        guard inet_pton(AF_INET, text, &bytes) == 1 else { return nil }
        return String(format: "%02X%02X%02X%02X", bytes[3], bytes[2], bytes[1], bytes[0])
    }
}

// MARK: Waiting

/// Polls `condition` every 20 ms until it holds (true) or `limit` has passed (false). A cancelled task (a test
/// past its time limit) stops waiting at once, so that its clean-up runs.
func sipitWait(within limit: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + limit
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline || Task.isCancelled { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
}

/// Runs `body`, then `cleanup`, whether `body` returned or threw.
func sipitWithCleanup<T>(_ body: () async throws -> T, cleanup: () async -> Void) async throws -> T {
    let result: T
    do {
        result = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return result
}

// MARK: Temp directories

/// A temp directory per test, removed afterwards whatever the outcome (kept when ALGATE_SIPIT_KEEP is set).
enum SIPITScratch {
    private static let counter = NIOLockedValueBox(0)

    static func with<T>(_ name: String, _ body: (URL) async throws -> T) async throws -> T {
        let n = counter.withLockedValue { value -> Int in
            value += 1
            return value
        }
        let safe = String(name.map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(40))
        let dir = URL(fileURLWithPath: "/tmp/algate-sipit-\(getpid())-\(n)-\(safe)", isDirectory: true)
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return try await sipitWithCleanup {
            try await body(dir)
        } cleanup: {
            if ProcessInfo.processInfo.environment["ALGATE_SIPIT_KEEP"] == nil {
                try? FileManager.default.removeItem(at: dir)
            } else {
                print("SIP integration scratch kept: \(dir.path)")
            }
        }
    }

    /// `dir/pcap -> /usr/share/sip-tester`, which uac_pcap needs in its working directory.
    static func linkPcaps(in dir: URL) throws {
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("pcap").path,
                                                   withDestinationPath: SIPITTools.pcapDirectory)
    }
}

// MARK: The gateway's log

/// The gateway's log of one test, kept in memory for assertions.
final class SIPITLog: Sendable {
    struct Entry: Sendable, CustomStringConvertible {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]

        subscript(key: String) -> String? { metadata[key] }

        var description: String {
            ([level.rawValue, message] + metadata.sorted { $0.key < $1.key }.map { key, value in
                value.contains(" ") ? "\(key)=\"\(value)\"" : "\(key)=\(value)"
            }).joined(separator: " ")
        }
    }

    private let entries = NIOLockedValueBox<[Entry]>([])
    private let echo = ProcessInfo.processInfo.environment["ALGATE_SIPIT_LOG"] != nil

    func append(_ entry: Entry) {
        entries.withLockedValue { $0.append(entry) }
        if echo { print("[gateway] \(entry)") }
    }

    var all: [Entry] { entries.withLockedValue { $0 } }

    /// Entries whose message is exactly `message`.
    func entries(_ message: String) -> [Entry] {
        all.filter { $0.message == message }
    }

    func count(_ message: String) -> Int { entries(message).count }

    /// Waits until `predicate` holds; false at the deadline.
    func wait(within limit: Duration = .seconds(10), until predicate: (SIPITLog) -> Bool) async -> Bool {
        await sipitWait(within: limit) { predicate(self) }
    }

    func tail(_ n: Int = 40) -> String {
        all.suffix(n).map(\.description).joined(separator: "\n")
    }

    /// Lines that mention `text` anywhere (message or metadata), for failure messages.
    func grep(_ text: String, limit: Int = 20) -> String {
        all.map(\.description).filter { $0.contains(text) }.prefix(limit).joined(separator: "\n")
    }
}

/// A swift-log handler that writes into a ``SIPITLog``.
struct SIPITLogHandler: LogHandler {
    let log: SIPITLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        log.append(SIPITLog.Entry(level: event.level, message: "\(event.message)",
                                  metadata: merged.mapValues { "\($0)" }))
    }
}

// MARK: Text helpers

extension String {
    /// The last `n` lines, for failure messages.
    func sipitTail(_ n: Int) -> String {
        split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).suffix(n).joined(separator: "\n")
    }
}

/// Reads a whole file as text (Latin-1 when it is not UTF-8: SIPp logs may hold any bytes); "" when absent.
func sipitRead(_ url: URL) -> String {
    guard let data = try? Data(contentsOf: url) else { return "" }
    return String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) ?? ""
}
