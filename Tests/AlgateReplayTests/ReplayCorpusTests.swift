import AlgateReplay
import AlgateRewrite
import Foundation
import Testing

/// The external captures in `<repo>/../shared/corpus` (see its SOURCES.md): read in place, never copied into the
/// repository. Tests that need them are skipped, saying so, when the folder is absent.
enum ReplayCorpus {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // AlgateReplayTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the repository
        .deletingLastPathComponent()
        .appendingPathComponent("shared/corpus", isDirectory: true)

    static var isPresent: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    static let absent: Comment = "../shared/corpus is absent: corpus replay tests skipped"

    /// Every capture of the corpus, as `folder/name`, sorted; empty when the corpus is absent.
    static let captures: [String] = {
        guard isPresent else { return [] }
        return ["ftp", "sip"].flatMap { folder in
            let folderPath = directory.appendingPathComponent(folder).path
            return ((try? FileManager.default.contentsOfDirectory(atPath: folderPath)) ?? [])
                .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
                .map { "\(folder)/\($0)" }
        }.sorted()
    }()

    static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    static func replay(_ name: String, side: ReplaySide = .client, _ adjust: (inout ReplaySettings) -> Void = { _ in })
        throws -> ReplayReport {
        var settings = ReplaySettings(side: side)
        adjust(&settings)
        return try CaptureReplayer.replay(path: path(name), settings: settings)
    }
}

extension ReplayReport {
    /// The data-flow check summed over the sessions.
    var totalDataFlows: ReplaySession.DataFlows {
        sessions.reduce(into: ReplaySession.DataFlows()) { total, session in
            total.observed += session.dataFlows.observed
            total.predicted += session.dataFlows.predicted
            total.covered += session.dataFlows.covered
        }
    }

    var allErrors: [ReplaySession.Problem] { sessions.flatMap(\.errors) }
}

@Suite(.enabled(if: ReplayCorpus.isPresent, ReplayCorpus.absent))
struct ReplayCorpusTests {
    /// What tshark shows in each capture with data connections or media (`tshark -q -z conv,tcp` / `conv,udp`,
    /// checked by hand): data connections (FTP) or RTP/RTCP conversations (SIP), and the pinholes predicted.
    static let dataFlows: [String: (observed: Int, predicted: Int)] = [
        "ftp/zeek-ipv4.pcap": (4, 4),                           // PASV x2, PORT x2
        "ftp/zeek-ipv6.pcap": (5, 5),                           // EPSV x3, EPRT x2
        "ftp/OISF-ftp-download-active__input.pcap": (3, 3),     // PORT x3
        "ftp/OISF-ftp-download-passive__input.pcap": (3, 3),    // PASV x3, two naming the same port
        "ftp/OISF-ftp-active-mode.pcap": (1, 1),
        "ftp/OISF-ftp-passive-mode.pcap": (1, 1),
        "ftp/zeek-retr.pcap": (1, 1),
        "ftp/zeek-bigtransfer.pcap": (2, 2),
        "ftp/OISF-ftp-epsv__input.pcap": (0, 4),                // EPSV x4, no data connection captured
        "ftp/zeek-ipv6-multiline-reply.pcap": (0, 1),
        "sip/NormB-sip-rtp-g711.pcap": (2, 2),                  // two calls, one RTP stream each
        "sip/NormB-rtp-protocol.pcap": (2, 1),                  // RTP and RTCP of one m= line
        "sip/NormB-sip-over-tcp.pcap": (2, 1),
        "sip/NormB-sip-sdp-example.pcap": (0, 2),               // audio and T.38, no media captured
    ]

    @Test(arguments: ReplayCorpus.captures)
    func everyCaptureReplaysInBoundedTime(_ name: String) throws {
        for side in ReplaySide.allCases {
            var report: ReplayReport?
            let elapsed = try ContinuousClock().measure {
                report = try ReplayCorpus.replay(name, side: side)
            }
            let replayed = try #require(report)
            #expect(elapsed < .seconds(30), "\(name): \(elapsed)")
            #expect(!replayed.sessions.isEmpty, "\(name): every corpus capture holds FTP or SIP")
            #expect(replayed.problems.isEmpty, "\(name): \(replayed.problems)")
            #expect(!replayed.truncated)
            let text = ReplayReportFormatter.text(replayed)
            #expect(text.contains("session 1:"), "\(name)")
            let expectedProtocol: ReplayProtocol = name.hasPrefix("ftp/") ? .ftp : .sip
            #expect(replayed.sessions.allSatisfy { $0.protocol == expectedProtocol }, "\(name)")
        }
    }

