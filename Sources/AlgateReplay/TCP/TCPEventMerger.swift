/// Which way bytes go on a TCP connection.
enum TCPDirection: Int, Hashable, Sendable {
    case fromInitiator = 0
    case fromResponder = 1

    var other: TCPDirection { self == .fromInitiator ? .fromResponder : .fromInitiator }
}

/// What an interpreted connection hands on, both directions interleaved in causal order.
enum TCPStreamEvent {
    case data(TCPDirection, [UInt8], frame: Int, time: Double)
    /// The direction's FIN, after its last byte.
    case end(TCPDirection, frame: Int, time: Double)
    /// Bytes missing from the direction at `offset` (see ``TCPStreamReassembler``); nothing follows from it.
    case gap(TCPDirection, offset: UInt64, missing: Int?, reason: String)
}

/// Interleaves the two directions of a connection in the order the peers really sent them.
///
/// The capture's own order of packets is not enough: a capture point may see a reply before the request it answers
/// (reordering, two interfaces), and after reassembly a late segment's bytes come out only when the hole before
/// them fills. So every chunk carries the acknowledgment number of the segment that brought it: a chunk that
/// acknowledges the peer's bytes up to offset X was sent after the peer sent them, and is handed on only after the
/// peer's bytes up to X were. Chunks that are ready in both directions go in capture (frame) order. When nothing is
/// ready but both directions hold chunks (acknowledgments that contradict each other), or more than
/// `maxHeldBytes` wait, the chunk of the earliest frame goes first.
struct TCPEventMerger {
    private struct Held {
        var event: TCPStreamEvent
        var frame: Int
        /// The peer's stream offset (FIN counted as one) that must be handed on first.
        var requires: UInt64
        var size: Int
    }

    let maxHeldBytes: Int
    private var queues: [[Held]] = [[], []]
    private var heads = [0, 0]
    /// Per direction, the stream offset handed on so far (FIN counted as one).
    private var handedOn: [UInt64] = [0, 0]
    private var heldBytes = 0
    /// Times the acknowledgment order had to be overridden.
    private(set) var forcedOrder = 0

    init(maxHeldBytes: Int = 1 << 20) {
        self.maxHeldBytes = maxHeldBytes
    }

    mutating func push(_ event: TCPStreamEvent, from direction: TCPDirection, frame: Int, requires: UInt64) {
        var size = 0
        if case .data(_, let bytes, _, _) = event { size = bytes.count }
        queues[direction.rawValue].append(Held(event: event, frame: frame, requires: requires, size: size))
        heldBytes += size
    }

    /// Hands on every event that may go now; with `flush`, everything (the capture ended).
    mutating func pop(flush: Bool = false) -> [TCPStreamEvent] {
        var out: [TCPStreamEvent] = []
        while true {
            let ready = [isReady(.fromInitiator), isReady(.fromResponder)]
            let nonEmpty = [head(.fromInitiator) != nil, head(.fromResponder) != nil]
            let pick: TCPDirection
            switch (ready[0], ready[1]) {
            case (true, true):
                pick = earlierHead
            case (true, false): pick = .fromInitiator
            case (false, true): pick = .fromResponder
            case (false, false):
                guard nonEmpty[0] || nonEmpty[1] else { return out }
                let stuck = nonEmpty[0] && nonEmpty[1]
                guard stuck || flush || heldBytes > maxHeldBytes else { return out }
                forcedOrder += 1
                if nonEmpty[0], nonEmpty[1] {
                    pick = earlierHead
                } else {
                    pick = nonEmpty[0] ? .fromInitiator : .fromResponder
                }
            }
            out.append(take(pick))
        }
    }

    /// The direction whose first held event came in the earlier frame.
    private var earlierHead: TCPDirection {
        (head(.fromInitiator)?.frame ?? 0) <= (head(.fromResponder)?.frame ?? 0) ? .fromInitiator : .fromResponder
    }

    private func head(_ direction: TCPDirection) -> Held? {
        let queue = queues[direction.rawValue]
        let index = heads[direction.rawValue]
        return index < queue.count ? queue[index] : nil
    }

    private func isReady(_ direction: TCPDirection) -> Bool {
        guard let held = head(direction) else { return false }
        return held.requires <= handedOn[direction.other.rawValue]
    }

    private mutating func take(_ direction: TCPDirection) -> TCPStreamEvent {
        let index = direction.rawValue
        let held = queues[index][heads[index]]
        heads[index] += 1
        if heads[index] > 64, heads[index] * 2 > queues[index].count {
            queues[index].removeFirst(heads[index])
            heads[index] = 0
        }
        heldBytes -= held.size
        switch held.event {
        case .data(_, let bytes, _, _): handedOn[index] += UInt64(bytes.count)
        case .end: handedOn[index] += 1
        case .gap: handedOn[index] = .max  // nothing more will come; never wait for it
        }
        return held.event
    }
}
