import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs programs for the command-line tests: the `algate` binary built next to the test bundle, and real peers.
enum ProcessRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `algate` executable of this build (it sits next to the test bundle).
    static var algate: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle, bundle.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("algate")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return bundle.appendingPathComponent("algate")
    }

    /// The repository root, for files such as Config/algate.toml.
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs a program to completion with `input` on stdin; kills it after `timeout` seconds.
    static func run(_ executable: URL, _ arguments: [String], input: String = "", timeout: Double = 60) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        // Read both pipes to the end (the child may write more than a pipe holds), then reap it.
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        while process.isRunning {
            if Date() > deadline { process.terminate() }
            usleep(10_000)
        }
        return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self))
    }

    /// Runs `algate` with arguments.
    static func algate(_ arguments: [String], input: String = "") throws -> Result {
        try run(algate, arguments, input: input)
    }

    /// A free TCP port on `host`, found by binding port 0 and closing; never one of the default pinhole ports
    /// (40000-44999), which a config that keeps the default pool refuses as a listen port.
    static func freePort(on host: String = "127.0.0.1") throws -> UInt16 {
        for _ in 0..<64 {
            let port = try anyFreePort(on: host)
            if !(40000...44999).contains(port) { return port }
        }
        throw POSIXError(.EADDRINUSE)
    }

    private static func anyFreePort(on host: String) throws -> UInt16 {
        let ipv6 = host.contains(":")
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(fd) }
        var length: socklen_t
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            return UInt16(bigEndian: address.sin6_port)
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, host, &address.sin_addr)
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            return UInt16(bigEndian: address.sin_port)
        }
    }

    /// Polls `condition` every 20 ms until it holds or `seconds` pass: readiness, not a fixed sleep.
    static func waitUntil(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// Whether `host:port` answers with an FTP 220 banner.
    static func answersWithBanner(_ host: String, _ port: UInt16) -> Bool {
        guard let result = try? run(URL(fileURLWithPath: "/usr/bin/timeout"),
                                    ["1", "bash", "-c", "exec 3<>/dev/tcp/\(host)/\(port); head -c 3 <&3"],
                                    timeout: 3) else { return false }
        return result.stdout.hasPrefix("220")
    }

    static func sha256(_ path: String) throws -> String {
        let result = try run(URL(fileURLWithPath: "/usr/bin/sha256sum"), [path])
        return String(result.stdout.prefix(64))
    }
}
