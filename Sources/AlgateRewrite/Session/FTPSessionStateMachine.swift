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
///
/// No reply goes to the client with an address of the inside network in it: the one address a passive rewrite
/// replaces is the pinhole's, and every other address form or inside address on any line of any reply is masked
/// (see ``FTPReplyMasker``). A line the gateway changes never grows past ``Configuration/maxLineLength``: its
/// free text is shortened instead.
public struct FTPSessionStateMachine: Sendable {
    /// Limits of one session.
    public struct Configuration: Hashable, Sendable {
        /// Commands forwarded and not yet answered; past this the session is closed (a client that never reads).
        public var maxPipelinedCommands: Int = 64
        /// Lines waiting while a pinhole is being opened; past this the session is closed.
        public var maxQueuedLines: Int = 256
        /// Admit PORT/EPRT/LPRT naming a port below 1024, and passive replies naming a server port below 1024
        /// (off: such a command is refused, as RFC 2577 advises, and such a reply is answered 425).
        public var allowPrivilegedPorts: Bool = false
        /// The longest line the gateway sends, terminator included (the listener's `max-line-length`). A
        /// rewritten or masked reply that would be longer loses the end of its free text. The code, the separator
        /// and the pinhole's address are never cut, so a limit below about 100 bytes cannot always be kept; the
        /// configuration allows 512 and up.
        public var maxLineLength: Int = 4096
        /// Whether the first reply is the server's greeting (RFC 959 5.4: 120, 220 or 421 before any command).
        /// False for a transcript or capture that starts after it: replies answer commands from the first on.
        public var expectsGreeting: Bool = true

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

    /// A multi-line reply in progress.
    private struct OpenReply: Sendable {
        var code: Int
        /// Whether the line that answers a passive command was already interpreted.
        var handled = false
        /// Whether the client already got a line of this reply: from then on it cannot be replaced.
        var started = false
        /// The gateway answered the command itself (a 425): the server's further lines of this reply are dropped.
        var dropping = false
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
    private var openReply: OpenReply? = nil
    private var nextPinholeID: UInt64 = 1
    /// Masks what replies say of the inside network; learns every address the server announces.
    private var masker: FTPReplyMasker

    public init(context: FTPSessionContext, configuration: Configuration = .init()) {
        self.context = context
        self.configuration = configuration
        masker = FTPReplyMasker(publicAddress: context.publicAddress,
                                inside: [context.server.address, context.insideAddress] + context.alsoInside)
        if configuration.expectsGreeting { expectations.append(.greeting) }
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
            // The line as it was with the address span replaced (and anything else of the inside masked).
            let publicEndpoint = Endpoint(address: context.publicAddress, port: port)
            let composed = compose(awaiting.line, replacing: range) { out in
                switch code {
                case 227: FTPAddressWriter.appendSix(publicEndpoint, to: &out)
                case 228: FTPAddressWriter.appendLong(publicEndpoint, to: &out)
                default: ASCII.appendDecimal(Int(port), to: &out)
                }
            }
            outbox.append(.report(.rewritten(from: .server, original: awaiting.line, rewritten: composed.line)))
            reportShortening(composed)
            openReply?.started = true
            outbox.append(.forward(composed.line, to: .client))
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
            let closes = awaiting.line.withUnsafeReadableBytes { FTPReplyLine.closes($0, code: code) }
            if !withdrawPassiveReply(code: code, isLast: openReply == nil || closes,
                                     reply: "425 Can't open passive connection: \(reason).") {
                forwardReply(awaiting.line)
                finishReplyLine(awaiting.line, code: code)
            }
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
        if let open = openReply {
            // Inside a multi-line reply: only `code<SP>` ends it; any other line continues it.
            let closes = line.withUnsafeReadableBytes { FTPReplyLine.closes($0, code: open.code) }
            if open.dropping {
                if closes { finishReply(code: open.code) }
                return
            }
            if !open.handled, interpret(line, code: open.code, isLast: closes) { return }
            forwardReply(line)
            if closes { finishReply(code: open.code) }
            return
        }
        guard let reply = line.withUnsafeReadableBytes({ FTPReplyLine($0) }) else {
            // A broken server's answer ("99 PASV invalid", "SYST not supported"): it still answers the oldest
            // command, or every later reply would be matched to the command before its own.
            outbox.append(.report(.notAReply(line: line)))
            forwardReply(line)
            if let expected = expectations.popFirst(), case .activeReply(let id) = expected {
                outbox.append(.closePinhole(id: id))
            }
            return
        }
        if reply.opensMultiline { openReply = OpenReply(code: reply.code) }
        if interpret(line, code: reply.code, isLast: !reply.opensMultiline) { return }
        forwardReply(line)
        if !reply.opensMultiline { finishReply(code: reply.code) }
    }

