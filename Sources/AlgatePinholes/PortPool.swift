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

    /// Gives a port back. Releasing a port that is not in use does nothing.
    public mutating func release(_ port: UInt16) {
        inUse.remove(port)
    }
}
