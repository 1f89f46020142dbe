import Foundation
import Testing

/// `algate replay --live` on SIP sessions written for the tests: a call that plays live as the offline replay
/// predicts, and one whose media the offline replay counts as covered but a live gateway cannot carry.
@Suite(.enabled(if: AlgateBinary.url != nil, "the algate binary is not built next to the tests"))
struct LiveSIPReplayTests {
    static let phone = ("192.0.2.10", 5060)
    static let pbx = ("198.51.100.6", 5060)

    /// A SIP message with CR LF line ends and a Content-Length that fits its body.
    static func message(_ head: [String], body: [String] = []) -> [UInt8] {
        let content = body.isEmpty ? "" : body.joined(separator: "\r\n") + "\r\n"
        let lines = head + ["Content-Length: \(content.utf8.count)"]
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n" + content).utf8)
    }

    /// One call over UDP, phone -> PBX: INVITE with an offer, 200 with the answer, ACK, RTP both ways, BYE, 200.
    /// The phone's SDP names `mediaHost` for its media (the phone itself, or another host next to it).
    static func call(mediaHost: String, phone: (String, Int) = phone, pbx: (String, Int) = pbx) -> PacketScript {
        let script = PacketScript()
        let v6 = phone.0.contains(":")
        func host(_ address: String) -> String { address.contains(":") ? "[\(address)]" : address }
        let family = v6 ? "IP6" : "IP4"
        let (me, it) = (host(phone.0), host(pbx.0))
        let dialog = [
            "From: <sip:alice@\(me)>;tag=a1", "Call-ID: crafted-call-1", "Contact: <sip:alice@\(me):\(phone.1)>",
        ]
        let via = "Via: SIP/2.0/UDP \(me):\(phone.1);branch=z9hG4bK-"
        let offer = ["v=0", "o=alice 1 1 IN \(family) \(mediaHost)", "s=-", "c=IN \(family) \(mediaHost)", "t=0 0",
                     "m=audio 20000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]
        let answer = ["v=0", "o=pbx 2 2 IN \(family) \(pbx.0)", "s=-", "c=IN \(family) \(pbx.0)", "t=0 0",
                      "m=audio 30000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]
        let to = "To: <sip:bob@\(it)>"
        script.udp(phone, pbx, message(
            ["INVITE sip:bob@\(it) SIP/2.0", via + "1", "Max-Forwards: 70", to]
                + dialog + ["CSeq: 1 INVITE", "Content-Type: application/sdp"], body: offer))
        script.udp(pbx, phone, message(
            ["SIP/2.0 200 OK", via + "1", to + ";tag=b1"] + dialog.dropLast()
                + ["Contact: <sip:bob@\(it):\(pbx.1)>", "CSeq: 1 INVITE", "Content-Type: application/sdp"],
            body: answer))
        script.udp(phone, pbx, message(
            ["ACK sip:bob@\(it):\(pbx.1) SIP/2.0", via + "2", "Max-Forwards: 70", to + ";tag=b1"] + dialog
                + ["CSeq: 1 ACK"]))
        for number in 0..<3 {
            let rtp: [UInt8] = [0x80, 0x00, 0x00, UInt8(number)] + [UInt8](repeating: 0, count: 8)
                + [UInt8](repeating: 0xd5, count: 160)
            script.udp((mediaHost, 20000), (pbx.0, 30000), rtp)
            script.udp((pbx.0, 30000), (mediaHost, 20000), rtp)
        }
        script.udp(phone, pbx, message(
            ["BYE sip:bob@\(it):\(pbx.1) SIP/2.0", via + "3", "Max-Forwards: 70", to + ";tag=b1"] + dialog
                + ["CSeq: 2 BYE"]))
        script.udp(pbx, phone, message(
            ["SIP/2.0 200 OK", via + "3", to + ";tag=b1"] + dialog.dropLast() + ["CSeq: 2 BYE"]))
        return script
    }

    func live(_ script: PacketScript, json: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
        let file = try CaptureFile.write(CaptureFile.pcap(linkType: 1, frames: PacketScript.frames(
            script.packets.map(\.bytes))))
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try FixtureReplayTests.algate(["replay", file, "--live"] + (json ? ["--json"] : []))
    }

    @Test("A crafted call replays live as offline, RTP carried both ways")
    func matchingCall() throws {
        let run = try live(Self.call(mediaHost: "192.0.2.10"))
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("data flows: observed 1, predicted 1, covered 1"), "\(run.stdout)")
        #expect(run.stdout.contains("live session 1 (SIP): matches the offline replay: 5 message(s), 4 rewritten, "
                                    + "1 media relay(s), 1 media flow(s) carried"), "\(run.stdout)")
        #expect(run.stdout.contains("live: 1 session(s) replayed, 0 differ(s), 0 skipped"), "\(run.stdout)")
    }

    /// An IPv6 call plays on IPv4 loopback: its addresses (bracketed in SIP, bare in SDP and `received=`) become
    /// the live IPv4 ones, `IN IP6` becomes `IN IP4`.
    @Test("A crafted IPv6 call replays live as offline, RTP carried both ways")
    func ipv6Call() throws {
        let run = try live(Self.call(mediaHost: "2001:db8::10", phone: ("2001:db8::10", 5060),
                                     pbx: ("2001:db8:1::6", 5060)))
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("SIP over UDP, client [2001:db8::10]:5060"), "\(run.stdout)")
        #expect(run.stdout.contains("data flows: observed 1, predicted 1, covered 1"), "\(run.stdout)")
        #expect(run.stdout.contains("live session 1 (SIP): matches the offline replay: 5 message(s), 4 rewritten, "
                                    + "1 media relay(s), 1 media flow(s) carried"), "\(run.stdout)")
    }

    /// The phone's SDP names another host for its media. The offline replay counts the flow as covered (a relay
    /// towards that endpoint was predicted), but the relay admits only the phone's own signalling address: live, the
    /// RTP from the media host never gets through, and the replay says so and fails.
    @Test("A live SIP replay that cannot match reports the difference and exits 1")
    func mediaFromAnotherHost() throws {
        let run = try live(Self.call(mediaHost: "192.0.2.77"))
        #expect(run.stdout.contains("data flows: observed 1, predicted 1, covered 1"), "\(run.stdout)")
        #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("live session 1 (SIP): DIFFERS from the offline replay: 5 message(s), "
                                    + "4 rewritten, 1 media relay(s), 0 media flow(s) carried"), "\(run.stdout)")
        #expect(run.stdout.contains("  - live carried RTP both ways through 0 media relay(s), offline predicts 1"),
                "\(run.stdout)")
        #expect(run.stdout.contains("reached the server side"), "\(run.stdout)")
        #expect(run.stdout.contains("live: 1 session(s) replayed, 1 differ(s), 0 skipped"), "\(run.stdout)")
        #expect(run.stderr.contains("1 session(s) differ from the offline replay"), "\(run.stderr)")
    }

    /// `--live --json`: the offline report with a `live` list, one entry per session, as the text says it.
    @Test("algate replay --live --json gives each session's live result")
    func json() throws {
        for (mediaHost, result, carried, status) in [("192.0.2.10", "matches", 1, Int32(0)),
                                                     ("192.0.2.77", "differs", 0, Int32(1))] {
            let run = try live(Self.call(mediaHost: mediaHost), json: true)
            #expect(run.status == status, "\(run.stdout)\n\(run.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            #expect((object?["sessions"] as? [Any])?.count == 1, "\(run.stdout)")
            let entries = try #require(object?["live"] as? [[String: Any]], "\(run.stdout)")
            #expect(entries.count == 1)
            #expect(entries.first?["protocol"] as? String == "sip")
            #expect(entries.first?["result"] as? String == result, "\(run.stdout)")
            #expect(entries.first?["messages"] as? Int == 5)
            #expect(entries.first?["pinholes"] as? Int == 1)
            #expect(entries.first?["carried"] as? Int == carried, "\(run.stdout)")
            #expect((entries.first?["differences"] as? [String])?.isEmpty == (result == "matches"), "\(run.stdout)")
        }
    }

    /// The SIP captures of `../shared/corpus` (phones, proxies and PBXs nobody here wrote) play live as offline:
    /// compact forms, multiple values, early media ended by an error, registrations, TCP. One session differs, for
    /// the reason the crafted test above shows: in NormB-sip-proxy the proxy's SDP names the gateway host
    /// 10.33.6.101 for the media, and a relay admits only the signalling peer (10.33.6.102).
    @Test("The corpus SIP captures replay live as offline, but for media from a host other than the signalling peer",
          .enabled(if: ReplayCorpus.isPresent, ReplayCorpus.absent),
          arguments: ReplayCorpus.captures.filter { $0.hasPrefix("sip/") })
    func corpus(_ name: String) throws {
        let run = try FixtureReplayTests.algate(["replay", ReplayCorpus.path(name), "--live"])
        let differing = run.stdout.split(separator: "\n").filter { $0.contains("DIFFERS from the offline replay") }
        if name == "sip/NormB-sip-proxy.pcap" {
            #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
            #expect(differing.count == 1 && differing[0].hasPrefix("live session 2 (SIP)"), "\(run.stdout)")
            #expect(run.stdout.contains("0 of 5 RTP packet(s) reached the server side"), "\(run.stdout)")
        } else {
            #expect(run.status == 0, "\(name):\n\(run.stdout)\n\(run.stderr)")
            #expect(differing.isEmpty, "\(name):\n\(run.stdout)")
        }
        #expect(run.stdout.contains("live: "), "\(name):\n\(run.stdout)\n\(run.stderr)")
    }
}
