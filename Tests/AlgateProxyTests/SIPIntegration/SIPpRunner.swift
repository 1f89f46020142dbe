import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What to run SIPp with. Every run names its SIP port, media port and control port (SIPp binds `-mp` and
/// `-mp`+2 even as a UAC, and its UDP control socket), so concurrent runs never collide.
struct SIPpConfig: Sendable {
    enum Scenario: Sendable {
        /// A scenario compiled into SIPp (`-sn uas`, `-sn uac_pcap`).
        case builtin(String)
        /// A scenario file under Fixtures/sip (`-sf`).
        case fixture(String)
        /// A scenario file the test wrote (`-sf`).
        case file(URL)
    }

    /// Prefix of this run's files in the test directory (`NAME_stat.csv`, `NAME_msgs.log`, ...).
    var name: String
    var scenario: Scenario
    /// Where a UAC sends: `127.0.0.1:5060` or `[::1]:5060`; nil for a UAS.
    var remote: String?
    var localIP: String
    var localPort: UInt16
    var tcp = false
    /// Media address and base port; keep the address equal to `localIP` on a UAC (uac_pcap's SDP names `-i`).
    var mediaIP: String
    var mediaPort: UInt16
    var controlPort: UInt16
    var rtpEcho = false
    var calls: Int?
    var rate: Int?
    var limit: Int?
    var service: String?
    var keys: [String: String] = [:]
    /// Out-of-call scenario (a fixture): answers requests of calls this SIPp did not start.
    var oocScenario: String?
    /// SIPp quits by itself (rc 255) after this long, whatever happens to the test.
    var watchdog: Duration = .seconds(120)
    var extra: [String] = []

    var arguments: [String] {
        var args: [String] = []
        if let remote { args.append(remote) }
        switch scenario {
        case .builtin(let name): args += ["-sn", name]
        case .fixture(let file): args += ["-sf", SIPITFixtures.path(file)]
        case .file(let url): args += ["-sf", url.path]
        }
        args += ["-i", localIP, "-p", "\(localPort)", "-t", tcp ? "t1" : "u1",
                 "-mi", mediaIP, "-mp", "\(mediaPort)",
                 "-ci", "127.0.0.1", "-cp", "\(controlPort)", "-nostdin",
                 "-timeout", "\(watchdog.components.seconds)s", "-timeout_error",
                 "-trace_stat", "-stf", "\(name)_stat.csv", "-fd", "1",
                 "-trace_msg", "-message_file", "\(name)_msgs.log",
                 "-trace_err", "-error_file", "\(name)_err.log",
                 "-trace_screen", "-screen_file", "\(name)_screen.log",
                 "-trace_logs", "-log_file", "\(name)_logs.log"]
        if rtpEcho { args.append("-rtp_echo") }
        if let calls { args += ["-m", "\(calls)"] }
        if let rate { args += ["-r", "\(rate)"] }
        if let limit { args += ["-l", "\(limit)"] }
        if let service { args += ["-s", service] }
        for (key, value) in keys.sorted(by: { $0.key < $1.key }) { args += ["-key", key, value] }
        if let oocScenario { args += ["-oocsf", SIPITFixtures.path(oocScenario)] }
        return args + extra
    }
}

/// One SIPp process and the files it writes.
final class SIPpRun: Sendable {
    let config: SIPpConfig
    let directory: URL
    let process: SIPITProcess

    /// Starts SIPp in `directory` (its working directory: uac_pcap finds `pcap/` there).
    init(_ config: SIPpConfig, in directory: URL, peers: SIPITPeers) throws {
        self.config = config
        self.directory = directory
        self.process = try peers.start(name: "sipp-\(config.name)", executable: SIPITTools.sipp,
                                       arguments: config.arguments, directory: directory,
                                       output: directory.appendingPathComponent("\(config.name).out"))
    }

    /// Starts a UAS (or any server-side SIPp) and waits until its SIP socket is bound.
    static func server(_ config: SIPpConfig, in directory: URL, peers: SIPITPeers) async throws -> SIPpRun {
        let run = try SIPpRun(config, in: directory, peers: peers)
        try await run.waitUntilListening()
        return run
    }

    /// Runs a UAC to its end (bounded by `limit`, then killed). Returns the run; read its counters.
    static func client(_ config: SIPpConfig, in directory: URL, peers: SIPITPeers,
                       within limit: Duration) async throws -> SIPpRun {
        let run = try SIPpRun(config, in: directory, peers: peers)
        if await run.process.waitForExit(within: limit) == nil {
            await run.process.stop()
        }
        return run
    }

    func waitUntilListening(within limit: Duration = .seconds(10)) async throws {
        let ready = await sipitWait(within: limit) {
            !process.isRunning || SIPITSockets.isListening(config.localIP, config.localPort, tcp: config.tcp)
        }
        guard ready, process.isRunning else {
            throw SIPITError("SIPp \(config.name) did not come up on \(config.localIP):\(config.localPort) "
                + "(exit \(process.exitStatus.map(String.init) ?? "-"))\n\(process.outputTail())")
        }
    }

    func file(_ suffix: String) -> URL { directory.appendingPathComponent("\(config.name)\(suffix)") }

    var exitStatus: Int32? { process.exitStatus }

    /// The final counters of `-trace_stat` (the last line of the CSV), by column name.
    var stats: [String: String] {
        let lines = sipitRead(file("_stat.csv")).split(whereSeparator: \.isNewline)
        guard let header = lines.first, let last = lines.last, lines.count > 1 else { return [:] }
        let names = header.split(separator: ";", omittingEmptySubsequences: false)
        let values = last.split(separator: ";", omittingEmptySubsequences: false)
        var result: [String: String] = [:]
        for (name, value) in zip(names, values) { result[String(name)] = String(value) }
        return result
    }

    func stat(_ column: String) -> Int? { stats[column].flatMap { Int($0) } }

    var successfulCalls: Int? { stat("SuccessfulCall(C)") }
    var failedCalls: Int? { stat("FailedCall(C)") }

    /// `-trace_err` output ("" when nothing unexpected happened: SIPp only creates the file then).
    var errors: String { sipitRead(file("_err.log")) }
    var logs: String { sipitRead(file("_logs.log")) }

    /// Every message sent and received (`-trace_msg`).
    var messages: [SIPpMessage] { SIPpMessage.parse(sipitRead(file("_msgs.log"))) }

    /// Dumps the live screen (SIGUSR2) and returns the RTP echo counter ("N Total echo RTP pckts 1st stream"),
    /// which only a live screen shows. Nil when it did not appear within 3 s.
    func rtpEchoCount() async -> Int? {
        func counts() -> [Int] {
            sipitRead(file("_screen.log")).split(whereSeparator: \.isNewline)
                .filter { $0.contains("Total echo RTP pckts 1st stream") }
                .compactMap { $0.split(separator: " ").first.flatMap { Int($0) } }
        }
        // SIPp appends each dump to the screen file through stdio: the end of a dump may sit in its buffer
        // until more is written. So: dump, wait a little, dump again if the counter has not shown up.
        let before = counts().count
        var count: Int?
        for _ in 0..<4 where count == nil && process.isRunning {
            process.signal(SIGUSR2)
            _ = await sipitWait(within: .seconds(1)) {
                let now = counts()
                if now.count > before { count = now[before] }
                return count != nil
            }
        }
        return count
    }

    /// Soft stop (SIGUSR1: no new calls, finish the running ones), then SIGTERM. Returns the exit status.
    @discardableResult
    func stop(grace: Duration = .seconds(5)) async -> Int32? {
        if process.isRunning {
            process.signal(SIGUSR1)
            if await process.waitForExit(within: grace) == nil {
                await process.stop()
            }
        }
        return process.exitStatus
    }

    /// Everything a failure message needs: exit status, counters, `-trace_err`, and the tail of SIPp's output.
    var summary: String {
        let s = stats
        let counters = ["SuccessfulCall(C)", "FailedCall(C)", "FailedMaxUDPRetrans(C)", "FailedUnexpectedMessage(C)",
                        "FailedTcpClosed(C)", "FailedTimeoutOnRecv(C)", "FailedCallRejected(C)", "OutOfCallMsgs(C)",
                        "DeadCallMsgs(C)", "Retransmissions(C)", "AutoAnswered(C)"]
            .compactMap { key in s[key].map { "\(key)=\($0)" } }.joined(separator: " ")
        return "SIPp \(config.name): exit \(exitStatus.map(String.init) ?? "running") \(counters)\n"
            + "--- \(config.name)_err.log\n\(errors.sipitTail(15))\n--- \(config.name).out\n\(process.outputTail(15))"
    }
}

/// One entry of a SIPp `-trace_msg` log.
struct SIPpMessage: Sendable {
    var received: Bool
    var transport: String
    var text: String

    var startLine: String { String(text.prefix { !$0.isNewline }) }
    var isResponse: Bool { text.hasPrefix("SIP/2.0 ") }
    var statusCode: Int? {
        guard isResponse else { return nil }
        return Int(text.dropFirst(8).prefix(3))
    }
    var method: String? { isResponse ? nil : startLine.split(separator: " ").first.map(String.init) }

    /// The first value of a header (long name; compact forms are not used by SIPp).
    func header(_ name: String) -> String? {
        for line in headerLines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].trimmingCharacters(in: .whitespaces).lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// Header lines (Swift treats CR LF as one Character, which `isNewline` covers).
    var headerLines: [String] {
        let head = text.range(of: "\r\n\r\n").map { text[..<$0.lowerBound] } ?? Substring(text)
        return head.split(whereSeparator: \.isNewline).dropFirst().map(String.init)
    }

    var cseqMethod: String? { header("CSeq")?.split(separator: " ").last.map(String.init) }
    var callID: String? { header("Call-ID") }

    /// The body's lines (SDP), without CR.
    var bodyLines: [String] {
        guard let range = text.range(of: "\r\n\r\n") else { return [] }
        return text[range.upperBound...].split(whereSeparator: \.isNewline).map(String.init)
    }

    /// The SDP connection address (`c=IN IP4 127.0.0.1` -> `127.0.0.1`) and the first `m=` port.
    var sdpConnection: String? {
        bodyLines.first { $0.hasPrefix("c=") }.flatMap { $0.split(separator: " ").last.map(String.init) }
    }

    var sdpMediaPort: UInt16? {
        bodyLines.first { $0.hasPrefix("m=") }.flatMap { line in
            line.split(separator: " ").dropFirst().first.flatMap { UInt16($0) }
        }
    }

    static func parse(_ log: String) -> [SIPpMessage] {
        var result: [SIPpMessage] = []
        for chunk in log.components(separatedBy: "\n-----------------------------------------------") {
            // "<timestamp>\nUDP message received [469] bytes :\n\n<message>"
            let lines = chunk.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
            guard lines.count == 3 else { continue }
            let what = lines[1]
            guard what.contains(" message ") else { continue }
            let received = what.contains("received")
            let transport = String(what.prefix { $0 != " " })
            var text = String(lines[2])
            while text.hasPrefix("\n") { text.removeFirst() }
            guard text.hasPrefix("SIP/2.0 ") || text.contains(" SIP/2.0\r\n") else { continue }
            result.append(SIPpMessage(received: received, transport: transport, text: text))
        }
        return result
    }
}
