import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the policy tests need beyond ProcessRunner: the default rules as the shipped config has them, free UDP
/// ports, readiness of UDP listeners, SIPp's counters and a Python ftplib session that stays open between steps.
enum PolicyPeers {
    static let python = URL(fileURLWithPath: "/usr/bin/python3")
    static let env = URL(fileURLWithPath: "/usr/bin/env")

    /// Runs `body` (which starts processes) with no signal blocked on the calling thread, then restores the mask.
    /// A child inherits the signal mask of the thread that spawns it, and the test runner's threads block most
    /// signals: SIPp started from them ignores SIGTERM and SIGUSR2 (seen: SigBlk fffffffe3bfbea27), and algate
    /// would not meet SIGHUP as it does when a shell or a service manager starts it.
    static func withUnblockedSignals<T>(_ body: () throws -> T) rethrows -> T {
        var none = sigset_t(), saved = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        return try body()
    }

    /// The commented `# [[policy.deny]]` blocks at the end of Config/algate.toml with their leading "# " removed:
    /// the scanner rules a user enables by uncommenting them. Read at test time, so the test follows the file.
    static func defaultRules() throws -> String {
        let config = ProcessRunner.repository.appendingPathComponent("Config/algate.toml")
        let text = try String(contentsOf: config, encoding: .utf8)
        var blocks: [[String]] = []
        var current: [String]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "# [[policy.deny]]" {
                if let block = current { blocks.append(block) }
                current = ["[[policy.deny]]"]
            } else if current != nil, line.hasPrefix("# ") {
                current?.append(String(line.dropFirst(2)))
            } else if let block = current {
                blocks.append(block)
                current = nil
            }
        }
        if let block = current { blocks.append(block) }
        return blocks.map { $0.joined(separator: "\n") }.joined(separator: "\n\n")
    }

    /// The 1-based line of the first line of `text` equal to `line` (after trimming), for `rule=... (line N)`.
    static func lineNumber(of line: String, in text: String, occurrence: Int = 0) -> Int? {
        var seen = 0
        for (index, candidate) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where candidate.trimmingCharacters(in: .whitespaces) == line {
            if seen == occurrence { return index + 1 }
            seen += 1
        }
        return nil
    }

    /// Whether a UDP socket can be bound to `host:port` now (IPv4).
    static func udpBindable(_ host: String, _ port: Int) -> Bool {
        guard port > 0, port <= 65535 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        } == 0
    }

    /// A port free for TCP (ProcessRunner.freePort) and for UDP on `host`, and `port + offset` free for UDP too
    /// for every offset (SIPp binds its media port and media port + 2).
    static func freeUDPPort(on host: String, alsoFree offsets: [Int] = []) throws -> UInt16 {
        for _ in 0..<200 {
            let port = try ProcessRunner.freePort(on: host)
            if ([0] + offsets).allSatisfy({ udpBindable(host, Int(port) + $0) }) { return port }
        }
        throw POSIXError(.EADDRINUSE)
    }

    /// Whether something listens on UDP `host:port` (readiness of SIPp, which prints nothing when it is ready).
    static func udpListening(_ host: String, _ port: UInt16) -> Bool {
        guard let result = try? ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ss"), ["-Hlun", "sport = :\(port)"],
                                                  timeout: 5) else { return false }
        return result.stdout.contains("\(host):\(port) ")
    }

    /// One column of the last line of a SIPp `-trace_stat` file (the final counters), by name.
    static func sippCounter(_ csv: URL, _ column: String) -> String? {
        guard let text = try? String(contentsOf: csv, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").filter { !$0.isEmpty }
        guard let header = lines.first, let last = lines.last, lines.count > 1 else { return nil }
        let names = header.split(separator: ";", omittingEmptySubsequences: false)
        let values = last.split(separator: ";", omittingEmptySubsequences: false)
        guard let index = names.firstIndex(where: { $0 == column }), index < values.count else { return nil }
        return String(values[index])
    }

    /// Runs sipvicious' svmap with INVITE against `127.0.0.1:port` from `127.0.0.1:sourcePort`, in the form that
    /// works with svmap 0.3.3 (`-p PORT HOST`; never -R or -A). svmap exits 0 whether or not it found anything,
    /// so callers judge by the output table. stdin is empty (EOF), `timeout` bounds it (with a SIGKILL after 5 s
    /// more, since the TERM may be blocked in svmap: see `withUnblockedSignals`).
    static func svmap(port: UInt16, from sourcePort: UInt16) throws -> ProcessRunner.Result {
        try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/timeout"),
                              ["-k", "5", "60", "/usr/bin/svmap", "-m", "INVITE", "-p", "\(port)", "-b", "127.0.0.1",
                               "-P", "\(sourcePort)", "-x", "127.0.0.1", "127.0.0.1"], timeout: 90)
    }
}

