public import NIOCore

/// The transports SIP runs over here.
public enum SIPTransport: String, Hashable, Sendable {
    case udp
    case tcp

    /// The token Via and URIs use: `UDP`, `TCP`.
    public var viaToken: String { self == .udp ? "UDP" : "TCP" }
}

/// Which side of the gateway a message comes from or goes to.
public enum SIPSide: String, Hashable, Sendable {
    /// Phones and other clients that reach the gateway's public address.
    case outside
    /// The PBX or registrar behind the gateway (`upstream`).
    case inside
}

/// Where a SIP message came from or must go: a transport, the remote endpoint, and for TCP the connection.
public struct SIPFlow: Hashable, Sendable, CustomStringConvertible {
    public var transport: SIPTransport
    public var remote: Endpoint
    /// The TCP connection (the proxy's own id); nil for UDP.
    public var connection: UInt64?

    public init(transport: SIPTransport, remote: Endpoint, connection: UInt64? = nil) {
        self.transport = transport
        self.remote = remote
        self.connection = connection
    }

    public var description: String {
        connection.map { "\(transport.rawValue):\(remote)#\($0)" } ?? "\(transport.rawValue):\(remote)"
    }
}

/// The addresses a SIP listener rewrites between, fixed at start.
public struct SIPGatewayContext: Hashable, Sendable {
    /// What outside peers are told: in Via, Contact and SDP sent outside.
    public var publicAddress: IPAddress
    /// The listener's port as outside peers reach it.
    public var publicPort: UInt16
    /// The gateway's address towards upstream: in Via, Contact and SDP sent inside.
    public var insideAddress: IPAddress
    /// The port upstream reaches the gateway at.
    public var insidePort: UInt16
    /// The PBX or registrar.
    public var upstream: Endpoint
    /// What outside peers are told in SDP, where their media relays listen: `publicAddress` unless the two differ.
    /// They differ in transparent mode, where signalling to a phone names the destination the phone asked for
    /// (which algate intercepts and impersonates), but media must go to an address of the gateway itself.
    public var publicMediaAddress: IPAddress

    public init(publicAddress: IPAddress, publicPort: UInt16, insideAddress: IPAddress, insidePort: UInt16,
                upstream: Endpoint, publicMediaAddress: IPAddress? = nil) {
        self.publicAddress = publicAddress
        self.publicPort = publicPort
        self.insideAddress = insideAddress
        self.insidePort = insidePort
        self.upstream = upstream
        self.publicMediaAddress = publicMediaAddress ?? publicAddress
    }
}

/// A media relay the gateway needs before it may forward the message whose SDP announces it.
public struct SIPMediaRequest: Hashable, Sendable {
    /// Unique in the listener; handed back in `mediaOpened`/`mediaFailed`.
    public var id: UInt64
    /// The Call-ID of the dialog it belongs to (for logs).
    public var callID: String
    /// The dialog's number: relays of one dialog count together against the per-session pinhole limit.
    public var dialog: UInt64
    /// Where media for the outside party goes until its packets arrive (from its SDP), if known yet.
    public var outsidePeer: Endpoint?
    /// Where media for the inside party goes, if known yet.
    public var insidePeer: Endpoint?
    /// RTCP ports from a=rtcp (RFC 3605), when the SDP named one.
    public var outsideRTCPPort: UInt16?
    public var insideRTCPPort: UInt16?
    /// The only address admitted on the outside sockets: the outside party's signalling address.
    public var outsideAllowed: IPAddress

    public init(id: UInt64, callID: String, dialog: UInt64, outsidePeer: Endpoint?, insidePeer: Endpoint?,
                outsideRTCPPort: UInt16?, insideRTCPPort: UInt16?, outsideAllowed: IPAddress) {
        self.id = id
        self.callID = callID
        self.dialog = dialog
        self.outsidePeer = outsidePeer
        self.insidePeer = insidePeer
        self.outsideRTCPPort = outsideRTCPPort
        self.insideRTCPPort = insideRTCPPort
        self.outsideAllowed = outsideAllowed
    }
}

/// Something an operator may want in the log.
public enum SIPGatewayEvent: Sendable {
    /// A message was forwarded, rewritten; a one-line summary of what changed.
    case forwarded(summary: String, from: SIPFlow, to: SIPFlow)
    /// A message was refused: answered (when it was a request and an answer is possible) or dropped.
    case refused(reason: String, from: SIPFlow, answered: Int?)
    /// A registration binding was created, refreshed or removed.
    case binding(aor: String, flow: SIPFlow, expires: Int)
    /// A dialog's media was set up, changed or torn down.
    case media(callID: String, what: String)
}

/// What the proxy must do next, in order.
public enum SIPGatewayAction: Sendable {
    /// Send these bytes on that flow (for TCP: that connection, or a new one to `upstream` when it has none).
    case send(ByteBuffer, to: SIPFlow)
    /// Open this relay, then call `mediaOpened` or `mediaFailed`; nothing else is sent meanwhile.
    case openMedia(SIPMediaRequest)
    /// Point an open relay at a new peer (an SDP answer, a re-INVITE).
    case updateMedia(id: UInt64, outsidePeer: Endpoint?, outsideRTCPPort: UInt16?, insidePeer: Endpoint?,
                     insideRTCPPort: UInt16?)
    /// Close a relay (BYE, CANCEL, a final error, or the dialog ended otherwise).
    case closeMedia(id: UInt64)
    /// Log this.
    case report(SIPGatewayEvent)
}

/// What a policy says of one SIP request.
public enum SIPAdmission: Hashable, Sendable {
    /// Route it.
    case admit
    /// Answer it with this status and reason phrase, and route nothing.
    case refuse(code: Int, reason: String)
    /// Say nothing and route nothing (a scanner learns nothing from silence).
    case drop
}
