@testable import AlgateReplay
import AlgateRewrite
import Foundation
import Testing

/// The pieces under the replay: TCP and IP reassembly, gzip, protocol recognition.
@Suite struct ReassemblyTests {
    func data(_ events: [TCPStreamReassembler.Event]) -> [UInt8] {
        events.flatMap { event -> [UInt8] in
            if case .data(_, let bytes, _, _, _) = event { return bytes }
            return []
        }
    }

    @Test func tcpBytesComeOutOnceInOrderAcrossSequenceWrapAround() {
        var stream = TCPStreamReassembler()
        let isn: UInt32 = .max - 5
        var out: [UInt8] = []
        out += data(stream.receive(sequence: isn, syn: true, fin: false, payload: [], frame: 1, time: 0,
                                   acknowledgment: nil))
        // "hello world!" as 3 segments, the last first, the middle twice, the first overlapping the middle.
        let text = Array("hello world!".utf8)
        let base = isn &+ 1
        out += data(stream.receive(sequence: base &+ 8, syn: false, fin: true, payload: text[8...], frame: 2, time: 0,
                                   acknowledgment: nil))
        out += data(stream.receive(sequence: base &+ 4, syn: false, fin: false, payload: text[4..<8], frame: 3, time: 0,
                                   acknowledgment: nil))
        out += data(stream.receive(sequence: base &+ 4, syn: false, fin: false, payload: text[4..<8], frame: 4, time: 0,
                                   acknowledgment: nil))
        let events = stream.receive(sequence: base, syn: false, fin: false, payload: Array("hellXXXX".utf8)[...],
                                    frame: 5, time: 0, acknowledgment: nil)
        out += data(events)
        // The middle segment came before the overlapping one: its bytes ("o wo") win over "XXXX".
        #expect(String(decoding: out, as: UTF8.self) == "hello world!")
        #expect(stream.conflictingBytes == 4)
        #expect(events.contains { if case .end = $0 { return true } else { return false } })
        #expect(stream.finish(acknowledgedByPeer: nil).isEmpty)
    }

