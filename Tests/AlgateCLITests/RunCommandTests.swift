import Foundation
import Testing

/// `algate run` as a process: several listeners (IPv4 and IPv6) in one process, real transfers through each, and
/// graceful shutdown on SIGTERM with a transfer running. Peers: pyftpdlib and curl.
@Suite(.serialized) struct RunCommandTests {
    /// A running process with its output going to a log file; terminated and reaped on `stop()`.
    final class Running {
        let process = Process()
        let log: URL

        init(_ executable: URL, _ arguments: [String], log: URL) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.executableURL = executable
            process.arguments = arguments
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        func signal(_ number: Int32) { kill(process.processIdentifier, number) }

        /// Sends `signal` (SIGTERM by default; peers that ignore it get SIGKILL) and waits for the exit.
        @discardableResult
        func stop(signal: Int32 = SIGTERM, timeout: Double = 30) -> Int32 {
            if process.isRunning { kill(process.processIdentifier, signal) }
            _ = ProcessRunner.waitUntil(seconds: timeout) { !process.isRunning }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    /// A temporary directory with a served root holding `sample.bin`.
    struct Workspace {
        let root: URL
        let served: URL
        let sample: URL

        init(megabytes: Int) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("algate-run-\(UUID().uuidString)")
            served = root.appendingPathComponent("served")
            try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
            sample = served.appendingPathComponent("sample.bin")
            let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
            let bytes = try random.read(upToCount: megabytes << 20) ?? Data()
            try random.close()
            try bytes.write(to: sample)
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    func pyftpdlib(host: String, port: UInt16, workspace: Workspace, name: String) throws -> Running {
        try Running(URL(fileURLWithPath: "/usr/bin/python3"),
                    ["-m", "pyftpdlib", "-i", host, "-p", "\(port)", "-w", "-d", workspace.served.path],
                    log: workspace.root.appendingPathComponent("\(name).log"))
    }

    func curl(_ arguments: [String]) throws -> ProcessRunner.Result {
        try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "--max-time", "60"] + arguments)
    }

    @Test func servesSeveralListenersIPv4AndIPv6InOneProcess() throws {
        let workspace = try Workspace(megabytes: 4)
        defer { workspace.remove() }
        let server4Port = try ProcessRunner.freePort(on: "127.0.0.2")
        let server6Port = try ProcessRunner.freePort(on: "::1")
        let listen4 = try ProcessRunner.freePort(on: "127.0.0.1")
        let listen6 = try ProcessRunner.freePort(on: "::1")
        let server4 = try pyftpdlib(host: "127.0.0.2", port: server4Port, workspace: workspace, name: "server4")
        defer { server4.stop(signal: SIGKILL) }
        let server6 = try pyftpdlib(host: "::1", port: server6Port, workspace: workspace, name: "server6")
        defer { server6.stop(signal: SIGKILL) }
        #expect(ProcessRunner.waitUntil(seconds: 10) { ProcessRunner.answersWithBanner("127.0.0.2", server4Port) })
        #expect(ProcessRunner.waitUntil(seconds: 10) { ProcessRunner.answersWithBanner("::1", server6Port) })

        let config = workspace.root.appendingPathComponent("algate.toml")
        try """
            [pinholes]
            ports = "46200-46299"

            [[ftp]]
            listen = "127.0.0.1:\(listen4)"
            upstream = "127.0.0.2:\(server4Port)"

            [[ftp]]
            listen = "[::1]:\(listen6)"
            upstream = "[::1]:\(server6Port)"
            """.write(to: config, atomically: true, encoding: .utf8)
        let gateway = try Running(ProcessRunner.algate, ["run", "--config", config.path],
                                  log: workspace.root.appendingPathComponent("algate.log"))
        defer { gateway.stop() }
        #expect(ProcessRunner.waitUntil(seconds: 10) { gateway.output.contains("algate ready") }, "\(gateway.output)")

        let want = try ProcessRunner.sha256(workspace.sample.path)
        let v4 = workspace.root.appendingPathComponent("v4.bin").path
        let v6 = workspace.root.appendingPathComponent("v6.bin").path
        #expect(try curl(["-o", v4, "ftp://127.0.0.1:\(listen4)/sample.bin"]).status == 0)
        #expect(try curl(["-g", "-o", v6, "ftp://[::1]:\(listen6)/sample.bin"]).status == 0)
        #expect(try ProcessRunner.sha256(v4) == want)
        #expect(try ProcessRunner.sha256(v6) == want)
        // Uploads both ways too.
        #expect(try curl(["-T", workspace.sample.path, "ftp://127.0.0.1:\(listen4)/up4.bin"]).status == 0)
        #expect(try curl(["-g", "-T", workspace.sample.path, "ftp://[::1]:\(listen6)/up6.bin"]).status == 0)
        #expect(try ProcessRunner.sha256(workspace.served.appendingPathComponent("up4.bin").path) == want)
        #expect(try ProcessRunner.sha256(workspace.served.appendingPathComponent("up6.bin").path) == want)

        #expect(gateway.stop() == 0)
        let log = gateway.output
        // EPSV through the IPv6 listener came back with a pool port, through a pinhole on ::1.
        #expect(log.contains("listen=[::1]:462"), "\(log)")
        #expect(log.components(separatedBy: " session start").count - 1 >= 4)
        #expect(log.components(separatedBy: " pinhole open").count == log.components(separatedBy: " pinhole close").count)
        #expect(log.contains("stopped"))
    }

