public import AlgateRewrite

/// Limits and addresses of one SIP listener.
public struct SIPProxyConfiguration: Hashable, Sendable {
    public var listen: Endpoint
    /// The PBX or registrar (reverse mode), or nil in transparent mode: each phone's messages then go to the
    /// destination they were sent to before nftables steered them here (`SO_ORIGINAL_DST` for TCP after a
    /// redirect, the datagram's own destination address for UDP after TPROXY).
    public var upstream: Endpoint?
    public var transports: Set<SIPTransport> = [.udp, .tcp]
    /// Reverse mode: what outside peers are told; default: the listen address (which then must not be a
    /// wildcard). Transparent mode: what the upstreams are told, and where their media relays listen; default: the
    /// gateway's address towards each upstream.
    public var publicAddress: IPAddress?
    /// Reverse mode: the gateway's address towards upstream; default: the listen address. Transparent mode: where
    /// the phones' media relays listen; default: the gateway's address towards the first phone of each upstream.
    public var insideAddress: IPAddress?
    /// Transparent mode over UDP: the port intercepted datagrams were sent to. TPROXY leaves a datagram as it
    /// was, and `IP_PKTINFO` tells its destination address but not its port, so a transparent UDP listener
    /// intercepts one port, this one.
    public var interceptedPort: UInt16 = 5060
    /// Transparent mode: upstreams (original destinations) served at once; a phone's message to one more is dropped.
    public var maxUpstreams: Int = 256
    public var limits = SIPLimits()
    /// What happens to the ICE candidates of relayed streams.
    public var ice: SDPRewrite.ICEMode = .replace
    /// Networks whose addresses no SDP algate passes on may name.
    public var insideNetworks: [CIDR] = []
    /// A media relay with no packet for this long closes.
    public var mediaTimeout: Duration = .seconds(60)
    /// How often a registered phone's NAT mapping is refreshed (a CRLF keep-alive, RFC 5626 4.4.1).
    public var keepAliveInterval: Duration = .seconds(25)
    /// TCP connections at once, from outside.
    public var maxConnections: Int = 1000

    /// A reverse-mode listener in front of `upstream`, or a transparent one when `upstream` is nil.
    public init(listen: Endpoint, upstream: Endpoint?) {
        self.listen = listen
        self.upstream = upstream
    }
}
