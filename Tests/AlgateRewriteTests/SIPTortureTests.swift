import AlgateRewrite
import NIOCore
import Testing

/// The RFC 4475 torture messages in `../shared/corpus/sip-torture-rfc4475` (resiprocate's byte-exact copies),
/// read at test time.
///
/// What the gateway does with each, following the RFC's text for it:
///
/// - 3.1.1 (valid): parsed; an unmodified editor rebuilds the message byte for byte.
/// - 3.1.2 (invalid): refused with the error that names the defect, except where RFC 4475 lets an element pass the
///   message on because the broken field is one it does not interpret, and the gateway does not:
///   baddate (3.1.2.12: "an element wishing to be liberal ... could ignore this value altogether if it wasn't
///   going to use the Date header field anyway") and badaspec (3.1.2.14: "elements attempting to be liberal may
///   ignore the spaces"; the gateway reads To only for its tag and never rewrites it). regbadct (3.1.2.13) is
///   refused even so: the gateway rewrites Contact and builds bindings from a REGISTER's Contact, so it must
///   understand it, and the RFC calls a 400 reasonable ("in general, [inferring the brackets] won't be
///   possible"). baddn (3.1.2.15) is refused twice over: resiprocate's copy lacks the empty line that ends the
///   header section, and with it restored, the unquoted comma in the display name is refused as the RFC advises
///   for a proxy ("must not propagate the error").
/// - 3.2 to 3.4 (transaction and application semantics): parsed, except where the defect is one this parser is
///   there to catch: insuf (3.3.1, no From/To/Call-ID), multi01 (3.3.8, two Call-IDs), mcl01 (3.3.9, two
///   Content-Lengths, a framing ambiguity). inv2543 (3.4.1, RFC 2543 syntax without Max-Forwards or
///   Content-Length) is accepted, as the RFC asks of elements that keep backwards compatibility.
/// - test.dat is not from RFC 4475 (a request line without version): refused.
@Suite(.enabled(if: SIPCorpus.hasTorture,
                "the RFC 4475 messages in ../shared/corpus/sip-torture-rfc4475 are not there (see DESIGN.md, Testing)"))
struct SIPTortureTests {
    enum Outcome: Sendable, CustomStringConvertible {
        /// Parsed; the text names the RFC 4475 section.
        case parses(String)
        /// Parsed and passed on untouched although RFC 4475 calls it invalid.
        case passedOn(String)
        case refused(String, SIPParseError)

        var description: String {
            switch self {
            case .parses(let section): return "parses (\(section))"
            case .passedOn(let section): return "passed on (\(section))"
            case .refused(let section, let error): return "refused (\(section)): \(error)"
            }
        }
    }

