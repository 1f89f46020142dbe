public import AlgateRewrite

/// Everything one FTP listener needs, independent of how it was configured.
public struct FTPProxyConfiguration: Hashable, Sendable {
    /// Where clients connect.
    public var listen: Endpoint
    /// The FTP server behind the gateway (reverse mode), or nil in transparent mode: each session then goes to
    /// the destination its client asked for before nftables redirected it (`SO_ORIGINAL_DST`).
    public var upstream: Endpoint?
    /// The address announced to clients in 227/228 replies; default: the address the client connected to.
    public var publicAddress: IPAddress?
    /// The local address active-mode pinholes listen on; default: the gateway's address on the server connection.
    public var dataAddress: IPAddress?
    /// The longest control line accepted, terminator included; also the longest the gateway sends (a rewritten
    /// or masked reply is shortened to fit).
    public var maxLineLength: Int = 4096
    /// A control session with no line and no running transfer for this long is closed.
    public var idleTimeout: Duration = .seconds(300)
    /// Sessions this listener serves at once; one more is answered 421.
    public var maxSessions: Int = 1000
    /// Admit PORT/EPRT to ports below 1024, and passive replies naming a server port below 1024.
    public var allowPrivilegedPorts: Bool = false
    /// How long a pinhole waits for its connection.
    public var pinholeTimeout: Duration = .seconds(30)
    /// How long connecting to the upstream server may take.
    public var connectTimeout: Duration = .seconds(10)
    /// Key passive pinholes on the server's address instead of the gateway's: transparent mode with kernel
    /// pinholes, whose DNAT then takes the client's data connection to the server's address directly (a
    /// userspace pinhole needs a local address, and the steering rules bring the connection to it instead).
    public var passivePinholesAtServerAddress: Bool = false

    /// A listener in reverse mode (`upstream` set) or in transparent mode (`upstream` nil).
    public init(listen: Endpoint, upstream: Endpoint?) {
        self.listen = listen
        self.upstream = upstream
    }
}