/// A Python ftplib session that stays open while the test does other things (reloads, other sessions): the test
/// writes one command per line to the driver's stdin and reads one answer line per command from its transcript.
/// Answers: `OK <reply>`, `error_perm <reply>`, `error_temp <reply>`, `error <exception>`.
final class FTPLibSession {
    private let process = Process()
    private let input = Pipe()
    private let transcript: URL
    private var answered = 0

    private static let driver = """
        import ftplib, hashlib, sys
        host, port = sys.argv[1], int(sys.argv[2])
        ftp = None
        def answer(text):
            sys.stdout.write("> " + text.replace("\\r", "").replace("\\n", " | ") + "\\n")
            sys.stdout.flush()
        while True:
            line = sys.stdin.readline()
            if not line:
                break
            verb, _, argument = line.rstrip("\\n").partition(" ")
            try:
                if verb == "connect":
                    ftp = ftplib.FTP()
                    answer("OK " + ftp.connect(host, port, timeout=20))
                elif verb == "login":
                    user, _, password = argument.partition(" ")
                    answer("OK " + ftp.login(user, password))
                elif verb == "cmd":
                    answer("OK " + ftp.sendcmd(argument))
                elif verb == "retr":
                    digest = hashlib.sha256()
                    reply = ftp.retrbinary("RETR " + argument, digest.update)
                    answer("OK " + reply + " sha256=" + digest.hexdigest())
                elif verb == "stor":
                    name, _, path = argument.partition(" ")
                    with open(path, "rb") as source:
                        answer("OK " + ftp.storbinary("STOR " + name, source))
                elif verb == "quit":
                    answer("OK " + ftp.quit())
                else:
                    answer("error unknown driver command " + verb)
            except ftplib.error_perm as error:
                answer("error_perm " + str(error))
            except ftplib.error_temp as error:
                answer("error_temp " + str(error))
            except Exception as error:
                answer("error " + type(error).__name__ + " " + str(error))
        """

    init(host: String, port: UInt16, transcript: URL) throws {
        self.transcript = transcript
        _ = FileManager.default.createFile(atPath: transcript.path, contents: nil)
        let handle = try FileHandle(forWritingTo: transcript)
        process.executableURL = PolicyPeers.python
        process.arguments = ["-u", "-c", Self.driver, host, "\(port)"]
        process.standardInput = input
        process.standardOutput = handle
        process.standardError = handle
        // A driver that died must fail the test, not kill the test process with SIGPIPE on the next write.
        signal(SIGPIPE, SIG_IGN)
        try process.run()
    }

    /// Everything the driver printed (answers and any Python error), for failure messages.
    var output: String { (try? String(contentsOf: transcript, encoding: .utf8)) ?? "" }

    private var answers: [String] {
        output.split(separator: "\n").filter { $0.hasPrefix("> ") }.map { String($0.dropFirst(2)) }
    }

    /// Sends one driver command and returns its answer, or `"no answer"` after `timeout` seconds.
    func perform(_ command: String, timeout: Double = 30) -> String {
        guard process.isRunning else { return "no answer: the driver exited: \(output)" }
        do {
            try input.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8))
        } catch {
            return "no answer: cannot write to the driver (\(error)): \(output)"
        }
        var answer: String?
        _ = ProcessRunner.waitUntil(seconds: timeout) {
            let all = answers
            if all.count > answered { answer = all[answered] }
            return answer != nil
        }
        guard let answer else { return "no answer to \(command): \(output)" }
        answered += 1
        return answer
    }

    /// Ends the driver (EOF on its stdin; SIGKILL if it does not go) and reaps it.
    func stop() {
        try? input.fileHandleForWriting.close()
        _ = ProcessRunner.waitUntil(seconds: 10) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
