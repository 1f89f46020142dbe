/// What a replay found in a capture and what the gateway would have done with it: the value behind
/// `algate replay`'s text and JSON output.
public struct ReplayReport: Codable, Sendable, Equatable {
    /// The capture file.
    public var file: String
    /// Whether it was gzip-compressed.
    public var compressed: Bool
    /// The capture's link type, for people (`Ethernet (1)`).
    public var linkType: String
    /// Frames read.
    public var frames: Int
    /// The side replayed as if it were behind NAT: `client` or `server`.
    public var side: String
    /// The public address that side was given.
    public var publicAddress: String
    /// Every FTP and SIP control session found, in the order they started.
    public var sessions: [ReplaySession]
    /// Counts of what the capture held besides the sessions.
    public var capture: ReplayCaptureSummary
    /// Problems with the capture itself (truncation, undecodable frames, incomplete IP datagrams), one line each.
    public var problems: [String]
    /// Whether the file ended inside a record (everything before was replayed).
    public var truncated: Bool

    /// A report with every field given.
    public init(file: String, compressed: Bool, linkType: String, frames: Int, side: String, publicAddress: String,
                sessions: [ReplaySession], capture: ReplayCaptureSummary, problems: [String], truncated: Bool) {
        self.file = file
        self.compressed = compressed
        self.linkType = linkType
        self.frames = frames
        self.side = side
        self.publicAddress = publicAddress
        self.sessions = sessions
        self.capture = capture
        self.problems = problems
        self.truncated = truncated
    }

    /// The sessions of one protocol.
    public func sessions(_ protocolName: ReplayProtocol) -> [ReplaySession] {
        sessions.filter { $0.protocol == protocolName }
    }
}

/// Counts of what a capture held.
public struct ReplayCaptureSummary: Codable, Sendable, Equatable {
    /// TCP connections seen (control and data).
    public var tcpConnections = 0
    /// UDP flows seen (two endpoints, either direction).
    public var udpFlows = 0
    /// IP datagrams put back together from fragments.
    public var reassembledDatagrams = 0
    /// IP datagrams whose fragments never all arrived.
    public var incompleteDatagrams = 0
    /// Frames that carry no IP (ARP, LLDP, ...).
    public var nonIPFrames = 0
    /// Frames that could not be decoded (too short, bad headers, unsupported link type).
    public var undecodableFrames = 0
    /// TCP connections and UDP flows that belong to no session (neither control nor data/media of one).
    public var unrelatedFlows = 0
    /// Tunnel headers stripped, by kind (`GRE`, `ERSPAN type I`, `ERSPAN type II`, `ERSPAN type III`, `VXLAN`,
    /// `IPv4-in-IP`, `IPv6-in-IP`): one per packet and tunnel layer, reassembled datagrams counted once.
    public var decapsulated: [String: Int] = [:]
    /// Tunnelled packets that could not be read past their tunnel header, by reason (`GRE version 1 (PPTP)`,
    /// `GRE protocol type 0x880b`, `VXLAN header truncated`, `tunnels nested more than 4 deep`...). Each is also an
    /// undecodable frame, with a line in the problems.
    public var notDecapsulated: [String: Int] = [:]

    /// All counts zero.
    public init() {}
}

/// The protocols a session can be.
public enum ReplayProtocol: String, Codable, Sendable, Hashable {
    /// An FTP control connection (RFC 959).
    case ftp
    /// SIP signalling between two hosts, over UDP or TCP (RFC 3261).
    case sip
}