    static let expected: [(name: String, outcome: Outcome)] = [
        ("wsinv", .parses("3.1.1.1")),
        ("intmeth", .parses("3.1.1.2")),
        ("esc01", .parses("3.1.1.3")),
        ("escnull", .parses("3.1.1.4")),
        ("esc02", .parses("3.1.1.5")),
        ("lwsdisp", .parses("3.1.1.6")),
        ("longreq", .parses("3.1.1.7")),
        ("dblreq", .parses("3.1.1.8")),
        ("semiuri", .parses("3.1.1.9")),
        ("transports", .parses("3.1.1.10")),
        ("mpart01", .parses("3.1.1.11")),
        ("unreason", .parses("3.1.1.12")),
        ("noreason", .parses("3.1.1.13")),
        ("badinv01", .refused("3.1.2.1", .badVia)),
        ("clerr", .refused("3.1.2.2", .contentLengthMismatch(declared: 9999, actual: 154))),
        ("ncl", .refused("3.1.2.3", .badContentLength)),
        ("scalar02", .refused("3.1.2.4", .badCSeq)),
        ("scalarlg", .refused("3.1.2.5", .badCSeq)),
        ("quotbal", .refused("3.1.2.6", .badNameAddress("To"))),
        ("ltgtruri", .refused("3.1.2.7", .badURI)),
        ("lwsruri", .refused("3.1.2.8", .badStartLine)),
        ("lwsstart", .refused("3.1.2.9", .badStartLine)),
        ("trws", .refused("3.1.2.10", .badStartLine)),
        ("escruri", .refused("3.1.2.11", .headersInRequestURI)),
        ("baddate", .passedOn("3.1.2.12")),
        ("regbadct", .refused("3.1.2.13", .badNameAddress("Contact"))),
        ("badaspec", .passedOn("3.1.2.14")),
        ("baddn", .refused("3.1.2.15", .noHeaderEnd)),
        ("badvers", .refused("3.1.2.16", .badVersion)),
        ("mismatch01", .refused("3.1.2.17", .cseqMethodMismatch)),
        ("mismatch02", .refused("3.1.2.18", .cseqMethodMismatch)),
        ("bigcode", .refused("3.1.2.19", .badStatusCode)),
        ("badbranch", .parses("3.2.1")),
        ("insuf", .refused("3.3.1", .missingHeader("From"))),
        ("unkscm", .parses("3.3.2")),
        ("novelsc", .parses("3.3.3")),
        ("unksm2", .parses("3.3.4")),
        ("bext01", .parses("3.3.5")),
        ("invut", .parses("3.3.6")),
        ("regaut01", .parses("3.3.7")),
        ("multi01", .refused("3.3.8", .duplicateHeader("Call-ID"))),
        ("mcl01", .refused("3.3.9", .duplicateHeader("Content-Length"))),
        ("bcast", .parses("3.3.10")),
        ("zeromf", .parses("3.3.11")),
        ("cparam01", .parses("3.3.12")),
        ("cparam02", .parses("3.3.13")),
        ("regescrt", .parses("3.3.14")),
        ("sdp01", .parses("3.3.15")),
        ("inv2543", .parses("3.4.1")),
        ("test", .refused("not RFC 4475", .badStartLine)),
    ]

    @Test func everyMessageInTheFolderIsListed() throws {
        #expect(try SIPCorpus.tortureNames() == Self.expected.map(\.name).sorted())
    }

    @Test("each message parses, is passed on, or is refused as RFC 4475 says",
          arguments: SIPTortureTests.expected.map(\.name))
    func outcome(name: String) throws {
        let bytes = try SIPCorpus.torture(name)
        let outcome = try #require(Self.expected.first { $0.name == name }?.outcome)
        let result = Result { () throws(SIPParseError) in try SIPMessage.parse(ByteBuffer(bytes: bytes)) }
        switch (outcome, result) {
        case (.parses, .success(let message)), (.passedOn, .success(let message)):
            // Identity: the message is the file (dblreq: its first message), and an unmodified edit rebuilds it.
            let length = name == "dblreq" ? bytes.count - message.discardedBytes : bytes.count
            #expect(message.bytes.bytesArray == Array(bytes[0..<length]))
            #expect(SIPMessageEditor(message).build().bytesArray == Array(bytes[0..<length]))
            // The SDP, where there is one, parses and rewrites into a message that parses again.
            try checkSDPRewrite(message, name)
        case (.refused(_, let error), .failure(let thrown)):
            #expect(thrown == error, "\(name)")
        case (_, .success):
            Issue.record("\(name): expected \(outcome), but it parsed")
        case (_, .failure(let thrown)):
            Issue.record("\(name): expected \(outcome), but it was refused: \(thrown)")
        }
    }

    /// None crashes the stream framer either, cut anywhere.
    @Test(arguments: SIPTortureTests.expected.map(\.name))
    func framerSurvivesEveryPrefix(name: String) throws {
        let bytes = try SIPCorpus.torture(name)
        let framer = SIPStreamFramer()
        for end in stride(from: 0, through: bytes.count, by: 7) {
            _ = try? bytes[0..<end].withUnsafeBytes { raw throws(SIPParseError) in try framer.nextFrame(raw) }
        }
    }

