import AlgateReplay
import AlgateRewrite
import Foundation
import Testing

/// The sessions this project recorded from real peers on loopback (`Fixtures/replay`, re-recorded by
/// `Scripts/record`): each capture next to the trimmed summary of its expected offline replay.
enum ReplayFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // AlgateReplayTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the repository
        .appendingPathComponent("Fixtures/replay", isDirectory: true)

    /// What `Scripts/record` records; every one of them must be checked in.
    static let names = [
        "ftp-pasv-ipv4", "ftp-port-ipv4", "ftp-epsv-ipv6", "ftp-eprt-ipv6",
        "sip-udp-rtp", "sip-tcp-rtp", "sip-register", "sip-inbound-call",
        "sip-tcp-vxlan", "sip-tcp-vxlan-midstream",
    ]

    static func capture(_ name: String) -> String { directory.appendingPathComponent("\(name).pcap").path }

    static func expected(_ name: String) throws -> FixtureSummary {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(name).expected.json"))
        return try JSONDecoder().decode(FixtureSummary.self, from: data)
    }
}

/// The part of a replay report a fixture pins down (Scripts/record writes it with jq from `algate replay --json`):
/// per session the protocol, transport, endpoints, how many messages, rewrites, pinholes and errors, and the
/// data-flow check. Message texts, rewritten values and frame numbers are left out on purpose.
struct FixtureSummary: Codable, Equatable, CustomStringConvertible {
    struct Session: Codable, Equatable {
        var `protocol`: String
        var transport: String
        var client: String
        var server: String
        var messages: Int
        var rewrites: Int
        var pinholes: Int
        var errors: Int
        var dataFlows: ReplaySession.DataFlows
    }

    var side: String
    var publicAddress: String
    var sessions: [Session]

    init(side: String, publicAddress: String, sessions: [Session]) {
        self.side = side
        self.publicAddress = publicAddress
        self.sessions = sessions
    }

    init(_ report: ReplayReport) {
        self.init(side: report.side, publicAddress: report.publicAddress, sessions: report.sessions.map { session in
            Session(protocol: session.protocol.rawValue, transport: session.transport, client: session.client,
                    server: session.server, messages: session.messages.count, rewrites: session.rewrites.count,
                    pinholes: session.pinholes.count, errors: session.errors.count, dataFlows: session.dataFlows)
        })
    }

    var description: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "\(sessions)"
    }
}

@Suite("Fixtures recorded from real peers replay to their expected results")
struct FixtureReplayTests {

    func replay(_ name: String, as expected: FixtureSummary) throws -> ReplayReport {
        let side = try #require(ReplaySide(rawValue: expected.side), "\(name): side \(expected.side)")
        let address = try #require(IPAddress(expected.publicAddress), "\(name): \(expected.publicAddress)")
        return try CaptureReplayer.replay(path: ReplayFixtures.capture(name),
                                          settings: ReplaySettings(side: side, publicAddress: address))
    }

    @Test("Every fixture is checked in, small", arguments: ReplayFixtures.names)
    func checkedIn(_ name: String) throws {
        let attributes = try FileManager.default.attributesOfItem(atPath: ReplayFixtures.capture(name))
        let size = try #require(attributes[.size] as? Int)
        #expect(size > 0 && size < 400_000, "\(name).pcap: \(size) bytes")
        _ = try ReplayFixtures.expected(name)
    }

    @Test("A fixture replays offline to its expected result", arguments: ReplayFixtures.names)
    func replaysAsExpected(_ name: String) throws {
        let expected = try ReplayFixtures.expected(name)
        let report = try replay(name, as: expected)
        #expect(!report.truncated, "\(name): \(report.problems)")
        #expect(report.problems.isEmpty, "\(name): \(report.problems)")
        let actual = FixtureSummary(report)
        #expect(actual == expected, "\(name) replayed to\n\(actual)\nexpected\n\(expected)")
    }

