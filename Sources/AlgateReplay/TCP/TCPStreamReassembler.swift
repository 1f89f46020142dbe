/// One direction of a TCP connection, put back in order: bytes come out once, in sequence, whatever order,
/// duplication or overlap the capture shows them in.
///
/// - Retransmitted bytes that were already delivered are dropped; where a retransmission carries different bytes
///   for the same sequence numbers, the first ones win (and the conflict is counted).
/// - Segments beyond a hole wait, up to ``Configuration/maxBufferedBytes`` and ``Configuration/maxBufferedSegments``.
///   Past either limit, or when the capture ends with the hole still open, or when the peer acknowledged bytes the
///   capture never held, the hole is a gap: it is reported with its position and size, and nothing after it is
///   delivered. Nothing is guessed across a gap.
/// - The SYN gives the initial sequence number; without one (the capture started mid-connection) the first segment
///   seen starts the stream, and ``startsMidStream`` says so.
struct TCPStreamReassembler {
    struct Configuration: Hashable, Sendable {
        var maxBufferedBytes = 1 << 20
        var maxBufferedSegments = 4096
    }

    /// What comes out, in stream order.
    enum Event {
        /// In-order bytes at `offset` from the stream's start, from the segment of `frame`, which acknowledged the
        /// peer up to `acknowledgment` (when its ACK flag was set).
        case data(offset: UInt64, bytes: [UInt8], frame: Int, time: Double, acknowledgment: UInt32?)
        /// The FIN, once every byte before it was delivered.
        case end(frame: Int, time: Double)
        /// Bytes missing at `offset`: `missing` of them when known. Nothing more comes out after this.
        case gap(offset: UInt64, missing: Int?, reason: String)
    }

    private struct Waiting {
        var offset: UInt64
        var bytes: [UInt8]
        var frame: Int
        var time: Double
        var acknowledgment: UInt32?
    }

    let configuration: Configuration
    /// The sequence number of the stream's first byte, once known.
    private(set) var base: UInt32?
    private(set) var sawSYN = false
    private(set) var startsMidStream = false
    /// The offset of the next byte to deliver (bytes delivered so far).
    private(set) var nextOffset: UInt64 = 0
    private(set) var finOffset: UInt64?
    private(set) var finDelivered = false
    private(set) var stopped = false
    private(set) var retransmittedBytes = 0
    /// Retransmitted bytes that differed from what was first seen (the first were kept).
    private(set) var conflictingBytes = 0
    private var waiting: [Waiting] = []
    private var waitingBytes = 0
    /// The last bytes delivered (up to ``recentLimit``), to compare retransmissions with; they start at
    /// `nextOffset - recent.count`.
    private var recent: [UInt8] = []
    private static let recentLimit = 16_384

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// The stream offset of sequence number `sequence`, near the current position (handles wrap-around).
    func offset(of sequence: UInt32) -> Int64? {
        guard let base else { return nil }
        let expected = base &+ UInt32(truncatingIfNeeded: nextOffset)
        return Int64(nextOffset) + Int64(Int32(bitPattern: sequence &- expected))
    }

    /// Learns the stream's first sequence number from the peer's SYN-ACK (its acknowledgment number), for when the
    /// capture shows the SYN-ACK before this direction's SYN or holds no SYN at all.
    mutating func learnBase(_ sequence: UInt32) {
        guard base == nil else { return }
        base = sequence
        sawSYN = true
    }

    /// Takes one segment of this direction.
    mutating func receive(sequence: UInt32, syn: Bool, fin: Bool, payload: ArraySlice<UInt8>, frame: Int, time: Double,
                          acknowledgment: UInt32?) -> [Event] {
        if syn {
            if base == nil {
                base = sequence &+ 1
                sawSYN = true
            }
            // Data on a SYN (TCP Fast Open) starts after the SYN's sequence number.
            guard !payload.isEmpty || fin else { return [] }
            return receive(sequence: sequence &+ 1, syn: false, fin: fin, payload: payload, frame: frame, time: time,
                           acknowledgment: acknowledgment)
        }
        if base == nil {
            guard !payload.isEmpty || fin else { return [] }
            base = sequence
            startsMidStream = true
        }
        guard !stopped, let start = offset(of: sequence) else { return [] }
        var events: [Event] = []
        if fin, finOffset == nil, start + Int64(payload.count) >= 0 {
            finOffset = UInt64(start + Int64(payload.count))
        }
        if !payload.isEmpty {
            accept(start: start, payload: payload, frame: frame, time: time, acknowledgment: acknowledgment,
                   into: &events)
        }
        let limits = configuration
        if !stopped, waiting.count > limits.maxBufferedSegments || waitingBytes > limits.maxBufferedBytes {
            declareGap(reason: "more than \(limits.maxBufferedBytes) bytes or \(limits.maxBufferedSegments) "
                + "segments waiting behind missing data", into: &events)
        }
        deliverFinIfReached(frame: frame, time: time, into: &events)
        return events
    }

    /// The capture ended: a hole still open is a gap; so are bytes the peer acknowledged (up to `acknowledgedByPeer`,
    /// a stream offset, FIN counted as one) that the capture never held.
    mutating func finish(acknowledgedByPeer: Int64?) -> [Event] {
        guard !stopped else { return [] }
        var events: [Event] = []
        if !waiting.isEmpty {
            declareGap(reason: "segments missing from the capture", into: &events)
        } else if let acknowledged = acknowledgedByPeer {
            let reached = Int64(nextOffset) + (finDelivered ? 1 : 0)
            let dataEnd = finOffset.map { Int64($0) } ?? acknowledged
            let missing = min(acknowledged, dataEnd) - Int64(nextOffset)
            // One acknowledged byte beyond the data may be nothing but a FIN the capture missed.
            if acknowledged > reached, missing > 1 || (missing == 1 && finOffset != nil) {
                events.append(.gap(offset: nextOffset, missing: Int(missing),
                                   reason: "the peer acknowledged \(missing) bytes the capture does not hold"))
                stopped = true
            }
        }
        return events
    }