    @Test func aHoleThatNeverFillsIsAGapAndTooMuchWaitingIsOneToo() {
        var stream = TCPStreamReassembler(configuration: .init(maxBufferedBytes: 100, maxBufferedSegments: 10))
        _ = stream.receive(sequence: 99, syn: true, fin: false, payload: [], frame: 1, time: 0, acknowledgment: nil)
        let first = stream.receive(sequence: 100, syn: false, fin: false, payload: [1, 2, 3], frame: 2, time: 0,
                                   acknowledgment: nil)
        #expect(data(first) == [1, 2, 3])
        #expect(stream.receive(sequence: 110, syn: false, fin: false, payload: [9], frame: 3, time: 0,
                               acknowledgment: nil).isEmpty)
        let gap = stream.finish(acknowledgedByPeer: nil)
        guard case .gap(let offset, let missing, _)? = gap.first else {
            Issue.record("no gap: \(gap)")
            return
        }
        #expect(offset == 3)
        #expect(missing == 7)

        var full = TCPStreamReassembler(configuration: .init(maxBufferedBytes: 100, maxBufferedSegments: 10))
        _ = full.receive(sequence: 0, syn: true, fin: false, payload: [], frame: 1, time: 0, acknowledgment: nil)
        let over = full.receive(sequence: 10, syn: false, fin: false, payload: [UInt8](repeating: 7, count: 101)[...],
                                frame: 2, time: 0, acknowledgment: nil)
        #expect(over.contains { if case .gap = $0 { return true } else { return false } })
        let late = full.receive(sequence: 1, syn: false, fin: false, payload: [UInt8](repeating: 1, count: 9)[...],
                                frame: 3, time: 0, acknowledgment: nil)
        #expect(late.isEmpty)  // nothing after a gap
        // Bytes the peer acknowledged but the capture lacks are a gap as well.
        var acked = TCPStreamReassembler()
        _ = acked.receive(sequence: 0, syn: true, fin: false, payload: [], frame: 1, time: 0, acknowledgment: nil)
        _ = acked.receive(sequence: 1, syn: false, fin: false, payload: [1, 2], frame: 2, time: 0, acknowledgment: nil)
        #expect(acked.finish(acknowledgedByPeer: 50).count == 1)
    }

    @Test func theMergerHandsOnAReplyOnlyAfterTheRequestItAcknowledges() {
        var merger = TCPEventMerger()
        // The reply (acknowledging 6 bytes of the request) was captured first.
        merger.push(.data(.fromResponder, Array("227 ok\r\n".utf8), frame: 1, time: 0), from: .fromResponder, frame: 1,
                    requires: 6)
        #expect(merger.pop().isEmpty)
        merger.push(.data(.fromInitiator, Array("PASV\r\n".utf8), frame: 2, time: 0), from: .fromInitiator, frame: 2,
                    requires: 0)
        let order = merger.pop().map { event -> TCPDirection in
            if case .data(let direction, _, _, _) = event { return direction }
            return .fromInitiator
        }
        #expect(order == [.fromInitiator, .fromResponder])
        #expect(merger.forcedOrder == 0)
    }

    @Test func ipFragmentsKeepTheFirstBytesAndLimitsHold() {
        let source = IPAddress("192.0.2.1")!
        let destination = IPAddress("192.0.2.2")!
        func fragment(_ id: UInt32, _ offset: Int, _ bytes: [UInt8], more: Bool) -> IPFragment {
            IPFragment(key: FragmentKey(source: source, destination: destination, identification: id,
                                        protocolNumber: 17, isIPv6: false),
                       offset: offset, moreFragments: more, nextHeader: 17, payload: bytes)
        }
        var reassembler = IPFragmentReassembler(configuration: .init(maxDatagrams: 2, maxBytes: 1000, timeout: 30))
        #expect(reassembler.add(fragment(1, 8, [8, 8, 8, 8], more: false), frame: 1, time: 0) == nil)
        #expect(reassembler.add(fragment(1, 4, [5, 5, 5, 5, 6, 6, 6, 6], more: true), frame: 2, time: 0) == nil)
        let whole = reassembler.add(fragment(1, 0, [0, 0, 0, 0, 9, 9], more: true), frame: 3, time: 0)
        #expect(whole?.payload == [0, 0, 0, 0, 5, 5, 5, 5, 8, 8, 8, 8])
        // A third datagram evicts the oldest of two waiting ones; one that waits too long is given up.
        _ = reassembler.add(fragment(2, 0, [1], more: true), frame: 4, time: 1)
        _ = reassembler.add(fragment(3, 0, [1], more: true), frame: 5, time: 2)
        _ = reassembler.add(fragment(4, 0, [1], more: true), frame: 6, time: 3)
        #expect(reassembler.incompleteCount == 1)
        _ = reassembler.add(fragment(5, 0, [1], more: true), frame: 7, time: 100)
        #expect(reassembler.incompleteCount == 3)
        reassembler.finish()
        #expect(reassembler.incompleteCount == 4)
        #expect(reassembler.reassembled == 1)
    }

    @Test func gzipFromTheGzipProgramDecodes() throws {
        let gzip = ["/usr/bin/gzip", "/bin/gzip"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let gzip else { return }
        var generator = SeededGenerator(seed: 42)
        let text = Array((0..<4000).map { "line \($0) of a capture-like text, repeated a lot\n" }.joined().utf8)
        let noise = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for (input, level) in [(text, "-1"), (text, "-9"), (noise, "-6"), ([UInt8](), "-6")] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: gzip)
            process.arguments = ["-c", level]
            let stdin = Pipe(), stdout = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            try process.run()
            stdin.fileHandleForWriting.write(Data(input))
            try stdin.fileHandleForWriting.close()
            let compressed = Array(stdout.fileHandleForReading.readDataToEndOfFile())
            process.waitUntilExit()
            // Two members back to back, as `cat a.gz b.gz` makes.
            let doubled = compressed + compressed
            var chunks = stride(from: 0, to: doubled.count, by: 1000).map {
                Array(doubled[$0..<min($0 + 1000, doubled.count)])
            }
            var output: [UInt8] = []
            let count = try GzipDecoder().decode(read: { chunks.isEmpty ? [] : chunks.removeFirst() },
                                                 write: { output += $0; return true })
            #expect(output == input + input, "level \(level)")
            #expect(count == input.count * 2)
        }
    }

    @Test func damagedGzipIsRefused() {
        var stored = GzipStored.wrap(Array("some bytes".utf8))
        stored[stored.count - 6] ^= 0xff  // the CRC
        #expect(throws: GzipError.checksumMismatch) {
            try GzipDecoder().decode(read: { defer { stored = [] }; return stored }, write: { _ in true })
        }
        var cut = Array(GzipStored.wrap(Array("some bytes".utf8)).prefix(15))
        #expect(throws: GzipError.truncated) {
            try GzipDecoder().decode(read: { defer { cut = [] }; return cut }, write: { _ in true })
        }
        var bomb = GzipStored.wrap([UInt8](repeating: 0, count: 5000))
        #expect(throws: GzipError.tooLarge(1000)) {
            try GzipDecoder(maxOutputBytes: 1000).decode(read: { defer { bomb = [] }; return bomb },
                                                         write: { _ in true })
        }
    }

    /// Found by the gzip fuzz harness (Fuzz/, issue 10): the byte that crossed the limit was kept, and the
    /// output decoded before the error, which is handed on, was one byte over the limit.
    @Test func aGzipBombHandsOnNoMoreThanTheLimit() throws {
        let found = try #require(Data(base64Encoded: """
            H4sICAUKE2sCA3VhY19wY2FwX21lZGlhX2lwLnhtbADtV29z4rYTfn+fYsubJDMYbFISjsRpyb+W6SVhwFwnwzCMsAWoZ1uuJJPj23dX\
            tiFJk8td/8zv96LMkAhbu9p9dvfZ1ekPn5MY1lxpIVO/5jXcGvA0lJFIl36tP7pzOp32e8erwQ9n706/u7y7CO4HV6BDnjIlJIzuR8HV\
            DdS0yLJGZKLa2Tvc5jgQrISGTMmlYgngcqE4By0X5oEpfgIbmUPIUlA8EtooMc8NB2GApVFTKrAfxzkrdCVoNV/kcf2J5+DfGD1RV2Zt\
            SvB6J0qz/Bo8GJHQc1Li16GFX7p0f4/wT9u+eVIVf7aJIgGxdf9ti7Y2USQLzF6xaGshvuUlD3/8AQjPa8aBFAAAsWhrRdstVsWyXBc2\
            Ib7lJQ9//DL8Ks/GgRQAAA==
            """))
        for (input, limit) in [(Array(found), 120), (GzipStored.wrap([UInt8](repeating: 0, count: 5000)), 1000)] {
            var pending = input
            var handedOn = 0
            #expect(throws: GzipError.tooLarge(limit)) {
                try GzipDecoder(maxOutputBytes: limit).decode(read: { defer { pending = [] }; return pending },
                                                              write: { handedOn += $0.count; return true })
            }
            #expect(handedOn == limit)
        }
    }

    /// Found by the SIP framer fuzz harness (Fuzz/, issue 10): the replay's splitter refused a header section
    /// without Content-Length up to the next CR LF CR LF, which for one ending in bare line feeds lies in its body
    /// or in the next message (swallowed), and only once that had arrived.
    @Test func aRefusedSIPHeaderSectionEndsAtItsOwnEmptyLine() {
        let stream = Array("SIP/2.0 200 \n\nS\r\n\r\n".utf8)  // the harness's minimized input
        for cut in [stream.count, 9, 1] {
            var splitter = SIPStreamSplitter(limits: SIPLimits())
            var refused: [[UInt8]] = []
            var failure: SIPParseError?
            for start in stride(from: 0, to: stream.count, by: cut) {
                let (items, error) = splitter.append(Array(stream[start..<min(start + cut, stream.count)]))
                for case .refused(let header, _) in items { refused.append(header) }
                failure = failure ?? error
            }
            #expect(refused == [Array("SIP/2.0 200 \n\n".utf8)], "cut \(cut)")
            #expect(failure == .badStartLine, "cut \(cut)")
        }
        let lineFeeds = "OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-1\n\n"
        let next = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
        var splitter = SIPStreamSplitter(limits: SIPLimits())
        let (items, error) = splitter.append(Array((lineFeeds + next).utf8))
        #expect(error == nil)
        guard items.count == 2, case .refused(let header, _) = items[0], case .message(let message) = items[1] else {
            Issue.record("expected the refused header section, then the next message: \(items)")
            return
        }
        #expect(header == Array(lineFeeds.utf8))
        #expect(message == Array(next.utf8))
    }

    @Test func protocolsAreRecognisedByTheirFirstBytes() {
        #expect(ProtocolDetector.isFTPGreeting(Array("220 ready".utf8)) == true)
        #expect(ProtocolDetector.isFTPGreeting(Array("220-multi".utf8)) == true)
        #expect(ProtocolDetector.isFTPGreeting(Array("SSH-2.0".utf8)) == false)
        #expect(ProtocolDetector.isFTPGreeting(Array("22".utf8)) == nil)
        for line in ["INVITE sip:bob@example.com SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 100", "REGISTER sips:x SIP/2.0"] {
            #expect(ProtocolDetector.isSIPStartLine(Array(line.utf8)), "\(line)")
        }
        for line in ["GET / HTTP/1.1", "INVITE sip:bob SIP/2.1", "SIP/2.0 2000 OK", "INVITE  sip:x SIP/2.0", ""] {
            #expect(!ProtocolDetector.isSIPStartLine(Array(line.utf8)), "\(line)")
        }
        #expect(ProtocolDetector.mediaKind(CraftedSessions.rtp(sequence: 1)[...], ports: (18000, 10000)) == .rtp)
        let report: [UInt8] = [0x81, 200] + [UInt8](repeating: 0, count: 26)
        #expect(ProtocolDetector.mediaKind(report[...], ports: (18001, 10001)) == .rtcp)
        #expect(ProtocolDetector.mediaKind(CraftedSessions.rtp(sequence: 1)[...], ports: (53, 10000)) == nil)
        #expect(ProtocolDetector.mediaKind(Array("TEST\0".utf8)[...], ports: (27942, 27942)) == nil)
    }
}
