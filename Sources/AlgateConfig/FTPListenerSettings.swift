public import AlgateRewrite

/// One `[[ftp]]` table: a control-connection listener and where its sessions go.
public struct FTPListenerSettings: Hashable, Sendable {
    /// How the gateway finds the server.
    public enum Mode: String, Hashable, Sendable {
        /// In front of one server: every session goes to ``FTPListenerSettings/upstream``.
        case reverse
        /// On a NAT gateway: nftables redirects control traffic here, and each session goes to its original
        /// destination. There is no upstream.
        case transparent
    }

    /// Key `listen` (required): where control connections are accepted, `"0.0.0.0:21"` or `"[::1]:2121"`.
    public var listen: Endpoint
    /// Key `upstream`: the FTP server. Required in reverse mode, forbidden in transparent mode.
    public var upstream: Endpoint?
    /// Key `mode`: ``Mode/reverse`` when ``upstream`` is set, otherwise ``Mode/transparent``.
    public var mode: Mode
    /// Key `public-address`: the address announced to clients in 227/228 replies. Only an address, no port.
    public var publicAddress: IPAddress?
    /// Key `data-address`: the local address that active-mode pinholes listen on (by default the gateway's own
    /// address on the upstream connection).
    public var dataAddress: IPAddress?
    /// Key `max-line-length`: the longest command or reply line accepted, in bytes (512...1_048_576); a reply
    /// algate rewrites or masks is shortened to stay within it.
    public var maxLineLength: Int = 4096
    /// Key `idle-timeout`: a control connection with no traffic and no running transfer closes after this long.
    public var idleTimeout: Duration = .seconds(300)
    /// Key `max-sessions`: at most this many control sessions at once on this listener; at least 1.
    public var maxSessions: Int = 1000
    /// Key `allow-privileged-ports`: whether PORT/EPRT may name a port below 1024, and a passive reply a server
    /// port below 1024 (refused by default: 504 and 425).
    public var allowPrivilegedPorts: Bool = false
    /// Key `intercept-interface` (transparent mode, required there): the inside interface(s) whose FTP control
    /// connections nftables redirects to this listener; a name or a list of names (a trailing `*` is a wildcard).
    public var interceptInterfaces: [String] = []
    /// Key `intercept-ports` (transparent mode): the destination ports redirected (default 21).
    public var interceptPorts: [UInt16] = [21]
    /// The line of this `[[ftp]]` header in the configuration file, for messages; 0 when not from a file.
    public var line: Int

    /// A transparent-mode listener with the defaults; set ``upstream`` and ``mode`` for reverse mode.
    public init(listen: Endpoint, line: Int = 0) {
        self.listen = listen
        self.upstream = nil
        self.mode = .transparent
        self.line = line
    }
}
