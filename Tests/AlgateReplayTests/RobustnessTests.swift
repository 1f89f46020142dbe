import AlgateReplay
import AlgateRewrite
import Testing

/// Damaged input never takes the replay down: every frame of real-looking sessions with bytes flipped, frames cut
/// short, and plain noise, under every link type.
@Suite struct RobustnessTests {
    static let linkTypes: [LinkType] = [.ethernet, .linuxSLL, .linuxSLL2, .linktypeRaw, .null, .loop, .ipv4, .ipv6,
                                        LinkType(rawValue: 147)]

    static func analyze(_ frames: [[UInt8]], linkType: LinkType) -> ReplayReport {
        var analyzer = CaptureAnalyzer(settings: ReplaySettings())
        for (index, bytes) in frames.enumerated() {
            analyzer.receive(CapturedFrame(number: index + 1, timestamp: 1_700_000_000 + Double(index) / 100,
                                           linkType: linkType, bytes: bytes))
        }
        return analyzer.finish(file: "fuzz", compressed: false, linkType: linkType, truncation: nil)
    }

    @Test func mutatedSessionsAreReplayedWithoutACrash() {
        let ftp = CraftedSessions.ftp(replySegment: 11).packets.map(\.bytes)
        let sip = SIPAndIPReplayTests.call()
        var generator = SeededGenerator(seed: 2024)
        for round in 0..<150 {
            var packets = (round % 2 == 0 ? ftp : sip).map { Packet.ethernet($0) }
            for index in packets.indices where Int.random(in: 0..<4, using: &generator) == 0 {
                var packet = packets[index]
                for _ in 0..<Int.random(in: 1...6, using: &generator) {
                    let position = Int.random(in: 0..<packet.count, using: &generator)
                    packet[position] = UInt8.random(in: 0...255, using: &generator)
                }
                if Int.random(in: 0..<5, using: &generator) == 0 {
                    packet = Array(packet.prefix(Int.random(in: 0...packet.count, using: &generator)))
                }
                packets[index] = packet
            }
            packets.shuffle(using: &generator)
            let report = Self.analyze(packets, linkType: .ethernet)
            #expect(report.frames == packets.count)
        }
    }

    @Test func noiseUnderEveryLinkTypeIsReplayedWithoutACrash() {
        var generator = SeededGenerator(seed: 99)
        for linkType in Self.linkTypes {
            let frames = (0..<400).map { _ in
                (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            let report = Self.analyze(frames, linkType: linkType)
            #expect(report.frames == 400)
            if !linkType.isSupported {
                #expect(report.problems.contains { $0.contains("not supported") })
            }
        }
    }
}
