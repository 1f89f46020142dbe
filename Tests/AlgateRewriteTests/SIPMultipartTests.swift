import AlgateRewrite
import NIOCore
import Testing

@Suite struct SIPMultipartTests {
    static let isup: String = "\u{01}\u{10}\u{00}--not-a-boundary\r\n\u{7F}"

    /// RFC 5621 style: SDP and an ISUP part in multipart/mixed.
    static func mixed(boundary: String = "unique-boundary-1", quoted: Bool = false) -> (lines: [String], body: String) {
        let body = crlf("""
            This is a preamble.
            --\(boundary)
            Content-Type: application/sdp

            \(sampleSDP)
            --\(boundary)
            Content-Type: application/ISUP; version=itu-t92+
            Content-Disposition: signal; handling=optional


            """) + isup + crlf("""

            --\(boundary)--
            epilogue
            """)
        let type = quoted ? "multipart/mixed; boundary=\"\(boundary)\"" : "multipart/mixed;boundary=\(boundary)"
        return (sipRequest(extra: ["Content-Type: \(type)"], body: body), body)
    }

    @Test func findsTheSDPPartOfMultipartMixed() throws {
        for quoted in [false, true] {
            let (lines, body) = Self.mixed(quoted: quoted)
            let message = try sipParse(lines, body: body)
            let range = try #require(try SIPMultipart.sdpBody(of: message))
            #expect(message.text(range) == sampleSDP)
            let parts = try message.bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
                try SIPMultipart.parse(UnsafeRawBufferPointer(rebasing: raw[message.body]),
                                       boundary: Array("unique-boundary-1".utf8))
            }
            #expect(parts.parts.count == 2)
            #expect(parts.parts[0].contentType?.isSDP == true)
            #expect(parts.parts[1].contentType?.type == "application")
            #expect(parts.parts[1].contentType?.subtype == "isup")
            #expect(parts.parts[1].contentType?.parameters.first?.value == "itu-t92+")
            let isup = parts.parts[1].bodyRange.offset(by: message.body.lowerBound)
            #expect(message.text(isup) == Self.isup)
        }
    }

    /// Only the SDP part changes; the other part, the preamble and the epilogue stay byte for byte.
    @Test func rewritingTheSDPPartLeavesTheRestAlone() throws {
        let (lines, body) = Self.mixed()
        let message = try sipParse(lines, body: body)
        let (range, sdp) = try #require(try message.sdp())
        var editor = SIPMessageEditor(message)
        let gateway = try #require(IPAddress("203.0.113.7"))
        SDPRewrite(media: [.init(address: gateway, port: 40000)]).apply(to: sdp, at: range, in: &editor)
        let result = try SIPMessage.parse(editor.build())
        #expect(result.contentLength == result.body.count)
        let (newRange, newSDP) = try #require(try result.sdp())
        #expect(newSDP.connection?.address == gateway)
        #expect(newSDP.media[0].port == 40000)
        let before = message.byteArray(message.body.lowerBound..<range.lowerBound)
        let after = message.byteArray(range.upperBound..<message.body.upperBound)
        #expect(result.byteArray(result.body.lowerBound..<newRange.lowerBound) == before)
        #expect(result.byteArray(newRange.upperBound..<result.body.upperBound) == after)
    }

    @Test func nestedAlternativeAndLineFeeds() throws {
        let inner = "--inner\nContent-Type: text/plain\n\nhello\n--inner\nContent-Type: application/sdp\n\n"
            + sampleSDP + "\n--inner--\n"
        let body = "--outer\nContent-Type: multipart/alternative; boundary=inner\n\n" + inner
            + "--outer\n\nno headers here\n--outer--"
        let message = try sipParse(sipRequest(extra: ["Content-Type: multipart/mixed; boundary=outer"], body: body),
                                   body: body)
        let range = try #require(try SIPMultipart.sdpBody(of: message))
        #expect(message.text(range) == sampleSDP)
        let parts = try message.bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
            try SIPMultipart.parse(UnsafeRawBufferPointer(rebasing: raw[message.body]), boundary: Array("outer".utf8))
        }
        #expect(parts.parts.count == 2)
        #expect(parts.parts[0].nested?.parts.count == 2)
        #expect(parts.parts[1].contentType == nil)
        #expect(parts.parts[1].headersRange.isEmpty)
        var shallow = SIPLimits()
        shallow.maxBodyNesting = 1
        #expect(throws: SIPParseError.tooLarge("multipart nesting")) { try SIPMultipart.sdpBody(of: message, limits: shallow) }
        var few = SIPLimits()
        few.maxBodyParts = 3
        #expect(throws: SIPParseError.tooLarge("multipart parts")) { try SIPMultipart.sdpBody(of: message, limits: few) }
    }

    @Test func plainBodies() throws {
        let sdp = try sipParse(sipRequest(extra: ["c: Application/SDP"], body: sampleSDP), body: sampleSDP)
        #expect(try SIPMultipart.sdpBody(of: sdp) == sdp.body)
        let text = try sipParse(sipRequest("MESSAGE", extra: ["Content-Type: text/plain"], body: "hi"), body: "hi")
        #expect(try SIPMultipart.sdpBody(of: text) == nil)
        let empty = try sipParse(sipRequest("OPTIONS", extra: ["Content-Type: application/sdp"]))
        #expect(try SIPMultipart.sdpBody(of: empty) == nil)
        let untyped = try sipParse(sipRequest("MESSAGE"), body: "")
        #expect(try SIPMultipart.sdpBodies(of: untyped).isEmpty)
    }

    @Test func refusesWhatItCannotReadForSure() throws {
        func message(_ type: String, _ body: String, extra: [String] = []) throws -> SIPMessage {
            try sipParse(sipRequest(extra: ["Content-Type: \(type)"] + extra, body: body), body: body)
        }
        #expect(throws: SIPParseError.badContentType) { try SIPMultipart.sdpBody(of: message("multipart/mixed", "x")) }
        #expect(throws: SIPParseError.badContentType) { try SIPMultipart.sdpBody(of: message("application", "x")) }
        #expect(throws: SIPParseError.badMultipart) {
            try SIPMultipart.sdpBody(of: message("multipart/mixed;boundary=b", "--b\r\nContent-Type: a/b\r\n\r\nno end"))
        }
        #expect(throws: SIPParseError.badMultipart) {
            try SIPMultipart.sdpBody(of: message("multipart/mixed;boundary=b", "no delimiter at all"))
        }
        #expect(throws: SIPParseError.unsupportedContentEncoding) {
            try SIPMultipart.sdpBody(of: message("application/sdp", sampleSDP, extra: ["Content-Encoding: gzip"]))
        }
        #expect(throws: SIPParseError.unsupportedContentEncoding) {
            let body = "--b\r\nContent-Type: application/sdp\r\nContent-Transfer-Encoding: base64\r\n\r\ndj0w\r\n--b--\r\n"
            return try SIPMultipart.sdpBody(of: message("multipart/mixed;boundary=b", body))
        }
        #expect(throws: SIPParseError.duplicateHeader("Content-Type")) {
            try SIPMultipart.sdpBody(of: message("application/sdp", sampleSDP, extra: ["c: application/sdp"]))
        }
        #expect(try SIPMultipart.sdpBody(of: message("application/sdp", sampleSDP, extra: ["e: identity"])) != nil)
    }
}

extension Range where Bound == Int {
    func offset(by delta: Int) -> Range<Int> { (lowerBound + delta)..<(upperBound + delta) }
}
