import AlgateReplay
import AlgateRewrite
import NIOCore

/// One stand-in peer of a live SIP replay playing its side of the captured messages in order: it sends its own
/// messages (made coherent with the live run, see ``LiveSIPSession``) and waits for each of the other side's to
/// arrive through the gateway before going on.
struct LiveSIPPlayer: Sendable {
    let side: LiveMediaBook.Side
    let script: [ReplaySession.Message]
    let peer: LiveSIPPeer
    let map: LiveSIPText.AddressMap
    /// The other side's map: the Via fields of a response are that side's own, in its addresses.
    let peerMap: LiveSIPText.AddressMap
    let media: LiveMediaBook
    let progress: LivePlayProgress

    private var name: String { side == .client ? "client" : "server" }

    /// What this player learned from the messages it received.
    private struct Memory {
        /// Via field lines of each received request, by Call-ID and CSeq: a response carries them back.
        var vias: [String: [UInt8]] = [:]
        /// The client's contact URIs as captured -> as they reached this (server) side through the gateway.
        var contacts: [[UInt8]: [UInt8]] = [:]
    }

    func play() async -> LiveSIPSession.Side {
        defer { progress.done(side: side, through: Int.max) }
        var result = LiveSIPSession.Side()
        var memory = Memory()
        var arrivals = peer.arrivals.makeAsyncIterator()
        for (index, message) in script.enumerated() {
            defer { progress.done(side: side, through: index) }
            if message.from == name {
                guard let raw = message.raw else { continue }
                let captured = try? SIPMessage.parse(ByteBuffer(bytes: raw))
                if let captured, Self.endsMedia(captured) {
                    // The call's media goes before it may end, through the relays both sides were told of: once the
                    // other side has everything sent before.
                    await progress.wait(side: side == .client ? .server : .client, through: index - 1)
                    await media.exchange(callID: captured.callID)
                }
                do {
                    let (bytes, baseline) = try await prepare(raw, captured: captured, memory: memory)
                    result.sent[index] = bytes
                    result.baseline[index] = baseline
                    liveTrace("\(name) -> \(LiveSIPPlayer.startLine(bytes))")
                    try await peer.send(bytes)
                } catch {
                    result.problems.append("\(name): sending message \(index) (\(message.text)): \(error)")
                }
                continue
            }
            var deadline = peer.expect(index, within: LiveSIPSession.messageTimeout)
            waiting: while true {
                guard let arrival = await arrivals.next() else {
                    result.problems.append("\(name): the connection closed before message \(index) (\(message.text))")
                    deadline.cancel()
                    return result
                }
                switch arrival {
                case .deadline(let expected):
                    guard expected == index else { continue waiting }
                    // The time counts from when the other side sent it (it may still be carrying media).
                    if !progress.isDone(side: side == .client ? .server : .client, through: index) {
                        deadline = peer.expect(index, within: LiveSIPSession.messageTimeout)
                        continue waiting
                    }
                    result.problems.append("\(name): message \(index) (\(message.text)) did not arrive within "
                                           + "\(LiveSIPSession.messageTimeout.nanoseconds / 1_000_000_000) s")
                    break waiting
                case .message(let bytes):
                    deadline.cancel()
                    liveTrace("\(name) <- \(LiveSIPPlayer.startLine(bytes))")
                    let got = LiveSIPText.kind(LiveSIPPlayer.startLine(bytes))
                    if got != LiveSIPText.kind(message.text) {
                        result.problems.append("\(name): message \(index) should be \(message.text), "
                                               + "\(LiveSIPPlayer.startLine(bytes)) came")
                    }
                    result.received[index] = bytes
                    learn(from: bytes, captured: message.raw, memory: &memory)
                    break waiting
                }
            }
        }
        return result
    }

    /// BYE, CANCEL and a final error response to an INVITE close a call's media relays.
    static func endsMedia(_ message: SIPMessage) -> Bool {
        if let method = message.method { return method == "BYE" || method == "CANCEL" }
        return (message.statusCode ?? 0) >= 300 && message.cseq?.method == "INVITE"
    }

