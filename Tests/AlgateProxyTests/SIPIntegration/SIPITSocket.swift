import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A plain POSIX socket for the tests' hand-made traffic (slipstreaming, floods): exact bytes, exact segments, a
/// chosen source address. Blocking with short timeouts; loopback only.
final class SIPITSocket {
    let fd: Int32
    let v6: Bool

    private init(fd: Int32, v6: Bool) {
        self.fd = fd
        self.v6 = v6
    }

    deinit { close(fd) }

    /// A UDP socket bound to `address`:`port` (0: any port).
    static func udp(bind address: String, port: UInt16 = 0) throws -> SIPITSocket {
        let v6 = address.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SIPITError("socket: errno \(errno)") }
        let sock = SIPITSocket(fd: fd, v6: v6)
        try sock.bind(address, port)
        sock.setReceiveTimeout(.milliseconds(200))
        return sock
    }

    /// A TCP connection from `source` (any port) to `address`:`port`, with Nagle off, so that every `send` leaves
    /// as a segment of its own.
    static func tcp(to address: String, _ port: UInt16, from source: String? = nil) throws -> SIPITSocket {
        let v6 = address.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SIPITError("socket: errno \(errno)") }
        let sock = SIPITSocket(fd: fd, v6: v6)
        if let source { try sock.bind(source, 0) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = try withSockaddr(address, port) { connect(fd, $0, $1) }
        guard rc == 0 else { throw SIPITError("connect \(address):\(port): errno \(errno)") }
        sock.setReceiveTimeout(.milliseconds(200))
        return sock
    }

    var localPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    private func bind(_ address: String, _ port: UInt16) throws {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = try Self.withSockaddr(address, port) { Glibc.bind(fd, $0, $1) }
        guard rc == 0 else { throw SIPITError("bind \(address):\(port): errno \(errno)") }
    }

    private func setReceiveTimeout(_ timeout: Duration) {
        let micro = timeout.components.seconds * 1_000_000 + timeout.components.attoseconds / 1_000_000_000_000
        var tv = timeval(tv_sec: Int(micro / 1_000_000), tv_usec: Int(micro % 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends one datagram to `address`:`port`.
    @discardableResult
    func send(_ bytes: [UInt8], to address: String, _ port: UInt16) -> Bool {
        let sent = (try? Self.withSockaddr(address, port) { pointer, length in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, pointer, length) }
        }) ?? -1
        return sent == bytes.count
    }

    /// Writes on a connection (all of it, or false).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// One read (a datagram, or what a stream has); nil on timeout, [] at end of stream.
    func receive(max: Int = 65536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        if n < 0 { return nil }
        return Array(buffer[..<n])
    }

    /// Reads until `within` has passed or the stream ended; what arrived, and whether the peer closed.
    func drain(within limit: Duration) -> (bytes: [UInt8], closed: Bool) {
        let deadline = ContinuousClock.now + limit
        var all: [UInt8] = []
        while ContinuousClock.now < deadline {
            guard let chunk = receive() else { continue }
            if chunk.isEmpty { return (all, true) }
            all += chunk
        }
        return (all, false)
    }

    /// Reads for up to `limit`; true as soon as `condition` holds for everything read so far.
    func receive(within limit: Duration, until condition: ([UInt8]) -> Bool) -> [UInt8] {
        let deadline = ContinuousClock.now + limit
        var all: [UInt8] = []
        while ContinuousClock.now < deadline, !condition(all) {
            if let chunk = receive(), !chunk.isEmpty { all += chunk }
        }
        return all
    }

    static func withSockaddr<T>(_ address: String, _ port: UInt16,
                                _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) throws -> T {
        if address.contains(":") {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, address, &sa.sin6_addr) == 1 else { throw SIPITError("bad address \(address)") }
            return try withUnsafePointer(to: &sa) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &sa.sin_addr) == 1 else { throw SIPITError("bad address \(address)") }
        return try withUnsafePointer(to: &sa) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
