import Foundation
import Testing

/// The `algate` binary's contract: subcommands, output and exit codes (0 success, 1 runtime, 2 usage/config).
@Suite struct CommandLineTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "algate-cli-\(UUID().uuidString).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theDefaultConfigChecksOut() throws {
        let config = ProcessRunner.repository.appendingPathComponent("Config/algate.toml").path
        let result = try ProcessRunner.algate(["check-config", config])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ok: 1 FTP listener(s), 0 SIP listener(s)"))
        #expect(result.stdout.contains("ftp 127.0.0.1:2121 -> 127.0.0.2:2121"))
    }

    @Test func aBadConfigIsExitTwoWithFileLineKeyAndValue() throws {
        let path = try write("""
            [pinholes]
            ports = "45000-44999"

            [[ftp]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:21"
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        for command in [["check-config", path], ["run", "--config", path]] {
            let result = try ProcessRunner.algate(command)
            #expect(result.status == 2)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("\(path):2:"))
            #expect(result.stderr.contains("pinholes.ports"))
            #expect(result.stderr.contains("45000-44999"))
        }
    }

    /// The nftables backend without CAP_NET_ADMIN: one clear line, exit 1, and nothing of libnftables' own
    /// complaints. Run as `nobody` through setpriv (so root only).
    @Test(.enabled("needs root and setpriv to drop to nobody") {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
    })
    func theNftablesBackendWithoutCapNetAdminIsAClearStartupError() throws {
        // The backend is prepared before any listener binds, so the listen port is never taken.
        let path = try write("""
            [pinholes]
            backend = "nftables"

            [[ftp]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:21"
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = chmod(path, 0o644)
        let result = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/setpriv"), [
            "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
            ProcessRunner.algate.path, "run", "--config", path,
        ])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("pinholes.backend = \"nftables\""), "\(result.stderr)")
        #expect(result.stderr.contains("CAP_NET_ADMIN"), "\(result.stderr)")
    }

    /// Reverse-mode SIP on a specific address with inside-address another address of this host: the upstream
    /// would send the phones' requests where nothing listens. Refused at start, naming both.
    @Test func aSIPInsideAddressTheListenerDoesNotBindIsRefused() throws {
        let port = try ProcessRunner.freePort()
        // Pinhole ports below the ephemeral range, where the free port comes from.
        let path = try write("""
            [pinholes]
            ports = "20000-20099"

            [[sip]]
            listen = "127.0.0.1:\(port)"
            upstream = "127.0.0.1:5099"
            inside-address = "::1"
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessRunner.algate(["run", "--config", path])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("inside-address = \"::1\"") && result.stderr.contains("127.0.0.1:\(port)"),
                "\(result.stderr)")
    }

    @Test func aMissingFileAndUnknownFlagsAreUsageErrors() throws {
        #expect(try ProcessRunner.algate(["check-config", "/nonexistent/algate.toml"]).status == 2)
        #expect(try ProcessRunner.algate(["run", "--no-such-flag"]).status == 2)
        #expect(try ProcessRunner.algate(["frobnicate"]).status == 2)
        #expect(try ProcessRunner.algate(["rewrite", "ftp", "--client", "not-an-address"]).status == 2)
        let help = try ProcessRunner.algate(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("check-config"))
    }

    @Test func rewriteFTPPrintsWhatTheGatewayWouldDo() throws {
        let transcript = """
            S: 220 hi
            PASV
            227 Entering Passive Mode (10,0,0,5,195,80).
            PORT 192,0,2,10,4,3
            200 ok
            PORT 192,0,2,99,4,3
            EPSV
            229 (|||6000|)
            227 Logout.

            """
        let result = try ProcessRunner.algate(["rewrite", "ftp", "--client", "192.0.2.10"], input: transcript)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == """
            S->C 220 hi
            C->S PASV
            pinhole 1 passive: public port 40000 admits 192.0.2.10 -> 10.0.0.5:50000
            S->C 227 Entering Passive Mode (203,0,113,7,156,64).
              was: 227 Entering Passive Mode (10,0,0,5,195,80).
            pinhole 2 active: inside port 40001 admits 10.0.0.5 -> 192.0.2.10:1027
            C->S PORT 10,0,0,1,156,65
              was: PORT 192,0,2,10,4,3
            S->C 200 ok
            note refused: address 192.0.2.99 is not the client's own (192.0.2.10)
            S->C 500 Illegal PORT command: the address must be your own.
              was: PORT 192,0,2,99,4,3
            C->S EPSV
            pinhole 3 passive: public port 40002 admits 192.0.2.10 -> 10.0.0.5:6000
            S->C 229 (|||40002|)
              was: 229 (|||6000|)
            note unsolicited 227 reply: no pinhole
            S->C 227 Logout.

            """)
    }

    /// A transcript that starts after the greeting, with a stray 227, a privileged passive port, an inside
    /// address in a STAT (an unmarked line inside a multi-line reply is the server's) and a 227 at the limit.
    @Test func rewriteFTPMasksRefusesAndKeepsTheLineLimit() throws {
        let head = "227 Entering Passive Mode (10,0,0,5,195,80) "
        let long = head + String(repeating: "x", count: 510 - head.utf8.count - 10) + " last word"
        let transcript = """
            PASV
            227 Entering Passive Mode (10,0,0,5,195,80).
            227 Entering Passive Mode (10,0,0,5,195,81).
            EPSV
            229 (|||21|)
            STAT
            211-status
             Connected to 10.0.0.1
            211 End
            PASV
            \(long)

            """
        let result = try ProcessRunner.algate(["rewrite", "ftp", "--client", "192.0.2.10", "--max-line-length", "512"],
                                              input: transcript)
        #expect(result.status == 0, "\(result.stderr)")
        let shortened = head.replacingOccurrences(of: "10,0,0,5,195,80", with: "203,0,113,7,156,65")
            + String(repeating: "x", count: 510 - head.utf8.count - 10) + " last "
        #expect(result.stdout == """
            note the transcript starts after the greeting: replies answer commands from the first
            C->S PASV
            pinhole 1 passive: public port 40000 admits 192.0.2.10 -> 10.0.0.5:50000
            S->C 227 Entering Passive Mode (203,0,113,7,156,64).
              was: 227 Entering Passive Mode (10,0,0,5,195,80).
            note unsolicited 227 reply: no pinhole
            note masked: 1 address of the inside network (public address, port 0)
            S->C 227 Entering Passive Mode (203,0,113,7,0,0).
              was: 227 Entering Passive Mode (10,0,0,5,195,81).
            C->S EPSV
            note no pinhole: the server's port 21 is below 1024
            S->C 425 Can't open passive connection: the server named port 21, below 1024.
              was: 229 (|||21|)
            C->S STAT
            S->C 211-status
            note masked: 1 address of the inside network (public address, port 0)
            S->C  Connected to 203.0.113.7
              was:  Connected to 10.0.0.1
            S->C 211 End
            C->S PASV
            pinhole 2 passive: public port 40001 admits 192.0.2.10 -> 10.0.0.5:50000
            note shortened: 4 bytes of reply text cut to fit max-line-length 512
            S->C \(shortened)
              was: \(long)

            """)
        #expect(shortened.utf8.count + 2 <= 512)
    }

    @Test func rewriteFTPKeepsTheGatewaysLineLimit() throws {
        let tooLong = "C: SITE " + String(repeating: "a", count: 600) + "\n"
        let closed = try ProcessRunner.algate(["rewrite", "ftp", "--max-line-length", "512"],
                                              input: "S: 220 hi\n" + tooLong + "NOOP\n")
        #expect(closed.status == 0, "\(closed.stderr)")
        #expect(closed.stdout == """
            S->C 220 hi
            S->C 500 Command line too long; closing.
            note session closed: client sent a line longer than 512 bytes

            """)
        let bad = try ProcessRunner.algate(["rewrite", "ftp", "--max-line-length", "100"], input: "")
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--max-line-length 100 must be between 512 and 1048576"), "\(bad.stderr)")
    }
}