    static func startLine(_ bytes: ByteBuffer) -> String {
        let view = bytes.readableBytesView
        let end = view.firstIndex(of: 0x0a) ?? view.endIndex
        return String(decoding: view[..<end], as: UTF8.self).trimmingLineEnd
    }

    // MARK: Sending

    /// The captured message as this side sends it live, and as the capture has it in live addresses (what the
    /// other side would get without a gateway, to tell what the gateway changed).
    private func prepare(_ captureBytes: [UInt8], captured: SIPMessage?,
                         memory: Memory) async throws -> (ByteBuffer, ByteBuffer) {
        // SDP: each media line gets this side's own RTP socket on the address the line names (after substitution).
        var ports: [Int: Int] = [:]
        // The message as the parser sees it: without leading line ends, and without what a shorter Content-Length
        // leaves out of a datagram.
        let raw = captured.map { Array($0.bytes.readableBytesView) } ?? captureBytes
        let bodyRange = captured?.body ?? ((LiveSIPText.bodyStart(raw) ?? raw.count)..<raw.count)
        let body = LiveSIPText.substitute(Array(raw[bodyRange]), map: map)
        if let lines = LiveSIPText.mediaLines(body), let callID = captured?.callID {
            for line in lines where line.port > 0 {
                guard let address = line.address, let parsed = IPAddress(address), case .v4 = parsed,
                      address.hasPrefix("127.") else { continue }
                let socket = try await media.socket(side: side, host: address, capturedPort: line.port)
                ports[line.index] = socket.port
                media.announce(side: side, callID: callID, line: line.index, socket: socket,
                               payloadType: line.payloadType)
            }
        }
        let rewritten = LiveSIPText.rewrite(raw, map: map, ports: ports, body: bodyRange)
        let buffer = ByteBuffer(bytes: rewritten)
        let baseline = captured?.isRequest == false
            ? ByteBuffer(bytes: LiveSIPText.rewrite(raw, map: map, ports: ports, viaMap: peerMap,
                                                         body: bodyRange)) : buffer
        guard let message = try? SIPMessage.parse(buffer) else { return (buffer, baseline) }
        var editor = SIPMessageEditor(message)
        if message.isRequest {
            // A request from the server to the client's contact goes to the contact the gateway gave the server.
            if side == .server, let captured, let capturedURI = captured.requestURIRange,
               let mapped = memory.contacts[captured.byteArray(capturedURI)], let range = message.requestURIRange {
                editor.replace(range, with: mapped)
            }
        } else if let key = Self.transactionKey(message), let vias = memory.vias[key] {
            // A response carries the Via fields of its request as this side received it.
            let fields = message.fields(.via)
            if let first = fields.first {
                editor.replace(first.lineRange, with: vias)
                for field in fields.dropFirst() { editor.removeRange(field.lineRange) }
            }
        }
        return (editor.build(), baseline)
    }

    // MARK: Receiving

    private func learn(from bytes: ByteBuffer, captured raw: [UInt8]?, memory: inout Memory) {
        guard let message = try? SIPMessage.parse(bytes) else { return }
        if message.isRequest, let key = Self.transactionKey(message) {
            var lines: [UInt8] = []
            for field in message.fields(.via) { lines += message.byteArray(field.lineRange) }
            memory.vias[key] = lines
        }
        if side == .server, let raw, let captured = try? SIPMessage.parse(ByteBuffer(bytes: raw)) {
            for (mine, theirs) in zip(captured.contacts, message.contacts) {
                memory.contacts[captured.byteArray(mine.uriRange)] = message.byteArray(theirs.uriRange)
            }
        }
        let body = message.byteArray(message.body)
        if let lines = LiveSIPText.mediaLines(body) {
            media.learn(side: side, callID: message.callID, lines: lines)
        }
    }

    private static func transactionKey(_ message: SIPMessage) -> String? {
        guard let cseq = message.cseq else { return nil }
        return "\(message.callID)|\(cseq.number) \(cseq.method)"
    }
}
