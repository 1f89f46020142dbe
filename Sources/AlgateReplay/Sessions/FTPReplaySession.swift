import AlgateRewrite
import NIOCore

/// A pinhole the engine predicted, as the data-flow check needs it.
struct PredictedPinhole {
    /// ``ReplaySession/Pinhole/id``.
    var id: Int
    /// The endpoints the pinhole relays to (FTP: one; SIP: the media endpoints, RTCP included).
    var targets: Set<Endpoint>
    /// The one peer admitted (FTP); nil when any peer of the session may use it (SIP media).
    var peer: IPAddress?
    var time: Double
    /// When the gateway closed it again (refused PORT, BYE, CANCEL, error), in capture time.
    var closedTime: Double?
    /// FTP pinholes admit one connection.
    var used = false

    /// Whether a flow that started at `time` could have used it (it was not closed before).
    func isOpen(at time: Double) -> Bool {
        closedTime.map { $0 >= time } ?? true
    }
}

/// Replays one FTP control connection through the gateway's own engine (``FTPDryRun`` around
/// `FTPSessionStateMachine`), as if the chosen side were behind NAT, and writes the session's report.
///
/// Lines are framed like the proxy frames them and fed in the order the peers sent them. The replay stops
/// interpreting at a gap in either direction, when the engine closes the session, or after AUTH TLS (from then on
/// the bytes are counted only).
struct FTPReplaySession {
    let connectionID: Int
    let clientDirection: TCPDirection
    let client: Endpoint
    let server: Endpoint
    var report: ReplaySession
    var predicted: [PredictedPinhole] = []
    private var run: FTPDryRun
    private var framers: [FTPReplayLineBuffer]
    private var stopped = false
    private var passthroughBytes = 0
    /// The capture started after the connection did: unless the first line is the greeting, the engine is given
    /// one first, or it would take the first reply for the greeting and every later reply for the one before.
    private var needsGreeting: Bool
    private let captureStart: Double
    /// Engine pinhole id -> index in ``report``'s pinholes.
    private var pinholeIndex: [UInt64: Int] = [:]

    init(id: Int, connectionID: Int, client: Endpoint, server: Endpoint, clientDirection: TCPDirection,
         detectedBy: String, firstFrame: Int, startsMidStream: Bool, settings: ReplaySettings, captureStart: Double) {
        self.connectionID = connectionID
        self.needsGreeting = startsMidStream
        self.clientDirection = clientDirection
        self.client = Endpoint(address: client.address.unmapped, port: client.port)
        self.server = Endpoint(address: server.address.unmapped, port: server.port)
        self.captureStart = captureStart
        // The side behind NAT is told nothing new; the other side is told the address the gateway has towards it.
        // Server behind NAT (reverse mode): clients are told A in 227/228; the server is told the address it saw
        // the client at. Client behind NAT: the server is told A in PORT/EPRT; the client is told the address it
        // reached the server at.
        let publicAddress = settings.side == .server ? settings.publicAddress : self.server.address
        let insideAddress = settings.side == .server ? self.client.address : settings.publicAddress
        // The proxy's defaults: PORT/EPRT and passive replies to ports below 1024 refused, its pipelining and
        // queue limits, its line limit.
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.maxLineLength = settings.maxFTPLineLength
        run = FTPDryRun(context: FTPSessionContext(client: self.client, server: self.server,
                                                   publicAddress: publicAddress, insideAddress: insideAddress),
                        configuration: configuration, firstPort: settings.firstPort)
        framers = [FTPReplayLineBuffer(maxLineLength: settings.maxFTPLineLength),
                   FTPReplayLineBuffer(maxLineLength: settings.maxFTPLineLength)]
        report = ReplaySession(id: id, protocol: .ftp, transport: "tcp", detectedBy: detectedBy,
                               client: "\(self.client)", server: "\(self.server)", firstFrame: firstFrame)
    }

    private func side(_ direction: TCPDirection) -> FTPSide {
        direction == clientDirection ? .client : .server
    }

    mutating func receive(_ event: TCPStreamEvent) {
        switch event {
        case .data(let direction, let bytes, let frame, let time):
            guard !stopped else {
                if run.machine.isPassthrough { passthroughBytes += bytes.count }
                return
            }
            let lines: [FTPReplayLineBuffer.Line]
            do {
                lines = try framers[direction.rawValue].append(bytes, frame: frame, time: time)
            } catch {
                stop(frame: frame, problem: "\(side(direction).rawValue) line longer than \(error.limit) bytes",
                     action: "session closed (as the proxy closes it)")
                return
            }
            for line in lines where !stopped {
                feed(line, from: side(direction))
            }
        case .end(let direction, let frame, let time):
            guard !stopped else { return }
            if let rest = framers[direction.rawValue].finish(frame: frame, time: time) {
                feed(rest, from: side(direction))
            }
        case .gap(let direction, let offset, let missing, let reason):
            guard !stopped else { return }
            let size = missing.map { "\($0) bytes" } ?? "bytes"
            stop(frame: nil, problem: "gap in the \(side(direction).rawValue)'s stream: \(size) missing at offset "
                 + "\(offset) (\(reason))", action: "not interpreted further")
        }
    }