    @Test("Every data connection and media flow of a fixture falls into a predicted pinhole",
          arguments: ReplayFixtures.names)
    func everyFlowCovered(_ name: String) throws {
        let expected = try ReplayFixtures.expected(name)
        let report = try replay(name, as: expected)
        #expect(!report.sessions.isEmpty, "\(name): no FTP or SIP session found")
        for session in report.sessions {
            #expect(session.dataFlows.observed == session.dataFlows.covered,
                    "\(name) session \(session.id): \(session.dataFlows), flows \(session.flows)")
            #expect(session.flows.allSatisfy { $0.coveredBy != nil }, "\(name) session \(session.id): \(session.flows)")
            #expect(session.errors.isEmpty, "\(name) session \(session.id): \(session.errors)")
        }
        // A fixture recorded with a data connection or media must show it (else the recording lost it).
        let observed = report.sessions.reduce(0) { $0 + $1.dataFlows.observed }
        if name == "sip-register" {
            #expect(observed == 0, "\(name): \(observed) flows")
        } else {
            #expect(observed >= 1, "\(name): no data connection or media flow in the capture")
        }
        // The checked-in expectation holds the same promise.
        for session in expected.sessions {
            #expect(session.dataFlows.observed == session.dataFlows.covered, "\(name).expected.json: \(session)")
        }
    }

    @Test("Each recorded protocol and mode is there")
    func whatIsRecorded() throws {
        func summary(_ name: String) throws -> FixtureSummary { try ReplayFixtures.expected(name) }
        for name in ["ftp-pasv-ipv4", "ftp-port-ipv4", "ftp-epsv-ipv6", "ftp-eprt-ipv6"] {
            let sessions = try summary(name).sessions
            #expect(sessions.count == 1 && sessions[0].protocol == "ftp", "\(name): \(sessions)")
            #expect(sessions.allSatisfy { $0.pinholes == 1 }, "\(name): \(sessions)")
        }
        #expect(try summary("ftp-epsv-ipv6").sessions.allSatisfy { $0.client.hasPrefix("[::1]") })
        #expect(try summary("ftp-eprt-ipv6").sessions.allSatisfy { $0.client.hasPrefix("[::1]") })
        #expect(try summary("sip-udp-rtp").sessions.map(\.transport) == ["udp"])
        #expect(try summary("sip-tcp-rtp").sessions.map(\.transport) == ["tcp"])
        for name in ["sip-udp-rtp", "sip-tcp-rtp", "sip-register", "sip-inbound-call", "sip-tcp-vxlan",
                     "sip-tcp-vxlan-midstream"] {
            #expect(try summary(name).sessions.allSatisfy { $0.protocol == "sip" }, "\(name)")
        }
        for name in ["sip-tcp-vxlan", "sip-tcp-vxlan-midstream"] {
            #expect(try summary(name).sessions.map(\.server) == ["10.97.0.2:5090"], "\(name)")
        }
        #expect(try summary("sip-inbound-call").sessions.contains { $0.pinholes >= 1 && $0.dataFlows.covered >= 1 })
    }

    /// `algate replay FILE --live`: the FTP fixtures played through a gateway on loopback match their offline
    /// replay (every line arrives, the same lines rewritten, as many pinholes, every data connection carried).
    @Test("algate replay --live of an FTP fixture matches the offline replay",
          .enabled(if: AlgateBinary.url != nil, "the algate binary is not built next to the tests"),
          arguments: ["ftp-pasv-ipv4", "ftp-port-ipv4", "ftp-epsv-ipv6", "ftp-eprt-ipv6"])
    func live(_ name: String) throws {
        let run = try Self.algate(["replay", ReplayFixtures.capture(name), "--live"])
        #expect(run.status == 0, "\(name):\n\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("live session 1 (FTP): matches the offline replay"), "\(name):\n\(run.stdout)")
        #expect(run.stdout.contains("1 pinhole(s), 1 data connection(s) carried"), "\(name):\n\(run.stdout)")
        #expect(run.stdout.contains("live: 1 session(s) replayed, 0 differ(s), 0 skipped"), "\(run.stdout)")
    }

    /// `algate replay FILE --live`: the SIP fixtures played through a SIP listener on loopback match their offline
    /// replay: every message arrives, the same messages are rewritten, as many media relays open, and RTP goes both
    /// ways through every one of them.
    @Test("algate replay --live of a SIP fixture matches the offline replay and carries every media flow",
          .enabled(if: AlgateBinary.url != nil, "the algate binary is not built next to the tests"),
          arguments: ["sip-udp-rtp", "sip-tcp-rtp", "sip-register", "sip-inbound-call", "sip-tcp-vxlan",
                      "sip-tcp-vxlan-midstream"])
    func liveSIP(_ name: String) throws {
        let expected = try ReplayFixtures.expected(name)
        let run = try Self.algate(["replay", ReplayFixtures.capture(name), "--live"])
        #expect(run.status == 0, "\(name):\n\(run.stdout)\n\(run.stderr)")
        for (index, session) in expected.sessions.enumerated() {
            let line = "live session \(index + 1) (SIP): matches the offline replay: \(session.messages) message(s), "
                + "\(session.rewrites) rewritten, \(session.pinholes) media relay(s), \(session.pinholes) media flow(s) "
                + "carried"
            #expect(run.stdout.contains(line), "\(name): no \"\(line)\" in\n\(run.stdout)")
        }
        #expect(run.stdout.contains("live: \(expected.sessions.count) session(s) replayed, 0 differ(s), 0 skipped"),
                "\(run.stdout)")
    }

    static func algate(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        let binary: URL = try #require(AlgateBinary.url)
        process.executableURL = binary
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// `algate replay --json` prints what the summary was taken from (Scripts/record reads that output).
    @Test("algate replay --json of a fixture gives the expected summary",
          .enabled(if: AlgateBinary.url != nil, "the algate binary is not built next to the tests"),
          arguments: ["ftp-pasv-ipv4", "sip-tcp-rtp"])
    func commandLine(_ name: String) throws {
        let process = Process()
        let binary: URL = try #require(AlgateBinary.url)
        process.executableURL = binary
        process.arguments = ["replay", ReplayFixtures.capture(name), "--json"]
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let report = try JSONDecoder().decode(ReplayReport.self, from: data)
        #expect(FixtureSummary(report) == (try ReplayFixtures.expected(name)))
    }

    /// A real kernel VXLAN tunnel (Scripts/record): every frame is opened, the ARP inside it is no IP, and the SIP
    /// on port 5090 is found by its start line; without the handshake, by content mid-stream.
    @Test func theVXLANFixturesAreOpenedAndTheirSIPFoundOnPort5090() throws {
        let settings = ReplaySettings()
        let whole = try CaptureReplayer.replay(path: ReplayFixtures.capture("sip-tcp-vxlan"), settings: settings)
        #expect(whole.capture.decapsulated == ["VXLAN": whole.frames])
        #expect(whole.capture.nonIPFrames >= 2, "ARP inside the tunnel")
        #expect(whole.sessions.map(\.detectedBy) == ["content (SIP start line)"])
        let cut = try CaptureReplayer.replay(path: ReplayFixtures.capture("sip-tcp-vxlan-midstream"),
                                             settings: settings)
        #expect(cut.frames == whole.frames - 2, "the SYN and SYN-ACK are deleted")
        #expect(cut.sessions.map(\.detectedBy) == ["content (SIP start line, mid-stream)"])
        #expect(cut.sessions.first?.messages.first?.text.hasPrefix("INVITE sip:service@10.97.0.2:5090") == true)
        #expect(Digest(cut).sessions.map { $0.replacingOccurrences(of: ", mid-stream", with: "") }
                == Digest(whole).sessions)
    }
}
