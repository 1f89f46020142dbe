import AlgateRewrite
import FuzzSupport
import NIOCore

/// libFuzzer's entry point: one input, one datagram.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSIPMessage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    SIPMessageHarness.run(fuzzInput(data, size))
    return 0
}

/// ``SIPMessage/parse(_:limits:)`` and ``SIPMessageEditor``: a message that parses, rebuilt unedited, is its own
/// bytes; edited the ways the gateway edits (a header line added, a value replaced by itself, a parameter
/// inserted, the body replaced or edited in place), it re-parses to the same message, and its Content-Length is the
/// length of its body.
enum SIPMessageHarness {
    static let limits = SIPLimits()

    static func run(_ input: [UInt8]) {
        guard let message = try? SIPMessage.parse(ByteBuffer(bytes: input), limits: limits) else { return }
        Invariant.check(message.body.upperBound == message.bytes.readableBytes,
                        "the body does not end the message")
        if let declared = message.contentLength {
            Invariant.check(declared == message.body.count,
                            "Content-Length \(declared), body \(message.body.count) bytes")
        }

        let untouched = SIPMessageEditor(message)
        Invariant.check(Array(untouched.build().readableBytesView) == Array(message.bytes.readableBytesView),
                        "an editor without edits changed the message")

        let hash = FuzzHash(input)
        var headers = SIPMessageEditor(message)
        let topVia = message.topVia
        headers.insertHeaderLine(Array("X-Fuzz: 1".utf8) + message.lineEnding, before: message.headerEnd)
        headers.replace(topVia.range, with: message.byteArray(topVia.range))
        headers.insert(Array(";fuzz".utf8), at: topVia.parametersEnd)
        if hash.bits(0, 1) == 1 { headers.ensureContentLength() }
        check(headers, addedHeaders: 1 + (message.contentLength == nil && hash.bits(0, 1) == 1 ? 1 : 0),
              body: message.byteArray(message.body), what: "header edits")

        var body = SIPMessageEditor(message)
        let newBody = Array("v=0\r\n".utf8) + message.byteArray(message.body).prefix(hash.bits(1, 10))
        body.setBody(ByteBuffer(bytes: newBody))
        check(body, addedHeaders: message.contentLength == nil ? 1 : 0, body: newBody, what: "a new body")

        if !message.body.isEmpty {
            var inPlace = SIPMessageEditor(message)
            let at = message.body.lowerBound + hash.bits(11, 16) % message.body.count
            inPlace.replace(at..<(at + 1), with: Array("xy".utf8))
            var expected = message.byteArray(message.body)
            expected.replaceSubrange((at - message.body.lowerBound)...(at - message.body.lowerBound),
                                     with: Array("xy".utf8))
            check(inPlace, addedHeaders: message.contentLength == nil ? 1 : 0, body: expected, what: "a body edit")
        }
    }

    /// The edited message re-parses (within limits grown by what the edits added), keeps the identity of the
    /// original, has the expected body, and a Content-Length that says its length.
    static func check(_ editor: SIPMessageEditor, addedHeaders: Int, body: [UInt8], what: String) {
        let original = editor.message
        Invariant.check(editor.conflicts.isEmpty, "\(what): the editor refused \(editor.conflicts)")
        let built = editor.build()
        var grown = limits
        grown.maxHeaders += addedHeaders
        grown.maxMessageBytes = max(limits.maxMessageBytes, built.readableBytes)
        grown.maxHeaderBytes += 64
        let reparsed: SIPMessage
        do {
            reparsed = try SIPMessage.parse(built, limits: grown)
        } catch {
            Invariant.fail("\(what): the rebuilt message does not parse (\(error.explanation)): "
                           + String(decoding: built.readableBytesView.prefix(300), as: UTF8.self).debugDescription)
        }
        Invariant.check(reparsed.discardedBytes == 0, "\(what): the rebuilt message has bytes past its body")
        Invariant.check(reparsed.headers.count == original.headers.count + addedHeaders,
                        "\(what): \(reparsed.headers.count) headers, expected \(original.headers.count + addedHeaders)")
        Invariant.check(reparsed.startLine == original.startLine,
                        "\(what): the start line changed")
        Invariant.check(reparsed.method == original.method && reparsed.statusCode == original.statusCode
                        && reparsed.callID == original.callID && reparsed.cseq?.number == original.cseq?.number
                        && reparsed.vias.count == original.vias.count
                        && reparsed.contacts.count == original.contacts.count,
                        "\(what): the message is another one after the edit")
        Invariant.check(reparsed.byteArray(reparsed.body) == body, "\(what): the body is not the expected one")
        if let declared = reparsed.contentLength {
            Invariant.check(declared == reparsed.body.count,
                            "\(what): Content-Length \(declared), body \(reparsed.body.count) bytes")
        } else {
            Invariant.check(body.count == original.body.count && original.contentLength == nil,
                            "\(what): the body changed length and there is no Content-Length")
        }
    }
}
