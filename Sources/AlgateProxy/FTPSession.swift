import AlgatePinholes
import AlgateRewrite
import Logging
import NIOCore

/// One FTP control session: the client's channel, the server's channel, the engine between them and the pinholes
/// it opened. Lives on one event loop (both channels are on it) and is touched only there.
///
/// It carries out the engine's actions in order; the engine guarantees that a line announcing a data channel comes
/// out only after its pinhole exists.
final class FTPSession {
    let id: UInt64
    let eventLoop: any EventLoop
    private let client: any Channel
    private let server: any Channel
    private var machine: FTPSessionStateMachine
    private let configuration: FTPProxyConfiguration
    private let backend: any PinholeBackend
    private let registry: SessionRegistry
    private var logger: Logger

    private var pinholes: [UInt64: any DataPinhole] = [:]
    private var activeRelays = 0
    private var lastActivity = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?
    private var pendingFlush: Set<FTPSide> = []
    private var windingDown = false
    private var halfClosed: Set<FTPSide> = []
    private var closed = false
    private let started = NIODeadline.now()
    private var linesIn = 0
    private var rewrites = 0
    private var pinholesOpened = 0

    init(id: UInt64, client: any Channel, server: any Channel, context: FTPSessionContext,
         configuration: FTPProxyConfiguration, backend: any PinholeBackend, registry: SessionRegistry,
         policy: PolicyStore? = nil, logger: Logger) {
        self.id = id
        self.eventLoop = client.eventLoop
        self.client = client
        self.server = server
        var engine = FTPSessionStateMachine.Configuration()
        engine.allowPrivilegedPorts = configuration.allowPrivilegedPorts
        engine.maxLineLength = configuration.maxLineLength
        self.machine = FTPSessionStateMachine(context: context, configuration: engine)
        if let policy {
            let client = context.client.address
            machine.commandAdmission = { line, user in policy.admit(ftpCommand: line, user: user, from: client) }
        }
        self.configuration = configuration
        self.backend = backend
        self.registry = registry
        self.logger = logger
        self.logger[metadataKey: "session"] = "ftp-\(id)"
    }

    /// Logs the start and arms the idle timer. Call once, after both pipelines are set up.
    func start() {
        logger.info("session start", metadata: [
            "client": "\(machine.context.client)", "server": "\(machine.context.server)",
            "public-address": "\(machine.context.publicAddress)", "inside-address": "\(machine.context.insideAddress)",
        ])
        scheduleIdleCheck(after: configuration.idleTimeout)
    }

    // MARK: Input

    func received(_ bytes: ByteBuffer, from side: FTPSide) {
        guard !closed else { return }
        lastActivity = .now()
        linesIn += 1
        machine.receive(bytes, from: side)
        drain()
    }

    func flush() {
        for side in pendingFlush { channel(side).flush() }
        pendingFlush.removeAll(keepingCapacity: true)
    }

    /// One side sent FIN: pass it on to the other side (a client that half-closes after QUIT still gets its 221),
    /// and close the session when both directions are done.
    func inputClosed(_ side: FTPSide) {
        guard !closed else { return }
        flush()
        halfClosed.insert(side)
        if halfClosed.count == 2 {
            close(reason: "both sides closed the connection")
        } else {
            channel(side.other).close(mode: .output, promise: nil)
        }
    }

    func writabilityChanged(_ side: FTPSide, isWritable: Bool) {
        // Stop reading from one side while the other cannot take more.
        channel(side.other).setOption(ChannelOptions.autoRead, value: isWritable).whenFailure { _ in }
    }

    func failed(_ side: FTPSide, error: any Error) {
        if let tooLong = error as? FTPLineTooLongError {
            if side == .client { write(Self.line("500 Command line too long; closing."), to: .client) }
            flush()
            close(reason: "\(side.rawValue) sent a \(tooLong)")
        } else {
            close(reason: "\(side.rawValue) connection error: \(error)")
        }
    }

    // MARK: Actions

    private func drain() {
        while !closed, let action = machine.nextAction() {
            perform(action)
        }
        flush()
        finishWindingDownIfQuiet()
    }

    /// During shutdown, a session closes once its transfers are over and no command waits for its reply, so the
    /// client gets the server's 226 before the 421.
    private func finishWindingDownIfQuiet() {
        guard windingDown, !closed, activeRelays == 0, !machine.isAwaitingReply || machine.isPassthrough else { return }
        if !machine.isPassthrough {
            write(Self.line("421 Service not available: the gateway is shutting down."), to: .client)
            flush()
        }
        close(reason: "gateway shutting down")
    }

