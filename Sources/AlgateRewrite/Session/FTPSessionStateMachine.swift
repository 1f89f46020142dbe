public import NIOCore

/// The FTP control-session engine: lines in, actions out. No sockets, no clocks, no event loops.
///
/// Feed every complete line (terminator included) with ``receive(_:from:)``, then drain ``nextAction()`` until it
/// returns nil. When an action asks for a pinhole, nothing more comes out until the proxy answers with
/// ``pinholeOpened(id:port:)`` or ``pinholeFailed(id:reason:)``: the message that announces a data channel is
/// forwarded only after its pinhole exists, and everything that arrived after it waits in order.
///
/// Replies are interpreted only while the matching command is pending: each forwarded command enqueues what it
/// expects, each final reply dequeues one. So a `227` that nobody asked for opens nothing, and pipelined commands
/// (lftp's default) are matched to their own replies.
public struct FTPSessionStateMachine: Sendable {
    /// Limits of one session.
    public struct Configuration: Hashable, Sendable {
        /// Commands forwarded and not yet answered; past this the session is closed (a client that never reads).
        public var maxPipelinedCommands: Int = 64
        /// Lines waiting while a pinhole is being opened; past this the session is closed.
        public var maxQueuedLines: Int = 256
        /// Admit PORT/EPRT/LPRT naming a port below 1024 (off: such a command is refused, as RFC 2577 advises).
        public var allowPrivilegedPorts: Bool = false

        public init() {}
    }

    private enum Expectation: Sendable {
        case greeting
        case passiveReply(FTPCommandLine.Verb)
        case activeReply(pinhole: UInt64)
        case authReply
        case other
    }

    private enum Rewrite: Sendable {
        /// A PORT/EPRT/LPRT waiting for its inside pinhole; `delimiter` is EPRT's own.
        case activeCommand(verb: FTPCommandLine.Verb, delimiter: UInt8, terminator: Range<Int>)
        /// A 227/228/229 line waiting for its public pinhole; `range` is the address in the line.
        case passiveReply(code: Int, range: Range<Int>)
    }

    private struct Awaiting: Sendable {
        var id: UInt64
        var line: ByteBuffer
        var rewrite: Rewrite
    }

    private enum State: Sendable {
        case translating
        case awaitingPinhole(Awaiting)
        case passthrough
        case closed
    }

    /// The addresses this session translates between.
    public let context: FTPSessionContext
    /// Consulted for every client command before it is interpreted: the command line and the session's USER
    /// name so far. nil admits everything.
    public var commandAdmission: (@Sendable (_ line: ByteBuffer, _ user: ByteBuffer?) -> FTPAdmission)?
    /// The argument of the last USER command.
    public private(set) var user: ByteBuffer?
    public let configuration: Configuration

    private var state: State = .translating
    private var inbox = CircularBuffer<(FTPSide, ByteBuffer)>(initialCapacity: 8)
    private var outbox = CircularBuffer<FTPSessionAction>(initialCapacity: 8)
    private var expectations = CircularBuffer<Expectation>(initialCapacity: 8)
    /// The code of a multi-line reply in progress, and whether its address was already found.
    private var openReply: (code: Int, handled: Bool)? = nil
    private var nextPinholeID: UInt64 = 1

    public init(context: FTPSessionContext, configuration: Configuration = .init()) {
        self.context = context
        self.configuration = configuration
        expectations.append(.greeting)
    }

    /// Whether the session relays raw bytes now (after AUTH TLS); lines are no longer read.
    public var isPassthrough: Bool {
        if case .passthrough = state { return true }
        return false
    }

    /// Whether a command still waits for its reply (or a line for its pinhole): a good moment to close the session
    /// is when this is false.
    public var isAwaitingReply: Bool {
        if case .awaitingPinhole = state { return true }
        return !expectations.isEmpty || openReply != nil || !inbox.isEmpty
    }

    /// Takes one complete line from a side. Call ``nextAction()`` until nil afterwards.
    public mutating func receive(_ line: ByteBuffer, from side: FTPSide) {
        switch state {
        case .closed:
            return
        case .passthrough:
            outbox.append(.forward(line, to: side.other))
        case .translating, .awaitingPinhole:
            if inbox.count >= configuration.maxQueuedLines {
                close("more than \(configuration.maxQueuedLines) lines queued behind a pinhole")
                return
            }
            inbox.append((side, line))
        }
    }

    /// The next thing to do, or nil when the session waits for input or for a pinhole.
    public mutating func nextAction() -> FTPSessionAction? {
        while outbox.isEmpty, case .translating = state, let (side, line) = inbox.popFirst() {
            switch side {
            case .client: handleCommand(line)
            case .server: handleReply(line)
            }
        }
        return outbox.popFirst()
    }

