import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// One peer process (SIPp, Kamailio, dumpcap, tshark) started by a test.
///
/// It runs in its own process group (Foundation's Process does that), with stdin from /dev/null and stdout+stderr
/// into a file, never into a pipe that could fill up. It is started through `env --default-signal`: Foundation
/// spawns children with the signal mask of the spawning thread, where most signals are blocked; SIPp must see
/// SIGUSR1/SIGUSR2 and everyone SIGTERM/SIGINT. Every peer also has a watchdog of its own (SIPp's `-timeout`,
/// dumpcap's `-a duration:`, `timeout` around Kamailio), so nothing outlives a crashed test process for long.
final class SIPITProcess: Sendable {
    let name: String
    let pid: Int32
    let output: URL
    private let process: Process

    init(name: String, executable: String, arguments: [String], directory: URL, output: URL) throws {
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["--default-signal", executable] + arguments
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.name = name
        self.pid = process.processIdentifier
        self.output = output
        self.process = process
    }

    var isRunning: Bool { process.isRunning }

    /// The exit status (128 + n when killed by signal n), nil while running.
    var exitStatus: Int32? {
        guard !process.isRunning else { return nil }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    func outputTail(_ lines: Int = 25) -> String { sipitRead(output).sipitTail(lines) }

    func signal(_ number: Int32) {
        guard process.isRunning else { return }
        kill(pid, number)
    }

    /// Waits for the exit; the status, or nil if it is still running at the deadline.
    @discardableResult
    func waitForExit(within limit: Duration) async -> Int32? {
        _ = await sipitWait(within: limit) { !process.isRunning }
        return exitStatus
    }

    /// `first` (default SIGTERM) to the process, then SIGKILL to its whole group if it is still there after
    /// `grace`. Returns the exit status.
    @discardableResult
    func stop(with first: Int32 = SIGTERM, grace: Duration = .seconds(3)) async -> Int32? {
        if process.isRunning {
            kill(pid, first)
            if await waitForExit(within: grace) == nil {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                await waitForExit(within: .seconds(5))
            }
        }
        // Children that stayed behind in the group (Kamailio's workers) go too. A process group id cannot be
        // reused while the group has members, so members found now are ours.
        if Self.groupHasMembers(pid) { kill(-pid, SIGKILL) }
        return exitStatus
    }

    /// Whether any process is in process group `group` (from /proc/PID/stat: pid (comm) state ppid pgrp ...).
    static func groupHasMembers(_ group: Int32) -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries where Int32(entry) != nil {
            guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, Int32(fields[2]) == group { return true }
        }
        return false
    }
}

/// The processes of one test, stopped together at its end whatever the outcome.
final class SIPITPeers: Sendable {
    private let started = NIOLockedValueBox<[SIPITProcess]>([])

    func add(_ process: SIPITProcess) {
        started.withLockedValue { $0.append(process) }
    }

    /// Starts a process and remembers it.
    func start(name: String, executable: String, arguments: [String], directory: URL,
               output: URL? = nil) throws -> SIPITProcess {
        let process = try SIPITProcess(name: name, executable: executable, arguments: arguments, directory: directory,
                                       output: output ?? directory.appendingPathComponent("\(name).out"))
        add(process)
        return process
    }

    /// Stops everything still running (and what it left behind in its process group), newest first.
    func stopAll() async {
        for process in started.withLockedValue({ $0 }).reversed() {
            await process.stop()
        }
    }

    /// Runs `body` with a fresh set of peers and stops them all afterwards.
    static func with<T>(_ body: (SIPITPeers) async throws -> T) async throws -> T {
        let peers = SIPITPeers()
        return try await sipitWithCleanup {
            try await body(peers)
        } cleanup: {
            await peers.stopAll()
        }
    }
}
