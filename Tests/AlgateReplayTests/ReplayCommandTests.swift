import Foundation
import Testing

/// The `algate` executable of this build, next to the test bundle (as Tests/AlgateCLITests finds it).
enum AlgateBinary {
    static let url: URL? = {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("algate") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()
}

/// `algate replay` as a program: output and exit codes (0 replayed, 2 not a capture or a usage error).
@Suite(.enabled(if: AlgateBinary.url != nil, "the algate binary is not built next to the tests"))
struct ReplayCommandTests {

    /// Runs `algate replay ARGUMENTS`; with `input`, as `cat INPUT | algate replay ARGUMENTS` (through a pipe,
    /// which cannot be rewound, by a shell, so an algate that exits early cannot kill the tests with SIGPIPE).
    func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        let binary: URL = try #require(AlgateBinary.url)
        if let input {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", #"input=$1; shift; cat "$input" | "$0" replay "$@""#, binary.path, input]
                + arguments
        } else {
            process.executableURL = binary
            process.arguments = ["replay"] + arguments
        }
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func exitCodesAndMessages() throws {
        let ftp = try CaptureFile.write(CaptureFile.pcap(linkType: 1, frames: PacketScript.frames(
            CraftedSessions.ftp().packets.map(\.bytes))))
        defer { try? FileManager.default.removeItem(atPath: ftp) }
        let replayed = try run([ftp])
        #expect(replayed.status == 0)
        #expect(replayed.stdout.contains("session 1: FTP over TCP"))
        #expect(replayed.stdout.contains("data flows: observed 2, predicted 2, covered 2"))

        let json = try run([ftp, "--json", "--side", "server", "--public-address", "198.51.100.99"])
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let session = try #require((object?["sessions"] as? [[String: Any]])?.first)
        #expect(session["protocol"] as? String == "ftp")
        for key in ["messages", "rewrites", "pinholes", "errors"] { #expect(session[key] is [Any], "\(key)") }
        let flows = try #require(session["dataFlows"] as? [String: Int])
        #expect(flows == ["observed": 2, "predicted": 2, "covered": 2])
        #expect(json.stdout.contains("198,51,100,99"))

        let script = PacketScript()
        script.udp(("192.0.2.1", 4000), ("192.0.2.2", 53), [1, 2, 3])
        let nothing = try CaptureFile.write(CaptureFile.pcap(linkType: 1, frames: PacketScript.frames(
            script.packets.map(\.bytes))))
        defer { try? FileManager.default.removeItem(atPath: nothing) }
        let empty = try run([nothing])
        #expect(empty.status == 0)
        #expect(empty.stdout.contains("no FTP or SIP control session in this capture"))

        let text = try CaptureFile.write(Array("not a capture\n".utf8), suffix: ".txt")
        defer { try? FileManager.default.removeItem(atPath: text) }
        let refused = try run([text])
        #expect(refused.status == 2)
        #expect(refused.stderr.split(separator: "\n").count == 1)
        #expect(refused.stderr.contains("not a pcap or pcapng capture"))
        #expect(refused.stdout.isEmpty)

        // --live plays the session through a gateway on loopback (passive and active data carried): it matches.
        let live = try run([ftp, "--live"])
        #expect(live.status == 0, "\(live.stdout)\n\(live.stderr)")
        #expect(live.stdout.contains("live session 1 (FTP): matches the offline replay"), "\(live.stdout)")
        #expect(live.stdout.contains("2 pinhole(s), 2 data connection(s) carried"), "\(live.stdout)")
        #expect(try run([ftp, "--side", "middle"]).status == 2)
        #expect(try run([ftp, "--public-address", "nowhere"]).status == 2)
    }

    /// `algate replay -` reads the capture from standard input and reports exactly what `algate replay FILE` does,
    /// the name aside; gzip comes through too, and what is not a capture is refused as a file is.
    @Test func aCaptureOnStandardInputReplaysAsTheFileDoes() throws {
        for name in ["ftp-pasv-ipv4", "sip-tcp-rtp"] {
            let path = ReplayFixtures.capture(name)
            for arguments in [[String](), ["--json", "--side", "server"]] {
                let file = try run([path] + arguments)
                let piped = try run(["-"] + arguments, input: path)
                #expect(file.status == 0 && piped.status == 0, "\(name): \(piped.stderr)")
                #expect(piped.stderr.isEmpty, "\(piped.stderr)")
                #expect(!piped.stdout.isEmpty)
                let named = arguments.isEmpty ? "\(path):" : #""file" : "\#(path)""#
                let stdinNamed = arguments.isEmpty ? "standard input:" : #""file" : "standard input""#
                #expect(file.stdout.contains(named) && piped.stdout.contains(stdinNamed), "\(piped.stdout)")
                // The SIP engine's branch and contact tokens are random in every run: masked.
                #expect(Digest.masked(piped.stdout.replacingOccurrences(of: stdinNamed, with: named))
                        == Digest.masked(file.stdout), "\(name) \(arguments)")
            }
        }
        let gzip = try CaptureFile.write(GzipStored.wrap(CaptureFile.pcap(linkType: 1, frames:
            CraftedSessions.ftpFrames())), suffix: ".pcap.gz")
        defer { try? FileManager.default.removeItem(atPath: gzip) }
        let compressed = try run(["-"], input: gzip)
        #expect(compressed.status == 0, "\(compressed.stderr)")
        #expect(compressed.stdout.hasPrefix("standard input: Ethernet (1), gzip, "), "\(compressed.stdout)")
        #expect(compressed.stdout.contains("data flows: observed 2, predicted 2, covered 2"))

        let text = try CaptureFile.write(Array("not a capture\n".utf8), suffix: ".txt")
        defer { try? FileManager.default.removeItem(atPath: text) }
        let refused = try run(["-"], input: text)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("standard input: not a pcap or pcapng capture"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)
    }
}
