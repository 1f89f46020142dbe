/// The pure bookkeeping behind every backend: which ports are taken, and how many pinholes each control session
/// and the whole process hold, against their configured limits.
public struct PinholeLedger: Sendable {
    public struct Limits: Hashable, Sendable {
        public var perSession: Int
        public var total: Int

        public init(perSession: Int, total: Int) {
            self.perSession = perSession
            self.total = total
        }
    }

    public let limits: Limits
    private var pool: PortPool
    private var perSession: [UInt64: Int] = [:]
    private(set) public var total = 0

    public init(ports: ClosedRange<UInt16>, limits: Limits) {
        self.pool = PortPool(range: ports)
        self.limits = limits
    }

    /// Reserves a port for a session, or says which limit stands in the way.
    public mutating func reserve(session: UInt64) -> Result<UInt16, PinholeError> {
        guard total < limits.total else { return .failure(.totalLimit(limits.total)) }
        guard perSession[session, default: 0] < limits.perSession else { return .failure(.sessionLimit(limits.perSession)) }
        guard let port = pool.allocate() else { return .failure(.poolExhausted) }
        perSession[session, default: 0] += 1
        total += 1
        return .success(port)
    }

    /// Reserves an RTP/RTCP port pair (even, even + 1) for a session; counts as one pinhole.
    public mutating func reservePair(session: UInt64) -> Result<UInt16, PinholeError> {
        guard total < limits.total else { return .failure(.totalLimit(limits.total)) }
        guard perSession[session, default: 0] < limits.perSession else { return .failure(.sessionLimit(limits.perSession)) }
        guard let port = pool.allocatePair() else { return .failure(.poolExhausted) }
        perSession[session, default: 0] += 1
        total += 1
        return .success(port)
    }

    /// Returns a pair reservation made with `reservePair`.
    public mutating func releasePair(session: UInt64, port: UInt16) {
        pool.release(port + 1)
        release(session: session, port: port)
    }

    /// Returns a reservation. Call exactly once per successful `reserve`.
    public mutating func release(session: UInt64, port: UInt16) {
        pool.release(port)
        total -= 1
        if let count = perSession[session] {
            perSession[session] = count > 1 ? count - 1 : nil
        }
    }

    /// How many pinholes a session holds now.
    public func count(session: UInt64) -> Int { perSession[session, default: 0] }
}
