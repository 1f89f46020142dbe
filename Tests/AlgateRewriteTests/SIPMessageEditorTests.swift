import AlgateRewrite
import NIOCore
import Testing

@Suite struct SIPMessageEditorTests {
    static func makeInvite() throws -> SIPMessage {
        try sipParse(sipRequest(extra: ["Contact: <sip:alice@10.0.0.5:5060>", "c: application/sdp"], body: sampleSDP),
                     body: sampleSDP)
    }

    @Test func unmodifiedIsIdentical() throws {
        let invite = try Self.makeInvite()
        let editor = SIPMessageEditor(invite)
        #expect(!editor.hasChanges)
        #expect(editor.build() == invite.bytes)
    }

    @Test func replaceInsertRemoveInAnyOrder() throws {
        let invite = try Self.makeInvite()
        var editor = SIPMessageEditor(invite)
        let contact = invite.contacts[0].uri
        let via = try #require(invite.field(.via))
        let maxForwards = try #require(invite.field(.maxForwards))
        // Given out of order on purpose.
        let accepted1 = editor.replace(contact.hostPortRange, with: Array("203.0.113.7:40000".utf8))
        #expect(accepted1)
        let accepted2 = editor.removeRange(maxForwards.lineRange)
        #expect(accepted2)
        let accepted3 = editor.insertHeaderLine(Array("Via: SIP/2.0/UDP 203.0.113.7;branch=z9hG4bKgw\r\n".utf8),
                                        before: via.lineRange.lowerBound)
        #expect(accepted3)
        let accepted4 = editor.insert(Array(";received=192.0.2.9".utf8), at: invite.topVia.parametersEnd)
        #expect(accepted4)
        let accepted5 = editor.insertHeaderLine(Array("Record-Route: <sip:203.0.113.7;lr>\r\n".utf8), before: invite.headerEnd)
        #expect(accepted5)
        let built = editor.build()
        let result = try SIPMessage.parse(built)
        #expect(result.vias.count == 2)
        #expect(result.vias[0].host == .ipv4(try #require(IPAddress("203.0.113.7"))))
        #expect(result.vias[1].received == IPAddress("192.0.2.9"))
        #expect(result.maxForwards == nil)
        #expect(result.contacts[0].uri.port == 40000)
        #expect(result.recordRoutes.count == 1)
        #expect(result.text(result.body) == sampleSDP)
        #expect(result.contentLength == sampleSDP.utf8.count)
        #expect(built.bytesArray == referenceSplice(invite.bytes.bytesArray, [
            (contact.hostPortRange, Array("203.0.113.7:40000".utf8)),
            (maxForwards.lineRange, []),
            (via.lineRange.lowerBound..<via.lineRange.lowerBound,
             Array("Via: SIP/2.0/UDP 203.0.113.7;branch=z9hG4bKgw\r\n".utf8)),
            (invite.topVia.parametersEnd..<invite.topVia.parametersEnd, Array(";received=192.0.2.9".utf8)),
            (invite.headerEnd..<invite.headerEnd, Array("Record-Route: <sip:203.0.113.7;lr>\r\n".utf8)),
        ]))
    }

    @Test func bodyEditsUpdateContentLength() throws {
        let invite = try Self.makeInvite()
        var editor = SIPMessageEditor(invite)
        let port = try #require(invite.allText.range(of: "49170")).lowerBound.utf16Offset(in: invite.allText)
        let accepted6 = editor.replace(port..<(port + 5), with: Array("4".utf8))
        #expect(accepted6)
        let result = try SIPMessage.parse(editor.build())
        #expect(result.contentLength == sampleSDP.utf8.count - 4)
        #expect(result.text(result.body) == sampleSDP.replacingOccurrences(of: "49170", with: "4"))
        let field = try #require(result.field(.contentLength))
        #expect(result.text(field.lineRange) == "Content-Length: \(sampleSDP.utf8.count - 4)\r\n")
    }

    /// The compact name stays compact: only the digits change.
    @Test func compactContentLengthKeepsItsForm() throws {
        let message = try sipParse(sipRequest("MESSAGE", contentLength: .none) + ["l:   5"], body: "hello")
        var editor = SIPMessageEditor(message)
        let accepted7 = editor.setBody(ByteBuffer(string: "hello, world"))
        #expect(accepted7)
        let result = try SIPMessage.parse(editor.build())
        #expect(result.text(try #require(result.field(.contentLength)).lineRange) == "l:   12\r\n")
        #expect(result.text(result.body) == "hello, world")
    }

    @Test func contentLengthIsAddedWhenMissing() throws {
        let message = try sipParse(sipRequest("MESSAGE", contentLength: .none), body: "hi")
        var same = SIPMessageEditor(message)
        #expect(same.build() == message.bytes)
        same.ensureContentLength()
        #expect(same.hasChanges)
        let ensured = try SIPMessage.parse(same.build())
        #expect(ensured.contentLength == 2)
        #expect(ensured.text(ensured.body) == "hi")
        #expect(ensured.text(try #require(ensured.headers.last).lineRange) == "Content-Length: 2\r\n")

        var replaced = SIPMessageEditor(message)
        replaced.setBody(ByteBuffer(string: "bye now"))
        let result = try SIPMessage.parse(replaced.build())
        #expect(result.contentLength == 7)

        let lfOnly = try SIPMessage.parse(ByteBuffer(string: sipRequest("MESSAGE", contentLength: .none)
            .joined(separator: "\n") + "\n\nhi"))
        var lfEditor = SIPMessageEditor(lfOnly)
        lfEditor.setBody(ByteBuffer(string: "hey"))
        let lfResult = lfEditor.build()
        // The header section goes out with CRLF line ends; the body stays as it is.
        #expect(lfResult.text.hasSuffix("Content-Length: 3\r\n\r\nhey"))
        #expect(!lfResult.text.dropLast(3).replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(try SIPMessage.parse(lfResult).contentLength == 3)
    }

    @Test func sameLengthBodyLeavesContentLengthAlone() throws {
        let message = try sipParse(sipRequest("MESSAGE", contentLength: .none) + ["Content-Length: 0005"], body: "hello")
        var editor = SIPMessageEditor(message)
        editor.setBody(ByteBuffer(string: "HELLO"))
        let result = editor.build()
        #expect(result.text.contains("Content-Length: 0005\r\n\r\nHELLO"))
    }

    @Test func overlappingAndForbiddenEditsAreRefusedAndListed() throws {
        let invite = try Self.makeInvite()
        var editor = SIPMessageEditor(invite)
        let via = try #require(invite.field(.via))
        let accepted8 = editor.replace(invite.topVia.sentByRange, with: Array("x".utf8))
        #expect(accepted8)
        let accepted9 = editor.removeRange(via.lineRange)                    // overlaps the sent-by edit
        #expect(!accepted9)
        let accepted10 = editor.insert([0x41], at: invite.topVia.sentByRange.lowerBound + 1)  // inside it
        #expect(!accepted10)
        let accepted11 = editor.insert([0x41], at: invite.topVia.sentByRange.lowerBound)       // at its boundary: fine
        #expect(accepted11)
        let accepted12 = editor.replace(0..<(invite.bytes.readableBytes + 1), with: [])       // out of bounds
        #expect(!accepted12)
        let length = try #require(invite.field(.contentLength))
        let accepted13 = editor.replace(length.valueRange, with: Array("1".utf8))             // the editor's business
        #expect(!accepted13)
        let accepted14 = editor.removeRange(length.lineRange)
        #expect(!accepted14)
        #expect(editor.conflicts.count == 5)
        let accepted15 = editor.replace(invite.body.lowerBound..<(invite.body.lowerBound + 3), with: Array("v=0".utf8))
        #expect(accepted15)
        let accepted16 = editor.setBody(ByteBuffer(string: "x"))                             // conflicts with the body edit
        #expect(!accepted16)
        #expect(editor.conflicts.count == 6)
        // What was accepted still builds a well-formed message.
        let result = try SIPMessage.parse(editor.build())
        #expect(result.text(result.vias[0].sentByRange) == "Ax")
    }

    @Test func editsAfterSetBodyMayNotTouchTheBody() throws {
        let invite = try Self.makeInvite()
        var editor = SIPMessageEditor(invite)
        let accepted17 = editor.setBody(ByteBuffer(string: ""))
        #expect(accepted17)
        let accepted18 = editor.insert([0x41], at: invite.body.lowerBound)
        #expect(!accepted18)
        let accepted19 = editor.replace(invite.body.lowerBound..<(invite.body.lowerBound + 1), with: [])
        #expect(!accepted19)
        let accepted20 = editor.insertHeaderLine(Array("X-A: b\r\n".utf8), before: invite.headerEnd)
        #expect(accepted20)
        let result = try SIPMessage.parse(editor.build())
        #expect(result.body.isEmpty)
        #expect(result.contentLength == 0)
        #expect(result.fields(named: "X-A").count == 1)
    }

    @Test func insertionsAtOneOffsetKeepTheirOrder() throws {
        let invite = try Self.makeInvite()
        var editor = SIPMessageEditor(invite)
        let via = try #require(invite.field(.via))
        editor.insertHeaderLine(Array("Via: SIP/2.0/UDP one.example.com;branch=z9hG4bK1\r\n".utf8),
                                before: via.lineRange.lowerBound)
        editor.insertHeaderLine(Array("Via: SIP/2.0/UDP two.example.com;branch=z9hG4bK2\r\n".utf8),
                                before: via.lineRange.lowerBound)
        let result = try SIPMessage.parse(editor.build())
        #expect(result.vias.map(\.host) == [.name("one.example.com"), .name("two.example.com"),
                                            .name("pc33.atlanta.example.com")])
    }
}
