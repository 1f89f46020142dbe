import Foundation
import Testing

/// algate in transparent mode on the NAT gateway: a real FTP server (pyftpdlib) outside on port 21, curl on the
/// inside host asking for it directly. algate installs `inet algate_intercept`, which redirects the inside host's
/// FTP control connections to its listeners; each session goes to its original destination (SO_ORIGINAL_DST).
/// Active FTP (PORT, EPRT) fails through masquerade alone and works through algate, with userspace pinholes on the
/// gateway's outside address. Passive goes through pinholes on the gateway's inside address: the client's data
/// connection (to the server's address, which 227 keeps naming) is steered there by algate's rules, and reaches
/// the server from the gateway's address, as the server expects. IPv6 has no NAT, but the forward chain drops the server's inbound
/// data connection unless algate carries it.
@Suite(.serialized, .enabled("needs root, `ip netns` and nft") { Lab.isAvailable })
struct TransparentModeTests {
    static let server = "203.0.113.2"
    static let server6 = "2001:db8:77::2"
    static let listenPort = 2100

    /// curl's options per mode; a name ending in 6 goes to the server's IPv6 address.
    static let modes: [(String, [String])] = [
        ("PORT", ["-P", "-", "--disable-eprt"]),
        ("EPRT", ["-P", "-"]),
        ("PASV", ["--disable-epsv", "--no-ftp-skip-pasv-ip"]),
        ("EPSV", []),
        ("EPRT6", ["-P", "-"]),
        ("EPSV6", []),
    ]

    static func isActive(_ mode: String) -> Bool { mode.hasPrefix("PORT") || mode.hasPrefix("EPRT") }

    func url(_ mode: String, _ file: String) -> String {
        "ftp://\(mode.hasSuffix("6") ? "[\(Self.server6)]" : Self.server)/\(file)"
    }

    /// curl on the inside host: a download of sample.bin (or an upload of it, as `up-MODE.bin`).
    func curl(_ lab: Lab, _ workspace: LabWorkspace, _ mode: String, _ options: [String], upload: Bool = false,
              maxTime: Int = 15) throws -> Run.Result {
        let transfer = upload ? ["-T", workspace.sample.path, url(mode, "up-\(mode).bin")]
            : ["-o", workspace.path("\(mode).bin"), url(mode, "sample.bin")]
        return try lab.run(.inside, ["curl", "-sS", "-g", "--max-time", "\(maxTime)"] + options + transfer, timeout: 30)
    }

    func servers(_ lab: Lab, _ workspace: LabWorkspace) throws -> [Run.Background] {
        [try workspace.ftpServer(in: lab, .outside, address: Self.server, port: 21),
         try workspace.ftpServer(in: lab, .outside, address: Self.server6, port: 21)]
    }

