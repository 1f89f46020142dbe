import Foundation
import Testing

/// End-to-end tests of the SIP gateway (``SIPListener`` in this process) against real SIP peers nobody here wrote:
/// SIPp (package sip-tester) as UAC, UAS and registering phone, with RTP played from pcap and echoed; Kamailio as
/// the registrar upstream. Loopback only (127.0.0.0/8 and ::1).
///
/// Topology: outside peers on 127.0.0.1 -> gateway 127.0.0.1 (public and inside address 127.0.0.1) -> upstream on
/// 127.0.0.2 (SIPp UAS) or 127.0.0.3 (Kamailio; its inside caller on 127.0.0.4). Every test takes its own ports
/// (``SIPITPorts``), its own temp directory and its own gateway, and stops every process it started whatever the
/// outcome. The suites nest in this one, so the whole set runs one test at a time.
///
/// Run with `swift test --filter SIPIntegration`. Environment: ALGATE_SIPIT_LOG=1 echoes the gateway's log,
/// ALGATE_SIPIT_KEEP=1 keeps the temp directories (SIPp message logs, captures, kamailio.log) for a post-mortem.
@Suite("SIPIntegration", .serialized,
       .enabled(if: SIPITTools.available, "needs root, sipp (sip-tester) with its pcaps, dumpcap and tshark"))
struct SIPIntegration {}

/// Whether the peers these tests need are installed (and we may open raw sockets and capture).
enum SIPITTools {
    static let sipp = "/usr/bin/sipp"
    static let kamailio = "/usr/sbin/kamailio"
    static let dumpcap = "/usr/bin/dumpcap"
    static let tshark = "/usr/bin/tshark"
    /// SIPp's RTP pcaps (uac_pcap plays `pcap/g711a.pcap` and `pcap/dtmf_2833_1.pcap` relative to its CWD).
    static let pcapDirectory = "/usr/share/sip-tester"

    static var available: Bool {
        let fm = FileManager.default
        return getuid() == 0 && [sipp, dumpcap, tshark].allSatisfy { fm.isExecutableFile(atPath: $0) }
            && fm.fileExists(atPath: pcapDirectory + "/g711a.pcap")
    }

    static var hasKamailio: Bool { FileManager.default.isExecutableFile(atPath: kamailio) }

    /// Packets uac_pcap plays per call: g711a.pcap (236) + dtmf_2833_1.pcap (10).
    static let rtpPacketsPerCall = 246

    /// RFC 4475 torture messages, read at test time from `../shared/corpus` beside the checkout (never copied into
    /// the repository).
    static let tortureDirectory: String = {
        // .../Tests/AlgateProxyTests/SIPIntegration/SIPIntegrationSuite.swift -> the checkout's parent folder
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<5 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("shared/corpus/sip-torture-rfc4475", isDirectory: true).path
    }()
}

/// The files under Fixtures/sip that the tests read (SIPp scenarios, the Kamailio config template).
enum SIPITFixtures {
    static let directory: URL = {
        // .../Tests/AlgateProxyTests/SIPIntegration/SIPIntegrationSuite.swift -> .../Fixtures/sip
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures/sip", isDirectory: true)
    }()

    static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: path(name), encoding: .utf8)
    }
}