    /// The pinhole for request `id` listens on `port`; the waiting line is rewritten to announce it.
    public mutating func pinholeOpened(id: UInt64, port: UInt16) {
        guard case .awaitingPinhole(let awaiting) = state, awaiting.id == id else { return }
        state = .translating
        switch awaiting.rewrite {
        case .activeCommand(let verb, let delimiter, let terminator):
            let inside = Endpoint(address: context.insideAddress, port: port)
            // Written straight into the buffer that is sent: one allocation for the whole line.
            var rewritten = ByteBuffer()
            rewritten.reserveCapacity(64)
            switch verb {
            case .port where inside.address.unmapped.isIPv4:
                rewritten.writeStaticString("PORT ")
                FTPAddressWriter.appendSix(inside, to: &rewritten)
            case .lprt:
                rewritten.writeStaticString("LPRT ")
                FTPAddressWriter.appendLong(inside, to: &rewritten)
            default:
                // EPRT, and PORT towards an IPv6 server, which PORT cannot address.
                rewritten.writeStaticString("EPRT ")
                FTPAddressWriter.appendExtended(inside, delimiter: delimiter, to: &rewritten)
            }
            _ = awaiting.line.withUnsafeReadableBytes { line in
                rewritten.writeBytes(UnsafeRawBufferPointer(rebasing: line[terminator]))
            }
            expectations.append(.activeReply(pinhole: id))
            outbox.append(.report(.rewritten(from: .client, original: awaiting.line, rewritten: rewritten)))
            outbox.append(.forward(rewritten, to: .server))

        case .passiveReply(let code, let range):
            // The line as it was, with only the address span replaced, written into one new buffer.
            var rewritten = ByteBuffer()
            rewritten.reserveCapacity(awaiting.line.readableBytes + 16)
            _ = awaiting.line.withUnsafeReadableBytes { line in
                rewritten.writeBytes(UnsafeRawBufferPointer(rebasing: line[..<range.lowerBound]))
            }
            switch code {
            case 227: FTPAddressWriter.appendSix(Endpoint(address: context.publicAddress, port: port), to: &rewritten)
            case 228: FTPAddressWriter.appendLong(Endpoint(address: context.publicAddress, port: port), to: &rewritten)
            default: ASCII.appendDecimal(Int(port), to: &rewritten)
            }
            _ = awaiting.line.withUnsafeReadableBytes { line in
                rewritten.writeBytes(UnsafeRawBufferPointer(rebasing: line[range.upperBound...]))
            }
            outbox.append(.report(.rewritten(from: .server, original: awaiting.line, rewritten: rewritten)))
            outbox.append(.forward(rewritten, to: .client))
            finishReplyLine(awaiting.line, code: code)
        }
    }

    /// The pinhole for request `id` could not be opened: the client gets a 425 instead of the waiting line.
    public mutating func pinholeFailed(id: UInt64, reason: String) {
        guard case .awaitingPinhole(let awaiting) = state, awaiting.id == id else { return }
        state = .translating
        switch awaiting.rewrite {
        case .activeCommand:
            outbox.append(.report(.refused(command: awaiting.line, reason: .noPinhole(reason))))
            outbox.append(.forward(Self.reply("425 Can't open data connection: \(reason)."), to: .client))
        case .passiveReply(let code, _):
            outbox.append(.report(.pinholeUnavailable(reason: reason)))
            outbox.append(.forward(Self.reply("425 Can't open passive connection: \(reason)."), to: .client))
            finishReplyLine(awaiting.line, code: code)
        }
    }

    // MARK: Commands

    private mutating func handleCommand(_ line: ByteBuffer) {
        let command = line.withUnsafeReadableBytes { FTPCommandLine($0) }
        guard expectations.count < configuration.maxPipelinedCommands else {
            outbox.append(.forward(Self.reply("421 Too many commands without a reply; closing."), to: .client))
            close("more than \(configuration.maxPipelinedCommands) commands pipelined without a reply")
            return
        }
        // USER is judged by the name it asks for; the session takes that name only once the command is admitted.
        let candidate = command.verb == .user
            ? line.getSlice(at: line.readerIndex + command.argument.lowerBound, length: command.argument.count) : user
        if let admission = commandAdmission, case .refuse(let reply) = admission(line, candidate) {
            outbox.append(.report(.refused(command: line, reason: .policy(reply))))
            outbox.append(.forward(Self.reply(reply), to: .client))
            return
        }
        if command.verb == .user { user = candidate }
        switch command.verb {
        case .port, .eprt, .lprt:
            handleActiveCommand(line, command)
        case .pasv, .epsv, .lpsv:
            expectations.append(.passiveReply(command.verb))
            outbox.append(.forward(line, to: .server))
        case .auth:
            expectations.append(.authReply)
            outbox.append(.forward(line, to: .server))
        case .user, .other:
            expectations.append(.other)
            outbox.append(.forward(line, to: .server))
        }
    }

