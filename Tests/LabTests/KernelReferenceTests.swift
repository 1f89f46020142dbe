import Foundation
import Testing

/// The reference algate is measured against: the kernel's own FTP helper (nf_conntrack_ftp + nf_nat_ftp), attached
/// on the NAT gateway by an nftables `ct helper` rule. A real FTP server (pyftpdlib) on the outside host, curl or a
/// raw client on the inside host, behind masquerade.
@Suite(.serialized, .enabled("needs root, `ip netns` and nft") { Lab.isAvailable })
struct KernelReferenceTests {
    static let server = "203.0.113.2"
    static let server6 = "2001:db8:77::2"

    /// curl on the inside host downloading sample.bin from the outside server; returns (exit status, digest).
    /// A case expected to fail gets a short time limit (an IPv6 data connection dropped by the firewall hangs).
    func download(_ lab: Lab, _ workspace: LabWorkspace, _ mode: String, _ options: [String],
                  maxTime: Int = 15) throws -> (Int32, String) {
        let out = workspace.path("\(mode).bin")
        let host = mode.hasSuffix("6") ? "[\(Self.server6)]" : Self.server
        let result = try lab.run(.inside, ["curl", "-sS", "-g", "--max-time", "\(maxTime)", "-o", out] + options
                                         + ["ftp://\(host)/sample.bin"], timeout: 30)
        return (result.status, result.status == 0 ? Run.sha256(out) : result.stderr)
    }

    /// curl's options per mode; a name ending in 6 goes to the server's IPv6 address (no NAT, same firewall).
    static let modes: [(String, [String])] = [
        ("PORT", ["-P", "-", "--disable-eprt"]),
        ("EPRT", ["-P", "-"]),
        ("PASV", ["--disable-epsv", "--no-ftp-skip-pasv-ip"]),
        ("EPSV", []),
        ("EPRT6", ["-P", "-"]),
        ("EPSV6", []),
    ]

    /// pyftpdlib on the outside host's IPv4 and IPv6 addresses, port 21.
    func servers(_ lab: Lab, _ workspace: LabWorkspace) throws -> [Run.Background] {
        [try workspace.ftpServer(in: lab, .outside, address: Self.server, port: 21),
         try workspace.ftpServer(in: lab, .outside, address: Self.server6, port: 21)]
    }

    @Test func activeFTPFromInsideFailsWithMasqueradeAlonePassiveWorks() throws {
        let workspace = try LabWorkspace()
        defer { workspace.remove() }
        let lab = try Lab.up()
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }

        for (mode, options) in Self.modes {
            let active = mode.hasPrefix("PORT") || mode.hasPrefix("EPRT")
            let (status, digest) = try download(lab, workspace, mode, options, maxTime: active ? 5 : 15)
            if active {
                // IPv4: the server sees the control connection from 203.0.113.1 and refuses a PORT naming 10.77.0.2.
                // IPv6: the server's data connection to fd00:77::2 is new and inbound: the forward chain drops it.
                #expect(status != 0, "\(mode) through masquerade alone should fail")
            } else {
                #expect(status == 0 && digest == workspace.sampleDigest, "\(mode): \(status) \(digest)")
            }
        }
    }

    @Test func activeFTPFromInsideWorksWithTheKernelHelper() throws {
        let workspace = try LabWorkspace()
        defer { workspace.remove() }
        let lab = try Lab.up(["--ct-helper", "ftp"])
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let running = try servers(lab, workspace)
        defer { for server in running { server.stop(signal: SIGKILL) } }

        for (mode, options) in Self.modes {
            let (status, digest) = try download(lab, workspace, mode, options)
            #expect(status == 0 && digest == workspace.sampleDigest, "\(mode) with the kernel helper: \(status) \(digest)")
        }
    }

    /// A PORT command in two TCP segments: the kernel helper drops the segment with a partial command (it cannot
    /// parse it), every retransmission again, and the control connection stalls. The whole command still works.
    @Test func theKernelHelperStallsOnAPORTSplitAcrossSegments() throws {
        let workspace = try LabWorkspace()
        defer { workspace.remove() }
        let lab = try Lab.up(["--ct-helper", "ftp"])
        defer { #expect(lab.down().isEmpty, "the lab left something behind") }
        let server = try workspace.ftpServer(in: lab, .outside, address: Self.server, port: 21)
        defer { server.stop(signal: SIGKILL) }
        let client = ["/usr/bin/python3", workspace.splitClientPath.path, Self.server, "21", "port"]

        let whole = try lab.run(.inside, client + ["0", "sample.bin", workspace.path("whole.bin"), "10"])
        #expect(whole.stdout.contains("RESULT OK"), "\(whole.output)")
        #expect(Run.sha256(workspace.path("whole.bin")) == workspace.sampleDigest)

        let split = try lab.run(.inside, client + ["12", "sample.bin", workspace.path("split.bin"), "5"])
        #expect(split.stdout.contains("RESULT FAIL"), "the kernel helper passed a split PORT: \(split.output)")
    }
}
