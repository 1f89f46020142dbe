import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Kamailio as the registrar/proxy upstream of the gateway: Fixtures/sip/kamailio.cfg (in-memory usrloc, no auth,
/// record-route, loopback-only relay guard) with the test's address and port filled in, run in the foreground
/// (`-DD -E`) in the test's directory, under a `timeout` watchdog.
final class KamailioRunner: Sendable {
    let address: String
    let port: UInt16
    let process: SIPITProcess
    let logFile: URL

    /// `ADDR:PORT` as SIPp takes a remote and as the registrar's domain.
    var endpoint: String { "\(address):\(port)" }

    /// Starts Kamailio on `address`:`port` (UDP and TCP) and waits until it answers an OPTIONS probe.
    /// `probe` gives the SIPp probe its own SIP, media and control ports.
    init(address: String, port: UInt16, probe: (sip: UInt16, media: UInt16, control: UInt16),
         in directory: URL, peers: SIPITPeers) async throws {
        guard !SIPITSockets.isListening(address, port, tcp: false), !SIPITSockets.isListening(address, port, tcp: true)
        else {
            // Kamailio sets SO_REUSEADDR: a second one on a taken UDP port starts silently.
            throw SIPITError("\(address):\(port) is taken already")
        }
        let config = try SIPITFixtures.text("kamailio.cfg")
            .replacingOccurrences(of: "@ADDR@", with: address)
            .replacingOccurrences(of: "@PORT@", with: "\(port)")
        let configFile = directory.appendingPathComponent("kamailio.cfg")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let runDirectory = directory.appendingPathComponent("kam-run", isDirectory: true)
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        let logFile = directory.appendingPathComponent("kamailio.log")
        // timeout(1) forwards SIGTERM to Kamailio's main process, which takes its workers down.
        let process = try peers.start(
            name: "kamailio", executable: "/usr/bin/timeout",
            arguments: ["--kill-after=5", "300", SIPITTools.kamailio, "-f", configFile.path, "-DD", "-E",
                        "-w", directory.path, "-Y", runDirectory.path],
            directory: directory, output: logFile)
        self.address = address
        self.port = port
        self.process = process
        self.logFile = logFile

        let sockets = await sipitWait(within: .seconds(15)) {
            !process.isRunning || (SIPITSockets.isListening(address, port, tcp: false)
                && SIPITSockets.isListening(address, port, tcp: true))
        }
        guard sockets, process.isRunning else {
            throw SIPITError("kamailio did not come up on \(address):\(port)\n\(process.outputTail())")
        }
        // The sockets exist before the workers read them: probe until a 200 comes back.
        var answered = false
        for attempt in 0..<25 where !answered && process.isRunning {
            let run = try await SIPpRun.client(
                SIPpConfig(name: "probe\(attempt)", scenario: .fixture("options.xml"), remote: "\(address):\(port)",
                           localIP: "127.0.0.1", localPort: probe.sip, mediaIP: "127.0.0.1", mediaPort: probe.media,
                           controlPort: probe.control, calls: 1, watchdog: .seconds(5)),
                in: directory, peers: peers, within: .seconds(10))
            answered = run.exitStatus == 0
            if !answered { try? await Task.sleep(for: .milliseconds(200)) }
        }
        guard answered else {
            throw SIPITError("kamailio on \(address):\(port) does not answer OPTIONS\n\(process.outputTail())")
        }
    }

    var log: String { sipitRead(logFile) }

    /// Kamailio's log lines containing `text`.
    func logLines(containing text: String) -> [String] {
        log.split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }

    func stop() async {
        await process.stop(with: SIGTERM, grace: .seconds(5))
    }
}