    /// Sends a server line to the client as it is, or, when it names anything of the inside network, with that
    /// masked (and shortened to fit, should masking make it longer than the limit).
    private mutating func forwardReply(_ line: ByteBuffer) {
        openReply?.started = true
        let clean = line.withUnsafeReadableBytes { masker.firstFinding(in: $0) == nil }
        guard !clean else {
            outbox.append(.forward(line, to: .client))
            return
        }
        let composed = compose(line, replacing: nil) { _ in }
        if composed.masked > 0, composed.line != line {
            outbox.append(.report(.masked(original: line, masked: composed.line, count: composed.masked)))
        }
        reportShortening(composed)
        outbox.append(.forward(composed.line, to: .client))
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
            forwardReply(line)
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
            // A continuation line of a multi-line reply has no code to skip: it may start with the address.
            let start = FTPReplyLine(bytes) == nil ? 0 : 3
            do throws(FTPParseError) {
                switch code {
                case 227: return .success(try FTPAddressScanner.scan227(bytes, from: start))
                case 228: return .success(try FTPAddressScanner.scan228(bytes, from: start))
                default: return .success(try FTPAddressScanner.scan229(bytes, from: start))
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
            return withdrawPassiveReply(code: code, isLast: isLast, reply: "425 Can't open passive connection: the "
                + "server's reply carried no usable address.")
        case .success(let match?):
            let announced = match.endpoint.address
            if code != 229 {
                // Whatever the server calls itself is of the inside network: masked wherever else it shows.
                masker.learn(announced)
            }
            if code == 227, !context.publicAddress.unmapped.isIPv4 {
                outbox.append(.report(.pinholeUnavailable(reason: "the public address is IPv6, which 227 cannot carry")))
                return withdrawPassiveReply(code: code, isLast: isLast, reply: "425 Use EPSV: this gateway's address "
                    + "cannot be written in a 227 reply.")
            }
            // RFC 2577 advises against data connections to privileged ports: a pinhole to the server's port 21,
            // 22 or 25 would hand the client a second way into that service, from the gateway's address.
            guard match.endpoint.port >= 1024 || configuration.allowPrivilegedPorts else {
                outbox.append(.report(.passiveReplyRefused(line: line, reason: .privilegedPort(match.endpoint.port))))
                return withdrawPassiveReply(code: code, isLast: isLast, reply: "425 Can't open passive connection: "
                    + "the server named port \(match.endpoint.port), below 1024.")
            }
            // The data connection goes to the server the control connection goes to, whatever address it wrote:
            // a server may announce its public or a stale address, and obeying it would let a server steer the
            // gateway to any host.
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
        openReply?.handled = true
    }

    /// The passive command gets no data channel from this reply. While the client has no line of the reply yet,
    /// it gets `reply` (a 425) in its place and the server's further lines of it are dropped: returns true. Once a
    /// multi-line reply is under way it cannot be replaced without breaking its framing: returns false, and the
    /// line goes on with its address masked, which opens nothing.
    private mutating func withdrawPassiveReply(code: Int, isLast: Bool, reply: String) -> Bool {
        markHandled()
        if openReply?.started == true { return false }
        outbox.append(.forward(Self.reply(reply), to: .client))
        if isLast {
            finishReply(code: code)
        } else {
            openReply?.dropping = true
        }
        return true
    }

    // MARK: Writing replies

    /// A server line as the gateway sends it, and what was done to it.
    private struct Composed {
        var line: ByteBuffer
        /// Pieces of the inside network masked in it.
        var masked: Int
        /// Bytes of free text taken off its end to fit ``Configuration/maxLineLength``.
        var removed: Int
    }

    /// Writes `line` with the bytes in `range` replaced by what `write` writes (the pinhole's address), everything
    /// else of the inside network masked, and, when the result would be longer than the limit, the end of the free
    /// text after the address cut (then the text before it, down to the reply code): RFC 959 4.2 makes the text
    /// of a reply informational, what a client reads is the code and the address.
    private mutating func compose(_ line: ByteBuffer, replacing range: Range<Int>?,
                                  with write: (inout ByteBuffer) -> Void) -> Composed {
        line.withUnsafeReadableBytes { bytes in
            masker.learnForms(in: bytes)
            var end = bytes.count
            if end > 0, bytes[end - 1] == ASCII.lf { end -= 1 }
            if end > 0, bytes[end - 1] == ASCII.cr { end -= 1 }
            let replaced = range ?? end..<end
            // One buffer, written once, on the usual path.
            var out = ByteBuffer()
            out.reserveCapacity(bytes.count + 16)
            var masked = masker.append(UnsafeRawBufferPointer(rebasing: bytes[..<replaced.lowerBound]), to: &out)
            let headEnd = out.writerIndex
            write(&out)
            let middleEnd = out.writerIndex
            masked += masker.append(UnsafeRawBufferPointer(rebasing: bytes[replaced.upperBound..<end]), to: &out)
            let terminator = bytes.count - end
            let limit = configuration.maxLineLength
            var removed = 0
            if out.writerIndex + terminator > limit {
                let tailEnd = Self.cut(out, by: out.writerIndex + terminator - limit, keeping: middleEnd)
                removed += out.writerIndex - tailEnd
                out.moveWriterIndex(to: tailEnd)
            }
            if out.writerIndex + terminator > limit {
                // The text after the address is gone and it is still too long: cut the text before the address,
                // keeping the reply code and its separator, and move the address down.
                let keep = FTPReplyLine(bytes) != nil && bytes.count >= 4 ? 4 : 0
                let middle = out.getSlice(at: headEnd, length: out.writerIndex - headEnd) ?? ByteBuffer()
                out.moveWriterIndex(to: headEnd)
                let headCut = Self.cut(out, by: out.writerIndex + middle.readableBytes + terminator - limit,
                                       keeping: min(keep, headEnd))
                removed += headEnd - headCut
                out.moveWriterIndex(to: headCut)
                out.writeImmutableBuffer(middle)
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[end...]))
            return Composed(line: out, masked: masked, removed: removed)
        }
    }

    /// Where `out` ends once `excess` bytes are cut off its end, never below `floor`. A word (or address, or
    /// list of numbers) cut in the middle goes whole, so no fragment of one is left at the cut; a run longer than
    /// the longest address form (LPRT's with IPv6, under 96 bytes) is just cut.
    private static func cut(_ out: ByteBuffer, by excess: Int, keeping floor: Int) -> Int {
        let end = max(floor, out.writerIndex - excess)
        guard end < out.writerIndex else { return end }
        func isWordByte(_ index: Int) -> Bool {
            guard let byte = out.getInteger(at: index, as: UInt8.self) else { return false }
            return ASCII.isDigit(byte) || ASCII.isLetter(byte) || byte == ASCII.dot || byte == ASCII.colon
                || byte == ASCII.comma
        }
        guard isWordByte(end) else { return end }
        var start = end
        while start > floor, isWordByte(start - 1), end - start < 96 { start -= 1 }
        return start == floor || !isWordByte(start - 1) ? start : end
    }

    private mutating func reportShortening(_ composed: Composed) {
        guard composed.removed > 0 else { return }
        outbox.append(.report(.shortened(line: composed.line, removed: composed.removed,
                                         limit: configuration.maxLineLength)))
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

