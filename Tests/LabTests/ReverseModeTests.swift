import Foundation
import Testing

/// An FTP server inside behind the NAT (pyftpdlib on 10.77.0.2:2121), clients on the outside host. Without algate
/// only the control port is forwarded (DNAT); with the kernel helper on that port; with algate in reverse mode on
/// the gateway (listening on 203.0.113.1:2121, userspace pinholes on the gateway's own sockets).
@Suite(.serialized, .enabled("needs root, `ip netns` and nft") { Lab.isAvailable })
struct ReverseModeTests {
    static let inside = "10.77.0.2"
    static let inside6 = "fd00:77::2"
    static let publicAddress = "203.0.113.1"
    static let publicAddress6 = "2001:db8:77::1"
    static let port = 2121

    func curl(_ lab: Lab, _ arguments: [String]) throws -> Run.Result {
        try lab.run(.outside, ["curl", "-sS", "--max-time", "15"] + arguments, timeout: 30)
    }

    var url: String { "ftp://\(Self.publicAddress):\(Self.port)" }
    /// IPv6 has no NAT: without algate the client reaches the server's own address, through the firewall.
    var insideURL6: String { "ftp://[\(Self.inside6)]:\(Self.port)" }
    var url6: String { "ftp://[\(Self.publicAddress6)]:\(Self.port)" }

    /// pyftpdlib on the inside host's IPv4 and IPv6 addresses.
    func servers(_ lab: Lab, _ workspace: LabWorkspace) throws -> [Run.Background] {
        [try workspace.ftpServer(in: lab, .inside, address: Self.inside, port: Self.port),
         try workspace.ftpServer(in: lab, .inside, address: Self.inside6, port: Self.port)]
    }

    func splitClient(_ lab: Lab, _ workspace: LabWorkspace, _ mode: String, split: Int, out: String,
                     timeout: Int = 10) throws -> Run.Result {
        try lab.run(.outside, ["/usr/bin/python3", workspace.splitClientPath.path, Self.publicAddress, "\(Self.port)",
                               mode, "\(split)", "sample.bin", workspace.path(out), "\(timeout)"], timeout: 60)
    }

    @Test func withOnlyTheControlPortForwardedPassiveFails() throws {
        let workspace = try LabWorkspace()
        defer { workspace.remove() }
        let lab = try Lab.up(["--forward-ftp", "\(Self.port)"])
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }

        // The control connection gets through the DNAT...
        #expect(lab.answersWithBanner(from: .outside, Self.publicAddress, Self.port))
        // ...but the data connections do not: 227 names 10.77.0.2, and 203.0.113.1 forwards no data port.
        let pasv = try curl(lab, ["--disable-epsv", "--no-ftp-skip-pasv-ip", "-o", workspace.path("pasv.bin"), "\(url)/sample.bin"])
        #expect(pasv.status != 0, "PASV without algate should fail")
        let epsv = try curl(lab, ["-o", workspace.path("epsv.bin"), "\(url)/sample.bin"])
        #expect(epsv.status != 0, "EPSV without algate should fail")
        // IPv6: the control port is let through the firewall, the data port is not.
        #expect(lab.answersWithBanner(from: .outside, Self.inside6, Self.port))
        let epsv6 = try curl(lab, ["-g", "--max-time", "5", "-o", workspace.path("epsv6.bin"), "\(insideURL6)/sample.bin"])
        #expect(epsv6.status != 0, "IPv6 EPSV without algate should fail")
    }

    /// The kernel helper on the forwarded control port: passive works (the helper rewrites the 227), a PORT in
    /// two segments stalls the control connection.
    @Test func theKernelHelperOnTheForwardedPort() throws {
        let workspace = try LabWorkspace()
        defer { workspace.remove() }
        let lab = try Lab.up(["--forward-ftp", "\(Self.port)", "--ct-helper", "ftp", "--helper-port", "\(Self.port)"])
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }

        let pasv = try curl(lab, ["--disable-epsv", "--no-ftp-skip-pasv-ip", "-o", workspace.path("pasv.bin"), "\(url)/sample.bin"])
        #expect(pasv.status == 0 && Run.sha256(workspace.path("pasv.bin")) == workspace.sampleDigest, "\(pasv.output)")
        let epsv = try curl(lab, ["-o", workspace.path("epsv.bin"), "\(url)/sample.bin"])
        #expect(epsv.status == 0 && Run.sha256(workspace.path("epsv.bin")) == workspace.sampleDigest, "\(epsv.output)")
        let epsv6 = try curl(lab, ["-g", "-o", workspace.path("epsv6.bin"), "\(insideURL6)/sample.bin"])
        #expect(epsv6.status == 0 && Run.sha256(workspace.path("epsv6.bin")) == workspace.sampleDigest, "\(epsv6.output)")
        let splitPASV = try splitClient(lab, workspace, "pasv", split: 2, out: "split-pasv.bin")
        #expect(splitPASV.stdout.contains("RESULT OK"), "\(splitPASV.output)")
        let splitPORT = try splitClient(lab, workspace, "port", split: 12, out: "split-port.bin", timeout: 5)
        #expect(splitPORT.stdout.contains("RESULT FAIL"), "the kernel helper passed a split PORT: \(splitPORT.output)")
    }

    /// algate in reverse mode on the gateway: PASV and EPSV (and PORT/EPRT) downloads and uploads from outside,
    /// byte-exact, and commands split across TCP segments, which the kernel helper cannot take.
    @Test(arguments: ["userspace", "nftables"])
    func algateInReverseModeOnTheGateway(backend: String) throws {
        let workspace = try LabWorkspace()
        defer { workspace.remove() }
        let lab = try Lab.up()
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }

        let config = workspace.root.appendingPathComponent("algate.toml")
        try """
            [pinholes]
            backend = "\(backend)"
            ports = "41000-41099"
            timeout = "20s"

            [[ftp]]
            listen = "\(Self.publicAddress):\(Self.port)"
            upstream = "\(Self.inside):\(Self.port)"
            public-address = "\(Self.publicAddress)"

            [[ftp]]
            listen = "[\(Self.publicAddress6)]:\(Self.port)"
            upstream = "[\(Self.inside6)]:\(Self.port)"
            """.write(to: config, atomically: true, encoding: .utf8)
        let algate = try lab.start(.gateway, [Run.algate.path, "run", "--config", config.path],
                                   log: workspace.root.appendingPathComponent("algate.log"))
        defer { algate.stop() }
        try #require(Run.waitUntil(seconds: 15) { algate.output.contains("algate ready") }, "\(algate.output)")

        let modes: [(String, [String])] = [
            ("pasv", ["--disable-epsv", "--no-ftp-skip-pasv-ip"]),
            ("epsv", []),
            ("port", ["-P", "-", "--disable-eprt"]),
            ("eprt", ["-P", "-"]),
            ("epsv6", ["-g"]),
            ("eprt6", ["-g", "-P", "-"]),
        ]
        for (mode, options) in modes {
            let down = try curl(lab, options + ["-o", workspace.path("\(mode).bin"), "\(mode.hasSuffix("6") ? url6 : url)/sample.bin"])
            #expect(down.status == 0 && Run.sha256(workspace.path("\(mode).bin")) == workspace.sampleDigest,
                    "\(mode) download through algate: \(down.output)")
            let up = try curl(lab, options + ["-T", workspace.sample.path, "\(mode.hasSuffix("6") ? url6 : url)/up-\(mode).bin"])
            #expect(up.status == 0 && Run.sha256(workspace.served.appendingPathComponent("up-\(mode).bin").path)
                        == workspace.sampleDigest, "\(mode) upload through algate: \(up.output)")
        }
        // Commands in two TCP segments ("PA" + "SV\r\n" and so on): algate frames lines, so they just work.
        for (mode, split) in [("pasv", 2), ("epsv", 2), ("port", 12)] {
            let result = try splitClient(lab, workspace, mode, split: split, out: "split-\(mode).bin")
            #expect(result.stdout.contains("RESULT OK") && Run.sha256(workspace.path("split-\(mode).bin")) == workspace.sampleDigest,
                    "split \(mode) through algate: \(result.output)")
        }

        #expect(algate.stop() == 0)
        let tables = try lab.run(.gateway, ["nft", "list", "tables"])
        let leftover = tables.stdout.split(separator: "\n").filter { $0.contains("algate_") && !$0.contains("algate_lab") }
        #expect(tables.status == 0 && leftover.isEmpty, "algate left a table: \(tables.output)")
        let log = algate.output
        #expect(log.contains("pinhole open"), "\(log)")
        if backend == "nftables" {
            // The kernel carried the data: the table was there while algate ran and went with it.
            #expect(log.contains("nftables pinhole table installed") && log.contains("nftables pinhole table removed"),
                    "\(log)")
        }
        #expect(log.components(separatedBy: " pinhole open").count == log.components(separatedBy: " pinhole close").count,
                "\(log)")
    }
}