    private mutating func handleActiveCommand(_ line: ByteBuffer, _ command: FTPCommandLine) {
        let parsed: Result<(Endpoint, UInt8), FTPParseError> = line.withUnsafeReadableBytes { bytes in
            let argument = UnsafeRawBufferPointer(rebasing: bytes[command.argument])
            do throws(FTPParseError) {
                switch command.verb {
                case .port: return .success((try FTPAddressScanner.parsePORT(argument), UInt8(ascii: "|")))
                case .lprt: return .success((try FTPAddressScanner.parseLPRT(argument), UInt8(ascii: "|")))
                default: return .success((try FTPAddressScanner.parseEPRT(argument), argument[0]))
                }
            } catch {
                return .failure(error)
            }
        }
        var endpoint: Endpoint
        let delimiter: UInt8
        switch parsed {
        case .failure(let error):
            let code = if case .unsupportedFamily = error { "522 Network protocol not supported, use (1,2)" }
                       else { "501 Syntax error in parameters" }
            refuse(line, reason: .syntax(error), reply: "\(code): \(error.explanation).")
            return
        case .success(let value):
            (endpoint, delimiter) = value
        }
        // lftp names the unspecified address in EPRT over IPv6 (`EPRT |2|::|port|`), meaning "me": it names no
        // third host, so it is read as the client's own address.
        if endpoint.address.unmapped == .v4(0) || endpoint.address == .v6(high: 0, low: 0) {
            endpoint.address = context.client.address
        }
        guard endpoint.address.isSameHost(as: context.client.address) else {
            refuse(line, reason: .foreignAddress(named: endpoint.address, peer: context.client.address),
                   reply: "500 Illegal PORT command: the address must be your own.")
            return
        }
        guard endpoint.port >= 1024 || configuration.allowPrivilegedPorts else {
            refuse(line, reason: .privilegedPort(endpoint.port),
                   reply: "504 Command not implemented for that parameter: ports below 1024 are refused.")
            return
        }
        let id = takePinholeID()
        // The server must be able to reach the data port: an IPv6-only server cannot be told an IPv4 address
        // in PORT, so the rewrite switches to EPRT there (see pinholeOpened).
        state = .awaitingPinhole(Awaiting(
            id: id, line: line,
            rewrite: .activeCommand(verb: command.verb, delimiter: delimiter, terminator: command.terminator)))
        outbox.append(.openPinhole(FTPPinholeRequest(
            id: id, purpose: .active, allowedPeer: context.server.address, target: endpoint)))
    }

    private mutating func refuse(_ line: ByteBuffer, reason: FTPRefusal, reply: String) {
        outbox.append(.report(.refused(command: line, reason: reason)))
        outbox.append(.forward(Self.reply(reply), to: .client))
    }

    // MARK: Replies

    private mutating func handleReply(_ line: ByteBuffer) {
        let code: Int
        if let open = openReply {
            // Inside a multi-line reply: only `code<SP>` ends it; any other line continues it.
            code = open.code
            let closes = line.withUnsafeReadableBytes { FTPReplyLine.closes($0, code: code) }
            if !open.handled, interpret(line, code: code, isLast: closes) { return }
            outbox.append(.forward(line, to: .client))
            if closes { finishReply(code: code) }
            return
        }
        guard let reply = line.withUnsafeReadableBytes({ FTPReplyLine($0) }) else {
            // A broken server's answer ("99 PASV invalid", "SYST not supported"): it still answers the oldest
            // command, or every later reply would be matched to the command before its own.
            outbox.append(.report(.notAReply(line: line)))
            outbox.append(.forward(line, to: .client))
            if let expected = expectations.popFirst(), case .activeReply(let id) = expected {
                outbox.append(.closePinhole(id: id))
            }
            return
        }
        code = reply.code
        if reply.opensMultiline { openReply = (code, false) }
        if interpret(line, code: code, isLast: !reply.opensMultiline) { return }
        outbox.append(.forward(line, to: .client))
        if !reply.opensMultiline { finishReply(code: code) }
    }

