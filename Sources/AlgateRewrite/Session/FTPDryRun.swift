public import NIOCore

/// Runs a control-session transcript through the engine without any network: pinholes "open" on ports counted up
/// from a start port. What `algate rewrite ftp` prints, and what replay and tests compare against.
public struct FTPDryRun: Sendable {
    /// One thing that happened, in order.
    public enum Entry: Sendable, Equatable {
        /// A line as it leaves the gateway, and the line it came from when it was rewritten or replaced.
        case forwarded(ByteBuffer, to: FTPSide, original: ByteBuffer?)
        /// A pinhole that would open, with the port it got.
        case pinhole(FTPPinholeRequest, port: UInt16)
        /// A pinhole that would close again (its PORT was refused).
        case pinholeClosed(id: UInt64)
        /// Something the gateway would log.
        case note(String)
    }

    public private(set) var machine: FTPSessionStateMachine
    public private(set) var entries: [Entry] = []
    private var nextPort: UInt16
    private var lastOriginal: ByteBuffer?

    public init(context: FTPSessionContext, configuration: FTPSessionStateMachine.Configuration = .init(),
                firstPort: UInt16 = 40000) {
        self.machine = FTPSessionStateMachine(context: context, configuration: configuration)
        self.nextPort = firstPort
    }

    /// Feeds one line from a side and records what comes out.
    public mutating func feed(_ line: ByteBuffer, from side: FTPSide) {
        machine.receive(line, from: side)
        drain()
    }

    private mutating func drain() {
        while let action = machine.nextAction() {
            switch action {
            case .forward(let bytes, let side):
                entries.append(.forwarded(bytes, to: side, original: lastOriginal))
                lastOriginal = nil
            case .openPinhole(let request):
                let port = nextPort
                nextPort = nextPort == .max ? 1024 : nextPort + 1
                entries.append(.pinhole(request, port: port))
                machine.pinholeOpened(id: request.id, port: port)
            case .closePinhole(let id):
                entries.append(.pinholeClosed(id: id))
            case .enterPassthrough:
                entries.append(.note("passthrough: the rest of the session is not translated"))
            case .report(let event):
                switch event {
                case .rewritten(_, let original, _):
                    lastOriginal = original
                case .refused(let command, let reason):
                    lastOriginal = command
                    entries.append(.note("refused: \(reason.explanation)"))
                case .malformedReply(let line, let reason):
                    lastOriginal = line
                    entries.append(.note("malformed reply: \(reason?.explanation ?? "no address found")"))
                case .unsolicitedReply(let code):
                    entries.append(.note("unsolicited \(code) reply: no pinhole"))
                case .masked(let original, _, let count):
                    lastOriginal = original
                    entries.append(.note("masked: \(count) address\(count == 1 ? "" : "es") of the inside network "
                        + "(public address, port 0)"))
                case .passiveReplyRefused(let line, let reason):
                    lastOriginal = line
                    entries.append(.note("no pinhole: the server's \(reason.explanation)"))
                case .shortened(_, let removed, let limit):
                    entries.append(.note("shortened: \(removed) bytes of reply text cut to fit max-line-length \(limit)"))
                case .announcedAddressIgnored(let announced, let using):
                    entries.append(.note("server announced \(announced); data goes to \(using)"))
                case .pinholeUnavailable(let reason):
                    entries.append(.note("no pinhole: \(reason)"))
                case .passthrough(let reason):
                    entries.append(.note(reason))
                case .notAReply:
                    entries.append(.note("server line is not a reply: passed on"))
                }
            case .close(let reason):
                entries.append(.note("session closed: \(reason)"))
            }
        }
    }
}
