import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One NAT lab made by `Scripts/lab`: namespaces `<name>-in`, `<name>-gw`, `<name>-out`. Every test makes its own
/// (a unique name) and takes it down in every outcome.
struct Lab {
    enum Host: String { case inside = "in", gateway = "gw", outside = "out" }

    /// Every lab of these tests starts with this prefix, so leftovers can be found.
    static let prefix = "algt"

    let name: String

    /// Why these tests cannot run here, or nil when they can: they need root and `ip netns`.
    static let unavailableReason: String? = {
        if geteuid() != 0 { return "the lab needs root (network namespaces, nftables)" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else { return "the lab needs iproute2 (`ip netns`)" }
        guard let result = try? Run.program("/usr/bin/env", ["ip", "netns", "list"], timeout: 10), result.status == 0
        else { return "`ip netns` is unavailable here" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") else { return "the lab needs nft (nftables)" }
        return nil
    }()

    static var isAvailable: Bool {
        if let reason = unavailableReason {
            print("LabTests skipped: \(reason)")
            return false
        }
        return true
    }

    static var script: String { Run.repository.appendingPathComponent("Scripts/lab").path }

    /// Brings a lab up with `options` (`--ct-helper ftp`, `--forward-ftp 2121`, ...).
    static func up(_ options: [String] = []) throws -> Lab {
        let name = "\(prefix)\(UInt32.random(in: 0..<0xFFFF_FFFF) & 0xFFFFFF)"
        let result = try Run.program(script, ["up", name] + options, timeout: 60)
        guard result.status == 0 else {
            _ = try? Run.program(script, ["down", name], timeout: 60)
            throw LabError(message: "Scripts/lab up \(name) failed (\(result.status)): \(result.stderr)")
        }
        return Lab(name: name)
    }

    /// Takes the lab down; returns what is left of it (namespaces, nftables tables in the root namespace): nothing.
    @discardableResult
    func down() -> [String] {
        _ = try? Run.program(Lab.script, ["down", name], timeout: 60)
        return Lab.leftovers(of: name)
    }

    /// Namespaces whose name starts with `name`, and any `algate_lab` table outside the lab's own namespaces.
    static func leftovers(of name: String) -> [String] {
        var left: [String] = []
        if let list = try? Run.program("/usr/bin/env", ["ip", "netns", "list"], timeout: 10) {
            left += list.stdout.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
                .filter { $0.hasPrefix(name + "-") }
        }
        if let tables = try? Run.program("/usr/bin/env", ["nft", "list", "tables"], timeout: 10),
           tables.stdout.contains("algate_lab") {
            left.append("nftables table algate_lab in the root namespace")
        }
        return left
    }

    /// Runs `arguments` in `host` to completion (in `directory` when given).
    func run(_ host: Host, _ arguments: [String], timeout: Double = 60, directory: URL? = nil) throws -> Run.Result {
        try Run.program(Lab.script, ["exec", name, host.rawValue] + arguments, timeout: timeout, directory: directory)
    }

    /// Starts `arguments` in `host` in the background (the process id is the program's own: `ip netns exec` execs).
    func start(_ host: Host, _ arguments: [String], log: URL, directory: URL? = nil) throws -> Run.Background {
        try Run.Background(Lab.script, ["exec", name, host.rawValue] + arguments, log: log, directory: directory)
    }

    /// Whether `host:port` answers with an FTP 220 banner, seen from `from`.
    func answersWithBanner(from: Host, _ address: String, _ port: Int) -> Bool {
        guard let result = try? run(from, ["timeout", "1", "bash", "-c",
                                          "exec 3<>/dev/tcp/\(address)/\(port); head -c 3 <&3"], timeout: 5)
        else { return false }
        return result.stdout.hasPrefix("220")
    }
}

struct LabError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Processes for the lab tests.
enum Run {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
    }

    /// The repository root (Scripts/lab lives there).
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
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

    /// Runs a program to completion (in `directory` when given); kills it after `timeout` seconds.
    static func program(_ path: String, _ arguments: [String], timeout: Double = 60, directory: URL? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let stdout = Pipe(), stderr = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let pid = process.processIdentifier
        let finished = DispatchSemaphore(value: 0)
        // A watchdog: past the deadline the child is killed, which closes the pipes read below.
        DispatchQueue.global().async {
            if finished.wait(timeout: .now() + timeout) == .timedOut { kill(pid, SIGKILL) }
        }
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        finished.signal()
        return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self))
    }

    /// A process running in the background with its output in a log file; stopped and reaped by `stop()`.
    final class Background {
        let process = Process()
        let log: URL

        init(_ path: String, _ arguments: [String], log: URL, directory: URL? = nil) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            if let directory { process.currentDirectoryURL = directory }
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// Sends `signal` (SIGKILL after `timeout`) and waits for the exit.
        ///
        /// Past the deadline its whole process group is killed: Foundation sees the exit only once every process
        /// holding its descriptors is gone (a program's own children too), and puts the child in a group of its
        /// own, so the group is ours.
        @discardableResult
        func stop(signal: Int32 = SIGTERM, timeout: Double = 20) -> Int32 {
            if process.isRunning { kill(process.processIdentifier, signal) }
            _ = Run.waitUntil(seconds: timeout) { !process.isRunning }
            if process.isRunning {
                kill(-process.processIdentifier, SIGKILL)
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            return process.terminationStatus
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

    static func sha256(_ path: String) -> String {
        guard let result = try? program("/usr/bin/sha256sum", [path]), result.status == 0 else { return "missing \(path)" }
        return String(result.stdout.prefix(64))
    }
}

/// A scratch directory with a served root holding `sample.bin` (random bytes), readable by the FTP servers.
struct LabWorkspace {
    let root: URL
    let served: URL
    let sample: URL
    let sampleDigest: String

    init(megabytes: Int = 2) throws {
        root = URL(fileURLWithPath: "/tmp").appendingPathComponent("algate-lab-\(UUID().uuidString)")
        served = root.appendingPathComponent("served")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        sample = served.appendingPathComponent("sample.bin")
        let random = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        let bytes = try random.read(upToCount: megabytes << 20) ?? Data()
        try random.close()
        try bytes.write(to: sample)
        sampleDigest = Run.sha256(sample.path)
        try LabWorkspace.splitClient.write(to: splitClientPath, atomically: true, encoding: .utf8)
    }

    func path(_ name: String) -> String { root.appendingPathComponent(name).path }
    var splitClientPath: URL { root.appendingPathComponent("split_client.py") }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// pyftpdlib (anonymous, writable) on `address:port` in `host`; waits for its banner.
    func ftpServer(in lab: Lab, _ host: Lab.Host, address: String, port: Int) throws -> Run.Background {
        let server = try lab.start(host, ["/usr/bin/python3", "-m", "pyftpdlib", "-i", address, "-p", "\(port)", "-w",
                                          "-d", served.path, "-r", "42000-42999"],
                                   log: root.appendingPathComponent("pyftpdlib-\(host.rawValue)-\(address)-\(port).log"))
        let from: Lab.Host = host == .inside ? .inside : .outside
        guard Run.waitUntil(seconds: 15, { lab.answersWithBanner(from: from, address, port) }) else {
            server.stop(signal: SIGKILL)
            throw LabError(message: "pyftpdlib on \(address):\(port) did not answer: \(server.output)")
        }
        return server
    }

    /// An FTP client that sends one command (PORT, PASV or EPSV) in two TCP segments: the first `split` bytes,
    /// a deliberate pause (TCP_NODELAY), then the rest; then RETR of a file, written to `out`. Prints
    /// `RESULT OK` or `RESULT FAIL ...` (the control connection times out after `timeout` seconds).
    /// usage: split_client.py HOST PORT port|pasv|epsv SPLIT PATH OUT TIMEOUT
    static let splitClient = #"""
        import socket, sys, time, re
        host, port, mode, split, path, out, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], float(sys.argv[7])
        def fail(why):
            print('RESULT FAIL', why, flush=True); sys.exit(1)
        try:
            c = socket.create_connection((host, port), timeout=timeout)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = c.makefile('rb')
            def reply():
                line = f.readline().decode()
                if not line: fail('control connection closed')
                code, text = line[:3], line
                if line[3:4] == '-':
                    while True:
                        l = f.readline().decode(); text += l
                        if not l or (l[:3] == code and l[3:4] == ' '): break
                print('<-', text.strip(), flush=True)
                return text
            def send(cmd, at=0):
                data = (cmd + '\r\n').encode()
                print('->', cmd, '(in two segments: %r + %r)' % (data[:at], data[at:]) if 0 < at < len(data) else '', flush=True)
                if 0 < at < len(data):
                    c.sendall(data[:at]); time.sleep(0.3); c.sendall(data[at:])
                else:
                    c.sendall(data)
                return reply()
            reply(); send('USER anonymous'); send('PASS lab@'); send('TYPE I')
            if mode == 'port':
                me = c.getsockname()[0]
                l = socket.socket(); l.bind((me, 0)); l.listen(1); l.settimeout(timeout); p = l.getsockname()[1]
                r = send('PORT %s,%d,%d' % (me.replace('.', ','), p >> 8, p & 255), split)
                if not r.startswith('200'): fail(r.strip())
                r = send('RETR ' + path)
                if r[0] != '1': fail(r.strip())
                d, _ = l.accept()
            else:
                r = send('PASV' if mode == 'pasv' else 'EPSV', split)
                if mode == 'pasv':
                    m = re.search(r'(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)', r)
                    if not m: fail(r.strip())
                    n = list(map(int, m.groups())); addr = ('%d.%d.%d.%d' % tuple(n[:4]), n[4] * 256 + n[5])
                else:
                    m = re.search(r'\(\|\|\|(\d+)\|\)', r)
                    if not m: fail(r.strip())
                    addr = (c.getpeername()[0], int(m.group(1)))
                print('connecting to %s:%d (the address the reply announced)' % addr, flush=True)
                d = socket.create_connection(addr, timeout=timeout)
                r = send('RETR ' + path)
                if r[0] != '1': fail(r.strip())
            d.settimeout(timeout)
            with open(out, 'wb') as o:
                while True:
                    b = d.recv(65536)
                    if not b: break
                    o.write(b)
            d.close()
            r = reply()
            if not r.startswith('226'): fail(r.strip())
            c.sendall(b'QUIT\r\n')
            print('RESULT OK', flush=True)
        except Exception as e:
            fail(repr(e))
        """#
}
