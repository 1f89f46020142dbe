import AlgateRewrite

/// The replay itself, Sans-IO: frames in, a ``ReplayReport`` out.
///
/// Each frame goes down the stack (link layer, IPv4/IPv6 with fragment reassembly, tunnels: IP-in-IP, GRE,
/// ERSPAN, VXLAN, up to ``TunnelDecoder/maxDepth`` deep; TCP or UDP). TCP connections are reassembled while
/// somebody may need their bytes: FTP control connections (port 21, or a responder whose first bytes are a `220`
/// greeting) and SIP streams (port 5060/5061, or an initiator whose first line is a SIP start line) are
/// interpreted. A connection the capture shows without its handshake is judged on what each direction holds:
/// SIP when either has a line that starts a SIP message (the stream is then read from there), FTP when one side's
/// first line is a reply and the other's are FTP commands. Every other connection is only counted, as a possible
/// data connection. UDP flows on 5060/5061, or whose first datagram starts with a SIP start line, are SIP; the
/// others are counted, and recognised as RTP/RTCP where they look like it. Each control session runs through the
/// gateway's engine as it goes; ``finish(file:compressed:linkType:truncation:)`` ends the streams, checks every
/// data connection and media flow against the pinholes the engine predicted, and writes the report.
public struct CaptureAnalyzer {
    /// Who is behind NAT, the public address, and the limits.
    public let settings: ReplaySettings

    private struct PendingClassification {
        var held: [TCPStreamEvent] = []
        var heldBytes = 0
        var prefixes: [[UInt8]] = [[], []]
        var firstData: TCPDirection?
        /// No SYN was seen: either direction may start anywhere, and either side may be the client.
        var midStream = false
    }

    private enum ConnectionRole {
        case undecided(PendingClassification)
        case ftp(Int)
        case sipStream(Int)
        case other
    }

    private struct SIPStreamState {
        var connectionID: Int
        var detectedBy: String
        var splitters: [SIPStreamSplitter]
        var stopped = false
    }

    private enum UDPKind {
        case sip(String)
        case media(ProtocolDetector.MediaKind)
        case other
    }

    private struct UDPFlowRecord {
        var first: Endpoint
        var second: Endpoint
        var firstFrame: Int
        var firstTime: Double
        var kind: UDPKind
        /// The first payloads each way (first -> second, second -> first), when the settings keep them.
        var forward: [[UInt8]] = []
        var backward: [[UInt8]] = []
    }

    private var captureStart: Double?
    /// Frames taken so far.
    public private(set) var frames = 0
    private var fragments = IPFragmentReassembler()
    private var summary = ReplayCaptureSummary()
    private var undecodable: [String: (count: Int, firstFrame: Int)] = [:]
    private var connectionIndex: [FlowKey: Int] = [:]
    private var connections: [TCPConnection] = []
    private var roles: [ConnectionRole] = []
    private var udpIndex: [FlowKey: Int] = [:]
    private var udpFlows: [UDPFlowRecord] = []
    private var untrackedFlows = 0
    private var ftpSessions: [FTPReplaySession] = []
    private var sipSessions: [SIPReplaySession] = []
    private var sipSessionIndex: [HostPairKey: Int] = [:]
    private var sipStreams: [SIPStreamState] = []
    private var droppedSessions = 0

    /// An analyzer that has seen no frame yet.
    public init(settings: ReplaySettings) {
        self.settings = settings
    }

    // MARK: Frames

    /// Takes the next frame of the capture.
    public mutating func receive(_ frame: CapturedFrame) {
        frames += 1
        if captureStart == nil { captureStart = frame.timestamp }
        switch LinkLayerDecoder.networkPayload(frame.bytes[...], linkType: frame.linkType) {
        case .notIP:
            summary.nonIPFrames += 1
        case .malformed(let reason):
            markUndecodable(reason, frame: frame.number)
        case .ip(let bytes):
            handleIP(bytes, frame: frame.number, time: frame.timestamp, depth: 0)
        }
    }

    private mutating func markUndecodable(_ reason: String, frame: Int) {
        summary.undecodableFrames += 1
        if let known = undecodable[reason] {
            undecodable[reason] = (known.count + 1, known.firstFrame)
        } else if undecodable.count < 32 {
            undecodable[reason] = (1, frame)
        }
    }