    /// Stops delivering (the caller reported a gap of its own, such as a segment cut by the snap length).
    mutating func stop() {
        stopped = true
        waiting.removeAll()
        waitingBytes = 0
        recent = []
    }

    private mutating func accept(start: Int64, payload: ArraySlice<UInt8>, frame: Int, time: Double,
                                 acknowledgment: UInt32?, into events: inout [Event]) {
        var start = start
        var bytes = payload
        let end = start + Int64(bytes.count)
        if end <= Int64(nextOffset) {
            compareWithDelivered(start: start, bytes)
            return
        }
        if start < Int64(nextOffset) {
            let old = Int(Int64(nextOffset) - start)
            compareWithDelivered(start: start, bytes.prefix(old))
            bytes = bytes.dropFirst(old)
            start = Int64(nextOffset)
        }
        if start == Int64(nextOffset), waiting.isEmpty {
            deliver(Array(bytes), frame: frame, time: time, acknowledgment: acknowledgment, into: &events)
            return
        }
        // Keep the parts no earlier segment covers (first data wins), then deliver what is in order.
        var pieces: [(UInt64, ArraySlice<UInt8>)] = []
        var cursor = UInt64(start)
        let stop = UInt64(end)
        for other in waiting where other.offset + UInt64(other.bytes.count) > cursor && other.offset < stop {
            if other.offset > cursor {
                let piece = bytes.slice(at: Int(cursor - UInt64(start)), length: Int(other.offset - cursor))
                pieces.append((cursor, piece))
            }
            let overlapEnd = min(stop, other.offset + UInt64(other.bytes.count))
            let from = max(cursor, other.offset)
            if from < overlapEnd {
                compare(bytes.slice(at: Int(from - UInt64(start)), length: Int(overlapEnd - from)),
                        other.bytes[Int(from - other.offset)..<Int(overlapEnd - other.offset)])
            }
            cursor = max(cursor, other.offset + UInt64(other.bytes.count))
        }
        if cursor < stop {
            pieces.append((cursor, bytes.slice(at: Int(cursor - UInt64(start)), length: Int(stop - cursor))))
        }
        for (offset, piece) in pieces where !piece.isEmpty {
            let item = Waiting(offset: offset, bytes: Array(piece), frame: frame, time: time,
                               acknowledgment: acknowledgment)
            let index = waiting.firstIndex { $0.offset > offset } ?? waiting.endIndex
            waiting.insert(item, at: index)
            waitingBytes += piece.count
        }
        drainWaiting(into: &events)
    }

    private mutating func drainWaiting(into events: inout [Event]) {
        while let first = waiting.first, first.offset <= nextOffset {
            waiting.removeFirst()
            waitingBytes -= first.bytes.count
            let end = first.offset + UInt64(first.bytes.count)
            guard end > nextOffset else {
                retransmittedBytes += first.bytes.count
                continue
            }
            let skip = Int(nextOffset - first.offset)
            retransmittedBytes += skip
            deliver(Array(first.bytes[skip...]), frame: first.frame, time: first.time,
                    acknowledgment: first.acknowledgment, into: &events)
        }
    }

    private mutating func deliver(_ bytes: [UInt8], frame: Int, time: Double, acknowledgment: UInt32?,
                                  into events: inout [Event]) {
        var bytes = bytes
        if let fin = finOffset, nextOffset + UInt64(bytes.count) > fin {
            // Bytes past the FIN are not part of the stream.
            bytes = Array(bytes.prefix(Int(fin - min(fin, nextOffset))))
        }
        guard !bytes.isEmpty else { return }
        events.append(.data(offset: nextOffset, bytes: bytes, frame: frame, time: time, acknowledgment: acknowledgment))
        nextOffset += UInt64(bytes.count)
        recent.append(contentsOf: bytes)
        if recent.count > Self.recentLimit * 2 { recent.removeFirst(recent.count - Self.recentLimit) }
    }

    private mutating func deliverFinIfReached(frame: Int, time: Double, into events: inout [Event]) {
        guard !stopped, !finDelivered, let fin = finOffset, nextOffset >= fin else { return }
        finDelivered = true
        events.append(.end(frame: frame, time: time))
    }

    private mutating func declareGap(reason: String, into events: inout [Event]) {
        let missing = waiting.first.map { Int($0.offset - nextOffset) }
        events.append(.gap(offset: nextOffset, missing: missing, reason: reason))
        stopped = true
        waiting.removeAll()
        waitingBytes = 0
    }

    /// A retransmission of bytes already delivered: counted, and compared where they are still remembered.
    private mutating func compareWithDelivered(start: Int64, _ bytes: ArraySlice<UInt8>) {
        retransmittedBytes += bytes.count
        let recentStart = Int64(nextOffset) - Int64(recent.count)
        let from = max(start, recentStart)
        let to = min(start + Int64(bytes.count), Int64(nextOffset))
        guard from < to else { return }
        let new = bytes.slice(at: Int(from - start), length: Int(to - from))
        let old = recent[Int(from - recentStart)..<Int(to - recentStart)]
        if !new.elementsEqual(old) { conflictingBytes += zip(new, old).filter { $0 != $1 }.count }
    }

    private mutating func compare(_ new: ArraySlice<UInt8>, _ old: ArraySlice<UInt8>) {
        retransmittedBytes += new.count
        if !new.elementsEqual(old) { conflictingBytes += new.count }
    }
}