    private func perform(_ action: FTPSessionAction) {
        switch action {
        case .forward(let bytes, let side):
            write(bytes, to: side)
        case .openPinhole(let request):
            open(request)
        case .closePinhole(let id):
            pinholes.removeValue(forKey: id)?.close()
        case .enterPassthrough:
            enterPassthrough()
        case .report(let event):
            report(event)
        case .close(let reason):
            flush()
            close(reason: reason)
        }
    }

    private func write(_ bytes: ByteBuffer, to side: FTPSide) {
        channel(side).write(bytes, promise: nil)
        pendingFlush.insert(side)
    }

    private func open(_ request: FTPPinholeRequest) {
        guard let spec = pinholeSpec(for: request) else {
            machine.pinholeFailed(id: request.id, reason: "the gateway's own address is unknown")
            return
        }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let requestID = request.id
        backend.openDataPinhole(spec, on: eventLoop) { event in
            bound.value.pinholeEvent(requestID, event)
        }.assumeIsolated().whenComplete { result in
            let session = bound.value
            switch result {
            case .success(let pinhole):
                guard !session.closed else {
                    pinhole.close()
                    return
                }
                session.pinholes[requestID] = pinhole
                session.pinholesOpened += 1
                session.logger.info("pinhole open", metadata: [
                    "pinhole": "\(requestID)", "purpose": "\(request.purpose.rawValue)",
                    "listen": "\(Endpoint(address: spec.listenAddress, port: pinhole.port))",
                    "peer": "\(spec.allowedPeer)", "target": "\(spec.target)",
                ])
                session.machine.pinholeOpened(id: requestID, port: pinhole.port)
            case .failure(let error):
                session.logger.warning("pinhole refused", metadata: [
                    "purpose": "\(request.purpose.rawValue)", "target": "\(spec.target)", "error": "\(error)",
                ])
                session.machine.pinholeFailed(id: requestID, reason: "\(error)")
            }
            session.drain()
        }
    }

    /// Where a pinhole listens and connects from: a passive one on the address the client reached the gateway
    /// at, connecting out from the address the server knows the gateway by; an active one the other way round.
    private func pinholeSpec(for request: FTPPinholeRequest) -> TCPPinholeSpec? {
        guard let clientSide = client.localAddress.flatMap(Endpoint.init(socketAddress:)),
              let serverSide = server.localAddress.flatMap(Endpoint.init(socketAddress:)) else { return nil }
        let publicSide = clientSide.address.unmapped
        let insideSide = (configuration.dataAddress ?? serverSide.address).unmapped
        switch request.purpose {
        case .passive:
            let listenAddress = configuration.passivePinholesAtServerAddress
                ? machine.context.server.address : publicSide
            return TCPPinholeSpec(session: id, listenAddress: listenAddress, allowedPeer: request.allowedPeer,
                                  target: request.target, sourceAddress: serverSide.address,
                                  timeout: configuration.pinholeTimeout)
        case .active:
            return TCPPinholeSpec(session: id, listenAddress: insideSide, allowedPeer: request.allowedPeer,
                                  target: request.target, sourceAddress: publicSide,
                                  timeout: configuration.pinholeTimeout)
        }
    }

    private func pinholeEvent(_ id: UInt64, _ event: PinholeEvent) {
        var metadata: Logger.Metadata = ["pinhole": "\(id)"]
        switch event {
        case .relayStarted(let peer):
            activeRelays += 1
            metadata["peer"] = "\(peer)"
            logger.debug("pinhole connected", metadata: metadata)
        case .relayEnded(let fromPeer, let toPeer):
            activeRelays -= 1
            lastActivity = .now()
            metadata["bytes-from-peer"] = "\(fromPeer)"
            metadata["bytes-to-peer"] = "\(toPeer)"
            logger.debug("pinhole transfer done", metadata: metadata)
            finishWindingDownIfQuiet()
        case .rejected(let peer):
            metadata["from"] = "\(peer)"
            logger.warning("pinhole refused a connection from an unexpected peer", metadata: metadata)
        case .targetUnreachable(let why):
            metadata["error"] = "\(why)"
            logger.warning("pinhole target unreachable", metadata: metadata)
        case .expired:
            logger.info("pinhole expired unused", metadata: metadata)
        case .closed:
            guard pinholes.removeValue(forKey: id) != nil else { return }
            logger.info("pinhole close", metadata: metadata)
        }
    }

