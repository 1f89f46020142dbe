import AlgateRewrite
import NIOCore

/// Replays the SIP signalling between two hosts through the gateway's own engine (`SIPGatewayStateMachine`, driven
/// as the SIP listener drives it), as if the chosen side were behind NAT, and writes the session's report.
///
/// The engine is a proxy in reverse mode: its upstream is the capture's server (the receiver of the first request),
/// its outside the client. A captured message from the server is what the server sent to the *client*; had the
/// gateway been there, the server would have answered the gateway's rewritten messages instead. So before a
/// message from either side goes in, the replay substitutes what the gateway itself changed, and nothing else:
/// - a response gets the Via header fields of the request as the gateway forwarded it (RFC 3261 8.2.6.2: a UAS
///   copies them), so the engine finds its own Via on top, as it would live;
/// - a request from the server gets, as Request-URI, the contact the gateway gave the server in place of the
///   client's (its `;algate=` mapping), as a server that had seen the rewritten Contact would have sent.
/// A response for which no forwarded request exists (the gateway refused it, or the capture lacks it) goes in
/// unchanged, and the engine drops it, as it would live.
struct SIPReplaySession {
    let transport: SIPTransport
    let client: Endpoint
    let server: Endpoint
    var report: ReplaySession
    var predicted: [PredictedPinhole] = []
    /// Every address the session's SDP named, for attributing media flows to it.
    private(set) var mediaAddresses: Set<IPAddress> = []
    private var machine: SIPGatewayStateMachine
    private let limits: SIPLimits
    private let keepsBytes: Bool
    private let captureStart: Double
    private var nextPort: UInt16
    /// Via field lines of each forwarded request, by Call-ID, CSeq and the original top branch.
    private var forwardedVias: [String: [UInt8]] = [:]
    private var forwardedOrder: [String] = []
    /// The client's contact URIs as captured -> as the gateway gave them to the server.
    private var mappedContacts: [[UInt8]: [UInt8]] = [:]
    /// Engine relay id -> index in the report's pinholes.
    private var relayIndex: [UInt64: Int] = [:]
    private var keepAlives = 0
    private static let maxRemembered = 4096

    init(id: Int, transport: SIPTransport, client: Endpoint, server: Endpoint, detectedBy: String, firstFrame: Int,
         settings: ReplaySettings, captureStart: Double) {
        self.transport = transport
        self.client = Endpoint(address: client.address.unmapped, port: client.port)
        self.server = Endpoint(address: server.address.unmapped, port: server.port)
        self.limits = settings.sipLimits
        self.keepsBytes = settings.keepsMessageBytes
        self.captureStart = captureStart
        self.nextPort = settings.firstPort
        // Server behind NAT (reverse mode): outside is told A, the server is told the address it saw the client at.
        // Client behind NAT: the server is told A, the client is told the address it reached the server at. The
        // gateway's port towards the server is the client's over UDP (phones send from the port they listen on) and
        // the SIP service port over TCP (a client's TCP port is an ephemeral one nobody can connect to).
        let context = SIPGatewayContext(
            publicAddress: settings.side == .server ? settings.publicAddress : self.server.address,
            publicPort: self.server.port,
            insideAddress: settings.side == .server ? self.client.address : settings.publicAddress,
            insidePort: transport == .udp ? self.client.port : self.server.port,
            upstream: self.server)
        machine = SIPGatewayStateMachine(context: context, limits: settings.sipLimits)
        report = ReplaySession(id: id, protocol: .sip, transport: transport.rawValue, detectedBy: detectedBy,
                               client: "\(self.client)", server: "\(self.server)", firstFrame: firstFrame)
    }

    /// Whether a message from `source` comes from the server's side.
    func isFromServer(_ source: Endpoint) -> Bool {
        let address = source.address.unmapped
        if address == server.address, source.port == server.port { return true }
        if address == client.address, source.port == client.port { return false }
        return address == server.address && address != client.address
    }

    /// Takes a keep-alive (line ends only): not a message; counted.
    mutating func keepAlive() {
        keepAlives += 1
    }

