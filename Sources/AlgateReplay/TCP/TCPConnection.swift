import AlgateRewrite

/// One TCP connection of a capture: who opened it, what crossed, and (while it is interpreted) both directions
/// reassembled and interleaved.
struct TCPConnection {
    let id: Int
    /// The side that sent the SYN; without a handshake in the capture, a best guess (see ``CaptureAnalyzer``).
    let initiator: Endpoint
    let responder: Endpoint
    let firstFrame: Int
    let firstTime: Double
    /// Whether the connection was first seen by its SYN or SYN-ACK, so who opened it is known (and the first byte
    /// of each direction: content may be judged from it).
    let knowsInitiator: Bool
    private(set) var lastTime: Double
    private(set) var packets = [0, 0]
    private(set) var payloadBytes = [0, 0]
    private(set) var finSeen = [false, false]
    private(set) var resetSeen = false
    /// Whether bytes are still reassembled and handed on; off for connections nobody interprets.
    private(set) var interpreting = true
    private var streams: [TCPStreamReassembler]
    private var merger: TCPEventMerger
    /// Per direction: the highest offset of that direction's stream the peer acknowledged.
    private var acknowledged: [Int64?] = [nil, nil]

    init(id: Int, initiator: Endpoint, responder: Endpoint, frame: Int, time: Double, knowsInitiator: Bool,
         reassembly: TCPStreamReassembler.Configuration, maxHeldBytes: Int) {
        self.id = id
        self.initiator = initiator
        self.responder = responder
        self.firstFrame = frame
        self.firstTime = time
        self.lastTime = time
        self.knowsInitiator = knowsInitiator
        streams = [TCPStreamReassembler(configuration: reassembly), TCPStreamReassembler(configuration: reassembly)]
        merger = TCPEventMerger(maxHeldBytes: maxHeldBytes)
    }

    func direction(from source: Endpoint) -> TCPDirection {
        source == initiator ? .fromInitiator : .fromResponder
    }

    /// Whether the connection is over (RST, or FIN both ways): a new SYN on the same addresses starts another.
    var isClosed: Bool { resetSeen || (finSeen[0] && finSeen[1]) }

    /// Whether either direction's stream started before the capture did (while interpreted).
    var startsMidStream: Bool { streams.contains { $0.startsMidStream } }

    /// Bytes of `direction` dropped as retransmissions, and how many of them differed from the first copy.
    func retransmissions(_ direction: TCPDirection) -> (bytes: Int, conflicting: Int) {
        (streams[direction.rawValue].retransmittedBytes, streams[direction.rawValue].conflictingBytes)
    }

    /// How often acknowledgment order had to be overridden to make progress.
    var forcedOrder: Int { merger.forcedOrder }

    /// Stops reassembling: the connection is only counted from now on.
    mutating func stopInterpreting() {
        interpreting = false
        streams = []
        merger = TCPEventMerger()
    }

    /// Takes a segment; returns what may be handed on now.
    mutating func receive(_ segment: TCPSegment, from source: Endpoint, frame: Int, time: Double) -> [TCPStreamEvent] {
        let direction = direction(from: source)
        let index = direction.rawValue
        lastTime = max(lastTime, time)
        packets[index] += 1
        payloadBytes[index] += segment.payload.count
        if segment.isFIN { finSeen[index] = true }
        if segment.isRST { resetSeen = true }
        guard interpreting else { return [] }
        let acknowledgment = segment.hasACK ? segment.acknowledgment : nil
        if segment.isSYN, let acknowledgment, direction == .fromResponder {
            streams[TCPDirection.fromInitiator.rawValue].learnBase(acknowledgment)  // SYN-ACK: initiator's ISN + 1
        }
        if let acknowledgment, let offset = streams[direction.other.rawValue].offset(of: acknowledgment) {
            acknowledged[direction.other.rawValue] = max(acknowledged[direction.other.rawValue] ?? offset, offset)
        }
        let isNew = streams[index].offset(of: segment.sequence).map {
            $0 + Int64(segment.payload.count + segment.missingBytes) > Int64(streams[index].nextOffset)
        } ?? true
        if segment.missingBytes > 0, !segment.payload.isEmpty, isNew {
            // The snap length cut this segment: its bytes cannot all be delivered, so the stream has a gap here.
            let events = streams[index].receive(sequence: segment.sequence, syn: segment.isSYN, fin: false,
                                                payload: segment.payload, frame: frame, time: time,
                                                acknowledgment: acknowledgment)
            queue(events, direction, frame: frame)
            streams[index].stop()
            if let start = streams[index].offset(of: segment.sequence), start >= 0 {
                merger.push(.gap(direction, offset: UInt64(start) + UInt64(segment.payload.count),
                                 missing: segment.missingBytes, reason: "the capture's snap length cut a segment"),
                            from: direction, frame: frame, requires: 0)
            }
            return merger.pop()
        }
        let events = streams[index].receive(sequence: segment.sequence, syn: segment.isSYN, fin: segment.isFIN,
                                            payload: segment.payload, frame: frame, time: time,
                                            acknowledgment: acknowledgment)
        queue(events, direction, frame: frame)
        return merger.pop()
    }

    /// The capture ended: open holes become gaps, and everything held is handed on.
    mutating func finish() -> [TCPStreamEvent] {
        guard interpreting else { return [] }
        for direction in [TCPDirection.fromInitiator, .fromResponder] {
            let events = streams[direction.rawValue].finish(acknowledgedByPeer: acknowledged[direction.rawValue])
            queue(events, direction, frame: .max)
        }
        return merger.pop(flush: true)
    }

    private mutating func queue(_ events: [TCPStreamReassembler.Event], _ direction: TCPDirection, frame: Int) {
        for event in events {
            switch event {
            case .data(_, let bytes, let frame, let time, let acknowledgment):
                var requires: UInt64 = 0
                if let acknowledgment, let offset = streams[direction.other.rawValue].offset(of: acknowledgment),
                   offset > 0 {
                    requires = UInt64(offset)
                }
                merger.push(.data(direction, bytes, frame: frame, time: time), from: direction, frame: frame,
                            requires: requires)
            case .end(let frame, let time):
                merger.push(.end(direction, frame: frame, time: time), from: direction, frame: frame, requires: 0)
            case .gap(let offset, let missing, let reason):
                merger.push(.gap(direction, offset: offset, missing: missing, reason: reason), from: direction,
                            frame: frame, requires: 0)
            }
        }
    }
}
