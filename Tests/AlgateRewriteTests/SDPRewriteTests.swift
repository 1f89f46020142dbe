import AlgateRewrite
import NIOCore
import Testing

/// Rewrites `text` and returns the new body as text.
func sdpRewrite(_ text: String, _ rewrite: SDPRewrite) throws -> String {
    let sdp = try sdpParse(text)
    let bytes = Array(text.utf8)
    return String(decoding: bytes.withUnsafeBytes { rewrite.apply(to: sdp, body: $0) }, as: UTF8.self)
}

@Suite struct SDPRewriteTests {
    let gateway = IPAddress("203.0.113.7")!
    let gateway6 = IPAddress("2001:db8::7")!

    @Test func movesEveryAddressAndPortAndNothingElse() throws {
        let text = crlf("""
            v=0
            o=alice 2890844526 2890844526 IN IP4 10.0.0.5
            s=-
            c=IN IP4 10.0.0.5
            t=0 0
            m=audio 49170 RTP/AVP 0
            a=rtpmap:0 PCMU/8000
            m=video 51372 RTP/AVP 31
            c=IN IP4 10.0.0.6
            a=rtpmap:31 H261/90000

            """)
        let result = try sdpRewrite(text, SDPRewrite(media: [
            .init(address: gateway, port: 40000), .init(address: gateway, port: 40002),
        ]))
        #expect(result == crlf("""
            v=0
            o=alice 2890844526 2890844526 IN IP4 203.0.113.7
            s=-
            c=IN IP4 203.0.113.7
            t=0 0
            m=audio 40000 RTP/AVP 0
            a=rtpmap:0 PCMU/8000
            m=video 40002 RTP/AVP 31
            c=IN IP4 203.0.113.7
            a=rtpmap:31 H261/90000

            """))
    }

    /// RFC 2543 hold (c=0.0.0.0) and RFC 3264 hold (a=sendonly, a=inactive) are kept; disabled streams too.
    @Test func holdAndDisabledStreamsAreLeftAsTheyAre() throws {
        let text = crlf("""
            v=0
            o=- 1 2 IN IP4 10.0.0.5
            s=-
            c=IN IP4 0.0.0.0
            t=0 0
            m=audio 49170 RTP/AVP 0
            a=sendonly
            m=video 0 RTP/AVP 31
            m=audio 49180 RTP/AVP 0
            c=IN IP4 10.0.0.9
            a=inactive

            """)
        let result = try sdpRewrite(text, SDPRewrite(media: [
            .init(address: gateway, port: 40000), .init(address: gateway, port: 40002),
            .init(address: gateway, port: 40004),
        ]))
        #expect(result == crlf("""
            v=0
            o=- 1 2 IN IP4 203.0.113.7
            s=-
            c=IN IP4 0.0.0.0
            t=0 0
            m=audio 40000 RTP/AVP 0
            a=sendonly
            m=video 0 RTP/AVP 31
            m=audio 40004 RTP/AVP 0
            c=IN IP4 203.0.113.7
            a=inactive

            """))
    }

    @Test func aMediaLeftAloneKeepsItsOldAddress() throws {
        let text = "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\n"
            + "m=audio 4000 RTP/AVP 0\nm=audio 5000 RTP/AVP 0\ni=kept\na=x\n"
        let result = try sdpRewrite(text, SDPRewrite(media: [.init(address: gateway, port: 40000), nil]))
        #expect(result == "v=0\no=- 1 1 IN IP4 203.0.113.7\ns=-\nc=IN IP4 203.0.113.7\nt=0 0\n"
                    + "m=audio 40000 RTP/AVP 0\nm=audio 5000 RTP/AVP 0\ni=kept\nc=IN IP4 10.0.0.5\na=x\n")
        let reparsed = try sdpParse(result)
        #expect(reparsed.connectionAddress(of: reparsed.media[1]) == IPAddress("10.0.0.5"))
    }

    @Test func differentTargetsGetTheirOwnConnectionLines() throws {
        let text = "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
            + "m=video 4002 RTP/AVP 31\n"
        let other = try #require(IPAddress("198.51.100.4"))
        let result = try sdpRewrite(text, SDPRewrite(media: [
            .init(address: gateway, port: 40000), .init(address: other, port: 40002),
        ]))
        let reparsed = try sdpParse(result)
        #expect(reparsed.media.map { reparsed.connectionAddress(of: $0) } == [gateway, other])
        #expect(reparsed.media.map(\.port) == [40000, 40002])
        #expect(result.contains("m=video 40002 RTP/AVP 31\nc=IN IP4 198.51.100.4\n"))
    }

    @Test func addressFamilyChangesWithTheAddress() throws {
        let text = crlf("""
            v=0
            o=- 1 1 IN IP4 10.0.0.5
            s=-
            c=IN IP4 10.0.0.5
            t=0 0
            m=audio 4000 RTP/AVP 0
            a=rtcp:4001 IN IP4 10.0.0.5

            """)
        let result = try sdpRewrite(text, SDPRewrite(media: [.init(address: gateway6, port: 40000, rtcpPort: 40001)]))
        #expect(result == crlf("""
            v=0
            o=- 1 1 IN IP6 2001:db8::7
            s=-
            c=IN IP6 2001:db8::7
            t=0 0
            m=audio 40000 RTP/AVP 0
            a=rtcp:40001 IN IP6 2001:db8::7

            """))
        let back = try sdpRewrite(result, SDPRewrite(media: [.init(address: gateway, port: 4000, rtcpPort: 4001)]))
        #expect(back == text.replacingOccurrences(of: "10.0.0.5", with: "203.0.113.7"))
    }

    /// RFC 3605: a=rtcp follows the RTCP port; it is added only when RTCP is not on port + 1.
    @Test func rtcpAttribute() throws {
        let base = "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
        let nextPort = try sdpRewrite(base, SDPRewrite(media: [.init(address: gateway, port: 40000, rtcpPort: 40001)]))
        #expect(!nextPort.contains("a=rtcp"))
        let elsewhere = try sdpRewrite(base, SDPRewrite(media: [.init(address: gateway, port: 40000, rtcpPort: 41000)]))
        #expect(elsewhere.hasSuffix("m=audio 40000 RTP/AVP 0\na=rtcp:41000\n"))
        #expect(try sdpParse(elsewhere).media[0].rtcp?.port == 41000)
        let muxed = try sdpRewrite(base + "a=rtcp-mux\n",
                                   SDPRewrite(media: [.init(address: gateway, port: 40000, rtcpPort: 41000)]))
        #expect(!muxed.contains("a=rtcp:"))
        let existing = base + "a=rtcp:4001\n"
        let updated = try sdpRewrite(existing, SDPRewrite(media: [.init(address: gateway, port: 40000, rtcpPort: 41000)]))
        #expect(updated.hasSuffix("a=rtcp:41000\n"))
        let untouched = try sdpRewrite(existing, SDPRewrite(media: [.init(address: gateway, port: 40000)]))
        #expect(untouched.hasSuffix("a=rtcp:4001\n"))
        let held = try sdpRewrite(base + "a=rtcp:4001 IN IP4 0.0.0.0\n",
                                  SDPRewrite(media: [.init(address: gateway, port: 40000, rtcpPort: 40001)]))
        #expect(held.hasSuffix("a=rtcp:40001 IN IP4 0.0.0.0\n"))
    }

    /// A datagram cut at its Content-Length may end inside a line: an added line gets a line end before it.
    @Test func insertionAfterAnUnterminatedLastLine() throws {
        let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0"
        let result = try sdpRewrite(text, SDPRewrite(media: [.init(address: gateway, port: 40000, rtcpPort: 40010)]))
        #expect(result.hasSuffix("m=audio 40000 RTP/AVP 0\r\na=rtcp:40010\r\n"))
        #expect(try sdpParse(result).media[0].rtcp?.port == 40010)
    }

    @Test func explicitSessionAddressAndMissingTargets() throws {
        let text = "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 10.0.0.5\n"
        let nothing = try sdpRewrite(text, SDPRewrite(media: []))
        #expect(nothing == text)
        let origin = try sdpRewrite(text, SDPRewrite(media: [], sessionAddress: gateway))
        #expect(origin == text.replacingOccurrences(of: "o=- 1 1 IN IP4 10.0.0.5", with: "o=- 1 1 IN IP4 203.0.113.7"))
        // No session c= and no media c=: the media gets one.
        let bare = "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
        let added = try sdpRewrite(bare, SDPRewrite(media: [.init(address: gateway, port: 40000)]))
        #expect(added.hasSuffix("m=audio 40000 RTP/AVP 0\nc=IN IP4 203.0.113.7\n"))
    }

    /// A host name in c= is an Internet address all the same and is replaced; another network type is not.
    @Test func hostNamesAreReplacedOtherNetworksAreNot() throws {
        let text = "v=0\no=- 1 1 IN IP4 host.inside.example\ns=-\nc=IN IP4 media.inside.example\nt=0 0\n"
            + "m=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 0\nc=TN RFC2543 5551234\n"
        let result = try sdpRewrite(text, SDPRewrite(media: [.init(address: gateway, port: 40000),
                                                             .init(address: gateway, port: 40002)]))
        #expect(result == "v=0\no=- 1 1 IN IP4 203.0.113.7\ns=-\nc=IN IP4 203.0.113.7\nt=0 0\n"
                    + "m=audio 40000 RTP/AVP 0\nm=audio 40002 RTP/AVP 0\nc=TN RFC2543 5551234\n")
        let sdp = try sdpParse(text)
        #expect(sdp.connection?.isInternet == true)
        #expect(sdp.connection?.address == nil)
        #expect(sdp.media[1].connection?.isInternet == false)
    }

    @Test func throughAMessageEditorContentLengthFollows() throws {
        let message = try sipParse(sipRequest(extra: ["Content-Type: application/sdp"], body: sampleSDP),
                                   body: sampleSDP)
        let (range, sdp) = try #require(try message.sdp())
        var editor = SIPMessageEditor(message)
        let rewrite = SDPRewrite(media: [.init(address: gateway, port: 40000, rtcpPort: 45000)])
        let accepted = rewrite.apply(to: sdp, at: range, in: &editor)
        #expect(accepted)
        let result = try SIPMessage.parse(editor.build())
        #expect(result.contentLength == result.body.count)
        let (_, rewritten) = try #require(try result.sdp())
        #expect(rewritten.media[0].port == 40000)
        #expect(rewritten.media[0].rtcp?.port == 45000)
        #expect(rewritten.connection?.address == gateway)
        let buffer = ByteBuffer(string: sampleSDP)
        let direct = rewrite.apply(to: sdp, body: buffer)
        #expect(result.text(result.body) == direct.text)
    }
}