    func checkSDPRewrite(_ message: SIPMessage, _ name: String) throws {
        guard let (range, sdp) = try message.sdp() else { return }
        var editor = SIPMessageEditor(message)
        let targets = sdp.media.indices.map { index in
            SDPRewrite.Target(address: IPAddress("203.0.113.7")!, port: UInt16(40000 + 2 * index))
        }
        SDPRewrite(media: targets).apply(to: sdp, at: range, in: &editor)
        let result = try SIPMessage.parse(editor.build())
        #expect(result.contentLength == result.body.count, "\(name)")
        let (_, rewritten) = try #require(try result.sdp(), "\(name)")
        #expect(rewritten.media.count == sdp.media.count, "\(name)")
        #expect(rewritten.media.filter { !$0.isDisabled }.allSatisfy {
            rewritten.connectionAddress(of: $0) == IPAddress("203.0.113.7")
        }, "\(name)")
    }

    // MARK: What the valid ones hold

    func message(_ name: String) throws -> SIPMessage {
        try SIPMessage.parse(ByteBuffer(bytes: try SIPCorpus.torture(name)))
    }

    @Test func wsinv() throws {
        let message = try message("wsinv")
        #expect(message.method == "INVITE")
        #expect(message.to.tag == "1918181833n")
        #expect(message.from.tag == "98asjd8")
        #expect(message.from.displayNameRange.map(message.text) == "\"J Rosenberg \\\\\\\"\"")
        #expect(message.maxForwards == 68)
        #expect(message.cseq?.number == 9)
        #expect(message.cseq?.method == "INVITE")
        #expect(message.vias.map(\.transport) == ["UDP", "TCP", "UDP"])
        #expect(message.vias.map(\.host) == [.ipv4(IPAddress("192.0.2.2")!), .name("spindle.example.com"),
                                             .ipv4(IPAddress("192.168.255.111")!)])
        #expect(message.vias.map(\.branch) == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"])
        #expect(message.contacts.first?.displayNameRange.map(message.text) == "\"Quoted string \\\"\\\"\"")
        #expect(message.contacts.first?.parameter(named: "q")?.value == "0.33")
        #expect(message.routes.first?.uri.lr == true)
        #expect(message.fields(named: "subject").map { message.text($0.valueRange) } == [""])
        #expect(message.fields(named: "NewFangledHeader").map { message.text($0.valueRange) }
                == ["newfangled value\r\n continued newfangled value"])
        #expect(message.contentLength == 150)
        #expect(try message.sdp()?.sdp.media.count == 2)
    }

    @Test func intmeth() throws {
        let message = try message("intmeth")
        #expect(message.method == "!interesting-Method0123456789_*+`.%indeed'~")
        #expect(message.cseq?.method == message.method)
        #expect(message.requestURI?.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        #expect(message.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        #expect(message.from.tag == "_token~1'+`*%!-.")
        #expect(message.callID == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
        #expect(message.vias[0].branch == "z9hG4bK-.!%66*_+`'~")
    }

    @Test func escapes() throws {
        let esc01 = try message("esc01")
        #expect(esc01.requestURI?.user == "sips%3Auser%40example.com")
        #expect(esc01.requestURI?.host == .name("example.net"))
        #expect(esc01.contacts.first?.uri.parameters.map(\.name) == ["%6c%72", "n%61me"])
        let escnull = try message("escnull")
        #expect(escnull.contacts.map(\.uri.user) == ["%00", "%00%00"])
        let esc02 = try message("esc02")
        #expect(esc02.method == "RE%47IST%45R")
        #expect(esc02.contacts.count == 2)  // C%6Fntact is another header, not Contact
        #expect(esc02.fields(named: "C%6Fntact").count == 1)
    }

    @Test func longAndDoubleAndUnusual() throws {
        let longreq = try message("longreq")
        #expect(longreq.vias.count == 34)
        #expect(longreq.vias.last?.received == IPAddress("192.0.2.5"))
        #expect(longreq.to.uri.port == 6000)
        let dblreq = try message("dblreq")
        #expect(dblreq.method == "REGISTER")
        #expect(dblreq.body.isEmpty)
        #expect(dblreq.discardedBytes == 450)
        let semiuri = try message("semiuri")
        #expect(semiuri.requestURI?.user == "user;par=u%40example.net")
        #expect(semiuri.requestURI?.host == .name("example.com"))
        let transports = try message("transports")
        #expect(transports.vias.map(\.transport) == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"])
        let lwsdisp = try message("lwsdisp")
        #expect(lwsdisp.from.displayNameRange.map(lwsdisp.text) == "caller")
        let noreason = try message("noreason")
        #expect(noreason.statusCode == 100)
        #expect(noreason.reasonRange?.isEmpty == true)
        let unreason = try message("unreason")
        #expect(unreason.statusCode == 200)
        #expect(unreason.reasonRange.map(unreason.text)?.hasPrefix("= 2**3 * 5**2 ") == true)
        let inv2543 = try message("inv2543")
        #expect(inv2543.maxForwards == nil)
        #expect(inv2543.contentLength == nil)
        #expect(inv2543.vias[0].branch == nil)
        let unksm2 = try message("unksm2")
        #expect(unksm2.to.uri.scheme == "isbn")
        #expect(unksm2.contacts.first?.uri.isSIP == false)
        let regescrt = try message("regescrt")
        #expect(regescrt.contacts.first?.uri.headersRange.map(regescrt.text) == "Route=%3Csip:sip.example.com%3E")
        let cparam01 = try message("cparam01")
        #expect(cparam01.contacts.first?.parameters.map(\.name) == ["unknownparam"])
        #expect(cparam01.contacts.first?.uri.parameters.isEmpty == true)
        let cparam02 = try message("cparam02")
        #expect(cparam02.contacts.first?.uri.parameters.map(\.name) == ["unknownparam"])
        #expect(try message("invut").sdp() == nil)
        #expect(try message("zeromf").maxForwards == 0)
    }

    @Test func mpart01KeepsItsBinaryPart() throws {
        let bytes = try SIPCorpus.torture("mpart01")
        let message = try SIPMessage.parse(ByteBuffer(bytes: bytes))
        #expect(try SIPMultipart.sdpBody(of: message) == nil)
        let parts = try message.bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
            try SIPMultipart.parse(UnsafeRawBufferPointer(rebasing: raw[message.body]),
                                   boundary: Array("7a9cbec02ceef655".utf8))
        }
        #expect(parts.parts.map { $0.contentType.map { "\($0.type)/\($0.subtype)" } }
                == ["text/plain", "application/octet-stream"])
        #expect(message.text(parts.parts[0].bodyRange.offset(by: message.body.lowerBound)) == "Hello")
        #expect(parts.parts[1].contentEncoding == "binary")
        // Replacing the body with itself through setBody changes nothing.
        var editor = SIPMessageEditor(message)
        editor.setBody(ByteBuffer(bytes: message.byteArray(message.body)))
        #expect(editor.build().bytesArray == bytes)
    }

    /// baddn with its missing empty line restored: the display names are still refused.
    @Test func baddnWithItsHeaderEnd() throws {
        let bytes = try SIPCorpus.torture("baddn") + Array("\r\n".utf8)
        #expect(throws: SIPParseError.badNameAddress("From")) { try SIPMessage.parse(ByteBuffer(bytes: bytes)) }
    }

    /// The two passed on keep every byte, the broken field included.
    @Test func passedOnMessagesAreUntouched() throws {
        let baddate = try message("baddate")
        #expect(baddate.fields(named: "Date").map { baddate.text($0.valueRange) } == ["Fri, 01 Jan 2010 16:00:00 EST"])
        let badaspec = try message("badaspec")
        #expect(badaspec.text(badaspec.to.uriRange) == "sip:t.watson@example.org")
        #expect(badaspec.to.displayNameRange.map(badaspec.text) == "\"Watson, Thomas\"")
        for name in ["baddate", "badaspec"] {
            let message = try message(name)
            var editor = SIPMessageEditor(message)
            editor.insertHeaderLine(Array("Via: SIP/2.0/UDP 203.0.113.7;branch=z9hG4bKgw\r\n".utf8),
                                    before: try #require(message.field(.via)).lineRange.lowerBound)
            let built = editor.build().bytesArray
            let original = try SIPCorpus.torture(name)
            let inserted = "Via: SIP/2.0/UDP 203.0.113.7;branch=z9hG4bKgw\r\n".utf8.count
            let at = try #require(message.field(.via)).lineRange.lowerBound
            #expect(Array(built[0..<at]) == Array(original[0..<at]))
            #expect(Array(built[(at + inserted)...]) == Array(original[at...]))
        }
    }
}