    private mutating func handleIP(_ bytes: ArraySlice<UInt8>, frame: Int, time: Double, depth: Int) {
        switch IPDecoder.decode(bytes) {
        case .datagram(let datagram):
            handleDatagram(datagram, frame: frame, time: time, depth: depth)
        case .fragment(let fragment):
            guard let (next, payload) = fragments.add(fragment, frame: frame, time: time) else { return }
            summary.reassembledDatagrams = fragments.reassembled
            let key = fragment.key
            if key.isIPv6 {
                let inner = IPDecoder.walkIPv6(next: next, payload: payload[...], missing: 0, source: key.source,
                                               destination: key.destination)
                if case .datagram(let datagram) = inner {
                    handleDatagram(datagram, frame: frame, time: time, depth: depth)
                }
            } else {
                let datagram = IPDatagram(source: key.source, destination: key.destination, protocolNumber: next,
                                          payload: payload[...], missingBytes: 0)
                handleDatagram(datagram, frame: frame, time: time, depth: depth)
            }
        case .ignored:
            summary.nonIPFrames += 1
        case .malformed(let reason):
            markUndecodable(reason, frame: frame)
        }
    }

    private mutating func handleDatagram(_ datagram: IPDatagram, frame: Int, time: Double, depth: Int) {
        switch datagram.protocolNumber {
        case 6:
            guard let segment = TCPSegment.decode(datagram.payload, missing: datagram.missingBytes) else {
                markUndecodable("TCP header truncated", frame: frame)
                return
            }
            handleTCP(segment, source: Endpoint(address: datagram.source.unmapped, port: segment.sourcePort),
                      destination: Endpoint(address: datagram.destination.unmapped, port: segment.destinationPort),
                      frame: frame, time: time)
        case 17:
            guard let udp = UDPDatagram.decode(datagram.payload, missing: datagram.missingBytes) else {
                markUndecodable("UDP header truncated", frame: frame)
                return
            }
            if udp.destinationPort == TunnelDecoder.vxlanPort {
                // The outer flow is the tunnel, not a flow of the capture's sessions: it is not counted as one.
                decapsulate("VXLAN", TunnelDecoder.vxlan(udp.payload), frame: frame, time: time, depth: depth)
                return
            }
            handleUDP(udp, source: Endpoint(address: datagram.source.unmapped, port: udp.sourcePort),
                      destination: Endpoint(address: datagram.destination.unmapped, port: udp.destinationPort),
                      frame: frame, time: time)
        case 4:
            decapsulate("IPv4-in-IP", .ip(datagram.payload), frame: frame, time: time, depth: depth)
        case 41:
            decapsulate("IPv6-in-IP", .ip(datagram.payload), frame: frame, time: time, depth: depth)
        case 47:
            let (kind, inner) = TunnelDecoder.gre(datagram.payload)
            decapsulate(kind, inner, frame: frame, time: time, depth: depth)
        default:
            break
        }
    }

    /// Goes on with the packet inside a tunnel header, counting it by kind; or counts (by reason) and reports a
    /// tunnel that cannot be read past, so that it never just silently yields no flows.
    private mutating func decapsulate(_ kind: String, _ inner: Decapsulated, frame: Int, time: Double, depth: Int) {
        var notDecodable: String? = nil
        if case .notDecodable(let reason) = inner { notDecodable = reason }
        if depth >= TunnelDecoder.maxDepth {
            notDecodable = "tunnels nested more than \(TunnelDecoder.maxDepth) deep"
        }
        if let notDecodable {
            summary.notDecapsulated[notDecodable, default: 0] += 1
            markUndecodable(notDecodable, frame: frame)
            return
        }
        summary.decapsulated[kind, default: 0] += 1
        switch inner {
        case .ip(let packet):
            handleIP(packet, frame: frame, time: time, depth: depth + 1)
        case .ethernet(let bytes):
            switch LinkLayerDecoder.networkPayload(bytes, linkType: .ethernet) {
            case .notIP:
                summary.nonIPFrames += 1
            case .malformed(let reason):
                markUndecodable("\(kind): inner \(reason)", frame: frame)
            case .ip(let packet):
                handleIP(packet, frame: frame, time: time, depth: depth + 1)
            }
        case .notDecodable:
            break
        }
    }

