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
}
