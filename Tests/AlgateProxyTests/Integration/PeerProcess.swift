import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a finished command left behind.
struct CommandResult: Sendable, CustomStringConvertible {
    var command: String
    /// The exit status, or the signal number when `signalled`.
    var status: Int32
    var signalled: Bool
    var timedOut: Bool
    var stdout: String
    var stderr: String
    var elapsed: Duration

    var succeeded: Bool { status == 0 && !signalled && !timedOut }

    /// Both outputs, for a failure message.
    var transcript: String { stdout + (stdout.isEmpty || stderr.isEmpty ? "" : "\n") + stderr }

    var description: String {
        let end = timedOut ? "timed out" : signalled ? "killed by signal \(status)" : "exit \(status)"
        return "`\(command)`: \(end) after \(elapsed)\n--- stdout (tail)\n\(stdout.lastLines(25))\n"
            + "--- stderr (tail)\n\(stderr.lastLines(25))"
    }
}

/// Runs one bounded command (a client, `head`, `sha256sum`) to completion.
///
/// The child runs in its own process group (Foundation's Process does that); on timeout or cancellation the whole
/// group is killed, so a hung client cannot outlive its test. Output goes to files in `directory`, never to pipes
/// that could fill up.
///
/// Every child is started through `env --default-signal`: Foundation spawns it with the signal mask of the
/// spawning thread, which blocks SIGTERM and most other signals here (seen in /proc/PID/status: SigBlk
/// fffffffe3bfaca27), and with the test process's SIG_IGN for SIGPIPE; env unblocks and resets them, so servers
/// die on SIGTERM and clients see the signals they expect.
enum Command {
    private static let counter = Counter()

    static func run(_ executable: String, _ arguments: [String], in directory: URL, timeout: Duration,
                    stdoutTo stdoutFile: URL? = nil) async throws -> CommandResult {
        let n = counter.next()
        let base = URL(fileURLWithPath: executable).lastPathComponent
        let outURL = stdoutFile ?? directory.appendingPathComponent("cmd-\(n)-\(base).out")
        let errURL = directory.appendingPathComponent("cmd-\(n)-\(base).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer {
            try? outHandle.close()
            try? errHandle.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["--default-signal", executable] + arguments
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = outHandle
        process.standardError = errHandle
        let (exited, exitedContinuation) = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in
            exitedContinuation.yield()
            exitedContinuation.finish()
        }
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        let pid = process.processIdentifier

        let timedOut = await withTaskCancellationHandler {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    for await _ in exited {}
                    return false
                }
                group.addTask {
                    do {
                        try await Task.sleep(for: timeout)
                    } catch {
                        return false
                    }
                    kill(-pid, SIGKILL)
                    return true
                }
                let first = await group.next() ?? false
                // The process exited: stop the timer. The timer fired: the exit follows the SIGKILL.
                if !first { group.cancelAll() }
                while let _ = await group.next() {}
                return first
            }
        } onCancel: {
            kill(-pid, SIGKILL)
        }
        // Only when this task was cancelled can the group end before the exit; the group was killed by then.
        if process.isRunning { process.waitUntilExit() }
        let elapsed = clock.now - start
        let command = ([executable] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        let stdout = stdoutFile == nil ? ((try? String(contentsOf: outURL, encoding: .utf8)) ?? "") : ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return CommandResult(command: command, status: process.terminationStatus,
                             signalled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
                             stdout: stdout, stderr: stderr, elapsed: elapsed)
    }

    /// `sha256sum FILE`, the hex digest.
    static func sha256(_ file: URL) async throws -> String {
        let result = try await run("/usr/bin/sha256sum", [file.path], in: file.deletingLastPathComponent(),
                                   timeout: .seconds(60))
        guard result.succeeded, let digest = result.stdout.split(separator: " ").first, digest.count == 64 else {
            throw PeerError("sha256sum failed: \(result)")
        }
        return String(digest)
    }

    /// `head -c SIZE /dev/urandom > FILE`.
    static func randomFile(_ file: URL, bytes: Int) async throws {
        let result = try await run("/usr/bin/head", ["-c", "\(bytes)", "/dev/urandom"],
                                   in: file.deletingLastPathComponent(), timeout: .seconds(60), stdoutTo: file)
        guard result.succeeded else { throw PeerError("head failed: \(result)") }
        chmod(file.path, 0o644)
    }
}

/// A long-running peer (an FTP server, a socat relay) in its own process group, under a `timeout` watchdog so that
/// it dies even if the test process itself crashes before `stop()`.
final class PeerProcess: Sendable {
    let name: String
    let pid: Int32
    let logFile: URL
    private let process: Process

    /// Longest a peer may live, whatever happens to the test process.
    static let watchdog = "900"

    /// Starts `executable arguments`; its stdout and stderr go to `logFile`. `stdinToLog` also points fd 0 at the
    /// log (vsftpd prints its startup errors there).
    init(name: String, executable: String, arguments: [String], logFile: URL, stdinToLog: Bool = false) throws {
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        defer { try? log.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["--default-signal", "/usr/bin/timeout", "--kill-after=5", Self.watchdog, executable]
            + arguments
        process.standardInput = stdinToLog ? log : FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.name = name
        self.pid = process.processIdentifier
        self.logFile = logFile
        self.process = process
    }

    var isRunning: Bool { process.isRunning }

    /// The last lines of the peer's own output.
    func logTail(_ lines: Int = 30) -> String {
        ((try? String(contentsOf: logFile, encoding: .utf8)) ?? "").lastLines(lines)
    }

    /// SIGTERM to every descendant in a process group of its own (vsftpd's session processes) while their
    /// parent still lives to reap them, then to the whole group; SIGKILL to whatever is still there after 3 s.
    func stop() async {
        guard process.isRunning else { return }
        let family = Self.descendants(of: pid)
        let strays = family.filter { getpgid($0) != pid }
        for stray in strays { kill(stray, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(2)
        while strays.contains(where: Self.isAlive), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        kill(-pid, SIGTERM)
        let gone = await waitForExit(within: .seconds(3))
        if !gone {
            kill(-pid, SIGKILL)
        }
        for member in family where Self.isAlive(member) { kill(member, SIGKILL) }
        if !gone { _ = await waitForExit(within: .seconds(3)) }
    }

    /// The processes below `root`, from /proc (each by its own pid, so no process of anyone else is touched).
    static func descendants(of root: Int32) -> [Int32] {
        var parentOf: [Int32: Int32] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After "pid (comm)": state, then ppid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { parentOf[pid] = parent }
        }
        var found: [Int32] = []
        var frontier: Set<Int32> = [root]
        while !frontier.isEmpty {
            let children = parentOf.filter { frontier.contains($0.value) }.map(\.key)
            found += children
            frontier = Set(children)
        }
        return found
    }

    private static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0
    }

    private func waitForExit(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !process.isRunning
    }
}

struct PeerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`, then `cleanup`, whether `body` returned or threw.
func withCleanup<T>(_ body: () async throws -> T, cleanup: () async -> Void) async throws -> T {
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

extension String {
    func lastLines(_ n: Int) -> String {
        split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).suffix(n).joined(separator: "\n")
    }
}