    // MARK: TCP

    private mutating func handleTCP(_ segment: TCPSegment, source: Endpoint, destination: Endpoint, frame: Int,
                                    time: Double) {
        let key = FlowKey(source, destination)
        var id = connectionIndex[key]
        if let existing = id, segment.isSYN, !segment.hasACK,
           connections[existing].isClosed || time - connections[existing].lastTime > 120 {
            id = nil  // the same addresses and ports again: a new connection
        }
        if id == nil {
            guard connections.count < settings.maxFlows else {
                untrackedFlows += 1
                return
            }
            id = openConnection(segment, source: source, destination: destination, frame: frame, time: time)
            connectionIndex[key] = id
        }
        guard let id else { return }
        let events = connections[id].receive(segment, from: source, frame: frame, time: time)
        route(events, connection: id)
    }

    private mutating func openConnection(_ segment: TCPSegment, source: Endpoint, destination: Endpoint, frame: Int,
                                         time: Double) -> Int {
        let initiator: Endpoint
        let responder: Endpoint
        if segment.isSYN {
            (initiator, responder) = segment.hasACK ? (destination, source) : (source, destination)
        } else {
            // Mid-connection: the side on a well-known port is the responder; otherwise the first receiver.
            let wellKnown: (UInt16) -> Bool = { $0 < 1024 || ProtocolDetector.sipPorts.contains($0) }
            if wellKnown(source.port), !wellKnown(destination.port) {
                (initiator, responder) = (destination, source)
            } else {
                (initiator, responder) = (source, destination)
            }
        }
        let id = connections.count
        connections.append(TCPConnection(
            id: id, initiator: initiator, responder: responder, frame: frame, time: time,
            knowsInitiator: segment.isSYN,
            reassembly: .init(maxBufferedBytes: settings.maxTCPBufferedBytes),
            maxHeldBytes: settings.maxTCPBufferedBytes))
        summary.tcpConnections += 1
        roles.append(.other)
        let role: ConnectionRole
        if responder.port == ProtocolDetector.ftpPort {
            role = startFTP(id, clientDirection: .fromInitiator, detectedBy: "port 21")
        } else if ProtocolDetector.sipPorts.contains(responder.port) {
            role = startSIPStream(id, detectedBy: "port \(responder.port)")
        } else {
            role = .undecided(PendingClassification(midStream: !connections[id].knowsInitiator))
        }
        roles[id] = role
        if case .other = role { connections[id].stopInterpreting() }
        return id
    }

    private var sessionCount: Int { ftpSessions.count + sipSessions.count }

    private mutating func startFTP(_ id: Int, clientDirection: TCPDirection, detectedBy: String) -> ConnectionRole {
        guard sessionCount < settings.maxSessions else {
            droppedSessions += 1
            return .other
        }
        let connection = connections[id]
        let (client, server) = clientDirection == .fromInitiator
            ? (connection.initiator, connection.responder) : (connection.responder, connection.initiator)
        ftpSessions.append(FTPReplaySession(
            id: 0, connectionID: id, client: client, server: server, clientDirection: clientDirection,
            detectedBy: detectedBy, firstFrame: connection.firstFrame, startsMidStream: !connection.knowsInitiator,
            settings: settings, captureStart: captureStart ?? connection.firstTime))
        return .ftp(ftpSessions.count - 1)
    }

    private mutating func startSIPStream(_ id: Int, detectedBy: String) -> ConnectionRole {
        // Without the handshake, neither direction is known to start at a message boundary.
        let resynchronizes = !connections[id].knowsInitiator
        let splitter = SIPStreamSplitter(limits: settings.sipLimits, resynchronizes: resynchronizes)
        sipStreams.append(SIPStreamState(connectionID: id, detectedBy: detectedBy, splitters: [splitter, splitter]))
        return .sipStream(sipStreams.count - 1)
    }