    private func enterPassthrough() {
        // Removing the framing decoders hands any bytes they hold on as raw bytes, in order.
        for channel in [client, server] {
            if let decoder = try? channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<FTPLineDecoder>.self) {
                channel.pipeline.syncOperations.removeHandler(decoder, promise: nil)
            }
        }
    }

    private func report(_ event: FTPSessionEvent) {
        switch event {
        case .rewritten(let side, let original, let rewritten):
            rewrites += 1
            logger.info("rewrote", metadata: [
                "from": "\(side.rawValue)", "original": "\(Self.printable(original))",
                "rewritten": "\(Self.printable(rewritten))",
            ])
        case .refused(let command, let reason):
            logger.warning("refused command", metadata: [
                "command": "\(Self.printable(command))", "reason": "\(reason.explanation)",
            ])
        case .malformedReply(let line, let reason):
            logger.warning("server reply carries no usable address", metadata: [
                "reply": "\(Self.printable(line))", "reason": "\(reason?.explanation ?? "no address found")",
            ])
        case .unsolicitedReply(let code):
            logger.notice("unsolicited passive reply: no pinhole", metadata: ["code": "\(code)"])
        case .masked(let original, let masked, let count):
            logger.notice("masked inside address in a reply", metadata: [
                "original": "\(Self.printable(original))", "masked": "\(Self.printable(masked))", "count": "\(count)",
            ])
        case .passiveReplyRefused(let line, let reason):
            logger.warning("passive reply answered with 425", metadata: [
                "reply": "\(Self.printable(line))", "reason": "\(reason.explanation)",
            ])
        case .shortened(let line, let removed, let limit):
            logger.notice("reply text shortened to fit max-line-length", metadata: [
                "line": "\(Self.printable(line))", "removed": "\(removed)", "limit": "\(limit)",
            ])
        case .announcedAddressIgnored(let announced, let using):
            logger.debug("server announced another address; connecting to the control peer",
                         metadata: ["announced": "\(announced)", "using": "\(using)"])
        case .pinholeUnavailable(let reason):
            logger.warning("passive reply answered with 425", metadata: ["reason": "\(reason)"])
        case .passthrough(let reason):
            logger.notice("session passes through untranslated", metadata: ["reason": "\(reason)"])
        case .notAReply(let line):
            logger.notice("server line is not a reply; passed on", metadata: ["line": "\(Self.printable(line))"])
        }
    }

    // MARK: Lifetime

    private func scheduleIdleCheck(after delay: Duration) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        idleCheck = eventLoop.scheduleTask(in: TimeAmount(delay)) {
            bound.value.checkIdle()
        }
    }

    private func checkIdle() {
        guard !closed else { return }
        let idleFor = NIODeadline.now() - lastActivity
        let limit = TimeAmount(configuration.idleTimeout)
        // A running transfer keeps the control connection alive however long it takes: one this process relays,
        // or one the kernel carries (nftables pinholes), which shows as a RETR/STOR/LIST still waiting for its
        // final reply.
        let busy = activeRelays > 0 || machine.isAwaitingReply
        if busy || idleFor < limit {
            scheduleIdleCheck(after: busy ? configuration.idleTimeout : Duration.nanoseconds((limit - idleFor).nanoseconds))
            return
        }
        write(Self.line("421 Idle timeout; closing control connection."), to: .client)
        flush()
        close(reason: "idle for \(configuration.idleTimeout)")
    }

    /// Shutdown: a session with no transfer running is closed now, one with a transfer when it ends (or now, when
    /// `force` says the deadline has passed).
    func windDown(force: Bool) {
        guard !closed else { return }
        windingDown = true
        if force {
            if !machine.isPassthrough {
                write(Self.line("421 Service not available: the gateway is shutting down."), to: .client)
                flush()
            }
            close(reason: "shutdown deadline passed")
        } else {
            finishWindingDownIfQuiet()
        }
    }

    /// Closes both channels and every pinhole of the session; logs the end once.
    func close(reason: String) {
        guard !closed else { return }
        closed = true
        idleCheck?.cancel()
        // Each close reports `.closed` back synchronously, which logs it and takes it out of `pinholes`.
        for pinhole in Array(pinholes.values) { pinhole.close() }
        client.close(promise: nil)
        server.close(promise: nil)
        let duration = NIODeadline.now() - started
        logger.info("session end", metadata: [
            "reason": "\(reason)", "duration-ms": "\(duration.nanoseconds / 1_000_000)",
            "lines": "\(linesIn)", "rewrites": "\(rewrites)", "pinholes": "\(pinholesOpened)",
        ])
        registry.unregister(id)
    }

    // MARK: Helpers

    private func channel(_ side: FTPSide) -> any Channel {
        side == .client ? client : server
    }

    static func line(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString(text + "\r\n")
        return buffer
    }

    /// A control line for a log: terminator dropped, bytes outside printable ASCII escaped.
    static func printable(_ buffer: ByteBuffer) -> String {
        var out = ""
        for byte in buffer.readableBytesView.prefix(512) where byte != 0x0D && byte != 0x0A {
            if byte >= 0x20, byte < 0x7F {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        if buffer.readableBytes > 512 { out += "..." }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
