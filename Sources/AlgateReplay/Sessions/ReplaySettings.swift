public import AlgateRewrite

/// Which side of a captured session the replay puts behind NAT.
public enum ReplaySide: String, Sendable, Hashable, CaseIterable {
    /// The client (FTP client, SIP caller): its gateway rewrites what it announces to the server.
    case client
    /// The server (FTP server, SIP registrar/PBX), as in algate's reverse mode.
    case server
}

/// How a capture is replayed: who is behind NAT, the public address, and the limits that keep memory bounded.
public struct ReplaySettings: Sendable, Hashable {
    /// The side behind NAT.
    public var side: ReplaySide
    /// The address that side is given on the outside.
    public var publicAddress: IPAddress
    /// The longest FTP control line (the proxy's `max-line-length` default).
    public var maxFTPLineLength = 4096
    /// SIP limits (the proxy's defaults).
    public var sipLimits = SIPLimits()
    /// The first pinhole port handed out in each session.
    public var firstPort: UInt16 = 40000
    /// Bytes one TCP direction may hold behind a hole before the hole is declared a gap.
    public var maxTCPBufferedBytes = 1 << 20
    /// Sessions kept at most; later ones are counted, not replayed.
    public var maxSessions = 10_000
    /// Connections and flows tracked at most; later ones are counted only.
    public var maxFlows = 1_000_000
    /// Whether the report keeps each SIP message's bytes and the first UDP payloads of each media flow (for the
    /// live replay, which plays them again); off by default, which keeps memory bounded by the counts alone.
    public var keepsMessageBytes = false
    /// Media payloads kept per flow and direction when ``keepsMessageBytes`` is set.
    public var keptMediaPackets = 8

    /// The client behind NAT with 203.0.113.7 by default, and the proxy's default limits.
    public init(side: ReplaySide = .client, publicAddress: IPAddress = .v4(0xcb00_7107)) {
        self.side = side
        self.publicAddress = publicAddress
    }
}