    private mutating func route(_ events: [TCPStreamEvent], connection id: Int) {
        for event in events {
            switch roles[id] {
            case .ftp(let session):
                ftpSessions[session].receive(event)
            case .sipStream(let stream):
                handleSIPStream(event, stream: stream)
            case .other:
                return
            case .undecided(var pending):
                switch event {
                case .data(let direction, let bytes, _, _):
                    if pending.firstData == nil { pending.firstData = direction }
                    if pending.prefixes[direction.rawValue].count < 8192 {
                        pending.prefixes[direction.rawValue].append(contentsOf: bytes.prefix(8192))
                    }
                    pending.heldBytes += bytes.count
                case .end, .gap:
                    break
                }
                pending.held.append(event)
                roles[id] = .undecided(pending)
                classify(id, final: false)
            }
        }
    }

    /// Decides what an undecided connection is from its first bytes; `final` when no more will come.
    private mutating func classify(_ id: Int, final: Bool) {
        guard case .undecided(let pending) = roles[id] else { return }
        let ended = final || pending.held.contains { event in
            if case .data = event { return false }
            return true
        }
        var role: ConnectionRole? = nil
        if pending.midStream {
            role = classifyMidStream(id, pending, ended: ended)
        } else {
            switch pending.firstData {
            case nil:
                if ended { role = .other }
            case .fromResponder?:
                switch ProtocolDetector.isFTPGreeting(pending.prefixes[1]) {
                case true?: role = startFTP(id, clientDirection: .fromInitiator, detectedBy: "content (220 greeting)")
                case false?: role = .other
                case nil: if ended { role = .other }
                }
            case .fromInitiator?:
                let prefix = pending.prefixes[0]
                if let line = ProtocolDetector.firstLine(prefix) {
                    role = ProtocolDetector.isSIPStartLine(line)
                        ? startSIPStream(id, detectedBy: "content (SIP start line)") : .other
                } else if ended || prefix.count >= 8192 || pending.heldBytes > settings.maxTCPBufferedBytes {
                    role = .other
                }
            }
        }
        if role == nil, pending.heldBytes > settings.maxTCPBufferedBytes { role = .other }
        guard let role else { return }
        roles[id] = role
        if case .other = role {
            connections[id].stopInterpreting()
            return
        }
        route(pending.held, connection: id)
    }

    /// A connection first seen after its handshake: SIP when either direction holds the start of a SIP message
    /// (possibly after the rest of one), FTP when one side's first line is a reply and the other side's lines are
    /// FTP commands (one that only FTP has among them); nothing when a direction's first 8 KiB hold neither, or
    /// the connection ended first.
    private mutating func classifyMidStream(_ id: Int, _ pending: PendingClassification,
                                            ended: Bool) -> ConnectionRole? {
        let prefixes = pending.prefixes
        if prefixes.contains(where: ProtocolDetector.containsSIPMessageStart) {
            return startSIPStream(id, detectedBy: "content (SIP start line, mid-stream)")
        }
        for (replies, commands) in [(TCPDirection.fromResponder, TCPDirection.fromInitiator),
                                    (.fromInitiator, .fromResponder)] {
            guard let reply = ProtocolDetector.firstLine(prefixes[replies.rawValue]),
                  ProtocolDetector.isFTPReplyLine(reply),
                  ProtocolDetector.looksLikeFTPCommands(prefixes[commands.rawValue]) == true else { continue }
            return startFTP(id, clientDirection: commands, detectedBy: "content (FTP commands and replies, mid-stream)")
        }
        if ended || prefixes.contains(where: { $0.count >= 8192 }) { return .other }
        return nil
    }

    // MARK: SIP over TCP

