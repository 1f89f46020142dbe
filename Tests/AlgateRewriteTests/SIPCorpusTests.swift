import AlgateRewrite
import NIOCore
import Testing

/// Moves every media stream of `message` to 203.0.113.7 (ports from `firstPort`, RTCP at `rtcpGap` above RTP), and
/// checks what must hold of the result: it parses, the SDP parses with as many m= lines, Content-Length is the new
/// body length, every SDP line but o=, c=, m= and a=rtcp: is byte-identical, every header line but Content-Length
/// is byte-identical, and the media really go where they were sent. Returns the rewritten message.
@discardableResult
func verifyMediaRewrite(_ message: SIPMessage, limits: SIPLimits = .init(), sdpLimits: SDPLimits = .init(),
                        firstPort: Int = 40000, rtcpGap: Int = 1, context: String) throws -> SIPMessage? {
    guard let range = try SIPMultipart.sdpBody(of: message, limits: limits) else { return nil }
    let sdp = try message.bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
        try SDPSessionDescription.parse(UnsafeRawBufferPointer(rebasing: raw[range]), limits: sdpLimits)
    }
    let gateway = try #require(IPAddress("203.0.113.7"))
    let targets = sdp.media.indices.map { index in
        SDPRewrite.Target(address: gateway, port: UInt16(firstPort + 2 * index),
                          rtcpPort: UInt16(firstPort + 2 * index + rtcpGap))
    }
    var editor = SIPMessageEditor(message)
    let accepted = SDPRewrite(media: targets).apply(to: sdp, at: range, in: &editor)
    #expect(accepted, "\(context)")
    var bigger = limits
    bigger.maxMessageBytes += 4096
    let result = try SIPMessage.parse(editor.build(), limits: bigger)
    if message.contentLength != nil || result.body.count != message.body.count {
        #expect(result.contentLength == result.body.count, "\(context): Content-Length follows the body")
    } else {
        #expect(result.contentLength == nil, "\(context): no Content-Length added to a body of the same length")
    }

    let newRange = try #require(try SIPMultipart.sdpBody(of: result, limits: limits), "\(context)")
    let rewritten = try result.bytes.withUnsafeReadableBytes { raw throws(SIPParseError) in
        try SDPSessionDescription.parse(UnsafeRawBufferPointer(rebasing: raw[newRange]), limits: sdpLimits)
    }
    #expect(rewritten.media.count == sdp.media.count, "\(context): m= lines")

    func kept(_ bytes: [UInt8]) -> [[UInt8]] {
        sipLines(bytes).filter { line in
            !(line.starts(with: Array("o=".utf8)) || line.starts(with: Array("c=".utf8))
              || line.starts(with: Array("m=".utf8)) || line.starts(with: Array("a=rtcp:".utf8)))
        }
    }
    #expect(kept(result.byteArray(newRange)) == kept(message.byteArray(range)), "\(context): other SDP lines")
    // Outside the SDP: the header lines (Content-Length aside) and any other body part are unchanged.
    func headerLines(_ message: SIPMessage) -> [[UInt8]] {
        sipLines(message.byteArray(0..<message.headerEnd)).filter { line in
            !message.fields(.contentLength).contains { message.byteArray($0.lineRange) == line }
        }
    }
    #expect(headerLines(result) == headerLines(message), "\(context): header lines")
    #expect(result.byteArray(result.body.lowerBound..<newRange.lowerBound)
            == message.byteArray(message.body.lowerBound..<range.lowerBound), "\(context): before the SDP")
    #expect(result.byteArray(newRange.upperBound..<result.body.upperBound)
            == message.byteArray(range.upperBound..<message.body.upperBound), "\(context): after the SDP")

    for (index, media) in rewritten.media.enumerated() {
        let original = sdp.media[index]
        if original.isDisabled {
            #expect(media.port == 0, "\(context): media \(index) stays disabled")
            continue
        }
        #expect(media.port == targets[index].port, "\(context): media \(index) port")
        let wasHeld = sdp.connectionAddress(of: original).map { $0 == .v4(0) || $0 == .v6(high: 0, low: 0) } ?? false
        let now = rewritten.connectionAddress(of: media)
        #expect(wasHeld ? now == sdp.connectionAddress(of: original) : now == gateway, "\(context): media \(index) address")
        let rtcp = media.rtcp?.port ?? (media.rtcpMux ? media.port : media.port &+ 1)
        #expect(media.rtcpMux || rtcp == targets[index].rtcpPort, "\(context): media \(index) RTCP")
    }
    // o= follows the first media that moves; with none (a body cut before its m= lines) nothing moves.
    if let origin = rewritten.origin, sdp.origin?.isInternet == true, sdp.origin?.isUnspecified == false,
       sdp.media.contains(where: { !$0.isDisabled }) {
        #expect(origin.address == gateway, "\(context): o=")
    }
    return result
}

