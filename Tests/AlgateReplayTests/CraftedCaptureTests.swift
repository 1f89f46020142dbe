import AlgateReplay
import AlgateRewrite
import Foundation
import Testing

/// Captures written by the tests themselves: the same session clean, reordered, duplicated, cut short, under every
/// link type, fragmented; and captures with nothing to replay or that are no captures at all.
@Suite struct CraftedCaptureTests {
    static let clean: ReplayReport? = try? replayCrafted(CraftedSessions.ftpFrames())

    @Test func theCleanFTPSessionIsReplayedAndItsDataConnectionsCovered() throws {
        let report = try #require(Self.clean)
        #expect(report.problems.isEmpty)
        let session = try #require(report.sessions.first)
        #expect(report.sessions.count == 1)
        #expect(session.protocol == .ftp)
        #expect(session.detectedBy == "port 21")
        #expect(session.client == "192.0.2.10:50000")
        #expect(session.messages.count == 19)
        #expect(session.messages.first?.text == "220 Crafted FTP server ready.")
        #expect(session.rewrites.map(\.after) == ["227 Entering Passive Mode (198,51,100,5,156,64).",
                                                  "PORT 203,0,113,7,156,65"])
        #expect(session.pinholes.map(\.relaysTo) == [["198.51.100.5:50000"], ["192.0.2.10:51210"]])
        #expect(session.errors.isEmpty)
        #expect(session.dataFlows == ReplaySession.DataFlows(observed: 2, predicted: 2, covered: 2))
        #expect(!session.notes.contains { $0.contains("retransmitted") })
    }

    @Test func reorderedSegmentsGiveTheSameResult() throws {
        let clean = try #require(Self.clean)
        for seed in [1, 2, 3, 4, 5] as [UInt64] {
            // Server replies cut small, then every control segment after the handshake shuffled.
            let script = CraftedSessions.ftp(replySegment: 7)
            var generator = SeededGenerator(seed: seed)
            var packets = script.packets
            let positions = packets.indices.filter { packets[$0].connection == 0 }.dropFirst(3)
            let shuffled = positions.map { packets[$0] }.shuffled(using: &generator)
            for (position, packet) in zip(positions, shuffled) { packets[position] = packet }
            let report = try replayCrafted(PacketScript.frames(packets.map(\.bytes)))
            #expect(Digest(report) == Digest(clean), "seed \(seed)")
        }
    }

    @Test func duplicatedAndOverlappingSegmentsGiveTheSameResult() throws {
        let clean = try #require(Self.clean)
        let script = CraftedSessions.ftp(replySegment: 9)
        var packets = script.packets.map(\.bytes)
        let control = script.conversation(0)
        // Every control segment sent twice, the copy with other bytes: the first copy wins.
        var withCopies: [[UInt8]] = []
        var segmentIndex = 0
        for (index, packet) in packets.enumerated() {
            withCopies.append(packet)
            if script.packets[index].connection == 0 {
                withCopies.append(packet)
                withCopies.append(control.conflictingCopy(of: segmentIndex, replacing: UInt8(ascii: "X")).packet)
                segmentIndex += 1
            }
        }
        // And retransmissions that straddle the original boundaries: the same session cut 5 bytes at a time.
        let overlapping = CraftedSessions.ftp(replySegment: 5).packets.filter { $0.connection == 0 }.dropFirst(3)
            .map(\.bytes)
        packets = withCopies + overlapping
        let report = try replayCrafted(PacketScript.frames(packets))
        #expect(Digest(report) == Digest(clean))
        let notes = try #require(report.sessions.first).notes
        #expect(notes.contains { $0.contains("differed from the first copy") })
    }

    @Test func aMissingSegmentIsAGapAndNothingIsGuessedAfterIt() throws {
        let script = CraftedSessions.ftp()
        let retr = try #require(script.firstPacket(containing: "RETR"))
        var packets = script.packets.map(\.bytes)
        packets.remove(at: retr)
        let report = try replayCrafted(PacketScript.frames(packets))
        let session = try #require(report.sessions.first)
        #expect(!session.messages.contains { $0.text.hasPrefix("RETR") })
        #expect(!session.messages.contains { $0.text.hasPrefix("150") })
        let gap = try #require(session.errors.first)
        #expect(gap.problem.hasPrefix("gap in the client's stream: 15 bytes missing at offset"))
        #expect(gap.action == "not interpreted further")
        // The passive pinhole was predicted before the gap; its connection is still covered.
        #expect(session.dataFlows.covered == 1)
    }

    @Test func aTruncatedFileIsReportedNotACrash() throws {
        let bytes = CaptureFile.pcap(linkType: 1, frames: CraftedSessions.ftpFrames())
        for cut in [bytes.count - 30, bytes.count / 2, 40] {
            let path = try CaptureFile.write(Array(bytes.prefix(cut)))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let report = try CaptureReplayer.replay(path: path, settings: ReplaySettings())
            #expect(report.truncated, "cut at \(cut)")
            #expect(report.problems.first?.contains("truncated") == true, "\(report.problems)")
            let text = ReplayReportFormatter.text(report)
            #expect(text.contains("problem: "))
        }
        // A file cut inside its header is no capture at all.
        let header = try CaptureFile.write(Array(bytes.prefix(10)))
        defer { try? FileManager.default.removeItem(atPath: header) }
        #expect(throws: CaptureError.self) { try CaptureReplayer.replay(path: header, settings: ReplaySettings()) }
    }

    @Test func aCaptureWithoutFTPOrSIPSaysSo() throws {
        let script = PacketScript()
        let web = script.connect(client: ("192.0.2.10", 40000), server: ("198.51.100.80", 80))
        script.send(web, fromClient: true, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        script.send(web, fromClient: false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        script.close(web)
        script.udp(("192.0.2.10", 33333), ("198.51.100.53", 53), Array("not really dns".utf8))
        let report = try replayCrafted(PacketScript.frames(script.packets.map(\.bytes)))
        #expect(report.sessions.isEmpty)
        #expect(report.capture.tcpConnections == 1)
        #expect(report.capture.udpFlows == 1)
        #expect(ReplayReportFormatter.text(report).contains("no FTP or SIP control session in this capture"))
    }

    @Test func aFileThatIsNotACaptureIsAnError() throws {
        let path = try CaptureFile.write(Array("this is not a capture, just some text\n".utf8), suffix: ".txt")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try CaptureReplayer.replay(path: path, settings: ReplaySettings())
            Issue.record("no error")
        } catch {
            guard case .notACapture(let named, _) = error else {
                Issue.record("wrong error: \(error)")
                return
            }
            #expect(named == path)
            #expect(!error.description.contains("\n"))
        }
        #expect(throws: CaptureError.self) {
            try CaptureReplayer.replay(path: "/nonexistent/algate/capture.pcap", settings: ReplaySettings())
        }
    }

    /// The same session under every link type libpcap hands out here.
    @Test(arguments: [
        ("Ethernet", 1), ("Ethernet, one VLAN tag", 1), ("Ethernet, QinQ", 1), ("Linux SLL", 113), ("Linux SLL2", 276),
        ("raw IP", 101), ("raw IPv4", 228), ("BSD loopback", 0), ("BSD loopback, big-endian host", 0),
        ("OpenBSD loopback", 108), ("pcapng Ethernet", 1),
    ])
    func everyLinkTypeGivesTheSameResult(_ name: String, _ linkType: Int) throws {
        let clean = try #require(Self.clean)
        let link: ([UInt8]) -> [UInt8]
        switch name {
        case "Ethernet, one VLAN tag": link = { Packet.ethernet($0, vlans: [100]) }
        case "Ethernet, QinQ": link = { Packet.ethernet($0, vlans: [100, 200]) }
        case "Linux SLL": link = Packet.sll
        case "Linux SLL2": link = Packet.sll2
        case "raw IP", "raw IPv4": link = { $0 }
        case "BSD loopback": link = { Packet.null($0) }
        case "BSD loopback, big-endian host": link = { Packet.null($0, bigEndianHost: true) }
        case "OpenBSD loopback": link = Packet.loop
        default: link = { Packet.ethernet($0) }
        }
        let frames = PacketScript.frames(CraftedSessions.ftp().packets.map(\.bytes), link: link)
        let report = try replayCrafted(frames, linkType: linkType, pcapng: name.hasPrefix("pcapng"))
        #expect(report.problems.isEmpty, "\(name): \(report.problems)")
        #expect(Digest(report) == Digest(clean), "\(name)")
    }

    @Test func gzipCompressedCapturesAreReadDirectly() throws {
        let clean = try #require(Self.clean)
        let pcap = CaptureFile.pcap(linkType: 1, frames: CraftedSessions.ftpFrames())
        let compressed = GzipStored.wrap(pcap)
        let report = try replayCrafted(compressedBytes: compressed)
        #expect(report.compressed)
        #expect(Digest(report) == Digest(clean))
        // Cut short: what could be decompressed is replayed, and the capture counts as truncated.
        let cut = try replayCrafted(compressedBytes: Array(compressed.prefix(compressed.count * 2 / 3)))
        #expect(cut.truncated)
        #expect(cut.problems.contains { $0.contains("gzip") })
        // Damaged beyond use: an error.
        let path = try CaptureFile.write([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff], suffix: ".gz")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: CaptureError.self) { try CaptureReplayer.replay(path: path, settings: ReplaySettings()) }
    }

    @Test func ftpIsFoundByContentOnAnyPort() throws {
        let report = try replayCrafted(PacketScript.frames(CraftedSessions.ftp(serverPort: 2121).packets.map(\.bytes)))
        let session = try #require(report.sessions.first)
        #expect(session.detectedBy == "content (220 greeting)")
        #expect(session.dataFlows == ReplaySession.DataFlows(observed: 2, predicted: 2, covered: 2))
    }

    @Test func aCaptureThatStartsMidConnectionIsReplayedByPortWithANote() throws {
        let script = CraftedSessions.ftp()
        // Drop the control handshake and the greeting: the capture starts at USER.
        let user = try #require(script.firstPacket(containing: "USER"))
        let packets = script.packets.enumerated()
            .filter { $0.offset >= user || $0.element.connection != 0 }
            .map(\.element.bytes)
        let report = try replayCrafted(PacketScript.frames(packets))
        let session = try #require(report.sessions.first)
        #expect(session.messages.first?.text == "USER anonymous")
        #expect(session.notes.contains { $0.contains("starts after the connection did") })
        #expect(session.notes.contains { $0.contains("the engine was given one first") })
        #expect(session.errors.isEmpty, "\(session.errors)")
        #expect(session.dataFlows.covered == 2)
    }
}

/// Replays gzip bytes written to a temporary `.pcap.gz` file.
func replayCrafted(compressedBytes: [UInt8], settings: ReplaySettings = ReplaySettings()) throws -> ReplayReport {
    let path = try CaptureFile.write(compressedBytes, suffix: ".pcap.gz")
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try CaptureReplayer.replay(path: path, settings: settings)
}

/// Writes gzip by hand with stored (uncompressed) DEFLATE blocks, so tests need no gzip program.
enum GzipStored {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xedb8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return crc ^ 0xffff_ffff
    }

    static func wrap(_ data: [UInt8], blockSize: Int = 1000) -> [UInt8] {
        var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]
        var offset = 0
        repeat {
            let end = min(offset + blockSize, data.count)
            let last = end == data.count
            let length = end - offset
            out.append(last ? 1 : 0)
            out += Packet.le16(length) + Packet.le16(~length & 0xffff)
            out += data[offset..<end]
            offset = end
        } while offset < data.count
        out += Packet.le32(crc32(data)) + Packet.le32(UInt32(truncatingIfNeeded: data.count))
        return out
    }
}