    private mutating func handleSIPStream(_ event: TCPStreamEvent, stream index: Int) {
        guard !sipStreams[index].stopped else { return }
        let connection = connections[sipStreams[index].connectionID]
        switch event {
        case .data(let direction, let bytes, let frame, let time):
            let (source, destination) = direction == .fromInitiator
                ? (connection.initiator, connection.responder) : (connection.responder, connection.initiator)
            let (items, failure) = sipStreams[index].splitters[direction.rawValue].append(bytes)
            for item in items {
                switch item {
                case .message(let message):
                    guard let session = sipSession(.tcp, source: source, destination: destination, first: message,
                                                   detectedBy: sipStreams[index].detectedBy, frame: frame) else {
                        continue
                    }
                    sipSessions[session].receive(message, source: source, connection: connection.id, frame: frame,
                                                 time: time)
                case .keepAlive:
                    if let session = existingSIPSession(.tcp, source, destination) { sipSessions[session].keepAlive() }
                case .refused(let header, let error):
                    guard let session = sipSession(.tcp, source: source, destination: destination, first: header,
                                                   detectedBy: sipStreams[index].detectedBy, frame: frame) else {
                        continue
                    }
                    sipSessions[session].refusedFraming(header, error, source: source, frame: frame, time: time)
                }
            }
            if let failure {
                sipStreams[index].stopped = true
                if let session = sipSession(.tcp, source: source, destination: destination, first: nil,
                                            detectedBy: sipStreams[index].detectedBy, frame: frame) {
                    sipSessions[session].streamProblem(
                        "TCP stream from \(source) is not SIP at a message boundary: \(failure.explanation)",
                        action: "connection closed (as the proxy closes it); not interpreted further", frame: frame)
                }
            }
        case .end(let direction, let frame, _):
            let pending = sipStreams[index].splitters[direction.rawValue].pendingBytes
            let source = direction == .fromInitiator ? connection.initiator : connection.responder
            let destination = direction == .fromInitiator ? connection.responder : connection.initiator
            if pending > 0, let session = existingSIPSession(.tcp, source, destination) {
                sipSessions[session].streamProblem("\(pending) bytes of an incomplete message when the stream from "
                    + "\(source) ended", action: "not interpreted", frame: frame)
            }
        case .gap(let direction, let offset, let missing, let reason):
            sipStreams[index].stopped = true
            let source = direction == .fromInitiator ? connection.initiator : connection.responder
            let destination = direction == .fromInitiator ? connection.responder : connection.initiator
            if let session = existingSIPSession(.tcp, source, destination) {
                let size = missing.map { "\($0) bytes" } ?? "bytes"
                sipSessions[session].streamProblem("gap in the TCP stream from \(source): \(size) missing at offset "
                    + "\(offset) (\(reason))", action: "not interpreted further", frame: nil)
            }
        }
    }

    private func existingSIPSession(_ transport: SIPTransport, _ source: Endpoint, _ destination: Endpoint) -> Int? {
        sipSessionIndex[HostPairKey(transport: transport.rawValue, source.address, destination.address)]
    }

    /// The SIP session between these hosts, started with this message when there is none yet (nil past the limit).
    private mutating func sipSession(_ transport: SIPTransport, source: Endpoint, destination: Endpoint,
                                     first: [UInt8]?, detectedBy: String, frame: Int) -> Int? {
        if let existing = existingSIPSession(transport, source, destination) { return existing }
        guard sessionCount < settings.maxSessions else {
            droppedSessions += 1
            return nil
        }
        // The server is the party that receives the first request (or sends the first response).
        var serverIsDestination = true
        if let first {
            let line = ProtocolDetector.firstLine(first) ?? first[...]
            if line.starts(with: Array("SIP/2.0 ".utf8)) {
                serverIsDestination = false
            } else if !ProtocolDetector.isSIPStartLine(line) {
                serverIsDestination = !ProtocolDetector.sipPorts.contains(source.port)
                    || ProtocolDetector.sipPorts.contains(destination.port)
            }
        } else {
            serverIsDestination = ProtocolDetector.sipPorts.contains(destination.port)
        }
        let (client, server) = serverIsDestination ? (source, destination) : (destination, source)
        sipSessions.append(SIPReplaySession(id: 0, transport: transport, client: client, server: server,
                                            detectedBy: detectedBy, firstFrame: frame, settings: settings,
                                            captureStart: captureStart ?? 0))
        let index = sipSessions.count - 1
        sipSessionIndex[HostPairKey(transport: transport.rawValue, source.address, destination.address)] = index
        return index
    }

    // MARK: UDP