    /// By default an IPv4 listener on the wildcard address (a `redirect` rule) and an IPv6 one on the gateway's
    /// inside address (a `dnat` rule); with `dualStack`, one listener on `[::]` for both families (IPv4 clients
    /// then arrive IPv4-mapped). All steered from the interface "inside".
    func config(_ workspace: LabWorkspace, dualStack: Bool = false, backend: String = "userspace") throws -> URL {
        let config = workspace.root.appendingPathComponent("algate.toml")
        let listeners = dualStack ? """
            [[ftp]]
            listen = "[::]:\(Self.listenPort)"
            intercept-interface = "inside"
            """ : """
            [[ftp]]
            listen = "0.0.0.0:\(Self.listenPort)"
            intercept-interface = "inside"

            [[ftp]]
            listen = "[fd00:77::1]:\(Self.listenPort)"
            intercept-interface = ["inside"]
            intercept-ports = [21]
            """
        try """
            [pinholes]
            backend = "\(backend)"
            ports = "41000-41099"
            timeout = "20s"

            """.appending(listeners).write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    func tables(_ lab: Lab) throws -> String {
        try lab.run(.gateway, ["nft", "list", "tables"], timeout: 10).stdout
    }

    /// TCP sockets listening in the gateway namespace (`ss -Hltn`), one per line.
    func listeningSockets(_ lab: Lab) throws -> [String] {
        try lab.run(.gateway, ["ss", "-Hltn"], timeout: 10).stdout.split(separator: "\n").map(String.init)
    }

    @Test func activeFTPFromInsideFailsWithoutAlgateAndWorksThroughIt() throws {
        let workspace = try LabWorkspace()
        defer { workspace.remove() }
        let lab = try Lab.up()
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }

        // Without algate: active fails (IPv4: the server refuses a PORT naming 10.77.0.2; IPv6: the forward chain
        // drops the server's data connection).
        for (mode, options) in Self.modes where Self.isActive(mode) {
            let result = try curl(lab, workspace, mode, options, maxTime: 5)
            #expect(result.status != 0, "\(mode) without algate should fail")
        }

        // A table left behind by a crashed run is replaced, whatever it held.
        let stale = try lab.run(.gateway, ["nft", "add table inet algate_intercept; add chain inet algate_intercept stale"])
        try #require(stale.status == 0, "\(stale.output)")

        let algate = try lab.start(.gateway, [Run.algate.path, "run", "--config", config(workspace).path],
                                   log: workspace.root.appendingPathComponent("algate.log"))
        defer { algate.stop() }
        try #require(Run.waitUntil(seconds: 15) { algate.output.contains("algate ready") }, "\(algate.output)")
        let installed = try lab.run(.gateway, ["nft", "list", "table", "inet", "algate_intercept"], timeout: 10)
        #expect(installed.stdout.contains("redirect to :\(Self.listenPort)"), "\(installed.output)")
        #expect(installed.stdout.contains("dnat ip6 to [fd00:77::1]:\(Self.listenPort)"), "\(installed.output)")
        #expect(installed.stdout.contains("tcp dport 41000-41099 redirect"), "\(installed.output)")
        #expect(!installed.stdout.contains("stale"), "the stale table survived: \(installed.output)")

        for (mode, options) in Self.modes {
            let down = try curl(lab, workspace, mode, options)
            #expect(down.status == 0 && Run.sha256(workspace.path("\(mode).bin")) == workspace.sampleDigest,
                    "\(mode) download through algate: \(down.output)")
            let up = try curl(lab, workspace, mode, options, upload: true)
            #expect(up.status == 0 && Run.sha256(workspace.served.appendingPathComponent("up-\(mode).bin").path)
                        == workspace.sampleDigest, "\(mode) upload through algate: \(up.output)")
        }

        // A connection made to the listener itself (not redirected) would loop: it gets a 421.
        let direct = try lab.run(.inside, ["timeout", "5", "bash", "-c",
                                           "exec 3<>/dev/tcp/10.77.0.1/\(Self.listenPort); head -c 3 <&3"], timeout: 10)
        #expect(direct.stdout == "421", "\(direct.output)")

        #expect(algate.stop() == 0)
        let log = algate.output
        #expect(log.contains("intercept rules installed"), "\(log)")
        #expect(log.contains("intercept rules removed"), "\(log)")
        #expect(log.contains("connection not redirected"), "\(log)")
        // One pinhole per transfer: six modes, down and up.
        #expect(log.components(separatedBy: " pinhole open").count - 1 == 12, "\(log)")
        #expect(log.components(separatedBy: " pinhole open").count == log.components(separatedBy: " pinhole close").count,
                "\(log)")
        #expect(try !tables(lab).contains("algate_intercept"), "the intercept table outlived algate")
        let sockets = try listeningSockets(lab)
        #expect(sockets.isEmpty, "listening sockets left in the gateway: \(sockets)")
    }

    /// One dual-stack listener serves both families; SIGINT removes the table as SIGTERM does; without
    /// CAP_NET_ADMIN algate refuses to start, in one line, and leaves nothing behind.
    @Test func dualStackListenerSigintAndAMissingCapability() throws {
        let workspace = try LabWorkspace(megabytes: 1)
        defer { workspace.remove() }
        let lab = try Lab.up()
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }
        let config = try config(workspace, dualStack: true)

        let algate = try lab.start(.gateway, [Run.algate.path, "run", "--config", config.path],
                                   log: workspace.root.appendingPathComponent("algate.log"))
        defer { algate.stop() }
        try #require(Run.waitUntil(seconds: 15) { algate.output.contains("algate ready") }, "\(algate.output)")
        #expect(try tables(lab).contains("algate_intercept"))
        for (mode, options) in Self.modes where ["PORT", "EPSV", "EPRT6", "EPSV6"].contains(mode) {
            let down = try curl(lab, workspace, mode, options)
            #expect(down.status == 0 && Run.sha256(workspace.path("\(mode).bin")) == workspace.sampleDigest,
                    "\(mode) download through the dual-stack listener: \(down.output)")
        }
        #expect(algate.stop(signal: SIGINT) == 0, "\(algate.output)")
        #expect(try !tables(lab).contains("algate_intercept"), "\(algate.output)")

        let unprivileged = try lab.run(.gateway, ["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin",
                                                  Run.algate.path, "run", "--config", config.path], timeout: 30)
        #expect(unprivileged.status == 1, "\(unprivileged.output)")
        let last = unprivileged.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("algate: ") && last.contains("CAP_NET_ADMIN"), "\(unprivileged.output)")
        #expect(try !tables(lab).contains("algate_intercept"))
        #expect(try listeningSockets(lab).isEmpty)
    }

    /// The kernel pinhole backend (`inet algate_pinholes`): every mode works in transparent mode too; a passive
    /// pinhole is a DNAT keyed on the server's address, where the client connects.
    @Test func transparentModeWithTheKernelPinholeBackend() throws {
        let workspace = try LabWorkspace(megabytes: 1)
        defer { workspace.remove() }
        let lab = try Lab.up()
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }

        let algate = try lab.start(.gateway, [Run.algate.path, "run", "--config",
                                              config(workspace, backend: "nftables").path],
                                   log: workspace.root.appendingPathComponent("algate.log"))
        defer { algate.stop() }
        try #require(Run.waitUntil(seconds: 15) { algate.output.contains("algate ready") }, "\(algate.output)")
        #expect(try tables(lab).contains("algate_pinholes"))
        for (mode, options) in Self.modes {
            let down = try curl(lab, workspace, mode, options)
            #expect(down.status == 0 && Run.sha256(workspace.path("\(mode).bin")) == workspace.sampleDigest,
                    "\(mode) download through kernel pinholes: \(down.output)")
            let up = try curl(lab, workspace, mode, options, upload: true)
            #expect(up.status == 0 && Run.sha256(workspace.served.appendingPathComponent("up-\(mode).bin").path)
                        == workspace.sampleDigest, "\(mode) upload through kernel pinholes: \(up.output)")
        }
        #expect(algate.stop() == 0, "\(algate.output)")
        #expect(algate.output.components(separatedBy: " pinhole open").count - 1 == 12, "\(algate.output)")
        let left = try tables(lab)
        #expect(!left.contains("algate_intercept") && !left.contains("algate_pinholes"), "algate left a table: \(left)")
        #expect(try listeningSockets(lab).isEmpty)
    }
}
