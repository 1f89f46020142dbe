import AlgateRewrite
import Testing

@Suite struct FTPLineFramerTests {
    /// Frames `stream` delivered in pieces of `cut` bytes, the way the proxy and the replay call the framer.
    func frame(_ stream: [UInt8], cut: Int, limit: Int = 64) throws(FTPLineTooLongError) -> (lines: [[UInt8]], rest: [UInt8]) {
        var framer = FTPLineFramer(maxLineLength: limit)
        var buffer: [UInt8] = []
        var lines: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            buffer += stream[offset..<min(offset + cut, stream.count)]
            offset += cut
            while let length = try framer.nextLine(in: buffer) {
                lines.append(Array(buffer[..<length]))
                buffer.removeFirst(length)
            }
        }
        return (lines, buffer)
    }

    @Test func everyCutOfTheStreamGivesTheSameLinesTerminatorsIncluded() throws {
        let stream = Array("USER anonymous\r\nPASV\nRETR a\0b\r\n227 (1,2,3,4,5,6)\r\nPARTIAL".utf8)
        let whole = try frame(stream, cut: stream.count)
        #expect(whole.lines.map { String(decoding: $0, as: UTF8.self) }
                    == ["USER anonymous\r\n", "PASV\n", "RETR a\0b\r\n", "227 (1,2,3,4,5,6)\r\n"])
        #expect(whole.rest == Array("PARTIAL".utf8))
        for cut in 1..<stream.count {
            let pieces = try frame(stream, cut: cut)
            #expect(pieces.lines == whole.lines && pieces.rest == whole.rest, "cut \(cut)")
        }
    }

    @Test func aLineOverTheLimitIsRefusedWithOrWithoutItsLineFeed() {
        #expect(throws: FTPLineTooLongError(limit: 8)) { try frame(Array("123456789\r\n".utf8), cut: 100, limit: 8) }
        #expect(throws: FTPLineTooLongError(limit: 8)) { try frame(Array("123456789".utf8), cut: 1, limit: 8) }
        #expect(throws: Never.self) { try frame(Array("123456\r\n".utf8), cut: 1, limit: 8) }
    }
}
