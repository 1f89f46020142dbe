/// The `[pinholes]` table: where data channels and media get their public ports, and how long they stay open.
public struct PinholeSettings: Hashable, Sendable {
    /// How a pinhole is opened.
    public enum Backend: String, Hashable, Sendable {
        /// A listener or socket in this process relays to the target; needs no privileges. The default.
        case userspace
        /// Elements with timeouts in an algate-owned nftables table; the kernel forwards the flow itself.
        case nftables
    }

    /// Key `backend`: `"userspace"` (default) or `"nftables"`.
    public var backend: Backend = .userspace
    /// Key `ports`: the public ports handed out to data channels and media, `"40000-44999"` or a single `"40000"`.
    /// Never contains port 0.
    public var ports: ClosedRange<UInt16> = 40000...44999
    /// Key `timeout`: an unused pinhole closes after this long. Always positive.
    public var timeout: Duration = .seconds(30)
    /// Key `per-session`: at most this many open pinholes per control session; at least 1.
    public var perSession: Int = 16
    /// Key `max`: at most this many open pinholes in the whole process; at least 1.
    public var maxTotal: Int = 10_000

    /// The defaults: userspace backend, ports 40000-44999, 30 s timeout, 16 per session, 10 000 in all.
    public init() {}
}