    @Test func sigtermLetsARunningTransferFinishAndRefusesNewSessions() throws {
        let workspace = try Workspace(megabytes: 6)
        defer { workspace.remove() }
        let serverPort = try ProcessRunner.freePort(on: "127.0.0.2")
        let listen = try ProcessRunner.freePort(on: "127.0.0.1")
        let server = try pyftpdlib(host: "127.0.0.2", port: serverPort, workspace: workspace, name: "server")
        defer { server.stop(signal: SIGKILL) }
        #expect(ProcessRunner.waitUntil(seconds: 10) { ProcessRunner.answersWithBanner("127.0.0.2", serverPort) })
        let config = workspace.root.appendingPathComponent("algate.toml")
        try """
            shutdown-grace = "20s"

            [pinholes]
            ports = "46300-46309"

            [[ftp]]
            listen = "127.0.0.1:\(listen)"
            upstream = "127.0.0.2:\(serverPort)"
            """.write(to: config, atomically: true, encoding: .utf8)
        let gateway = try Running(ProcessRunner.algate, ["run", "--config", config.path, "--log-level", "debug"],
                                  log: workspace.root.appendingPathComponent("algate.log"))
        defer { gateway.stop() }
        #expect(ProcessRunner.waitUntil(seconds: 10) { gateway.output.contains("algate ready") })

        // A download throttled to about 3 s.
        let target = workspace.root.appendingPathComponent("slow.bin").path
        let download = try Running(URL(fileURLWithPath: "/usr/bin/curl"),
                                   ["-s", "--max-time", "60", "--limit-rate", "2M", "-o", target,
                                    "ftp://127.0.0.1:\(listen)/sample.bin"],
                                   log: workspace.root.appendingPathComponent("curl.log"))
        #expect(ProcessRunner.waitUntil(seconds: 10) { gateway.output.contains("pinhole connected") })
        gateway.signal(SIGTERM)
        #expect(ProcessRunner.waitUntil(seconds: 5) { gateway.output.contains("shutting down") })
        // No new sessions once shutdown began.
        #expect(!ProcessRunner.answersWithBanner("127.0.0.1", listen))
        download.process.waitUntilExit()
        #expect(download.process.terminationStatus == 0)
        #expect(try ProcessRunner.sha256(target) == ProcessRunner.sha256(workspace.sample.path))
        #expect(gateway.stop() == 0)
        #expect(gateway.output.contains("stopped clean=true") || gateway.output.contains("clean=true"), "\(gateway.output)")
    }

    /// A client that sends QUIT and half-closes at once (shutdown(SHUT_WR)) still gets the server's 221: the FIN is
    /// passed on, not taken for the end of the session.
    @Test func aHalfClosingClientStillGetsItsGoodbye() throws {
        let workspace = try Workspace(megabytes: 1)
        defer { workspace.remove() }
        let serverPort = try ProcessRunner.freePort(on: "127.0.0.2")
        let listen = try ProcessRunner.freePort(on: "127.0.0.1")
        let server = try pyftpdlib(host: "127.0.0.2", port: serverPort, workspace: workspace, name: "server")
        defer { server.stop(signal: SIGKILL) }
        #expect(ProcessRunner.waitUntil(seconds: 10) { ProcessRunner.answersWithBanner("127.0.0.2", serverPort) })
        let gateway = try Running(ProcessRunner.algate,
                                  ["run", "--config", ProcessRunner.repository.appendingPathComponent("Config/algate.toml").path,
                                   "--set", "ftp.0.listen=127.0.0.1:\(listen)", "--set", "ftp.0.upstream=127.0.0.2:\(serverPort)",
                                   "--set", "pinholes.ports=46400-46409"],
                                  log: workspace.root.appendingPathComponent("algate.log"))
        defer { gateway.stop() }
        #expect(ProcessRunner.waitUntil(seconds: 10) { gateway.output.contains("algate ready") }, "\(gateway.output)")
        let script = """
            import socket
            s = socket.create_connection(("127.0.0.1", \(listen)), timeout=10)
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"QUIT\\r\\n")
            s.shutdown(socket.SHUT_WR)
            print(f.read().decode().strip())
            """
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", script])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("221"), "\(result.stdout)")
    }
}