/// Every SIP message of the captures in `../shared/corpus/sip`: UDP datagrams of the flows tshark calls SIP, and
/// TCP streams reassembled and cut by ``SIPStreamFramer``.
@Suite(
    .enabled(if: SIPCorpus.hasCaptures, "the captures in ../shared/corpus/sip are not there (see DESIGN.md, Testing)"),
    .enabled(if: SIPCorpus.tshark != nil, "tshark is not installed; it is needed to read the corpus captures")
)
struct SIPCorpusTests {
    struct Expected: Sendable, CustomStringConvertible {
        var file: String
        /// Messages that parse.
        var messages: Int
        /// Of those, messages with an SDP body.
        var sdp: Int
        /// Datagrams or stream messages refused, in capture order.
        var refused: [SIPParseError] = []
        /// Needs limits above the defaults (a 64 KB INVITE with a 64 KB SDP line).
        var large = false
        var description: String { file }
    }

    /// Counted with tshark (`-Y sip`, `-Y sdp`), not with this code.
    static let captures: [Expected] = [
        .init(file: "NormB-rtp-protocol.pcap", messages: 9, sdp: 2),
        .init(file: "NormB-sip-over-tcp.pcap", messages: 7, sdp: 2),
        .init(file: "NormB-sip-proxy.pcap", messages: 11, sdp: 4),
        .init(file: "NormB-sip-register.pcap", messages: 2, sdp: 0),
        .init(file: "NormB-sip-rtp-g711.pcap", messages: 10, sdp: 4),
        .init(file: "NormB-sip-sdp-example.pcap", messages: 7, sdp: 2),
        .init(file: "OISF-sdp.pcap", messages: 2, sdp: 2),
        .init(file: "OISF-sip-body-large.pcap", messages: 2, sdp: 1, large: true),
        .init(file: "OISF-sip-tcp.pcap", messages: 2, sdp: 0),
        .init(file: "OISF-sip_compact_form.pcap", messages: 1, sdp: 1),
        .init(file: "OISF-sip_header_multi_val.pcap", messages: 1, sdp: 1),
        // Content-Length "bad" and "xyz".
        .init(file: "zeek-invalid-content-length.pcap", messages: 0, sdp: 0,
              refused: [.badContentLength, .badContentLength]),
        // Four NUL bytes, then a REGISTER with nothing but Expires.
        .init(file: "zeek-sip-junk-before-request.pcap", messages: 0, sdp: 0,
              refused: [.badStartLine, .missingHeader("Via")]),
        .init(file: "zeek-wireshark.pcap", messages: 81, sdp: 12),
    ]

    @Test func everyCaptureInTheFolderIsListed() throws {
        #expect(try SIPCorpus.captureNames() == Self.captures.map(\.file).sorted())
    }

