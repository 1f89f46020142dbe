public import AlgateRewrite

/// One `[[sip]]` table: a SIP listener (UDP and/or TCP on one address and port) and where its messages go.
public struct SIPListenerSettings: Hashable, Sendable {
    /// Key `listen` (required): `"0.0.0.0:5060"` or `"[::1]:5060"`.
    public var listen: Endpoint
    /// Key `transports`: `["udp", "tcp"]` (default both).
    public var transports: Set<SIPTransport> = [.udp, .tcp]
    /// Key `upstream`: the PBX or registrar. Required in reverse mode.
    public var upstream: Endpoint?
    /// Key `mode`: `"reverse"` when upstream is set; `"transparent"` otherwise.
    public var mode: FTPListenerSettings.Mode
    /// Key `public-address`: what outside peers are told in Via, Contact and SDP (reverse mode, default: the listen
    /// address). Transparent mode: what the upstreams outside (registrars, proxies) are told, and where their media
    /// relays listen (default: the gateway's address towards each upstream).
    public var publicAddress: IPAddress?
    /// Key `inside-address`: the gateway's address towards upstream (reverse mode, default: the listen address).
    /// Transparent mode: the gateway's address on the intercept interface, where the phones' media relays listen
    /// (default: the gateway's address towards the first phone that used the upstream).
    public var insideAddress: IPAddress?
    /// Key `media-timeout`: a media relay with no packet for this long closes.
    public var mediaTimeout: Duration = .seconds(60)
    /// Key `keepalive-interval`: how often a registered phone's NAT mapping is refreshed.
    public var keepAliveInterval: Duration = .seconds(25)
    /// Key `max-message-size`: the largest SIP message accepted, in bytes (1024...1_048_576).
    public var maxMessageSize: Int = 65_535
    /// Key `ice`: what happens to the ICE candidates (a=candidate) of relayed streams: `replace` (host candidates on
    /// the relay), `strip` (every ICE line removed) or `pass` (left as they came, addresses and all).
    public var ice: SDPRewrite.ICEMode = .replace
    /// Key `inside-networks`: networks whose addresses never go out in an SDP line algate passes on, whichever
    /// way the message goes (algate's own addresses excepted): a message that would carry one is refused.
    public var insideNetworks: [CIDR] = []
    /// Key `max-connections`: TCP connections from outside at once.
    public var maxConnections: Int = 1000
    /// Key `intercept-interface` (transparent mode, required there): the inside interface(s) whose SIP traffic
    /// nftables steers to this listener; a name or a list of names (a trailing `*` is a wildcard).
    public var interceptInterfaces: [String] = []
    /// Key `intercept-ports` (transparent mode): the destination ports steered (default 5060).
    public var interceptPorts: [UInt16] = [5060]
    /// The line of this `[[sip]]` header, for messages; 0 when not from a file.
    public var line: Int

    public init(listen: Endpoint, line: Int = 0) {
        self.listen = listen
        self.mode = .transparent
        self.line = line
    }
}
