import AlgateRewrite

/// Puts IPv4 and IPv6 fragments back together, in bounded memory.
///
/// Fragments may come in any order and overlap; where they overlap, the bytes that arrived first are kept (a later
/// fragment cannot rewrite what an earlier one said, the usual defence against overlap attacks). At most
/// ``Configuration/maxDatagrams`` datagrams and ``Configuration/maxBytes`` bytes wait at once; past either, the
/// oldest waiting datagram is given up. A datagram whose fragments stop coming for ``Configuration/timeout`` seconds
/// of capture time, or that is still waiting at the end of the capture, is reported as incomplete.
struct IPFragmentReassembler {
    struct Configuration: Hashable, Sendable {
        var maxDatagrams = 256
        var maxBytes = 4 << 20
        /// RFC 8200 and common IPv4 stacks give up after 60 seconds.
        var timeout = 60.0
    }

    /// A datagram that was never completed.
    struct Incomplete: Hashable, Sendable {
        var source: IPAddress
        var destination: IPAddress
        var identification: UInt32
        var firstFrame: Int
        var bytesReceived: Int
        var reason: String
    }

    private struct Pending {
        var buffer: [UInt8] = []
        /// Byte ranges received so far, sorted and merged.
        var covered: [Range<Int>] = []
        var totalLength: Int?
        var nextHeader: UInt8?
        var firstFrame: Int
        var firstTime: Double
        var lastTime: Double
    }

    let configuration: Configuration
    private var pending: [FragmentKey: Pending] = [:]
    /// Datagrams completed lately, and when: a duplicate fragment arriving after completion is not a new datagram.
    private var completed: [FragmentKey: Double] = [:]
    private var completedOrder: [FragmentKey] = []
    private var pendingBytes = 0
    /// Datagrams put back together.
    private(set) var reassembled = 0
    /// Fragments that repeated part of a datagram already completed (dropped).
    private(set) var duplicates = 0
    /// How long after completion a fragment with the same identification counts as a duplicate, in seconds.
    static let duplicateWindow = 5.0
    /// Datagrams given up, the first 100 kept with details.
    private(set) var incomplete: [Incomplete] = []
    private(set) var incompleteCount = 0

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Adds a fragment; returns the datagram's upper-layer protocol and payload when this fragment completes it.
    mutating func add(_ fragment: IPFragment, frame: Int, time: Double) -> (nextHeader: UInt8, payload: [UInt8])? {
        expire(now: time)
        if let done = completed[fragment.key], time - done <= Self.duplicateWindow {
            duplicates += 1
            return nil
        }
        let end = fragment.offset + fragment.payload.count
        guard end <= 65_535 else {
            giveUp(fragment.key, Pending(firstFrame: frame, firstTime: time, lastTime: time),
                   reason: "fragment reaches beyond 65535 bytes")
            drop(fragment.key)
            return nil
        }
        if pending[fragment.key] == nil {
            while pending.count >= configuration.maxDatagrams
                || (pendingBytes + fragment.payload.count > configuration.maxBytes && !pending.isEmpty) {
                evictOldest(reason: "too many fragments waiting (limit \(configuration.maxDatagrams) datagrams, "
                    + "\(configuration.maxBytes) bytes)")
            }
            pending[fragment.key] = Pending(firstFrame: frame, firstTime: time, lastTime: time)
        }
        guard var entry = pending[fragment.key] else { return nil }
        entry.lastTime = time
        if !fragment.moreFragments, entry.totalLength == nil { entry.totalLength = end }
        if fragment.offset == 0, entry.nextHeader == nil { entry.nextHeader = fragment.nextHeader }
        if entry.buffer.count < end {
            pendingBytes += end - entry.buffer.count
            entry.buffer.append(contentsOf: repeatElement(0, count: end - entry.buffer.count))
        }
        // First data wins: copy only what no earlier fragment covered.
        for gap in Self.uncovered(fragment.offset..<end, by: entry.covered) {
            for position in gap { entry.buffer[position] = fragment.payload[position - fragment.offset] }
        }
        entry.covered = Self.merge(entry.covered, fragment.offset..<end)
        if let total = entry.totalLength, let next = entry.nextHeader, let first = entry.covered.first,
           first.lowerBound == 0, first.upperBound >= total {
            drop(fragment.key)
            reassembled += 1
            remember(fragment.key, time)
            return (next, Array(entry.buffer[0..<total]))
        }
        pending[fragment.key] = entry
        return nil
    }

    /// Gives up datagrams that waited longer than the timeout.
    mutating func expire(now: Double) {
        guard !pending.isEmpty else { return }
        for (key, entry) in pending where now - entry.lastTime > configuration.timeout {
            giveUp(key, entry, reason: "no further fragment within \(Int(configuration.timeout)) s")
            drop(key)
        }
    }

    /// Gives up everything still waiting (the capture ended).
    mutating func finish() {
        for (key, entry) in pending.sorted(by: { $0.value.firstFrame < $1.value.firstFrame }) {
            giveUp(key, entry, reason: "fragments missing at the end of the capture")
            drop(key)
        }
    }

    private mutating func remember(_ key: FragmentKey, _ time: Double) {
        if completed.updateValue(time, forKey: key) == nil { completedOrder.append(key) }
        if completedOrder.count > 1024 { completed[completedOrder.removeFirst()] = nil }
    }

    private mutating func evictOldest(reason: String) {
        guard let oldest = pending.min(by: { $0.value.firstTime < $1.value.firstTime }) else { return }
        giveUp(oldest.key, oldest.value, reason: reason)
        drop(oldest.key)
    }

    private mutating func drop(_ key: FragmentKey) {
        if let entry = pending.removeValue(forKey: key) { pendingBytes -= entry.buffer.count }
    }

    private mutating func giveUp(_ key: FragmentKey, _ entry: Pending, reason: String) {
        incompleteCount += 1
        guard incomplete.count < 100 else { return }
        incomplete.append(Incomplete(source: key.source, destination: key.destination,
                                     identification: key.identification, firstFrame: entry.firstFrame,
                                     bytesReceived: entry.covered.reduce(0) { $0 + $1.count }, reason: reason))
    }

    /// The parts of `range` not in the sorted, merged `covered`.
    static func uncovered(_ range: Range<Int>, by covered: [Range<Int>]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = range.lowerBound
        for piece in covered where piece.upperBound > start && piece.lowerBound < range.upperBound {
            if piece.lowerBound > start { result.append(start..<piece.lowerBound) }
            start = max(start, piece.upperBound)
        }
        if start < range.upperBound { result.append(start..<range.upperBound) }
        return result
    }

    /// `covered` with `range` added, kept sorted and merged.
    static func merge(_ covered: [Range<Int>], _ range: Range<Int>) -> [Range<Int>] {
        guard !range.isEmpty else { return covered }
        var result: [Range<Int>] = []
        var current = range
        var placed = false
        for piece in covered {
            if piece.upperBound < current.lowerBound {
                result.append(piece)
            } else if piece.lowerBound > current.upperBound {
                if !placed { result.append(current); placed = true }
                result.append(piece)
            } else {
                current = min(piece.lowerBound, current.lowerBound)..<max(piece.upperBound, current.upperBound)
            }
        }
        if !placed { result.append(current) }
        return result
    }
}