    @Test("every message parses or is refused as expected; every SDP rewrites cleanly",
          arguments: SIPCorpusTests.captures)
    func capture(_ expected: Expected) throws {
        let capture = try SIPCapture.read(expected.file)
        var limits = SIPLimits()
        var sdpLimits = SDPLimits()
        if expected.large {
            limits.maxMessageBytes = 70_000
            sdpLimits.maxLineBytes = 70_000
        }
        var parsed: [(SIPMessage, String)] = []
        var refused: [SIPParseError] = []

        for datagram in capture.datagrams {
            do {
                parsed.append((try SIPMessage.parse(ByteBuffer(bytes: datagram.payload), limits: limits),
                               "\(expected.file) frame \(datagram.frame)"))
            } catch {
                refused.append(error)
            }
        }
        for stream in capture.streams {
            #expect(stream.gaps == 0, "\(expected.file) stream \(stream.index): a gap")
            for (side, bytes) in stream.directions.enumerated() {
                let framer = SIPStreamFramer(limits: limits)
                var offset = 0
                frames: while offset < bytes.count {
                    let frame: SIPStreamFramer.Frame?
                    switch bytes[offset...].withUnsafeBytes({ raw in Result { () throws(SIPParseError) in
                        try framer.nextFrame(raw)
                    } }) {
                    case .success(let next): frame = next
                    case .failure(let error):
                        refused.append(error)
                        break frames
                    }
                    switch frame {
                    case .none:
                        Issue.record("\(expected.file) stream \(stream.index) side \(side): \(bytes.count - offset) bytes left over")
                        break frames
                    case .keepAlive(let length):
                        offset += length
                    case .message(let length):
                        let message = ByteBuffer(bytes: bytes[offset..<(offset + length)])
                        do {
                            parsed.append((try SIPMessage.parse(message, limits: limits),
                                           "\(expected.file) stream \(stream.index) side \(side) at \(offset)"))
                        } catch {
                            refused.append(error)
                        }
                        offset += length
                    }
                }
            }
        }

        #expect(parsed.count == expected.messages)
        #expect(refused == expected.refused)
        var withSDP = 0
        for (message, context) in parsed {
            #expect(SIPMessageEditor(message).build() == message.bytes, "\(context): identity")
            #expect(message.contentLength.map { $0 == message.body.count } ?? true, "\(context)")
            guard try verifyMediaRewrite(message, limits: limits, sdpLimits: sdpLimits, context: context) != nil else {
                continue
            }
            withSDP += 1
            // RTCP elsewhere than RTP + 1: an a=rtcp line is added or changed.
            try verifyMediaRewrite(message, limits: limits, sdpLimits: sdpLimits, firstPort: 50000, rtcpGap: 1001,
                                   context: context + " (RTCP elsewhere)")
        }
        #expect(withSDP == expected.sdp)
    }

    /// The 64 KB INVITE of suricata-verify is refused under the default limits, by the framer, before any parsing.
    @Test func largeMessageIsRefusedByDefault() throws {
        let capture = try SIPCapture.read("OISF-sip-body-large.pcap")
        let stream = try #require(capture.streams.first?.directions.first)
        #expect(throws: SIPParseError.tooLarge("message")) {
            try stream.withUnsafeBytes { raw throws(SIPParseError) in try SIPStreamFramer().nextFrame(raw) }
        }
    }

    /// What the captures are known to hold, read through the parsed values.
    @Test func knownContents() throws {
        let compact = try SIPCapture.read("OISF-sip_compact_form.pcap")
        let message = try SIPMessage.parse(ByteBuffer(bytes: try #require(compact.datagrams.first).payload))
        #expect(message.fields(.via).map { message.text($0.nameRange) } == ["v"])
        #expect(message.from.tag == "6433ef9")
        #expect(message.contentLength == 272)
        #expect(message.discardedBytes > 0)  // the datagram holds more body than declared: cut, RFC 3261 18.3
        let multi = try SIPCapture.read("OISF-sip_header_multi_val.pcap")
        let twoTo = try SIPMessage.parse(ByteBuffer(bytes: try #require(multi.datagrams.first).payload))
        #expect(twoTo.fields(.to).count == 2)
        #expect(twoTo.to.uri.user == "97239287044")  // the first one counts

        let tcp = try SIPCapture.read("OISF-sip-tcp.pcap")
        let reply = try #require(tcp.streams.first?.directions.last)
        let ok = try SIPMessage.parse(ByteBuffer(bytes: reply))
        #expect(ok.statusCode == 200)
        #expect(ok.topVia.rport == 43168)
        #expect(ok.topVia.received == IPAddress("192.168.43.1"))
    }
}
