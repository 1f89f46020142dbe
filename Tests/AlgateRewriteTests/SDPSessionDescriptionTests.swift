import AlgateRewrite
import Testing

func sdpParse(_ text: String, limits: SDPLimits = .init()) throws(SIPParseError) -> SDPSessionDescription {
    try sipScan(text) { raw throws(SIPParseError) in try SDPSessionDescription.parse(raw, limits: limits) }
}

func sdpText(_ text: String, _ range: Range<Int>?) -> String? {
    range.map { String(decoding: Array(text.utf8)[$0], as: UTF8.self) }
}

@Suite struct SDPSessionDescriptionTests {
    @Test func readsWhatAGatewayRewrites() throws {
        let text = crlf("""
            v=0
            o=- 20518 0 IN IP4 10.0.0.5
            s=call
            c=IN IP4 10.0.0.5
            t=0 0
            a=sendrecv
            m=audio 49170 RTP/AVP 0 8 101
            a=rtcp:53020 IN IP4 10.0.0.6
            a=rtpmap:0 PCMU/8000
            m=video 51372/2 RTP/AVP 31
            c=IN IP4 10.0.0.7
            a=recvonly
            a=rtcp-mux
            m=image 0 udptl t38

            """)
        let sdp = try sdpParse(text)
        #expect(sdp.origin?.address == IPAddress("10.0.0.5"))
        #expect(sdpText(text, sdp.origin?.addressRange) == "10.0.0.5")
        #expect(sdpText(text, sdp.origin?.addressTypeRange) == "IP4")
        #expect(sdp.connection?.address == IPAddress("10.0.0.5"))
        #expect(sdp.connection?.isIPv6 == false)
        #expect(sdpText(text, sdp.connection?.lineRange) == "c=IN IP4 10.0.0.5\r\n")
        #expect(sdp.direction == .sendrecv)
        #expect(sdp.lineEnding == [13, 10])
        #expect(sdp.byteCount == text.utf8.count)
        #expect(sdp.media.count == 3)

        let audio = sdp.media[0]
        #expect(audio.kind == "audio")
        #expect(audio.port == 49170)
        #expect(sdpText(text, audio.portRange) == "49170")
        #expect(audio.portCount == nil)
        #expect(audio.transport == "RTP/AVP")
        #expect(audio.connection == nil)
        #expect(sdp.connectionAddress(of: audio) == IPAddress("10.0.0.5"))
        #expect(audio.rtcp?.port == 53020)
        #expect(sdpText(text, audio.rtcp?.portRange) == "53020")
        #expect(audio.rtcp?.address == IPAddress("10.0.0.6"))
        #expect(sdpText(text, audio.rtcp?.addressRange) == "10.0.0.6")
        #expect(!audio.rtcpMux)
        #expect(audio.direction == .sendrecv)
        #expect(sdpText(text, audio.lineRange) == "m=audio 49170 RTP/AVP 0 8 101\r\n")
        #expect(sdpText(text, audio.range)?.hasSuffix("a=rtpmap:0 PCMU/8000\r\n") == true)

        let video = sdp.media[1]
        #expect(video.port == 51372)
        #expect(video.portCount == 2)
        #expect(video.connection?.address == IPAddress("10.0.0.7"))
        #expect(sdp.connectionAddress(of: video) == IPAddress("10.0.0.7"))
        #expect(video.direction == .recvonly)
        #expect(video.rtcpMux)
        #expect(video.rtcp == nil)

        let image = sdp.media[2]
        #expect(image.isDisabled)
        #expect(image.transport == "udptl")
        #expect(sdpText(text, image.range) == "m=image 0 udptl t38\r\n")  // the trailing empty line is not in it
    }

    @Test func directionIsInheritedFromTheSession() throws {
        let sdp = try sdpParse(crlf("""
            v=0
            o=- 1 1 IN IP4 192.0.2.1
            s=-
            c=IN IP4 0.0.0.0
            t=0 0
            a=sendonly
            m=audio 4000 RTP/AVP 0
            m=audio 4002 RTP/AVP 0
            a=inactive
            """))
        #expect(sdp.direction == .sendonly)
        #expect(sdp.media.map(\.direction) == [.sendonly, .inactive])
        #expect(sdp.connection?.isUnspecified == true)
    }