    private mutating func handleUDP(_ udp: UDPDatagram, source: Endpoint, destination: Endpoint, frame: Int,
                                    time: Double) {
        let key = FlowKey(source, destination)
        let payload = Array(udp.payload)
        let id: Int
        if let existing = udpIndex[key] {
            id = existing
        } else {
            guard udpFlows.count < settings.maxFlows else {
                untrackedFlows += 1
                return
            }
            let kind: UDPKind
            if let port = [destination.port, source.port].first(where: ProtocolDetector.sipPorts.contains) {
                kind = .sip("port \(port)")
            } else if ProtocolDetector.startsSIPMessage(payload) {
                kind = .sip("content (SIP start line)")
            } else if let media = ProtocolDetector.mediaKind(udp.payload, ports: (source.port, destination.port)) {
                kind = .media(media)
            } else {
                kind = .other
            }
            id = udpFlows.count
            udpFlows.append(UDPFlowRecord(first: source, second: destination, firstFrame: frame, firstTime: time,
                                          kind: kind))
            udpIndex[key] = id
            summary.udpFlows += 1
        }
        if case .media = udpFlows[id].kind, settings.keepsMessageBytes, udp.missingBytes == 0 {
            if source == udpFlows[id].first {
                if udpFlows[id].forward.count < settings.keptMediaPackets { udpFlows[id].forward.append(payload) }
            } else if udpFlows[id].backward.count < settings.keptMediaPackets {
                udpFlows[id].backward.append(payload)
            }
        }
        guard case .sip(let detectedBy) = udpFlows[id].kind else { return }
        if !payload.isEmpty, payload.allSatisfy({ $0 == 0x0d || $0 == 0x0a }) {
            if let session = existingSIPSession(.udp, source, destination) { sipSessions[session].keepAlive() }
            return
        }
        guard let session = sipSession(.udp, source: source, destination: destination, first: payload,
                                       detectedBy: detectedBy, frame: frame) else { return }
        if udp.missingBytes > 0 {
            sipSessions[session].streamProblem("datagram from \(source) cut short by the capture's snap length "
                + "(\(udp.missingBytes) bytes missing)", action: "not interpreted", frame: frame)
            return
        }
        sipSessions[session].receive(payload, source: source, connection: nil, frame: frame, time: time)
    }

    // MARK: Finish

    /// Ends the replay: the streams end, data flows are checked against the predictions, and the report is written.
    /// `truncation` is the reader's complaint when the file ended inside a record.
    public mutating func finish(file: String, compressed: Bool, linkType: LinkType,
                                truncation: String?) -> ReplayReport {
        fragments.finish()
        for id in connections.indices {
            route(connections[id].finish(), connection: id)
            if case .undecided = roles[id] { classify(id, final: true) }
        }
        for index in ftpSessions.indices {
            let connection = connections[ftpSessions[index].connectionID]
            ftpSessions[index].finish(midStream: connection.startsMidStream)
            ftpSessions[index].report.notes.append(contentsOf: Self.streamNotes(connection))
        }
        for index in sipSessions.indices { sipSessions[index].finish() }
        for stream in sipStreams {
            let connection = connections[stream.connectionID]
            if let session = existingSIPSession(.tcp, connection.initiator, connection.responder) {
                if !connection.knowsInitiator {
                    sipSessions[session].report.notes.append(Self.resynchronizationNote(stream, connection))
                }
                sipSessions[session].report.notes.append(contentsOf: Self.streamNotes(connection))
            }
        }
        checkDataFlows()

        var sessions = ftpSessions.map(\.report) + sipSessions.map(\.report)
        sessions.sort { $0.firstFrame < $1.firstFrame }
        for index in sessions.indices { sessions[index].id = index + 1 }

        summary.incompleteDatagrams = fragments.incompleteCount
        summary.reassembledDatagrams = fragments.reassembled
        var problems: [String] = []
        if let truncation { problems.append(truncation) }
        if !linkType.isSupported { problems.append("link type \(linkType) is not supported: no frame could be read") }
        for (reason, entry) in undecodable.sorted(by: { $0.value.firstFrame < $1.value.firstFrame }) {
            problems.append("\(entry.count) frame(s) not decoded: \(reason) (first: frame \(entry.firstFrame))")
        }
        for incomplete in fragments.incomplete.prefix(10) {
            problems.append("incomplete IP datagram \(incomplete.source) -> \(incomplete.destination) id "
                + "\(incomplete.identification) from frame \(incomplete.firstFrame): \(incomplete.reason) "
                + "(\(incomplete.bytesReceived) bytes received)")
        }
        if fragments.incompleteCount > 10 {
            problems.append("\(fragments.incompleteCount - 10) more incomplete IP datagrams")
        }
        if droppedSessions > 0 {
            problems.append("\(droppedSessions) session(s) past the limit of \(settings.maxSessions) not replayed")
        }
        if untrackedFlows > 0 {
            problems.append("\(untrackedFlows) packet(s) of flows past the limit of \(settings.maxFlows) not tracked")
        }
        // A SIP-port connection captured mid-stream in which no SIP message ever started has no session to hold
        // the complaint the proxy would have made: it goes here, so the skipped bytes are not silently lost.
        for stream in sipStreams {
            let connection = connections[stream.connectionID]
            let skipped = stream.splitters.reduce(0) { $0 + $1.skippedBytes }
            guard !connection.knowsInitiator, skipped > 0,
                  existingSIPSession(.tcp, connection.initiator, connection.responder) == nil else { continue }
            problems.append("TCP connection \(connection.initiator) <-> \(connection.responder) (frame "
                + "\(connection.firstFrame), \(stream.detectedBy), captured without its handshake): no SIP message "
                + "starts in its \(skipped) byte(s)")
        }
        return ReplayReport(file: file, compressed: compressed, linkType: linkType.description, frames: frames,
                            side: settings.side.rawValue, publicAddress: "\(settings.publicAddress)",
                            sessions: sessions, capture: summary, problems: problems, truncated: truncation != nil)
    }

