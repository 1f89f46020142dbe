@testable import AlgateProxy
import AlgateRewrite
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite struct SIPStreamDecoderTests {
    static func message(_ callID: String, body: String = "") -> String {
        "OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-\(callID)\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: \(callID)\r\n"
            + "CSeq: 1 OPTIONS\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    func item(_ text: String) -> SIPStreamItem { .message(ByteBuffer(string: text)) }

    @Test func framesByContentLengthWhateverTheChunking() throws {
        let one = Self.message("1", body: "hello body")
        let two = Self.message("2")
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [
                (one, [item(one)]),
                (one + two, [item(one), item(two)]),
                ("\r\n\r\n" + two, [item(two)]),          // RFC 5626 keep-alive before a message
            ],
            decoderFactory: { SIPStreamDecoder(limits: SIPLimits()) })
    }

    @Test func aMessageWithoutContentLengthIsRefusedAndTheStreamGoesOn() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SIPStreamDecoder(limits: SIPLimits())))
        let noLength = Self.message("x").replacingOccurrences(of: "Content-Length: 0\r\n", with: "")
        try channel.writeInbound(ByteBuffer(string: noLength + Self.message("y")))
        guard case .refused(_, .missingHeader("Content-Length"))? = try channel.readInbound(as: SIPStreamItem.self) else {
            Issue.record("expected a refusal first")
            return
        }
        #expect(try channel.readInbound(as: SIPStreamItem.self) == item(Self.message("y")))
        _ = try channel.finish()
    }

    /// NAT Slipstreaming: a stream that does not start with SIP is refused at its first line, and a REGISTER
    /// further on is never looked for.
    @Test func aStreamThatIsNotSIPIsRefusedAtItsFirstLine() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SIPStreamDecoder(limits: SIPLimits())))
        let http = "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 300\r\n\r\n"
        #expect(throws: SIPParseError.self) {
            try channel.writeInbound(ByteBuffer(string: http + Self.message("hidden").replacingOccurrences(of: "OPTIONS", with: "REGISTER")))
        }
        #expect(try channel.readInbound(as: SIPStreamItem.self) == nil)
        _ = try? channel.finish()
    }

    @Test func anOversizeHeaderSectionIsAnError() throws {
        var limits = SIPLimits()
        limits.maxHeaderBytes = 1024
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SIPStreamDecoder(limits: limits)))
        try channel.writeInbound(ByteBuffer(string: "OPTIONS sip:a@example.com SIP/2.0\r\n"))
        var failed = false
        for _ in 0..<100 where !failed {
            do {
                try channel.writeInbound(ByteBuffer(string: "X-Padding: " + String(repeating: "p", count: 50) + "\r\n"))
            } catch {
                failed = true
            }
        }
        #expect(failed)
        _ = try? channel.finish()
    }
    /// Found by the SIP framer fuzz harness (Fuzz/, issue 10). A header section without Content-Length ending in
    /// bare line feeds was refused up to the next CR LF CR LF further on (here in its body; it could be the next
    /// message, which was swallowed), and only when that had arrived: cut before it, the stream died instead.
    @Test func aRefusedHeaderSectionEndsAtItsOwnEmptyLineHoweverTheStreamIsCut() throws {
        let stream = "SIP/2.0 200 \n\nS\r\n\r\n"  // the harness's minimized input
        for cut in [stream.utf8.count, 9, 1] {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(SIPStreamDecoder(limits: SIPLimits())))
            let bytes = Array(stream.utf8)
            var failed = false
            for start in stride(from: 0, to: bytes.count, by: cut) where !failed {
                do {
                    try channel.writeInbound(ByteBuffer(bytes: bytes[start..<min(start + cut, bytes.count)]))
                } catch {
                    failed = true
                }
            }
            #expect(try channel.readInbound(as: SIPStreamItem.self)
                    == .refused(ByteBuffer(string: "SIP/2.0 200 \n\n"), .missingHeader("Content-Length")), "cut \(cut)")
            #expect(failed, "cut \(cut): what follows is no SIP start line")
            _ = try? channel.finish()
        }

        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SIPStreamDecoder(limits: SIPLimits())))
        let noLength = Self.message("x").replacingOccurrences(of: "Content-Length: 0\r\n", with: "")
            .replacingOccurrences(of: "\r\n", with: "\n")
        try channel.writeInbound(ByteBuffer(string: noLength + Self.message("y")))
        #expect(try channel.readInbound(as: SIPStreamItem.self) == .refused(ByteBuffer(string: noLength), .missingHeader("Content-Length")))
        #expect(try channel.readInbound(as: SIPStreamItem.self) == item(Self.message("y")))
        _ = try channel.finish()
    }

    /// Header lines ending in a bare LF and an empty line in CR LF (`\n\r\n`) end a header section too: the message
    /// comes out at once, not when more bytes arrive.
    @Test func aHeaderSectionEndingInLineFeedThenCRLFIsFramedAtOnce() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SIPStreamDecoder(limits: SIPLimits())))
        let message = Self.message("z").replacingOccurrences(of: "\r\n", with: "\n")
            .replacingOccurrences(of: "Content-Length: 0\n\n", with: "Content-Length: 0\n\r\n")
        // The start line alone first: the decoder has looked at it, and must see the end of the rest by itself.
        let startLine = message.prefix { $0 != "\n" } + "\n"
        try channel.writeInbound(ByteBuffer(string: String(startLine)))
        try channel.writeInbound(ByteBuffer(string: String(message.dropFirst(startLine.count))))
        #expect(try channel.readInbound(as: SIPStreamItem.self) == item(message))
        _ = try channel.finish()
    }
}