    @Test func addressForms() throws {
        let text = "v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP4 224.2.1.1/127/3\nt=0 0\n"
            + "m=audio 4000 RTP/AVP 0\nc=IN IP6 FF15::101/3\nm=audio 4002 RTP/AVP 0\nc=IN IP4 media.example.com\n"
            + "m=audio 4004 RTP/AVP 0\nc=TN RFC2543 5551234\na=rtcp:4009 IN IP6 ::\nm=audio 4006 RTP/AVP 0"
        let sdp = try sdpParse(text)
        #expect(sdp.lineEnding == [10])
        #expect(sdp.origin?.address == IPAddress("2001:db8::1"))
        #expect(sdp.origin?.isIPv6 == true)
        #expect(sdp.connection?.address == IPAddress("224.2.1.1"))
        #expect(sdpText(text, sdp.connection?.addressRange) == "224.2.1.1")
        #expect(sdp.media[0].connection?.address == IPAddress("ff15::101"))
        #expect(sdp.media[0].connection?.isIPv6 == true)
        #expect(sdp.media[1].connection?.address == nil)
        #expect(sdpText(text, sdp.media[1].connection?.addressRange) == "media.example.com")
        #expect(sdp.media[2].connection?.address == nil)
        #expect(sdp.media[2].rtcp?.isUnspecified == true)
        #expect(sdpText(text, sdp.media[3].lineRange) == "m=audio 4006 RTP/AVP 0")  // no line end at all
    }

    @Test func aBodyCutInTheMiddleOfALineStillParses() throws {
        let sdp = try sdpParse("v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=x\r\nc=IN IP4 192.0.2.1\r\nz=2882844")
        #expect(sdp.media.isEmpty)
        #expect(sdp.connection?.address == IPAddress("192.0.2.1"))
    }

    @Test(arguments: [
        ("", 1), ("o=- 1 1 IN IP4 1.2.3.4\r\n", 1), ("v=1\r\n", 1), ("v=0\r\nhello\r\n", 2), ("v=0\r\n=x\r\n", 2),
        ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", 2), ("v=0\r\nc=IN IP4\r\n", 2), ("v=0\r\nc=IN IP4 /127\r\n", 2),
        ("v=0\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.5\r\n", 3), ("v=0\r\nm=audio x RTP/AVP 0\r\n", 2),
        ("v=0\r\nm=audio 70000 RTP/AVP 0\r\n", 2), ("v=0\r\nm=audio 4000\r\n", 2),
        ("v=0\r\nm=audio 4000/x RTP/AVP 0\r\n", 2), ("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp\r\n", 3),
        ("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:x\r\n", 3),
        ("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4\r\n", 3),
        ("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001\r\na=rtcp:4003\r\n", 4),
    ])
    func refusesWhatItMustRewrite(text: String, line: Int) {
        #expect(throws: SIPParseError.badSDP(line: line)) { try sdpParse(text) }
    }

    @Test func enforcesItsLimits() {
        var lines = SDPLimits()
        lines.maxLines = 3
        #expect(throws: SIPParseError.tooLarge("SDP lines")) { try sdpParse(sampleSDP, limits: lines) }
        var media = SDPLimits()
        media.maxMedia = 1
        #expect(throws: SIPParseError.tooLarge("SDP media")) {
            try sdpParse("v=0\nm=audio 1 RTP/AVP 0\nm=audio 2 RTP/AVP 0\n", limits: media)
        }
        var length = SDPLimits()
        length.maxLineBytes = 20
        #expect(throws: SIPParseError.tooLarge("SDP line")) { try sdpParse(sampleSDP, limits: length) }
        #expect(throws: Never.self) { try sdpParse(sampleSDP) }
    }
}