    /// Reads a reply line in the light of the command it answers. Returns true when it took care of the line
    /// (it waits for a pinhole, or replaced the line); false when the line is to be forwarded as it is.
    private mutating func interpret(_ line: ByteBuffer, code: Int, isLast: Bool) -> Bool {
        let expected = expectations.first
        switch (expected, code) {
        case (.passiveReply(.pasv), 227), (.passiveReply(.lpsv), 228), (.passiveReply(.epsv), 229):
            return interpretPassive(line, code: code, isLast: isLast)
        case (.authReply, 234):
            // TLS (or another RFC 2228 mechanism) starts right after this line: nothing is readable past it.
            outbox.append(.report(.passthrough(reason: "AUTH accepted by the server (234): the control connection "
                + "is encrypted from here on and can no longer be translated; data channels will not be mapped")))
            outbox.append(.enterPassthrough)
            outbox.append(.forward(line, to: .client))
            state = .passthrough
            while let (side, queued) = inbox.popFirst() { outbox.append(.forward(queued, to: side.other)) }
            return true
        case (_, 227), (_, 228), (_, 229):
            if case .passiveReply = expected {} else { outbox.append(.report(.unsolicitedReply(code: code))) }
            markHandled()
            return false
        default:
            return false
        }
    }

    private mutating func interpretPassive(_ line: ByteBuffer, code: Int, isLast: Bool) -> Bool {
        let found: Result<FTPAddressScanner.Match?, FTPParseError> = line.withUnsafeReadableBytes { bytes in
            do throws(FTPParseError) {
                switch code {
                case 227: return .success(try FTPAddressScanner.scan227(bytes))
                case 228: return .success(try FTPAddressScanner.scan228(bytes))
                default: return .success(try FTPAddressScanner.scan229(bytes))
                }
            } catch {
                return .failure(error)
            }
        }
        switch found {
        case .success(nil) where !isLast:
            // A multi-line reply may carry the address on a later line.
            return false
        case .success(nil), .failure:
            let error: FTPParseError? = if case .failure(let error) = found { error } else { nil }
            outbox.append(.report(.malformedReply(line: line, reason: error)))
            markHandled()
            if openReply != nil {
                return false  // The client already has part of this reply; do not break its framing.
            }
            outbox.append(.forward(Self.reply("425 Can't open passive connection: the server's reply carried no "
                + "usable address."), to: .client))
            finishReply(code: code)
            return true
        case .success(let match?):
            if code == 227, !context.publicAddress.unmapped.isIPv4 {
                outbox.append(.report(.pinholeUnavailable(reason: "the public address is IPv6, which 227 cannot carry")))
                markHandled()
                guard openReply == nil else { return false }
                outbox.append(.forward(Self.reply("425 Use EPSV: this gateway's address cannot be written in a 227 "
                    + "reply."), to: .client))
                finishReply(code: code)
                return true
            }
            // The data connection goes to the server the control connection goes to, whatever address it wrote:
            // a server may announce its public or a stale address, and obeying it would let a server steer the
            // gateway to any host.
            let announced = match.endpoint.address
            if code != 229, !announced.isSameHost(as: context.server.address) {
                outbox.append(.report(.announcedAddressIgnored(announced: announced, using: context.server.address)))
            }
            let id = takePinholeID()
            state = .awaitingPinhole(Awaiting(id: id, line: line, rewrite: .passiveReply(code: code, range: match.range)))
            outbox.append(.openPinhole(FTPPinholeRequest(
                id: id, purpose: .passive, allowedPeer: context.client.address,
                target: Endpoint(address: context.server.address, port: match.endpoint.port))))
            markHandled()
            return true
        }
    }

    private mutating func markHandled() {
        if openReply != nil { openReply?.handled = true }
    }

    /// After a rewritten or replaced reply line: ends the reply if that line was its last.
    private mutating func finishReplyLine(_ line: ByteBuffer, code: Int) {
        if let open = openReply {
            if line.withUnsafeReadableBytes({ FTPReplyLine.closes($0, code: open.code) }) { finishReply(code: code) }
        } else {
            finishReply(code: code)
        }
    }

    /// A complete reply: a final one answers the oldest pending command.
    private mutating func finishReply(code: Int) {
        openReply = nil
        guard code >= 200, let expected = expectations.popFirst() else { return }
        if case .activeReply(let id) = expected, code >= 400 {
            outbox.append(.closePinhole(id: id))
        }
    }

    // MARK: Helpers

    private mutating func takePinholeID() -> UInt64 {
        defer { nextPinholeID += 1 }
        return nextPinholeID
    }

    private mutating func close(_ reason: String) {
        state = .closed
        inbox.removeAll()
        outbox.append(.close(reason: reason))
    }

    static func reply(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString(text)
        buffer.writeBytes([ASCII.cr, ASCII.lf])
        return buffer
    }
}

extension FTPSide {
    /// The side a line from this side goes to.
    public var other: FTPSide { self == .client ? .server : .client }
}