    @Test(arguments: ReplayCorpus.captures)
    func everyDataConnectionAndMediaFlowIsCovered(_ name: String) throws {
        for side in ReplaySide.allCases {
            let report = try ReplayCorpus.replay(name, side: side)
            let flows = report.totalDataFlows
            #expect(flows.covered == flows.observed, "\(name) (\(side)): \(report.sessions.flatMap(\.flows))")
            if let expected = Self.dataFlows[name] {
                #expect(flows.observed == expected.observed, "\(name) (\(side))")
                #expect(flows.predicted == expected.predicted, "\(name) (\(side))")
            } else {
                #expect(flows.observed == 0, "\(name) (\(side)): a flow no one listed")
            }
        }
    }

    @Test func zeekIPv4IsRewrittenForEitherSide() throws {
        let server = try #require(try ReplayCorpus.replay("ftp/zeek-ipv4.pcap", side: .server).sessions.first)
        #expect(server.rewrites.map(\.after) == [
            "227 Entering Passive Mode (203,0,113,7,156,64)",
            "227 Entering Passive Mode (203,0,113,7,156,65)",
            "PORT 141,142,220,235,156,66",  // towards the server: the address it saw the client at
            "PORT 141,142,220,235,156,67",
        ])
        #expect(server.rewrites.first?.before == "227 Entering Passive Mode (199,233,217,249,221,90)")
        let client = try #require(try ReplayCorpus.replay("ftp/zeek-ipv4.pcap", side: .client).sessions.first)
        #expect(client.rewrites.map(\.after) == [
            "227 Entering Passive Mode (199,233,217,249,156,64)",  // towards the client: the server it reached
            "227 Entering Passive Mode (199,233,217,249,156,65)",
            "PORT 203,0,113,7,156,66",
            "PORT 203,0,113,7,156,67",
        ])
        #expect(client.pinholes.map(\.kind) == ["passive", "passive", "active", "active"])
        #expect(client.pinholes[0].relaysTo == ["199.233.217.249:56666"])
        #expect(client.pinholes[0].admits == "141.142.220.235")
        #expect(client.pinholes[2].relaysTo == ["141.142.220.235:33582"])
        #expect(client.pinholes[2].admits == "199.233.217.249")
        #expect(client.errors.isEmpty)
        #expect(client.messages.count == 74)
        #expect(client.messages.first?.text == "220 ftp.NetBSD.org FTP server (NetBSD-ftpd 20100320) ready.")
    }

    @Test func zeekIPv6IsRewrittenWithExtendedCommands() throws {
        let session = try #require(try ReplayCorpus.replay("ftp/zeek-ipv6.pcap", side: .client).sessions.first)
        #expect(session.rewrites.count == 5)
        #expect(session.rewrites.last?.after == "EPRT |1|203.0.113.7|40004|")  // A is IPv4
        #expect(session.flows.allSatisfy { $0.coveredBy != nil })
    }

    /// The malformed captures: each problem is reported with what the gateway did about it.
    @Test func malformedFTPIsReportedWithWhatWasDone() throws {
        let fake = try ReplayCorpus.replay("ftp/zeek-fake-long-commands.pcap").allErrors
        #expect(fake.contains { $0.problem.hasPrefix("malformed reply") && $0.action.hasPrefix("replaced by: 425") })
        #expect(fake.contains { $0.problem.hasPrefix("refused: malformed address argument")
            && $0.action.hasPrefix("answered: 501") })
        for name in ["ftp/zeek-ftp-invalid-reply-code.pcap", "ftp/zeek-ftp-missing-reply-code.pcap"] {
            let errors = try ReplayCorpus.replay(name).allErrors
            #expect(errors.contains {
                $0.problem == "server line is not a reply" && $0.action == "passed on unchanged"
            }, "\(name)")
        }
        let long = try ReplayCorpus.replay("ftp/OISF-ftp-too-long-response.pcap").allErrors
        #expect(long.map(\.problem) == ["server line longer than 4096 bytes"])
        #expect(long.first?.action.hasPrefix("session closed") == true)
        let bounce = try ReplayCorpus.replay("ftp/OISF-ftp-bounce__test.pcap")
        #expect(bounce.sessions.count == 2)
        #expect(bounce.allErrors.map(\.problem) == ["refused: address 2.2.2.3 is not the client's own (1.1.1.2)"])
        #expect(bounce.allErrors.first?.action.hasPrefix("answered: 500") == true)
        #expect(bounce.sessions[1].pinholes.isEmpty)
        let foreign = try ReplayCorpus.replay("ftp/OISF-ftp-active-dynamic_port.pcap").allErrors
        #expect(foreign.contains {
            $0.problem.contains("2601:191:8500:2e00:7c0f:78e0:dc5b:f7c1 is not the client's own")
        })
        let tls = try #require(try ReplayCorpus.replay("ftp/zeek-ftp-auth-tls.pcap").sessions.first)
        #expect(tls.errors.isEmpty)
        #expect(tls.notes.contains { $0.contains("can no longer be translated") })
        #expect(tls.notes.contains { $0.contains("bytes relayed untouched") })
        #expect(tls.messages.last?.text == "234 Proceed with negotiation.")
    }

    @Test func malformedSIPIsReportedWithWhatWasDone() throws {
        let length = try ReplayCorpus.replay("sip/zeek-invalid-content-length.pcap").allErrors
        #expect(length.map(\.problem) == ["malformed Content-Length", "malformed Content-Length"])
        #expect(length.map(\.action) == ["answered 400", "dropped"])
        let junk = try ReplayCorpus.replay("sip/zeek-sip-junk-before-request.pcap")
        #expect(junk.allErrors.count == 2)
        #expect(junk.sessions.first?.pinholes.isEmpty == true)
        // A 64 KB INVITE across many TCP segments: over the default 65535-byte limit the gateway closes the
        // connection; with a larger limit the reassembled message goes through.
        let large = try ReplayCorpus.replay("sip/OISF-sip-body-large.pcap")
        #expect(large.allErrors.count == 1)
        #expect(large.allErrors.first?.problem.contains("message over the configured limit") == true)
        let allowed = try ReplayCorpus.replay("sip/OISF-sip-body-large.pcap") { settings in
            settings.sipLimits.maxMessageBytes = 1 << 20
            settings.sipLimits.maxLineBytes = 1 << 20
        }
        let session = try #require(allowed.sessions.first)
        #expect(session.messages.first?.text.hasPrefix("INVITE ") == true)
        #expect((session.messages.first?.bytes ?? 0) > 60_000)
    }

    @Test func sipCallsOpenMediaRelaysThatCarryTheCapturedRTP() throws {
        let report = try ReplayCorpus.replay("sip/NormB-sip-rtp-g711.pcap", side: .server)
        let session = try #require(report.sessions.first)
        #expect(session.client == "10.0.2.20:5060")
        #expect(session.server == "10.0.2.15:5060")
        #expect(session.pinholes.count == 2)
        #expect(session.pinholes[0].relaysTo.contains("10.0.2.20:6000"))
        #expect(session.pinholes[0].relaysTo.contains("10.0.2.15:27942"))
        #expect(session.flows.map(\.coveredBy) == [1, 2])
        // The INVITE towards the server names the gateway's inside address (here: the client's, as the server saw
        // it) and a relay port; the 200 towards the client names the public address.
        let answer = try #require(session.rewrites.first { $0.after.contains("c=IN IP4 203.0.113.7") })
        #expect(session.messages[answer.message].text == "SIP/2.0 200 OK")
        let tcp = try #require(try ReplayCorpus.replay("sip/NormB-sip-over-tcp.pcap").sessions.first)
        #expect(tcp.transport == "tcp")
        #expect(tcp.messages.count == 7)
        #expect(tcp.flows.map(\.kind).sorted() == ["rtcp", "rtp"])
    }

    @Test func gzipCompressedCapturesReplayTheSame() throws {
        guard ["/usr/bin/gzip", "/bin/gzip"].contains(where: FileManager.default.isExecutableFile(atPath:)) else {
            return  // no gzip program to compress with
        }
        for name in ["ftp/zeek-ipv6.pcap", "sip/NormB-sip-rtp-g711.pcap"] {
            let compressed = NSTemporaryDirectory() + "algate-replay-\(UUID().uuidString).pcap.gz"
            defer { try? FileManager.default.removeItem(atPath: compressed) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "gzip -9 -c \"$0\" > \"$1\"", ReplayCorpus.path(name), compressed]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            var settings = ReplaySettings()
            settings.side = .server
            let plain = try CaptureReplayer.replay(path: ReplayCorpus.path(name), settings: settings)
            let unzipped = try CaptureReplayer.replay(path: compressed, settings: settings)
            #expect(unzipped.compressed)
            #expect(unzipped.frames == plain.frames)
            #expect(Digest(unzipped) == Digest(plain), "\(name)")
        }
    }
}