    /// The capture ended.
    mutating func finish(midStream: Bool) {
        if midStream {
            report.notes.append("the capture starts after the connection did: lines before it are missing")
        }
        for direction in [TCPDirection.fromInitiator, .fromResponder] where !stopped {
            let pending = framers[direction.rawValue].pendingBytes
            if pending > 0 {
                report.notes.append("\(pending) bytes of an unfinished \(side(direction).rawValue) line at the end "
                    + "of the capture (not interpreted)")
            }
        }
        if passthroughBytes > 0 {
            report.notes.append("\(passthroughBytes) bytes relayed untouched after the session became unreadable")
        }
    }

    private mutating func stop(frame: Int?, problem: String, action: String) {
        stopped = true
        report.errors.append(ReplaySession.Problem(message: report.messages.isEmpty ? nil : report.messages.count - 1,
                                                   frame: frame, problem: problem, action: action))
    }

    private mutating func feed(_ line: FTPReplayLineBuffer.Line, from side: FTPSide) {
        if needsGreeting {
            needsGreeting = false
            if side == .client || !line.bytes.starts(with: Array("220".utf8)) {
                run.feed(ByteBuffer(string: "220 (greeting not in the capture)\r\n"), from: .server)
                report.notes.append("the capture starts after the greeting: the engine was given one first")
            }
        }
        let index = report.messages.count
        let time = line.time - captureStart
        report.messages.append(ReplaySession.Message(frame: line.frame, time: ReplayText.rounded(time),
                                                     from: side.rawValue, text: ReplayText.line(line.bytes),
                                                     bytes: line.bytes.count))
        let first = run.entries.count
        run.feed(ByteBuffer(bytes: line.bytes), from: side)
        interpret(run.entries[first...], line: line, side: side, index: index, time: time)
        if run.machine.isPassthrough { stopped = true }
    }

    /// Turns what the engine did with one line into report entries.
    private mutating func interpret(_ entries: ArraySlice<FTPDryRun.Entry>, line: FTPReplayLineBuffer.Line, side: FTPSide,
                                    index: Int, time: Double) {
        var notes: [String] = []
        var answered: ByteBuffer? = nil
        var changed: (before: ByteBuffer, after: ByteBuffer)? = nil
        for entry in entries {
            switch entry {
            case .pinhole(let request, let port):
                let id = report.pinholes.count + 1
                pinholeIndex[request.id] = report.pinholes.count
                report.pinholes.append(ReplaySession.Pinhole(
                    id: id, message: index, frame: line.frame, kind: request.purpose.rawValue, ports: [Int(port)],
                    admits: "\(request.allowedPeer)", relaysTo: ["\(request.target)"]))
                predicted.append(PredictedPinhole(id: id, targets: [request.target], peer: request.allowedPeer,
                                                  time: line.time))
            case .pinholeClosed(let id):
                if let position = pinholeIndex[id] {
                    report.pinholes[position].closed = true
                    predicted[position].closedTime = line.time
                }
            case .note(let text):
                notes.append(text)
            case .forwarded(let bytes, let to, let original):
                if to == side {
                    answered = bytes
                } else if let original, original != bytes {
                    changed = (original, bytes)
                }
            }
        }
        var replaced = false
        for note in notes {
            let problem: String
            let action: String
            if note.hasPrefix("refused: ") {
                problem = "refused: " + note.dropFirst("refused: ".count)
                action = answered.map { "answered: " + ReplayText.line($0.readableBytesView) } ?? "refused"
            } else if note.hasPrefix("malformed reply") || note.hasPrefix("no pinhole") {
                problem = note
                if let changed {
                    action = "replaced by: " + ReplayText.line(changed.after.readableBytesView)
                    replaced = true
                } else {
                    action = "passed on unchanged, no pinhole"
                }
            } else if note.hasPrefix("unsolicited ") {
                problem = String(note.prefix { $0 != ":" })
                action = changed.map { "passed on masked, no pinhole: " + ReplayText.line($0.after.readableBytesView) }
                    ?? "passed on unchanged, no pinhole"
            } else if note.hasPrefix("server line is not a reply") {
                problem = "server line is not a reply"
                action = changed.map { "passed on masked: " + ReplayText.line($0.after.readableBytesView) }
                    ?? "passed on unchanged"
            } else if note.hasPrefix("session closed: ") {
                problem = String(note.dropFirst("session closed: ".count))
                action = "session closed"
                stopped = true
            } else {
                report.notes.append("frame \(line.frame): \(note)")
                continue
            }
            report.errors.append(ReplaySession.Problem(message: index, frame: line.frame, problem: problem,
                                                       action: action))
        }
        if let changed, !replaced {
            report.rewrites.append(ReplaySession.Rewrite(
                message: index, frame: line.frame, from: side.rawValue,
                before: ReplayText.line(changed.before.readableBytesView, limit: 1000),
                after: ReplayText.line(changed.after.readableBytesView, limit: 1000)))
        }
    }
}
