import AlgateRewrite
import NIOCore
import Testing

@Suite struct SIPStreamFramerTests {
    func frames(_ bytes: [UInt8], limits: SIPLimits = .init()) throws -> (frames: [SIPStreamFramer.Frame], rest: Int) {
        let framer = SIPStreamFramer(limits: limits)
        var offset = 0
        var result: [SIPStreamFramer.Frame] = []
        while offset < bytes.count {
            let next = try bytes[offset...].withUnsafeBytes { raw throws(SIPParseError) in try framer.nextFrame(raw) }
            guard let next else { break }
            result.append(next)
            switch next {
            case .keepAlive(let length), .message(let length): offset += length
            }
        }
        return (result, bytes.count - offset)
    }

    let first = sipBytes(sipRequest("INVITE", extra: ["Content-Type: application/sdp"], body: sampleSDP),
                         body: sampleSDP).bytesArray
    let second = sipBytes(sipRequest("BYE")).bytesArray

    @Test func severalMessagesInOneSegment() throws {
        let stream = Array("\r\n\r\n".utf8) + first + second + Array("\r\n".utf8)
        let (found, rest) = try frames(stream)
        #expect(found == [.keepAlive(length: 4), .message(length: first.count), .message(length: second.count),
                          .keepAlive(length: 2)])
        #expect(rest == 0)
        var offset = 4
        for case .message(let length) in found {
            let message = try SIPMessage.parse(ByteBuffer(bytes: stream[offset..<(offset + length)]))
            #expect(message.bytes.readableBytes == length)
            offset += length
        }
    }

    /// One message arriving a byte at a time: "need more" until the last byte, then exactly the message.
    @Test func oneMessageAcrossManySegments() throws {
        let framer = SIPStreamFramer()
        for end in 1..<first.count {
            let answer = try first[0..<end].withUnsafeBytes { raw throws(SIPParseError) in try framer.nextFrame(raw) }
            #expect(answer == nil, "at \(end) of \(first.count)")
        }
        let whole = try first.withUnsafeBytes { raw throws(SIPParseError) in try framer.nextFrame(raw) }
        #expect(whole == .message(length: first.count))
        let loneCR = try [ASCII.cr].withUnsafeBytes { raw throws(SIPParseError) in try framer.nextFrame(raw) }
        #expect(loneCR == nil)
        let empty = try [UInt8]().withUnsafeBytes { raw throws(SIPParseError) in try framer.nextFrame(raw) }
        #expect(empty == nil)
    }

    @Test func refusesWhatCannotBeFramed() {
        let noLength = sipBytes(sipRequest("OPTIONS", contentLength: .none)).bytesArray
        #expect(throws: SIPParseError.missingHeader("Content-Length")) { try frames(noLength) }
        let negative = sipBytes(sipRequest("OPTIONS", contentLength: -5)).bytesArray
        #expect(throws: SIPParseError.badContentLength) { try frames(negative) }
        let twice = sipBytes(sipRequest("OPTIONS") + ["l: 0"]).bytesArray
        #expect(throws: SIPParseError.duplicateHeader("Content-Length")) { try frames(twice) }
        let huge = sipBytes(sipRequest("OPTIONS", contentLength: 70_000)).bytesArray
        #expect(throws: SIPParseError.tooLarge("message")) { try frames(huge) }
        let enormous = sipBytes(sipRequest("OPTIONS", contentLength: .none) + ["Content-Length: 9" + String(repeating: "9", count: 40)]).bytesArray
        #expect(throws: SIPParseError.tooLarge("message")) { try frames(enormous) }
        var limits = SIPLimits()
        limits.maxHeaderBytes = 64
        #expect(throws: SIPParseError.tooLarge("header section")) { try frames(Array(repeating: UInt8(ascii: "a"), count: 65), limits: limits) }
        #expect(throws: SIPParseError.tooLarge("header line")) { try frames(Array(repeating: UInt8(ascii: "a"), count: 9000)) }
        #expect(throws: SIPParseError.badStartLine) { try frames(Array("\rX".utf8)) }
    }

    /// The first line decides: what does not start a SIP message is refused at once, and nothing further on is
    /// ever looked at (a REGISTER hidden after HTTP, NAT Slipstreaming).
    @Test func junkIsRefusedAsSoonAsItsFirstLineIsThere() {
        let http = Array("POST /upload HTTP/1.1\r\nHost: x\r\n".utf8) + sipBytes(sipRequest("REGISTER")).bytesArray
        #expect(throws: SIPParseError.badStartLine) { try frames(http) }
        let binary: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05]
        #expect(throws: Never.self) { try frames(binary) }  // no line yet: wait (the header limit bounds this)
        #expect(throws: SIPParseError.badStartLine) { try frames(binary + [0x0A]) }
        #expect(throws: SIPParseError.badVersion) { try frames(Array("OPTIONS sip:a@b SIP/3.0\r\n".utf8)) }
    }
    /// Where a refused message's header section ends: at its empty line, CR LF or bare LF, as the scan reads it.
    @Test func theHeaderSectionEndsAtItsEmptyLineWhateverItsLineEnds() {
        let framer = SIPStreamFramer()
        func length(_ text: String) -> Int? { Array(text.utf8).withUnsafeBytes { framer.headerSectionLength($0) } }
        #expect(length("SIP/2.0 200 \n\nS\r\n\r\n") == 14)  // the harness's input: not at the later CR LF CR LF
        #expect(length("OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\nbody") == 35)
        #expect(length("OPTIONS sip:a@b SIP/2.0\nVia: x\n\r\nbody") == 33)
        #expect(length("OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n") == nil)
    }
}
