@testable import AlgateProxy
import AlgateRewrite
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite struct FTPLineDecoderTests {
    func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func keepsEveryByteOfEveryLineWhateverTheChunking() throws {
        try ByteToMessageDecoderVerifier.verifyDecoder(
            stringInputOutputPairs: [
                ("USER anonymous\r\n", [buffer("USER anonymous\r\n")]),
                ("PASV\r\nLIST\r\n", [buffer("PASV\r\n"), buffer("LIST\r\n")]),
                ("bare\nlf\n", [buffer("bare\n"), buffer("lf\n")]),
                ("NUL\u{0}inside\r\n", [buffer("NUL\u{0}inside\r\n")]),
                ("227-multi\r\n227 end\r\n", [buffer("227-multi\r\n"), buffer("227 end\r\n")]),
                ("\r\n", [buffer("\r\n")]),
            ],
            decoderFactory: { FTPLineDecoder(maxLineLength: 64) })
    }

    @Test func aLineOverTheLimitIsAnError() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FTPLineDecoder(maxLineLength: 16)))
        #expect(throws: FTPLineTooLongError(limit: 16)) {
            try channel.writeInbound(ByteBuffer(string: String(repeating: "A", count: 17)))
        }
        _ = try? channel.finish()
    }

    @Test func aLineAtTheLimitIsFine() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FTPLineDecoder(maxLineLength: 16)))
        try channel.writeInbound(ByteBuffer(string: String(repeating: "A", count: 14) + "\r\n"))
        #expect(try channel.readInbound(as: ByteBuffer.self)?.readableBytes == 16)
        #expect(try channel.finish().isClean)
    }

    @Test func aLongLineArrivingInSmallPiecesIsStillCaught() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FTPLineDecoder(maxLineLength: 4096)))
        var caught = false
        for _ in 0..<200 where !caught {
            do {
                try channel.writeInbound(ByteBuffer(string: String(repeating: "9", count: 100)))
            } catch is FTPLineTooLongError {
                caught = true
            }
        }
        #expect(caught)
        _ = try? channel.finish()
    }

    @Test func anUnterminatedLastLineIsPassedOnAtEOF() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FTPLineDecoder(maxLineLength: 64)))
        try channel.writeInbound(ByteBuffer(string: "QUIT\r\n221 bye"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "QUIT\r\n"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        _ = try channel.finish(acceptAlreadyClosed: false)
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "221 bye"))
    }
}
