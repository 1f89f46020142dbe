public import NIOCore

/// The two ends of an FTP control session as the gateway sees them.
public enum FTPSide: String, Hashable, Sendable {
    /// The FTP client: the side that sends commands.
    case client
    /// The FTP server: the side that sends replies.
    case server
}

/// The addresses a session's rewrites need, fixed when the control connection is set up.
public struct FTPSessionContext: Hashable, Sendable {
    /// The client's end of the control connection: the only address PORT/EPRT/LPRT may name, and the only peer a
    /// passive pinhole admits.
    public var client: Endpoint
    /// The server's end of the control connection: where passive data connections go, and the only peer an
    /// active pinhole admits.
    public var server: Endpoint
    /// The address the client is told to connect to in 227/228 replies.
    public var publicAddress: IPAddress
    /// The gateway's own address on the server side, announced to the server in the rewritten PORT/EPRT/LPRT.
    public var insideAddress: IPAddress
    /// Further addresses of the inside network that no reply may show the client, besides the server's and
    /// ``insideAddress``: the gateway's address on the server connection when ``insideAddress`` is another one.
    public var alsoInside: [IPAddress] = []

    public init(client: Endpoint, server: Endpoint, publicAddress: IPAddress, insideAddress: IPAddress) {
        self.client = client
        self.server = server
        self.publicAddress = publicAddress
        self.insideAddress = insideAddress
    }
}

/// A data-channel mapping the session needs before it may forward the message that announces it.
public struct FTPPinholeRequest: Hashable, Sendable {
    public enum Purpose: String, Hashable, Sendable {
        /// PASV/EPSV/LPSV: the client connects to the gateway's public side; the gateway connects to the server.
        case passive
        /// PORT/EPRT/LPRT: the server connects to the gateway's inside address; the gateway connects to the client.
        case active
    }

    /// Unique within the session; the proxy hands it back in `pinholeOpened`/`pinholeFailed`.
    public var id: UInt64
    public var purpose: Purpose
    /// The one address allowed to connect to the pinhole.
    public var allowedPeer: IPAddress
    /// Where the admitted connection is relayed to.
    public var target: Endpoint

    public init(id: UInt64, purpose: Purpose, allowedPeer: IPAddress, target: Endpoint) {
        self.id = id
        self.purpose = purpose
        self.allowedPeer = allowedPeer
        self.target = target
    }
}

/// Why a command from the client was refused instead of forwarded, or a passive reply from the server answered
/// with a 425.
public enum FTPRefusal: Hashable, Sendable {
    /// The command names another host than the control connection's client (the FTP bounce attack).
    case foreignAddress(named: IPAddress, peer: IPAddress)
    /// A port below 1024 (without `allow-privileged-ports`).
    case privilegedPort(UInt16)
    /// The argument does not parse.
    case syntax(FTPParseError)
    /// No pinhole could be opened for it (for example the port pool is exhausted).
    case noPinhole(String)
    /// A policy rule refused it; the reply the client got.
    case policy(String)

    public var explanation: String {
        switch self {
        case .foreignAddress(let named, let peer): return "address \(named) is not the client's own (\(peer))"
        case .privilegedPort(let port): return "port \(port) is below 1024"
        case .syntax(let error): return error.explanation
        case .noPinhole(let why): return "no data channel available: \(why)"
        case .policy(let reply): return "refused by policy: \(reply)"
        }
    }
}

/// Something that happened in a session that an operator may want to read in the log.
public enum FTPSessionEvent: Sendable {
    /// A line was rewritten; both versions, for the log and for `algate rewrite`.
    case rewritten(from: FTPSide, original: ByteBuffer, rewritten: ByteBuffer)
    /// A client command was answered by the gateway and not forwarded.
    case refused(command: ByteBuffer, reason: FTPRefusal)
    /// A reply that should have carried an address did not (or carried a bad one).
    case malformedReply(line: ByteBuffer, reason: FTPParseError?)
    /// A passive reply came while its command was not pending; it is forwarded with its address masked
    /// (``masked(original:masked:count:)``), no pinhole opens.
    case unsolicitedReply(code: Int)
    /// A reply line carried an address form or an address of the inside network that no rewrite replaces; it
    /// went on with each such piece masked (the public address, port 0): `count` pieces.
    case masked(original: ByteBuffer, masked: ByteBuffer, count: Int)
    /// A passive reply named a data port the gateway opens no pinhole to; the client got a 425 instead (or,
    /// inside a multi-line reply already under way, the line with its address masked).
    case passiveReplyRefused(line: ByteBuffer, reason: FTPRefusal)
    /// A line the gateway sent lost `removed` bytes of its free text to stay within `limit` (max-line-length).
    case shortened(line: ByteBuffer, removed: Int, limit: Int)
    /// The server announced another address than its own in a passive reply; the gateway connects to its own.
    case announcedAddressIgnored(announced: IPAddress, using: IPAddress)
    /// A passive reply was turned into a 425 because no pinhole could be opened.
    case pinholeUnavailable(reason: String)
    /// The session can no longer be read (AUTH TLS accepted): from now on bytes pass untouched.
    case passthrough(reason: String)
    /// A line from the server that is not a reply at all; forwarded (masked, like every reply line).
    case notAReply(line: ByteBuffer)
}

/// What the proxy must do next, in order.
public enum FTPSessionAction: Sendable {
    /// Write these bytes to that side.
    case forward(ByteBuffer, to: FTPSide)
    /// Open this pinhole, then call `pinholeOpened` or `pinholeFailed`; nothing else is forwarded meanwhile.
    case openPinhole(FTPPinholeRequest)
    /// Close a pinhole that will not be used (its PORT was refused by the server).
    case closePinhole(id: UInt64)
    /// Stop framing lines and relay raw bytes both ways from here on (issued before the line that causes it).
    case enterPassthrough
    /// Log this event.
    case report(FTPSessionEvent)
    /// Close the session: the client was told why, if it could be.
    case close(reason: String)
}

/// What a policy says of one client command.
public enum FTPAdmission: Hashable, Sendable {
    /// Forward it.
    case admit
    /// Answer the client with this reply line (no CR LF) and do not forward the command.
    case refuse(reply: String)
}