    /// Takes one message (a datagram, or one framed from a TCP stream).
    mutating func receive(_ bytes: [UInt8], source: Endpoint, connection: Int?, frame: Int, time: Double) {
        let side: SIPSide = isFromServer(source) ? .inside : .outside
        let flow = SIPFlow(transport: transport, remote: Endpoint(address: source.address.unmapped, port: source.port),
                           connection: connection.map { UInt64($0) })
        let index = report.messages.count
        let startLine = bytes.split(separator: 0x0a, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        report.messages.append(ReplaySession.Message(frame: frame, time: ReplayText.rounded(time - captureStart),
                                                     from: side == .inside ? "server" : "client",
                                                     text: ReplayText.line(startLine), bytes: bytes.count))
        if keepsBytes { report.messages[index].raw = bytes }
        let captured = ByteBuffer(bytes: bytes)
        let parsed = try? SIPMessage.parse(captured, limits: limits)
        var fed = captured
        var unmatchedResponse = false
        if let parsed {
            remember(parsed)
            (fed, unmatchedResponse) = substitute(parsed, side: side)
        }
        machine.receive(fed, from: flow, side: side, now: time - captureStart)
        while let action = machine.nextAction() {
            perform(action, parsed: parsed, flow: flow, index: index, frame: frame, time: time,
                    unmatchedResponse: unmatchedResponse)
        }
    }

    /// A header section the TCP framing refused (missing or bad Content-Length): the proxy answers it 400 itself,
    /// without the engine, and follows the stream after it.
    mutating func refusedFraming(_ header: [UInt8], _ error: SIPParseError, source: Endpoint, frame: Int,
                                 time: Double) {
        let startLine = header.split(separator: 0x0a, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        report.messages.append(ReplaySession.Message(frame: frame, time: ReplayText.rounded(time - captureStart),
                                                     from: isFromServer(source) ? "server" : "client",
                                                     text: ReplayText.line(startLine), bytes: header.count))
        let answered = SIPResponseBuilder.badRequest(ByteBuffer(bytes: header), explanation: error.explanation) != nil
        streamProblem(error.explanation, action: answered ? "answered 400; the stream goes on after its header"
                      : "dropped; the stream goes on after its header", frame: frame)
    }

    /// A framing problem on a TCP stream (as the proxy's SIP decoder reports it).
    mutating func streamProblem(_ problem: String, action: String, frame: Int?) {
        report.errors.append(ReplaySession.Problem(message: report.messages.isEmpty ? nil : report.messages.count - 1,
                                                   frame: frame, problem: problem, action: action))
    }

    mutating func finish() {
        if keepAlives > 0 {
            report.notes.append("\(keepAlives) keep-alive(s) (line ends only) not counted as messages")
        }
    }

    // MARK: Substitution

    private static func viaKey(_ message: SIPMessage) -> String? {
        guard let cseq = message.cseq, !message.vias.isEmpty else { return nil }
        return "\(message.callID)|\(cseq.number) \(cseq.method)|\(message.topVia.branch ?? "")"
    }

    /// Notes the SDP addresses of a message, for attributing media flows.
    private mutating func remember(_ message: SIPMessage) {
        guard let range = try? SIPMultipart.sdpBody(of: message, limits: limits) else { return }
        let sdp: SDPSessionDescription? = message.bytes.withUnsafeReadableBytes { raw in
            try? SDPSessionDescription.parse(UnsafeRawBufferPointer(rebasing: raw[range]))
        }
        guard let sdp else { return }
        for media in sdp.media {
            if let address = sdp.connectionAddress(of: media) { mediaAddresses.insert(address.unmapped) }
        }
    }

    /// What the peer would have sent had it talked to the gateway; and whether a response found no forwarded request.
    private func substitute(_ message: SIPMessage, side: SIPSide) -> (ByteBuffer, Bool) {
        var editor = SIPMessageEditor(message)
        var unmatched = false
        if !message.isRequest {
            if let key = Self.viaKey(message), let vias = forwardedVias[key] {
                let fields = message.fields(.via)
                if let first = fields.first {
                    editor.replace(first.lineRange, with: vias)
                    for field in fields.dropFirst() { editor.removeRange(field.lineRange) }
                }
            } else {
                unmatched = true
            }
        } else if side == .inside, let range = message.requestURIRange {
            if let mapped = mappedContacts[message.byteArray(range)] { editor.replace(range, with: mapped) }
        }
        return (editor.build(), unmatched)
    }

    /// Learns from a message the gateway forwarded: its Via fields (for the responses to come) and the contacts it
    /// gave the server.
    private mutating func learn(original: SIPMessage, sent: ByteBuffer, towardsServer: Bool) {
        var bigger = limits
        bigger.maxMessageBytes += 8192
        bigger.maxHeaderBytes += 8192
        guard let forwarded = try? SIPMessage.parse(sent, limits: bigger) else { return }
        if original.isRequest, let key = Self.viaKey(original) {
            var lines: [UInt8] = []
            for field in forwarded.fields(.via) { lines.append(contentsOf: forwarded.byteArray(field.lineRange)) }
            if forwardedVias.updateValue(lines, forKey: key) == nil {
                forwardedOrder.append(key)
                if forwardedOrder.count > Self.maxRemembered { forwardedVias[forwardedOrder.removeFirst()] = nil }
            }
        }
        if towardsServer {
            for (mine, theirs) in zip(original.contacts, forwarded.contacts)
                where mappedContacts.count < Self.maxRemembered {
                mappedContacts[original.byteArray(mine.uriRange)] = forwarded.byteArray(theirs.uriRange)
            }
        }
    }

    // MARK: Actions

    private mutating func perform(_ action: SIPGatewayAction, parsed: SIPMessage?, flow: SIPFlow, index: Int,
                                  frame: Int, time: Double, unmatchedResponse: Bool) {
        switch action {
        case .send(let bytes, let to):
            if to.remote == flow.remote, to.connection == flow.connection {
                return  // the gateway's own answer to the sender; the refusal event says what and why
            }
            guard let parsed else { return }
            learn(original: parsed, sent: bytes, towardsServer: to.remote == server)
            recordRewrite(parsed, sent: bytes, index: index, frame: frame)
        case .openMedia(let request):
            let outsidePort = nextPort
            let insidePort = nextPort &+ 2
            nextPort = nextPort > 65_000 ? 40000 : nextPort + 4
            machine.mediaOpened(id: request.id, outsidePort: outsidePort, insidePort: insidePort)
            let targets = Self.endpoints(request.outsidePeer, request.outsideRTCPPort)
                + Self.endpoints(request.insidePeer, request.insideRTCPPort)
            relayIndex[request.id] = report.pinholes.count
            let id = report.pinholes.count + 1
            report.pinholes.append(ReplaySession.Pinhole(
                id: id, message: index, frame: frame, kind: "media", ports: [Int(outsidePort), Int(insidePort)],
                admits: "\(request.outsideAllowed)", relaysTo: targets.map(\.description)))
            predicted.append(PredictedPinhole(id: id, targets: Set(targets), peer: nil, time: time))
        case .updateMedia(let id, let outsidePeer, let outsideRTCP, let insidePeer, let insideRTCP):
            guard let position = relayIndex[id] else { return }
            let targets = Self.endpoints(outsidePeer, outsideRTCP) + Self.endpoints(insidePeer, insideRTCP)
            for target in targets where !report.pinholes[position].relaysTo.contains(target.description) {
                report.pinholes[position].relaysTo.append(target.description)
                predicted[position].targets.insert(target)
            }
        case .closeMedia(let id):
            if let position = relayIndex[id] {
                report.pinholes[position].closed = true
                predicted[position].closedTime = time
            }
        case .report(let event):
            switch event {
            case .refused(let reason, _, let answered):
                var problem = reason
                if unmatchedResponse, parsed?.isRequest == false {
                    problem += " (no request the gateway forwarded matches it: the server never saw its request "
                        + "through the gateway)"
                }
                report.errors.append(ReplaySession.Problem(message: index, frame: frame, problem: problem,
                                                           action: answered.map { "answered \($0)" } ?? "dropped"))
            case .binding(let aor, let bound, let expires):
                report.notes.append("frame \(frame): binding \(aor) -> \(bound) for \(expires) s")
            case .media(let callID, let what):
                report.notes.append("frame \(frame): media of \(callID): \(what)")
            case .forwarded:
                break
            }
        }
    }

    /// Media endpoints of one side of a relay: RTP, and RTCP (a=rtcp, or the next port up).
    private static func endpoints(_ peer: Endpoint?, _ rtcp: UInt16?) -> [Endpoint] {
        guard let peer else { return [] }
        let normalized = Endpoint(address: peer.address.unmapped, port: peer.port)
        return [normalized, Endpoint(address: normalized.address, port: rtcp ?? (peer.port &+ 1))]
    }

    /// Lists the lines the gateway changed, removed or added (a multiset difference, in order).
    private mutating func recordRewrite(_ original: SIPMessage, sent: ByteBuffer, index: Int, frame: Int) {
        let before = ReplayText.lines(original.bytes.readableBytesView)
        let after = ReplayText.lines(sent.readableBytesView)
        guard before != after else { return }
        var remaining: [String: Int] = [:]
        for line in after { remaining[line, default: 0] += 1 }
        var removed: [String] = []
        for line in before {
            if let count = remaining[line], count > 0 { remaining[line] = count - 1 } else { removed.append(line) }
        }
        var left: [String: Int] = [:]
        for line in before { left[line, default: 0] += 1 }
        var added: [String] = []
        for line in after {
            if let count = left[line], count > 0 { left[line] = count - 1 } else { added.append(line) }
        }
        guard !removed.isEmpty || !added.isEmpty else { return }
        report.rewrites.append(ReplaySession.Rewrite(message: index, frame: frame,
                                                     from: report.messages[index].from,
                                                     before: removed.joined(separator: "\n"),
                                                     after: added.joined(separator: "\n")))
    }
}
