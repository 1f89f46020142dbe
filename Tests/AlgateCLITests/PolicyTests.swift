import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The policy rules of `algate run` against real peers on loopback: sipvicious' svmap against the scanner rules the
/// default config ships (commented), with SIPp behind algate and SIPp calls through it; FTP deny rules on a verb
/// and on the USER name against pyftpdlib with curl and Python's ftplib; SIGHUP reloads, good and bad, with a
/// control session kept open across them; and `check-config` on a pattern that does not compile.
@Suite(.serialized) struct PolicyTests {
    typealias Running = RunCommandTests.Running
    typealias Workspace = RunCommandTests.Workspace

    /// The FTP peers (pyftpdlib, curl) as RunCommandTests starts them.
    let peers = RunCommandTests()

    func startGateway(config: String, in workspace: Workspace, name: String = "algate") throws -> Running {
        let path = workspace.root.appendingPathComponent("\(name).toml")
        try config.write(to: path, atomically: true, encoding: .utf8)
        return try PolicyPeers.withUnblockedSignals {
            try Running(ProcessRunner.algate, ["run", "--config", path.path],
                        log: workspace.root.appendingPathComponent("\(name).log"))
        }
    }

    /// Log lines containing `text`.
    func lines(_ log: String, containing text: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains(text) }
    }

    // MARK: - SIP: svmap and the default scanner rules

    /// SIPp's built-in UAS on 127.0.0.2 (UDP), echoing RTP; its message log shows what reached it.
    struct UAS {
        let process: Running
        let port: UInt16
        let messages: URL
        let screen: URL

        var received: String { (try? String(contentsOf: messages, encoding: .utf8)) ?? "" }
    }

    func startUAS(in workspace: Workspace) throws -> UAS {
        let port = try PolicyPeers.freeUDPPort(on: "127.0.0.2")
        let media = try PolicyPeers.freeUDPPort(on: "127.0.0.2", alsoFree: [2])
        let control = try PolicyPeers.freeUDPPort(on: "127.0.0.1")
        let messages = workspace.root.appendingPathComponent("uas-messages.log")
        let screen = workspace.root.appendingPathComponent("uas-screen.log")
        // `env -C` keeps whatever SIPp writes in the workspace; env execs sipp, so the pid is SIPp's.
        let arguments = ["-C", workspace.root.path, "/usr/bin/sipp", "-sn", "uas", "-i", "127.0.0.2",
                         "-p", "\(port)", "-t", "u1", "-mi", "127.0.0.2", "-mp", "\(media)", "-rtp_echo",
                         "-ci", "127.0.0.1", "-cp", "\(control)", "-nostdin",
                         "-trace_msg", "-message_file", messages.path, "-trace_screen", "-screen_file", screen.path]
        let process = try PolicyPeers.withUnblockedSignals {
            try Running(PolicyPeers.env, arguments, log: workspace.root.appendingPathComponent("uas.out"))
        }
        return UAS(process: process, port: port, messages: messages, screen: screen)
    }

    func sipConfig(listen: UInt16, upstream: UInt16, pool: String, rules: String) -> String {
        """
        [pinholes]
        ports = "\(pool)"

        [[sip]]
        listen = "127.0.0.1:\(listen)"
        upstream = "127.0.0.2:\(upstream)"
        transports = ["udp"]

        \(rules)

        """
    }

    @Test func svmapFindsTheSIPpUASThroughAlgateWithoutRules() throws {
        let workspace = try Workspace(megabytes: 0)
        defer { workspace.remove() }
        let uas = try startUAS(in: workspace)
        defer { uas.process.stop() }
        #expect(ProcessRunner.waitUntil(seconds: 10) { PolicyPeers.udpListening("127.0.0.2", uas.port) },
                "\(uas.process.output)")
        let listen = try PolicyPeers.freeUDPPort(on: "127.0.0.1")
        let gateway = try startGateway(config: sipConfig(listen: listen, upstream: uas.port, pool: "47500-47549", rules: ""),
                                       in: workspace)
        defer { gateway.stop() }
        try #require(ProcessRunner.waitUntil(seconds: 20) { gateway.output.contains("algate ready") }, "\(gateway.output)")

        let scan = try PolicyPeers.svmap(port: listen, from: PolicyPeers.freeUDPPort(on: "127.0.0.1"))
        let table = scan.stdout + scan.stderr
        // svmap's result table lists the device it found: algate's address, since that is what it scanned.
        #expect(table.contains("| 127.0.0.1:\(listen) "), "\(table)")
        #expect(!table.contains("found nothing"), "\(table)")
        // The scanner's INVITE went through to SIPp, which answered it.
        #expect(uas.received.contains("User-Agent: friendly-scanner"), "\(uas.received)")
        #expect(!gateway.output.contains("policy denied"), "\(gateway.output)")
        #expect(gateway.stop() == 0, "\(gateway.output)")
    }

    @Test func theDefaultRulesHideTheUASFromSvmapAndSIPpCallsStillGetThrough() throws {
        let rules = try PolicyPeers.defaultRules()
        try #require(rules.contains("[[policy.deny]]"), "no commented [[policy.deny]] blocks in Config/algate.toml")
        let workspace = try Workspace(megabytes: 0)
        defer { workspace.remove() }
        let uas = try startUAS(in: workspace)
        defer { uas.process.stop() }
        #expect(ProcessRunner.waitUntil(seconds: 10) { PolicyPeers.udpListening("127.0.0.2", uas.port) },
                "\(uas.process.output)")
        let listen = try PolicyPeers.freeUDPPort(on: "127.0.0.1")
        let config = sipConfig(listen: listen, upstream: uas.port, pool: "47550-47599", rules: rules)
        let gateway = try startGateway(config: config, in: workspace)
        defer { gateway.stop() }
        try #require(ProcessRunner.waitUntil(seconds: 20) { gateway.output.contains("algate ready") }, "\(gateway.output)")

        // 1. The scanner finds nothing: its INVITE is dropped, it learns nothing from silence.
        let scanPort = try PolicyPeers.freeUDPPort(on: "127.0.0.1")
        let scan = try PolicyPeers.svmap(port: listen, from: scanPort)
        let table = scan.stdout + scan.stderr
        #expect(table.contains("found nothing"), "\(table)")
        #expect(!table.contains("| 127.0.0.1:\(listen) "), "\(table)")
        #expect(!uas.received.contains("friendly-scanner"), "the scanner's INVITE reached SIPp: \(uas.received)")

        // algate says which rule denied it: the first uncommented block, by its line in the config it was given.
        let ruleLine = try #require(PolicyPeers.lineNumber(of: "[[policy.deny]]", in: config))
        let pattern = try #require(rules.split(separator: "\n").first { $0.hasPrefix("pattern = ") })
            .dropFirst("pattern = \"".count).dropLast()
        #expect(ProcessRunner.waitUntil(seconds: 5) { gateway.output.contains("policy denied") }, "\(gateway.output)")
        let denials = lines(gateway.output, containing: "policy denied")
        #expect(!denials.isEmpty)
        for denial in denials {
            #expect(denial.contains("rule=policy.deny[0] (line \(ruleLine))"), "\(denial)")
            #expect(denial.contains("field=header user-agent"), "\(denial)")
            #expect(denial.contains("pattern=\(pattern)"), "\(denial)")
            #expect(denial.contains("INVITE from udp:127.0.0.1:\(scanPort)"), "\(denial)")
        }

        // 2. With the same rules on, a SIPp UAC makes 5 calls with RTP (uac_pcap) through algate.
        try FileManager.default.createSymbolicLink(at: workspace.root.appendingPathComponent("pcap"),
                                                   withDestinationURL: URL(fileURLWithPath: "/usr/share/sip-tester"))
        let stat = workspace.root.appendingPathComponent("uac-stat.csv")
        let uac = try ProcessRunner.run(
            PolicyPeers.env,
            ["-C", workspace.root.path, "/usr/bin/sipp", "127.0.0.1:\(listen)", "-sn", "uac_pcap",
             "-i", "127.0.0.1", "-p", "\(try PolicyPeers.freeUDPPort(on: "127.0.0.1"))", "-t", "u1",
             "-mi", "127.0.0.1", "-mp", "\(try PolicyPeers.freeUDPPort(on: "127.0.0.1", alsoFree: [2]))",
             "-ci", "127.0.0.1", "-cp", "\(try PolicyPeers.freeUDPPort(on: "127.0.0.1"))",
             "-m", "5", "-r", "5", "-l", "5", "-nostdin", "-timeout", "60s", "-timeout_error",
             "-trace_stat", "-stf", stat.path, "-fd", "1",
             "-trace_err", "-error_file", workspace.root.appendingPathComponent("uac-errors.log").path],
            timeout: 90)
        #expect(uac.status == 0, "\(uac.stdout)\n\(uac.stderr)")
        #expect(PolicyPeers.sippCounter(stat, "SuccessfulCall(C)") == "5", "\(uac.stdout)")
        #expect(PolicyPeers.sippCounter(stat, "FailedCall(C)") == "0", "\(uac.stdout)")

        // RTP crossed algate's relays: SIPp's UAS echoed every packet of the 5 calls (g711a + one DTMF pcap: 246).
        uas.process.signal(SIGUSR2)
        let echoLine = "Total echo RTP pckts 1st stream"
        var screen = ""
        #expect(ProcessRunner.waitUntil(seconds: 10) {
            screen = (try? String(contentsOf: uas.screen, encoding: .utf8)) ?? ""
            return screen.contains(echoLine)
        }, "\(uas.process.output)")
        let echoed = screen.split(separator: "\n").first { $0.contains(echoLine) }
            .flatMap { $0.split(separator: " ").first }.flatMap { Int($0) }
        #expect(echoed == 5 * 246, "\(screen)")

        // The calls were judged and let through: every denial is the scanner's.
        #expect(lines(gateway.output, containing: "policy denied").count == denials.count, "\(gateway.output)")
        #expect(lines(gateway.output, containing: "media relay open").count >= 5, "\(gateway.output)")
        #expect(gateway.stop() == 0, "\(gateway.output)")
    }

    // MARK: - FTP: deny rules on the verb and on the USER name

    func ftpConfig(listen: UInt16, upstream: UInt16, pool: String, rules: String) -> String {
        """
        [pinholes]
        ports = "\(pool)"

        [[ftp]]
        listen = "127.0.0.1:\(listen)"
        upstream = "127.0.0.2:\(upstream)"

        \(rules)

        """
    }

    func denyVerb(_ verb: String) -> String {
        """
        [[policy.deny]]
        protocol = "ftp"
        field = "verb"
        pattern = "(?i)^\(verb)$"
        """
    }

    /// A served file `f` whose mode shows whether a SITE CHMOD reached the server.
    func chmodTarget(in workspace: Workspace) throws -> URL {
        let target = workspace.served.appendingPathComponent("f")
        try Data("f\n".utf8).write(to: target)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: target.path)
        return target
    }

    func mode(_ url: URL) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? NSNumber)?.intValue
    }

    @Test func denyRulesOnSITEAndOnUserRootRefuseThoseAndTransfersStillWork() throws {
        let workspace = try Workspace(megabytes: 3)
        defer { workspace.remove() }
        let target = try chmodTarget(in: workspace)
        let serverPort = try ProcessRunner.freePort(on: "127.0.0.2")
        let listen = try ProcessRunner.freePort(on: "127.0.0.1")
        let server = try peers.pyftpdlib(host: "127.0.0.2", port: serverPort, workspace: workspace, name: "server")
        defer { server.stop(signal: SIGKILL) }
        #expect(ProcessRunner.waitUntil(seconds: 10) { ProcessRunner.answersWithBanner("127.0.0.2", serverPort) })
        let rules = denyVerb("SITE") + """


            [[policy.deny]]
            protocol = "ftp"
            field = "user"
            pattern = "^root$"
            """
        let config = ftpConfig(listen: listen, upstream: serverPort, pool: "47600-47619", rules: rules)
        let gateway = try startGateway(config: config, in: workspace)
        defer { gateway.stop() }
        try #require(ProcessRunner.waitUntil(seconds: 20) { gateway.output.contains("algate ready") }, "\(gateway.output)")
        let url = "ftp://127.0.0.1:\(listen)/"

        // SITE: curl's quote command gets the 550 (curl exit 21, "quote command returned error").
        let site = try peers.curl(["-v", "-Q", "SITE CHMOD 777 f", url])
        #expect(site.status == 21, "\(site.stderr)")
        #expect(site.stderr.contains("< 550 "), "\(site.stderr)")
        // ftplib: error_perm with the 550; the session goes on (NOOP, a download).
        let session = try FTPLibSession(host: "127.0.0.1", port: listen,
                                        transcript: workspace.root.appendingPathComponent("ftplib-1.log"))
        defer { session.stop() }
        #expect(session.perform("connect").hasPrefix("OK 220"))
        #expect(session.perform("login anonymous guest@").hasPrefix("OK 230"))
        let refused = session.perform("cmd SITE CHMOD 777 f")
        #expect(refused.hasPrefix("error_perm 550"), "\(refused)")
        #expect(session.perform("cmd NOOP").hasPrefix("OK 200"))
        let want = try ProcessRunner.sha256(workspace.sample.path)
        let retr = session.perform("retr sample.bin")
        #expect(retr.hasPrefix("OK 226") && retr.hasSuffix("sha256=\(want)"), "\(retr)")
        #expect(session.perform("quit").hasPrefix("OK 221"))
        // The server never saw the SITE command.
        #expect(mode(target) == 0o644)

        // USER root: 530 before PASS, with curl (exit 67, login denied) and with ftplib.
        let root = try peers.curl(["-v", "-u", "root:x", url])
        #expect(root.status == 67, "\(root.stderr)")
        #expect(root.stderr.contains("< 530 "), "\(root.stderr)")
        let rootSession = try FTPLibSession(host: "127.0.0.1", port: listen,
                                            transcript: workspace.root.appendingPathComponent("ftplib-2.log"))
        defer { rootSession.stop() }
        #expect(rootSession.perform("connect").hasPrefix("OK 220"))
        let rootLogin = rootSession.perform("login root x")
        #expect(rootLogin.hasPrefix("error_perm 530"), "\(rootLogin)")
        // The pattern is anchored: "rootless" reaches pyftpdlib, whose own 530 (anonymous only) says something else.
        let other = rootSession.perform("connect")
        #expect(other.hasPrefix("OK 220"), "\(other)")
        let otherLogin = rootSession.perform("login rootless x")
        #expect(otherLogin.hasPrefix("error_perm 530") && !otherLogin.contains("policy"), "\(otherLogin)")

        // Anonymous transfers through algate in the same run, byte-exact.
        let download = workspace.root.appendingPathComponent("download.bin").path
        #expect(try peers.curl(["-o", download, url + "sample.bin"]).status == 0)
        #expect(try ProcessRunner.sha256(download) == want)
        #expect(try peers.curl(["-T", workspace.sample.path, url + "upload.bin"]).status == 0)
        #expect(try ProcessRunner.sha256(workspace.served.appendingPathComponent("upload.bin").path) == want)

        // The log names the rule, the field and the pattern of each denial.
        let siteLine = try #require(PolicyPeers.lineNumber(of: "[[policy.deny]]", in: config))
        let userLine = try #require(PolicyPeers.lineNumber(of: "[[policy.deny]]", in: config, occurrence: 1))
        let log = gateway.output
        let siteDenials = lines(log, containing: "rule=policy.deny[0] (line \(siteLine))")
        let userDenials = lines(log, containing: "rule=policy.deny[1] (line \(userLine))")
        #expect(siteDenials.count == 2 && siteDenials.allSatisfy { $0.contains("policy denied") && $0.contains("field=verb")
            && $0.contains("pattern=(?i)^SITE$") }, "\(log)")
        #expect(userDenials.count == 2 && userDenials.allSatisfy { $0.contains("policy denied") && $0.contains("field=user")
            && $0.contains("pattern=^root$") }, "\(log)")
        #expect(lines(log, containing: "policy denied").count == 4, "\(log)")
        #expect(lines(log, containing: "refused command").count == 4, "\(log)")
        #expect(gateway.stop() == 0, "\(log)")
    }

    /// A USER that policy refused never reached the server, so it must not become the session's user name: the
    /// client can still leave with QUIT (RFC 959: the server answers 221), and a session that is logged in stays
    /// the session the server knows.
    @Test func aRefusedUSERDoesNotBecomeTheSessionsUser() throws {
        let workspace = try Workspace(megabytes: 0)
        defer { workspace.remove() }
        let serverPort = try ProcessRunner.freePort(on: "127.0.0.2")
        let listen = try ProcessRunner.freePort(on: "127.0.0.1")
        let server = try peers.pyftpdlib(host: "127.0.0.2", port: serverPort, workspace: workspace, name: "server")
        defer { server.stop(signal: SIGKILL) }
        #expect(ProcessRunner.waitUntil(seconds: 10) { ProcessRunner.answersWithBanner("127.0.0.2", serverPort) })
        let gateway = try startGateway(config: ftpConfig(listen: listen, upstream: serverPort, pool: "47650-47659", rules: """
            [[policy.deny]]
            protocol = "ftp"
            field = "user"
            pattern = "^root$"
            """), in: workspace)
        defer { gateway.stop() }
        try #require(ProcessRunner.waitUntil(seconds: 20) { gateway.output.contains("algate ready") }, "\(gateway.output)")

        let refusedAtLogin = try FTPLibSession(host: "127.0.0.1", port: listen,
                                               transcript: workspace.root.appendingPathComponent("ftplib-1.log"))
        defer { refusedAtLogin.stop() }
        #expect(refusedAtLogin.perform("connect").hasPrefix("OK 220"))
        let user = refusedAtLogin.perform("cmd USER root")
        #expect(user.hasPrefix("error_perm 530"), "\(user)")
        let quit = refusedAtLogin.perform("cmd QUIT")
        #expect(quit.hasPrefix("OK 221"), "QUIT after a refused USER: \(quit)")

        let loggedIn = try FTPLibSession(host: "127.0.0.1", port: listen,
                                         transcript: workspace.root.appendingPathComponent("ftplib-2.log"))
        defer { loggedIn.stop() }
        #expect(loggedIn.perform("connect").hasPrefix("OK 220"))
        #expect(loggedIn.perform("login anonymous guest@").hasPrefix("OK 230"))
        let again = loggedIn.perform("cmd USER root")
        #expect(again.hasPrefix("error_perm 530"), "\(again)")
        let pwd = loggedIn.perform("cmd PWD")
        #expect(pwd.hasPrefix("OK 257"), "PWD of the anonymous session after a refused USER root: \(pwd)")
        let bye = loggedIn.perform("quit")
        #expect(bye.hasPrefix("OK 221"), "\(bye)")
        #expect(gateway.stop() == 0, "\(gateway.output)")
    }

    // MARK: - SIGHUP

    @Test func sighupSwapsTheRulesKeepsThemOnAnErrorAndOpenSessionsGoOn() throws {
        let workspace = try Workspace(megabytes: 2)
        defer { workspace.remove() }
        let target = try chmodTarget(in: workspace)
        let serverPort = try ProcessRunner.freePort(on: "127.0.0.2")
        let listen = try ProcessRunner.freePort(on: "127.0.0.1")
        let server = try peers.pyftpdlib(host: "127.0.0.2", port: serverPort, workspace: workspace, name: "server")
        defer { server.stop(signal: SIGKILL) }
        #expect(ProcessRunner.waitUntil(seconds: 10) { ProcessRunner.answersWithBanner("127.0.0.2", serverPort) })
        let pool = "47620-47639"
        let gateway = try startGateway(config: ftpConfig(listen: listen, upstream: serverPort, pool: pool,
                                                         rules: denyVerb("SITE")), in: workspace)
        defer { gateway.stop() }
        try #require(ProcessRunner.waitUntil(seconds: 20) { gateway.output.contains("algate ready") }, "\(gateway.output)")
        let configFile = workspace.root.appendingPathComponent("algate.toml")
        let url = "ftp://127.0.0.1:\(listen)/"
        let want = try ProcessRunner.sha256(workspace.sample.path)

        // A session opened before any reload, kept open across them.
        let session = try FTPLibSession(host: "127.0.0.1", port: listen,
                                        transcript: workspace.root.appendingPathComponent("ftplib.log"))
        defer { session.stop() }
        #expect(session.perform("connect").hasPrefix("OK 220"))
        #expect(session.perform("login anonymous guest@").hasPrefix("OK 230"))
        #expect(session.perform("cmd NOOP").hasPrefix("OK 200"))
        let before = session.perform("cmd SITE CHMOD 777 f")
        #expect(before.hasPrefix("error_perm 550 Refused by policy"), "\(before)")
        #expect(mode(target) == 0o644)

        // Reload: deny NOOP instead of SITE.
        try ftpConfig(listen: listen, upstream: serverPort, pool: pool, rules: denyVerb("NOOP"))
            .write(to: configFile, atomically: true, encoding: .utf8)
        gateway.signal(SIGHUP)
        try #require(ProcessRunner.waitUntil(seconds: 10) { gateway.output.contains("policy reloaded") },
                     "\(gateway.output)")
        // New sessions: SITE reaches pyftpdlib, which answers it itself; NOOP is refused.
        let site = try peers.curl(["-v", "-Q", "SITE CHMOD 777 f", url])
        #expect(site.status == 0, "\(site.stderr)")
        #expect(site.stderr.contains("< 200 SITE CHMOD successful"), "\(site.stderr)")
        #expect(!site.stderr.contains("Refused by policy"), "\(site.stderr)")
        #expect(mode(target) == 0o777)
        let noop = try peers.curl(["-v", "-Q", "NOOP", url])
        #expect(noop.status == 21, "\(noop.stderr)")
        #expect(noop.stderr.contains("< 550 Refused by policy"), "\(noop.stderr)")
        // The old session is judged by the new rules and goes on.
        let siteInOld = session.perform("cmd SITE CHMOD 755 f")
        #expect(siteInOld.hasPrefix("OK 200"), "\(siteInOld)")
        #expect(mode(target) == 0o755)
        let noopInOld = session.perform("cmd NOOP")
        #expect(noopInOld.hasPrefix("error_perm 550 Refused by policy"), "\(noopInOld)")

        // Reload with a pattern that does not compile: logged, and the NOOP rule stays.
        try ftpConfig(listen: listen, upstream: serverPort, pool: pool, rules: """
            [[policy.deny]]
            protocol = "ftp"
            field = "verb"
            pattern = "^NO(OP$"
            """).write(to: configFile, atomically: true, encoding: .utf8)
        gateway.signal(SIGHUP)
        try #require(ProcessRunner.waitUntil(seconds: 10) { gateway.output.contains("policy reload failed") },
                     "\(gateway.output)")
        let failure = lines(gateway.output, containing: "policy reload failed").first ?? ""
        #expect(failure.contains("policy.deny[0].pattern") && failure.contains("does not compile"), "\(failure)")
        #expect(lines(gateway.output, containing: "policy reloaded").count == 1, "\(gateway.output)")
        let noopAfter = try peers.curl(["-v", "-Q", "NOOP", url])
        #expect(noopAfter.status == 21, "\(noopAfter.stderr)")
        #expect(noopAfter.stderr.contains("< 550 Refused by policy"), "\(noopAfter.stderr)")
        let siteAfter = try peers.curl(["-v", "-Q", "SITE CHMOD 700 f", url])
        #expect(siteAfter.status == 0, "\(siteAfter.stderr)")
        #expect(mode(target) == 0o700)
        let noopInOldAfter = session.perform("cmd NOOP")
        #expect(noopInOldAfter.hasPrefix("error_perm 550 Refused by policy"), "\(noopInOldAfter)")

        // The session opened before both reloads still transfers both ways and ends normally.
        let retr = session.perform("retr sample.bin")
        #expect(retr.hasPrefix("OK 226") && retr.hasSuffix("sha256=\(want)"), "\(retr)")
        let stor = session.perform("stor kept.bin \(workspace.sample.path)")
        #expect(stor.hasPrefix("OK 226"), "\(stor)")
        #expect(try ProcessRunner.sha256(workspace.served.appendingPathComponent("kept.bin").path) == want)
        #expect(session.perform("quit").hasPrefix("OK 221"))
        #expect(gateway.process.isRunning)
        #expect(lines(gateway.output, containing: "session end").allSatisfy { !$0.contains("error") }, "\(gateway.output)")
        #expect(gateway.stop() == 0, "\(gateway.output)")
    }

    /// SIGHUP's default action is to terminate. A SIGHUP that arrives once the gateway has said "algate ready" must
    /// reload the rules, not kill the gateway (e.g. a config manager that reloads as soon as the service is up).
    @Test func aSIGHUPRightAfterReadyReloadsInsteadOfKillingTheGateway() throws {
        let workspace = try Workspace(megabytes: 0)
        defer { workspace.remove() }
        let config = workspace.root.appendingPathComponent("algate.toml")
        try ftpConfig(listen: try ProcessRunner.freePort(on: "127.0.0.1"), upstream: 9, pool: "47640-47649",
                      rules: denyVerb("SITE")).write(to: config, atomically: true, encoding: .utf8)
        var killed = 0
        let attempts = 20
        for _ in 0..<attempts {
            let process = Process()
            let stderr = Pipe()
            process.executableURL = ProcessRunner.algate
            process.arguments = ["run", "--config", config.path]
            process.standardError = stderr
            process.standardOutput = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try PolicyPeers.withUnblockedSignals { try process.run() }
            let pid = process.processIdentifier
            // A watchdog, so a hung gateway cannot hang the test: the reads below then see EOF.
            let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
            DispatchQueue.global().asyncAfter(deadline: .now() + 20, execute: watchdog)
            // Read stderr straight from the pipe and signal the moment "algate ready" arrives.
            var seen = ""
            while !seen.contains("algate ready") {
                let chunk = stderr.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            #expect(seen.contains("algate ready"), "\(seen)")
            kill(pid, SIGHUP)
            // Either the reload is logged, or the pipe ends because the gateway died.
            while !seen.contains("policy reloaded") {
                let chunk = stderr.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            if process.isRunning { kill(pid, SIGTERM) }
            process.waitUntilExit()
            watchdog.cancel()
            if process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGHUP { killed += 1 }
        }
        #expect(killed == 0, "SIGHUP right after \"algate ready\" killed the gateway \(killed) of \(attempts) times")
    }

    // MARK: - check-config

    @Test func checkConfigNamesFileLineKeyPatternAndOffsetOfAPatternThatDoesNotCompile() throws {
        let path = NSTemporaryDirectory() + "algate-policy-\(UUID().uuidString).toml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let cases: [(config: String, line: Int, key: String, pattern: String, offset: Int, message: String)] = [
            ("""
            [[ftp]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:2121"

            [[policy.deny]]
            protocol = "sip"
            field = "method"
            pattern = "INV(ITE"
            """, 8, "policy.deny[0].pattern", "INV(ITE", 7, "missing closing parenthesis"),
            ("""
            [[ftp]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:2121"

            [[policy.log]]
            protocol = "ftp"
            field = "verb"
            pattern = "^RETR$"

            [[policy.deny]]
            protocol = "ftp"
            field = "verb"
            pattern = "^SITE$"

            [[policy.deny]]
            protocol = "sip"
            header = "User-Agent"
            pattern = "(?i)friendly[scanner"
            response = "drop"
            """, 18, "policy.deny[1].pattern", "(?i)friendly[scanner", 20, "missing terminating ]"),
        ]
        for test in cases {
            try test.config.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try ProcessRunner.algate(["check-config", path])
            #expect(result.status == 2, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.isEmpty, "\(result.stdout)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            let line = String(lines.first ?? "")
            #expect(line.contains("\(path):\(test.line): \(test.key) = \"\(test.pattern)\""), "\(line)")
            #expect(line.contains("does not compile at offset \(test.offset): \(test.message)"), "\(line)")
        }
    }
}
