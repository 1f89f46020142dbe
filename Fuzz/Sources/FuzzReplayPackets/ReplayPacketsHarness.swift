import AlgateReplay
import AlgateRewrite
import FuzzSupport

/// libFuzzer's entry point: one input, a classic pcap file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReplayPackets(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    ReplayPacketsHarness.run(fuzzInput(data, size))
    return 0
}

/// The replay's packet layer through its public door, ``CaptureAnalyzer``: link layers, IPv4/IPv6 with fragments
/// and tunnels, TCP reassembly and UDP, and the FTP and SIP sessions behind them. Frames come from a pcap file (or,
/// when the input is not one, the input is one frame of a link type its first byte picks). No crash and no hang
/// (libFuzzer's -timeout and -rss_limit_mb watch those); the report counts every frame it was given, keeps within
/// the session limit, and its sessions' messages come in frame order from frames that exist.
enum ReplayPacketsHarness {
    static let linkTypes: [LinkType] = [.ethernet, .raw, .null, .loop, .linuxSLL, .linuxSLL2, .ipv4, .ipv6,
                                        .linktypeRaw, .rawOpenBSD]

    static func run(_ input: [UInt8]) {
        let frames: [CapturedFrame]
        let linkType: LinkType
        if let file = PcapFile(input) {
            linkType = LinkType(rawValue: file.linkType)
            frames = file.frames.enumerated().map { index, frame in
                CapturedFrame(number: index + 1, timestamp: frame.timestamp, linkType: linkType, bytes: frame.bytes,
                              originalLength: frame.originalLength)
            }
        } else {
            guard let first = input.first else { return }
            linkType = linkTypes[Int(first) % linkTypes.count]
            frames = [CapturedFrame(number: 1, timestamp: 0, linkType: linkType, bytes: Array(input.dropFirst()))]
        }

        var settings = ReplaySettings(side: FuzzHash(input).bits(0, 1) == 0 ? .client : .server)
        settings.maxTCPBufferedBytes = 1 << 16
        settings.maxSessions = 16
        settings.maxFlows = 256
        var analyzer = CaptureAnalyzer(settings: settings)
        for frame in frames { analyzer.receive(frame) }
        let report = analyzer.finish(file: "fuzz.pcap", compressed: false, linkType: linkType, truncation: nil)

        Invariant.check(report.frames == frames.count, "the report counts \(report.frames) frames of \(frames.count)")
        Invariant.check(report.sessions.count <= settings.maxSessions,
                        "\(report.sessions.count) sessions past the limit of \(settings.maxSessions)")
        for session in report.sessions {
            var last = 0
            for message in session.messages {
                Invariant.check(message.frame >= last && message.frame >= 1 && message.frame <= frames.count,
                                "a message of frame \(message.frame) after frame \(last), of \(frames.count)")
                last = message.frame
            }
        }
    }
}