    private static func resynchronizationNote(_ stream: SIPStreamState, _ connection: TCPConnection) -> String {
        let skipped = [TCPDirection.fromInitiator, .fromResponder].compactMap { direction -> String? in
            let bytes = stream.splitters[direction.rawValue].skippedBytes
            let who = direction == .fromInitiator ? connection.initiator : connection.responder
            return bytes > 0 ? "\(bytes) byte(s) from \(who)" : nil
        }
        return "the capture starts after the TCP connection did: each direction is read from its first SIP start "
            + "line" + (skipped.isEmpty ? "" : " (skipped before it: " + skipped.joined(separator: ", ") + ")")
    }

    private static func streamNotes(_ connection: TCPConnection) -> [String] {
        var notes: [String] = []
        for direction in [TCPDirection.fromInitiator, .fromResponder] {
            let (bytes, conflicting) = connection.retransmissions(direction)
            let who = direction == .fromInitiator ? connection.initiator : connection.responder
            if bytes > 0 { notes.append("\(bytes) retransmitted byte(s) from \(who) dropped") }
            if conflicting > 0 {
                notes.append("\(conflicting) retransmitted byte(s) from \(who) differed from the first copy; "
                    + "the first was kept")
            }
        }
        if connection.forcedOrder > 0 {
            notes.append("acknowledgment numbers contradicted the capture \(connection.forcedOrder) time(s); "
                + "capture order was used there")
        }
        return notes
    }

    // MARK: Data flows

    /// Attributes every other TCP connection (FTP data) and every RTP/RTCP flow (SIP media) to a session, and
    /// marks it covered when it falls into a pinhole the engine predicted.
    private mutating func checkDataFlows() {
        var unrelated = 0
        for (id, connection) in connections.enumerated() {
            guard case .other = roles[id] else { continue }
            if !assignFTPData(connection) { unrelated += 1 }
        }
        for flow in udpFlows {
            switch flow.kind {
            case .media(let kind):
                if !assignMedia(flow, kind: kind) { unrelated += 1 }
            case .other:
                unrelated += 1
            case .sip:
                break
            }
        }
        summary.unrelatedFlows = unrelated
        for index in ftpSessions.indices {
            let report = ftpSessions[index].report
            ftpSessions[index].report.dataFlows = ReplaySession.DataFlows(
                observed: report.flows.count, predicted: ftpSessions[index].predicted.count,
                covered: report.flows.filter { $0.coveredBy != nil }.count)
        }
        for index in sipSessions.indices {
            let report = sipSessions[index].report
            sipSessions[index].report.dataFlows = ReplaySession.DataFlows(
                observed: report.flows.count, predicted: sipSessions[index].predicted.count,
                covered: report.flows.filter { $0.coveredBy != nil }.count)
        }
    }

