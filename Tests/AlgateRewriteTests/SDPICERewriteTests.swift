import AlgateRewrite
import NIOCore
import Testing

/// ICE (RFC 8839), rtcp-mux, disabled streams and the session c= in ``SDPRewrite``.
@Suite struct SDPICERewriteTests {
    static let offer = [
        "v=0",
        "o=- 46117 2 IN IP4 192.168.1.20",
        "s=-",
        "c=IN IP4 192.168.1.20",
        "t=0 0",
        "a=ice-options:trickle",
        "a=group:BUNDLE 0",
        "m=audio 18000 UDP/TLS/RTP/SAVPF 111",
        "a=candidate:1 1 udp 2122260223 192.168.1.20 18000 typ host generation 0",
        "a=candidate:1 2 udp 2122260222 192.168.1.20 18001 typ host generation 0",
        "a=candidate:2 1 udp 1686052607 198.51.100.20 31000 typ srflx raddr 192.168.1.20 rport 18000",
        "a=remote-candidates:1 198.51.100.99 40000",
        "a=ice-ufrag:F7gI",
        "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
        "a=fingerprint:sha-256 4A:AD:B9:B1",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        "a=setup:actpass",
        "a=mid:0",
        "a=rtpmap:111 opus/48000/2",
    ]

    static func rewrite(_ lines: [String], ice: SDPRewrite.ICEMode = .replace,
                        targets: [SDPRewrite.Target?] = [.init(address: IPAddress("203.0.113.7")!, port: 40000, rtcpPort: 40001)])
        throws -> [String] {
        let body = lines.joined(separator: "\r\n") + "\r\n"
        let bytes = Array(body.utf8)
        let out = try bytes.withUnsafeBytes { raw in
            let sdp = try SDPSessionDescription.parse(raw)
            return SDPRewrite(media: targets, sessionAddress: IPAddress("203.0.113.7"), ice: ice).apply(to: sdp, body: raw)
        }
        let text = String(decoding: out, as: UTF8.self)
        // What goes out parses again.
        _ = try Array(text.utf8).withUnsafeBytes { try SDPSessionDescription.parse($0) }
        return text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
    }

