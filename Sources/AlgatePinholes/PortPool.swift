/// The public ports the gateway may hand out to pinholes: a range, the ports in use, and a cursor.
///
/// Ports are handed out round-robin rather than lowest-first, so a port that just closed is not reused at once:
/// a late packet of the old flow must not land in a new pinhole.
public struct PortPool: Hashable, Sendable {
    public let range: ClosedRange<UInt16>
    private var inUse: Set<UInt16> = []
    private var cursor: UInt16

    public init(range: ClosedRange<UInt16>) {
        self.range = range
        self.cursor = range.lowerBound
    }

    /// How many ports are handed out now.
    public var allocatedCount: Int { inUse.count }

    /// Takes the next free port, or nil when every port of the range is in use.
    public mutating func allocate() -> UInt16? {
        guard inUse.count < range.count else { return nil }
        while true {
            let candidate = cursor
            cursor = cursor == range.upperBound ? range.lowerBound : cursor + 1
            if inUse.insert(candidate).inserted { return candidate }
        }
    }

    /// Takes an even port and the odd one above it (RTP and RTCP, RFC 3550 11), or nil when no such pair is free.
    public mutating func allocatePair() -> UInt16? {
        let first = range.lowerBound % 2 == 0 ? range.lowerBound : range.lowerBound + 1
        guard first < range.upperBound else { return nil }
        let pairs = (Int(range.upperBound) - Int(first) + 1) / 2
        var candidate = cursor % 2 == 0 ? cursor : cursor &+ 1
        for _ in 0..<pairs {
            if candidate < first || candidate >= range.upperBound { candidate = first }
            if !inUse.contains(candidate), !inUse.contains(candidate + 1) {
                inUse.insert(candidate)
                inUse.insert(candidate + 1)
                cursor = candidate + 2 > range.upperBound ? range.lowerBound : candidate + 2
                return candidate
            }
            candidate += 2
        }
        return nil
    }

    /// Gives a port back. Releasing a port that is not in use does nothing.
    public mutating func release(_ port: UInt16) {
        inUse.remove(port)
    }
}
