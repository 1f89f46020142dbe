import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A thread-safe counter for unique names.
final class Counter: Sendable {
    private let value = NIOLockedValueBox(0)
    func next() -> Int {
        value.withLockedValue { value in
            value += 1
            return value
        }
    }
}

/// Ports for the integration tests, all on loopback.
///
/// Single ports (a server's control port) come from the kernel: bind port 0 on the address, read it, close.
/// Ranges (pinhole pools, a server's passive ports) are handed out block by block from 20000-31999, below the
/// kernel's ephemeral range (32768-60999 here) and above the SIP integration tests' 10000-19999, so they never
/// collide with clients' own ports nor with each other. The first block depends on the pid, and a block with a
/// port in use (by another test process, say) is skipped.
enum LoopbackPorts {
    private static let first = 20000
    private static let last = 31999
    private static let nextBlock = NIOLockedValueBox(Int(getpid()) % 24 * 500)

    /// A TCP port that was free on `address` a moment ago.
    static func free(on address: String) throws -> UInt16 {
        let isV6 = address.contains(":")
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PeerError("socket: errno \(errno)") }
        defer { close(fd) }
        var port: UInt16 = 0
        if isV6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            guard inet_pton(AF_INET6, address, &sa.sin6_addr) == 1 else { throw PeerError("bad address \(address)") }
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let rc = withUnsafeMutablePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(fd, pointer, length) == 0 ? getsockname(fd, pointer, &length) : -1
                }
            }
            guard rc == 0 else { throw PeerError("bind [\(address)]:0: errno \(errno)") }
            port = UInt16(bigEndian: sa.sin6_port)
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            guard inet_pton(AF_INET, address, &sa.sin_addr) == 1 else { throw PeerError("bad address \(address)") }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let rc = withUnsafeMutablePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(fd, pointer, length) == 0 ? getsockname(fd, pointer, &length) : -1
                }
            }
            guard rc == 0 else { throw PeerError("bind \(address):0: errno \(errno)") }
            port = UInt16(bigEndian: sa.sin_port)
        }
        return port
    }

    /// A range of `count` ports no other test of this process uses, all free a moment ago.
    static func block(_ count: Int) -> ClosedRange<UInt16> {
        precondition(count > 0 && count <= 1000)
        var range: ClosedRange<UInt16> = 0...0
        for _ in 0..<50 {
            let start = nextBlock.withLockedValue { offset in
                if first + offset + count - 1 > last { offset = 0 }
                defer { offset += count }
                return first + offset
            }
            range = UInt16(start)...UInt16(start + count - 1)
            if range.allSatisfy(isFree) { break }
        }
        return range
    }

    /// A port below 1024 that is free (the tests run as root, so servers may listen there): for a server's
    /// passive port that a gateway must refuse to open a pinhole to.
    static func privileged() throws -> UInt16 {
        guard let port = (900...1000).lazy.map(UInt16.init).first(where: isFree) else {
            throw PeerError("no free port in 900-1000")
        }
        return port
    }

    /// Whether a TCP socket can bind `port` on the dual-stack wildcard, which conflicts with a socket on that
    /// port on any address.
    static func isFree(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var off: Int32 = 0
        _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = port.bigEndian
        sa.sin6_addr = in6addr_any
        return withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
    }
}

/// A temp directory per test, removed afterwards (kept when ALGATE_ITEST_KEEP is set, for post-mortems).
enum Scratch {
    private static let counter = Counter()

    @discardableResult
    static func with<T>(_ name: String, _ body: (URL) async throws -> T) async throws -> T {
        let safe = String(name.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        let dir = URL(fileURLWithPath: "/tmp/algate-itest-\(getpid())-\(counter.next())-\(safe.prefix(40))")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // vsftpd's anonymous root lives below; the ftp user must be able to traverse it.
        chmod(dir.path, 0o755)
        return try await withCleanup {
            try await body(dir)
        } cleanup: {
            if ProcessInfo.processInfo.environment["ALGATE_ITEST_KEEP"] == nil {
                try? FileManager.default.removeItem(at: dir)
            } else {
                print("integration scratch kept: \(dir.path)")
            }
        }
    }
}