    @Test func replaceGivesOneHostCandidatePerComponentOnTheRelay() throws {
        let lines = try Self.rewrite(Self.offer)
        let candidates = lines.filter { $0.hasPrefix("a=candidate:") }
        #expect(candidates == ["a=candidate:1 1 UDP 2130706431 203.0.113.7 40000 typ host",
                               "a=candidate:1 2 UDP 2130706430 203.0.113.7 40001 typ host"])
        #expect(!lines.contains { $0.hasPrefix("a=remote-candidates") })
        // Nothing of the phone's addresses is left, and what the relay is transparent to stays.
        #expect(!lines.joined().contains("192.168.1.20"))
        #expect(!lines.joined().contains("198.51.100.20"))
        for kept in ["a=ice-ufrag:F7gI", "a=ice-pwd:x9cml/YzichV2+XlhiMu8g", "a=fingerprint:sha-256 4A:AD:B9:B1",
                     "a=setup:actpass", "a=ice-options:trickle", "a=group:BUNDLE 0"] + [Self.offer[15]] {
            #expect(lines.contains(kept), "\(kept) lost")
        }
        // The candidates stand where the first one stood, before ufrag.
        let first = try #require(lines.firstIndex { $0.hasPrefix("a=candidate:") })
        #expect(lines[first - 1].hasPrefix("m=audio 40000 "))
    }

    @Test func rtcpMuxAnnouncesNoSeparateRTCPPort() throws {
        let muxed = Self.offer + ["a=rtcp-mux", "a=rtcp:18001 IN IP4 192.168.1.20"]
        let lines = try Self.rewrite(muxed)
        #expect(lines.filter { $0.hasPrefix("a=candidate:") } == ["a=candidate:1 1 UDP 2130706431 203.0.113.7 40000 typ host"])
        #expect(lines.contains("a=rtcp:40000 IN IP4 203.0.113.7"))
        #expect(lines.contains("a=rtcp-mux"))
    }

    @Test func stripRemovesEveryICELine() throws {
        let lines = try Self.rewrite(Self.offer, ice: .strip)
        #expect(!lines.contains { $0.hasPrefix("a=candidate") || $0.hasPrefix("a=remote-candidates") || $0.hasPrefix("a=ice-") })
        #expect(lines.contains("a=fingerprint:sha-256 4A:AD:B9:B1"))
        #expect(lines.contains("c=IN IP4 203.0.113.7"))
        #expect(lines.contains("m=audio 40000 UDP/TLS/RTP/SAVPF 111"))
    }

    @Test func passLeavesCandidatesAsTheyCame() throws {
        let lines = try Self.rewrite(Self.offer, ice: .pass)
        #expect(lines.filter { $0.hasPrefix("a=candidate:") } == Array(Self.offer[8...10]))
        #expect(lines.contains("a=remote-candidates:1 198.51.100.99 40000"))
        #expect(lines.contains("c=IN IP4 203.0.113.7"))
    }

    @Test func aDisabledStreamNamesNoPrivateAddress() throws {
        let sdp = ["v=0", "o=- 1 1 IN IP4 192.168.1.20", "s=-", "t=0 0",
                   "m=audio 18000 RTP/AVP 0", "c=IN IP4 192.168.1.20",
                   "m=video 0 RTP/AVP 96", "c=IN IP4 192.168.1.21", "a=rtcp:18003 IN IP4 192.168.1.21",
                   "a=candidate:1 1 udp 2122260223 192.168.1.21 18002 typ host"]
        let lines = try Self.rewrite(sdp, targets: [.init(address: IPAddress("203.0.113.7")!, port: 40000, rtcpPort: 40001), nil])
        #expect(!lines.joined(separator: "\n").contains("192.168.1."), "\(lines)")
        #expect(lines.contains("m=video 0 RTP/AVP 96"))
        #expect(lines.contains("a=rtcp:18003 IN IP4 203.0.113.7"))
        #expect(!lines.contains { $0.hasPrefix("a=candidate") })
    }

    @Test func theSessionConnectionIsRewrittenWhenEveryMediaHasItsOwn() throws {
        let sdp = ["v=0", "o=- 1 1 IN IP4 192.168.1.20", "s=-", "c=IN IP4 192.168.1.20", "t=0 0",
                   "m=audio 18000 RTP/AVP 0", "c=IN IP4 192.168.1.22",
                   "m=video 18002 RTP/AVP 96", "c=IN IP4 192.168.1.23"]
        let address = IPAddress("203.0.113.7")!
        let lines = try Self.rewrite(sdp, targets: [.init(address: address, port: 40000, rtcpPort: 40001),
                                                    .init(address: address, port: 40004, rtcpPort: 40005)])
        #expect(!lines.joined(separator: "\n").contains("192.168.1."), "\(lines)")
        #expect(lines.filter { $0 == "c=IN IP4 203.0.113.7" }.count == 3)
    }

    @Test func theAuditFindsAnAnnouncedAddressAnywhere() throws {
        let sdp = Self.offer + ["a=x-nat-private:192.168.1.20"]
        let body = Array((sdp.joined(separator: "\r\n") + "\r\n").utf8)
        try body.withUnsafeBytes { raw in
            let parsed = try SDPSessionDescription.parse(raw)
            let forbidden = SDPAddressAudit.announcedAddresses(parsed, body: raw)
            #expect(forbidden.contains(IPAddress("192.168.1.20")!))
            #expect(forbidden.contains(IPAddress("198.51.100.20")!))   // the srflx candidate
            let rewritten = SDPRewrite(media: [.init(address: IPAddress("203.0.113.7")!, port: 40000, rtcpPort: 40001)],
                                       sessionAddress: IPAddress("203.0.113.7")).apply(to: parsed, body: raw)
            let finding = rewritten.withUnsafeBytes { SDPAddressAudit.firstForbidden(in: $0, forbidden: forbidden) }
            #expect(finding?.address == IPAddress("192.168.1.20"))
            #expect(finding?.line == sdp.count - 2)   // two host candidates replaced three and a remote-candidates
        }
    }

    @Test("the audit reads addresses wherever they are written", arguments: [
        ("a=x-server:10.0.0.9:5060", "10.0.0.9"),
        ("a=x-server:sip:x10.0.0.9;lr", "10.0.0.9"),
        ("a=x-list:1.2.10.0.0.9", "10.0.0.9"),
        ("a=x-server:[fd00::9]:5060", "fd00::9"),
        ("i=media server fd00::9 here", "fd00::9"),
    ])
    func auditFindsAddressesInText(_ line: String, _ address: String) throws {
        let body = Array(("v=0\r\n" + line + "\r\n").utf8)
        let networks = [CIDR("10.0.0.0/24")!, CIDR("fd00::/8")!]
        let finding = body.withUnsafeBytes { SDPAddressAudit.firstForbidden(in: $0, forbidden: [], networks: networks) }
        #expect(finding?.line == 2 && finding?.address == IPAddress(address), "\(line): \(String(describing: finding))")
    }

    @Test("the audit leaves what is no address of those networks", arguments: [
        "a=x-server:110.0.0.9", "a=x-server:10.0.0.999", "a=rtpmap:0 PCMU/8000", "a=fingerprint:sha-256 FD:00:AB",
        "c=IN IP4 0.0.0.0", "a=x-version:10.0.0",
    ])
    func auditLeavesOtherText(_ line: String) throws {
        let body = Array(("v=0\r\n" + line + "\r\n").utf8)
        let networks = [CIDR("10.0.0.0/24")!, CIDR("fd00::/8")!]
        let finding = body.withUnsafeBytes {
            SDPAddressAudit.firstForbidden(in: $0, forbidden: [], networks: networks)
        }
        #expect(finding == nil, "\(line): \(String(describing: finding))")
    }
}
