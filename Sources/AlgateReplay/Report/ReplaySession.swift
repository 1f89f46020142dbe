/// One control session of a capture as the gateway engine saw it.
public struct ReplaySession: Codable, Sendable, Equatable {
    /// A control line (FTP) or message (SIP) as the capture holds it.
    public struct Message: Codable, Sendable, Equatable {
        /// The capture frame that completed it.
        public var frame: Int
        /// Seconds since the capture's first frame.
        public var time: Double
        /// `client` or `server`.
        public var from: String
        /// The line without its terminator (FTP), or the start line (SIP); at most 300 characters.
        public var text: String
        /// Its length in bytes.
        public var bytes: Int
        /// The whole message as captured (SIP only, and only when ``ReplaySettings/keepsMessageBytes`` is set: what
        /// the live replay plays). Not part of the JSON report.
        public var raw: [UInt8]? = nil

        private enum CodingKeys: String, CodingKey {
            case frame, time, from, text, bytes
        }

        /// A message entry.
        public init(frame: Int, time: Double, from: String, text: String, bytes: Int) {
            self.frame = frame
            self.time = time
            self.from = from
            self.text = text
            self.bytes = bytes
        }
    }

    /// A message the gateway would forward changed.
    public struct Rewrite: Codable, Sendable, Equatable {
        /// Index into ``ReplaySession/messages``.
        public var message: Int
        /// The capture frame it came from.
        public var frame: Int
        /// `client` or `server`.
        public var from: String
        /// FTP: the line as captured. SIP: the lines that changed or went, one per line.
        public var before: String
        /// FTP: the line as the gateway forwards it. SIP: the lines that replaced them or were added.
        public var after: String

        /// A rewrite entry.
        public init(message: Int, frame: Int, from: String, before: String, after: String) {
            self.message = message
            self.frame = frame
            self.from = from
            self.before = before
            self.after = after
        }
    }

    /// A pinhole the gateway would open.
    public struct Pinhole: Codable, Sendable, Equatable {
        /// Per session, from 1.
        public var id: Int
        /// Index into ``ReplaySession/messages`` of the message that asked for it.
        public var message: Int
        /// The capture frame it came from.
        public var frame: Int
        /// `passive`, `active` (FTP) or `media` (SIP: RTP and RTCP of one m= line).
        public var kind: String
        /// The port(s) the gateway would listen on: FTP one, SIP outside and inside RTP ports.
        public var ports: [Int]
        /// The address admitted (FTP: the one peer; SIP: the outside party's signalling address).
        public var admits: String
        /// Where admitted traffic goes: the data endpoint (FTP), or the SDP media endpoints, RTCP included (SIP).
        public var relaysTo: [String]
        /// Whether the gateway closed it again before the capture ended (refused PORT, BYE, CANCEL, error).
        public var closed: Bool

        /// A pinhole entry.
        public init(id: Int, message: Int, frame: Int, kind: String, ports: [Int], admits: String, relaysTo: [String],
                    closed: Bool = false) {
            self.id = id
            self.message = message
            self.frame = frame
            self.kind = kind
            self.ports = ports
            self.admits = admits
            self.relaysTo = relaysTo
            self.closed = closed
        }
    }

    /// Something malformed, refused or lost, and what the gateway (or the replay) did about it.
    public struct Problem: Codable, Sendable, Equatable {
        /// Index into ``ReplaySession/messages``, when a message caused it.
        public var message: Int?
        /// The capture frame it came from.
        public var frame: Int?
        /// What is wrong.
        public var problem: String
        /// What was done: `answered ...`, `replaced by ...`, `passed on unchanged`, `dropped`, `session closed`,
        /// `not interpreted further`.
        public var action: String

        /// A problem entry.
        public init(message: Int?, frame: Int?, problem: String, action: String) {
            self.message = message
            self.frame = frame
            self.problem = problem
            self.action = action
        }
    }

    /// A data connection (FTP) or media flow (SIP) the capture holds.
    public struct Flow: Codable, Sendable, Equatable {
        /// `tcp` or `udp`.
        public var transport: String
        /// The endpoint that opened it (TCP) or sent first (UDP).
        public var from: String
        /// The other endpoint.
        public var to: String
        /// The capture frame it came from.
        public var frame: Int
        /// `data` (FTP), `rtp` or `rtcp` (SIP).
        public var kind: String
        /// The pinhole it falls into; nil when none was predicted for it.
        public var coveredBy: Int?
        /// The first few UDP payloads from ``from`` to ``to``, as captured (only when
        /// ``ReplaySettings/keepsMessageBytes`` is set: what the live replay sends). Not part of the JSON report.
        public var forward: [[UInt8]] = []
        /// The first few UDP payloads from ``to`` to ``from``, likewise.
        public var backward: [[UInt8]] = []

        private enum CodingKeys: String, CodingKey {
            case transport, from, to, frame, kind, coveredBy
        }

        /// A flow entry.
        public init(transport: String, from: String, to: String, frame: Int, kind: String, coveredBy: Int?) {
            self.transport = transport
            self.from = from
            self.to = to
            self.frame = frame
            self.kind = kind
            self.coveredBy = coveredBy
        }
    }

    /// The prediction checked against the capture.
    public struct DataFlows: Codable, Sendable, Equatable {
        /// Data connections or media flows the capture holds for this session.
        public var observed: Int
        /// Pinholes the engine would open (FTP data pinholes; SIP media relays, one per m= line).
        public var predicted: Int
        /// Observed flows that fall into a predicted pinhole.
        public var covered: Int

        /// The counts of a data-flow check.
        public init(observed: Int = 0, predicted: Int = 0, covered: Int = 0) {
            self.observed = observed
            self.predicted = predicted
            self.covered = covered
        }

        /// Whether every observed flow is covered.
        public var allCovered: Bool { covered == observed }
    }

    /// From 1, in the order sessions started.
    public var id: Int
    /// FTP or SIP.
    public var `protocol`: ReplayProtocol
    /// `tcp` or `udp`.
    public var transport: String
    /// How the session was recognised: `port 21`, `content (220 greeting)`, `port 5060`, `content (SIP start line)`.
    public var detectedBy: String
    /// The client's endpoint (FTP: the one that connected; SIP: the sender of the first request).
    public var client: String
    /// The server's endpoint (FTP: port 21's side; SIP: the receiver of the first request, the engine's upstream).
    public var server: String
    /// The frame the session was first seen in.
    public var firstFrame: Int
    /// Every control line (FTP) or message (SIP) in the order the engine took them.
    public var messages: [Message] = []
    /// The messages the gateway would forward changed, before and after.
    public var rewrites: [Rewrite] = []
    /// The pinholes the gateway would open.
    public var pinholes: [Pinhole] = []
    /// Malformed or refused messages, gaps and limits, and what was done about each.
    public var errors: [Problem] = []
    /// What the gateway would log besides (server announced another address, passthrough, bindings, ...).
    public var notes: [String] = []
    /// Observed, predicted and covered data connections or media flows.
    public var dataFlows = DataFlows()
    /// The flows counted in ``dataFlows``.
    public var flows: [Flow] = []

    /// A session with nothing recorded yet.
    public init(id: Int, protocol: ReplayProtocol, transport: String, detectedBy: String, client: String,
                server: String, firstFrame: Int) {
        self.id = id
        self.protocol = `protocol`
        self.transport = transport
        self.detectedBy = detectedBy
        self.client = client
        self.server = server
        self.firstFrame = firstFrame
    }
}