    /// A data connection goes to the first unused FTP pinhole that relays to its responder and admits its
    /// initiator (predicted before it started, if there is such a one); else to the FTP session between the same
    /// two hosts, uncovered. Returns false when no FTP session concerns it.
    private mutating func assignFTPData(_ connection: TCPConnection) -> Bool {
        var orientations = [(connection.initiator, connection.responder)]
        if !connection.knowsInitiator { orientations.append((connection.responder, connection.initiator)) }
        var best: (session: Int, pinhole: Int, late: Int, time: Double, from: Endpoint, to: Endpoint)? = nil
        for (sessionIndex, session) in ftpSessions.enumerated() {
            for (pinholeIndex, pinhole) in session.predicted.enumerated()
                where !pinhole.used && pinhole.isOpen(at: connection.firstTime) {
                for (from, to) in orientations where pinhole.targets.contains(to)
                    && (pinhole.peer.map { $0.isSameHost(as: from.address) } ?? true) {
                    let late = pinhole.time > connection.firstTime ? 1 : 0
                    if let current = best, (current.late, current.time) <= (late, pinhole.time) { continue }
                    best = (sessionIndex, pinholeIndex, late, pinhole.time, from, to)
                }
            }
        }
        if let best {
            ftpSessions[best.session].predicted[best.pinhole].used = true
            let id = ftpSessions[best.session].predicted[best.pinhole].id
            ftpSessions[best.session].report.flows.append(ReplaySession.Flow(
                transport: "tcp", from: "\(best.from)", to: "\(best.to)", frame: connection.firstFrame, kind: "data",
                coveredBy: id))
            if best.late == 1 {
                ftpSessions[best.session].report.notes.append("data connection of frame \(connection.firstFrame) "
                    + "started before the reply or command that announced it (capture order)")
            }
            return true
        }
        let hosts = Set([connection.initiator.address, connection.responder.address])
        let candidates = ftpSessions.indices.filter {
            Set([ftpSessions[$0].client.address, ftpSessions[$0].server.address]) == hosts
        }
        guard let chosen = candidates.last(where: {
            connections[ftpSessions[$0].connectionID].firstTime <= connection.firstTime
        }) ?? candidates.first else { return false }
        ftpSessions[chosen].report.flows.append(ReplaySession.Flow(
            transport: "tcp", from: "\(connection.initiator)", to: "\(connection.responder)",
            frame: connection.firstFrame, kind: "data", coveredBy: nil))
        return true
    }

    /// A media flow goes to the SIP session with a relay towards one of its endpoints; else to a session whose
    /// hosts or SDP addresses it touches, uncovered. Returns false when no SIP session concerns it.
    private mutating func assignMedia(_ flow: UDPFlowRecord, kind: ProtocolDetector.MediaKind) -> Bool {
        // The best relay: one predicted before the flow, then one naming both its ends, then the most recent.
        var best: (session: Int, pinhole: Int, rank: (Int, Int, Double))? = nil
        for (sessionIndex, session) in sipSessions.enumerated() {
            for (pinholeIndex, pinhole) in session.predicted.enumerated() where pinhole.isOpen(at: flow.firstTime) {
                let matched = [flow.first, flow.second].filter(pinhole.targets.contains).count
                guard matched > 0 else { continue }
                let rank = (pinhole.time > flow.firstTime ? 1 : 0, -matched, -pinhole.time)
                if let current = best, current.rank <= rank { continue }
                best = (sessionIndex, pinholeIndex, rank)
            }
        }
        let record = { (covered: Int?) in
            var entry = ReplaySession.Flow(transport: "udp", from: "\(flow.first)", to: "\(flow.second)",
                                           frame: flow.firstFrame, kind: kind.rawValue, coveredBy: covered)
            entry.forward = flow.forward
            entry.backward = flow.backward
            return entry
        }
        if let best {
            sipSessions[best.session].report.flows.append(record(sipSessions[best.session].predicted[best.pinhole].id))
            return true
        }
        let addresses = [flow.first.address, flow.second.address]
        guard let chosen = sipSessions.indices.first(where: { index in
            let session = sipSessions[index]
            let known = session.mediaAddresses.union([session.client.address, session.server.address])
            return addresses.contains(where: known.contains)
        }) else { return false }
        sipSessions[chosen].report.flows.append(record(nil))
        return true
    }
}
