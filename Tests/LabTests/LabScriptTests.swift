import Foundation
import Testing

/// Scripts/lab itself: two labs at once, the options, and `down` after a lab that is only half there.
@Suite(.serialized, .enabled("needs root, `ip netns` and nft") { Lab.isAvailable })
struct LabScriptTests {
    func namespaces() throws -> [String] {
        try Run.program("/usr/bin/env", ["ip", "netns", "list"], timeout: 10).stdout
            .split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
    }

    @Test func twoLabsAtOnceEachWithItsOwnFirewall() throws {
        let first = try Lab.up(["--ct-helper", "sip", "--forward-sip", "5060"])
        defer { #expect(first.down().isEmpty, "the first lab left something behind") }
        let second = try Lab.up(["--ct-helper", "ftp", "--forward-ftp", "2121", "--helper-port", "2121"])
        defer { #expect(second.down().isEmpty, "the second lab left something behind") }

        let all = try namespaces()
        for lab in [first, second] {
            for host in ["in", "gw", "out"] { #expect(all.contains("\(lab.name)-\(host)"), "\(all)") }
        }
        let sip = try first.run(.gateway, ["nft", "list", "table", "inet", "algate_lab"]).stdout
        #expect(sip.contains("type \"sip\" protocol udp") && sip.contains("type \"sip\" protocol tcp"), "\(sip)")
        #expect(sip.contains("udp dport 5060 dnat ip to 10.77.0.2:5060"), "\(sip)")
        #expect(sip.contains("policy drop") && sip.contains("masquerade"), "\(sip)")
        let ftp = try second.run(.gateway, ["nft", "list", "table", "inet", "algate_lab"]).stdout
        #expect(ftp.contains("type \"ftp\" protocol tcp") && ftp.contains("tcp dport 2121 ct helper set \"ftp-tcp\""), "\(ftp)")
        #expect(!ftp.contains("sip"), "\(ftp)")
        // Nothing of the labs in the root namespace.
        #expect(!(try Run.program("/usr/bin/env", ["nft", "list", "tables"]).stdout.contains("algate_lab")))

        // Addresses and routes: inside reaches outside (masqueraded), outside has no IPv4 route inside.
        let route = try first.run(.outside, ["ip", "-4", "route", "get", "10.77.0.2"])
        #expect(route.status != 0, "the outside host has a route to the inside: \(route.output)")
        let route6 = try first.run(.outside, ["ip", "-6", "route", "get", "fd00:77::2"])
        #expect(route6.stdout.contains("via 2001:db8:77::1"), "\(route6.output)")
    }

    @Test func downRemovesAHalfMadeLabAndItsProcesses() throws {
        let name = "\(Lab.prefix)\(UInt32.random(in: 0..<0xFFFFFF))"
        // What an `up` that failed after its first namespace would leave, with a process running in it.
        #expect(try Run.program("/usr/bin/env", ["ip", "netns", "add", "\(name)-in"]).status == 0)
        let log = URL(fileURLWithPath: "/tmp/\(name)-sleeper.log")
        defer { try? FileManager.default.removeItem(at: log) }
        let sleeper = try Run.Background(Lab.script, ["exec", name, "in", "sleep", "600"], log: log)
        _ = Run.waitUntil(seconds: 5) {
            !(((try? Run.program("/usr/bin/env", ["ip", "netns", "pids", "\(name)-in"]).stdout) ?? "").isEmpty)
        }
        #expect(Lab(name: name).down().isEmpty)
        #expect(Run.waitUntil(seconds: 10) { !sleeper.process.isRunning }, "down left the process in the lab running")
        sleeper.stop(signal: SIGKILL)
    }

    @Test func upRefusesBadArgumentsAndMakesNothing() throws {
        let name = "\(Lab.prefix)\(UInt32.random(in: 0..<0xFFFFFF))"
        for options in [["--ct-helper", "h323"], ["--forward-ftp", "70000"], ["--bogus"]] {
            let result = try Run.program(Lab.script, ["up", name] + options)
            #expect(result.status != 0, "\(options): \(result.output)")
            #expect(Lab.leftovers(of: name).isEmpty)
        }
        #expect(try Run.program(Lab.script, ["up", "bad/name"]).status == 2)
    }
}
