import AlgateRewrite
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The FTP servers the integration tests run against (nobody here wrote them).
enum ServerKind: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case vsftpd
    case pyftpdlib

    var testDescription: String { rawValue }

    /// Starts this server on `address` (127.0.0.2 or ::1) in `scratch`, waits for its banner, runs `body`, and
    /// always stops it. On IPv4 it announces `announce` (127.0.0.3) in its 227 replies, an address nothing listens
    /// on, so a client that is not rewritten fails. Its passive ports are `passivePorts` of the test blocks, or
    /// exactly `passiveRange` when given.
    @discardableResult
    func with<T>(on address: String, announcing announce: String? = "127.0.0.3", in scratch: URL,
                 passivePorts: Int = 100, passiveRange: ClosedRange<UInt16>? = nil,
                 _ body: (FTPServerUnderTest) async throws -> T) async throws -> T {
        let server: FTPServerUnderTest
        let ports = passiveRange ?? LoopbackPorts.block(passivePorts)
        switch self {
        case .vsftpd:
            server = try VsftpdServer.start(on: address, announcing: announce, in: scratch, passivePorts: ports)
        case .pyftpdlib:
            server = try PyftpdlibServer.start(on: address, announcing: announce, in: scratch, passivePorts: ports)
        }
        return try await withCleanup {
            try await RawFTPConnection.waitForBanner(server.endpoint, alive: { server.process.isRunning })
            return try await body(server)
        } cleanup: {
            await server.process.stop()
        }
    }
}

/// A running FTP server with anonymous access: read from `pub/`, write to `upload/`.
struct FTPServerUnderTest: Sendable {
    let kind: ServerKind
    let endpoint: Endpoint
    let passivePorts: ClosedRange<UInt16>
    /// A file put here is downloadable as `pub/NAME`.
    let downloadDirectory: URL
    /// A file uploaded as `upload/NAME` lands here.
    let uploadDirectory: URL
    let process: PeerProcess
    /// The server's protocol log, where it keeps one (vsftpd).
    let protocolLog: URL?

    /// The server's own output and protocol log, for failure messages.
    func logTail(_ n: Int = 30) -> String {
        var text = "--- \(kind) output\n" + process.logTail(n)
        if let protocolLog, let log = try? String(contentsOf: protocolLog, encoding: .utf8) {
            text += "\n--- \(kind) protocol log\n" + log.lastLines(n)
        }
        return text
    }

    /// The protocol log's text ("" when the server keeps none).
    func protocolLogText() -> String {
        protocolLog.flatMap { try? String(contentsOf: $0, encoding: .utf8) } ?? ""
    }
}

/// Whether the peers of the FTP integration tests exist here (and we may run vsftpd, which needs root).
enum Peers {
    static let executables = ["/usr/sbin/vsftpd", "/usr/bin/python3", "/usr/bin/curl", "/usr/bin/lftp",
                              "/usr/bin/socat", "/usr/bin/timeout", "/usr/bin/sha256sum", "/usr/bin/head"]

    static var available: Bool {
        getuid() == 0
            && executables.allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
            && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/pyftpdlib")
    }

    /// chown to the `ftp` user (vsftpd's anonymous uploads are written as that user).
    static func chownToFTPUser(_ url: URL) throws {
        guard let entry = getpwnam("ftp") else { throw PeerError("no user 'ftp'") }
        guard chown(url.path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
            throw PeerError("chown \(url.path): errno \(errno)")
        }
    }
}
