import AlgateRewrite
public import Logging
public import NIOCore
import Synchronization

/// The kernel backend: a pinhole is a few elements with timeouts in algate's own nftables table
/// (``NftablesPinholeTable``), and the kernel forwards the data or media flow itself; algate never sees its bytes.
///
/// libnftables calls run on a thread of the backend's own (``NftablesScriptQueue``), in the order the pinholes
/// asked for them, never on an event loop; a burst goes to the kernel as one batch. Elements that two pinholes
/// share (an SNAT element for the same target)
/// stay until the last of them closes.
public final class NftablesPinholeBackend: PinholeBackend {
    /// Who holds an element, and with which value it went into the kernel.
    private struct Holding {
        var element: NftablesPinholeTable.Element
        var holders: Set<UInt64>
    }

    private struct State {
        var ledger: PinholeLedger
        var accepting = true
        var nextKey: UInt64 = 0
        var data: [UInt64: NftablesDataPinhole] = [:]
        var media: [UInt64: NftablesMediaPinhole] = [:]
        /// Keyed by set and element key: the kernel holds one value per key.
        var held: [String: Holding] = [:]
    }

    /// The table's description, for tests and `algate rules`.
    public let table: NftablesPinholeTable
    private let queue: NftablesScriptQueue
    private let state: Mutex<State>
    private let logger: Logger
    /// The kernel keeps an element this much longer than algate's own timer, so that algate, not a race with
    /// the kernel's expiry, decides whether a pinhole was used.
    static let kernelMargin: Duration = .seconds(5)

    /// - Throws: ``NftablesError`` when libnftables cannot make a context.
    public init(ports: ClosedRange<UInt16>, limits: PinholeLedger.Limits, table: NftablesPinholeTable = .init(),
                logger: Logger) throws(NftablesError) {
        self.table = table
        self.queue = NftablesScriptQueue(runner: try NftablesRunner())
        self.state = Mutex(State(ledger: PinholeLedger(ports: ports, limits: limits)))
        self.logger = logger
    }

    public var openCount: Int { state.withLock { $0.ledger.total } }

    /// Installs the table, replacing one that a crashed run left behind.
    ///
    /// - Throws: ``NftablesError``; its description says so when the process lacks CAP_NET_ADMIN.
    public func prepare() async throws {
        if NftablesRunner.processHasNetAdmin == false {
            throw NftablesError(script: "", message: "Operation not permitted: this process lacks CAP_NET_ADMIN")
        }
        try await queue.run(table.installScript)
        logger.info("nftables pinhole table installed", metadata: ["table": "inet \(table.name)"])
    }

    /// Closes every pinhole, then removes the whole table; waits until the kernel has done it.
    public func shutdown() async {
        let (data, media) = state.withLock { state in
            state.accepting = false
            return (Array(state.data.values), Array(state.media.values))
        }
        for pinhole in data { pinhole.close() }
        for pinhole in media { pinhole.close() }
        // Queued behind the elements the closes above removed.
        do {
            try await queue.run(table.removeTableScript)
            logger.info("nftables pinhole table removed", metadata: ["table": "inet \(table.name)"])
        } catch {
            logger.error("cannot remove the nftables pinhole table", metadata: ["error": "\(error)"])
        }
        await queue.close()
    }

    // MARK: Data pinholes (TCP)

    public func openDataPinhole(_ spec: TCPPinholeSpec, on loop: any EventLoop,
                                onEvent: @escaping @Sendable (PinholeEvent) -> Void) -> EventLoopFuture<any DataPinhole> {
        // The kernel sees IPv4 packets as IPv4, whatever a dual-stack socket reported.
        var spec = spec
        spec.listenAddress = spec.listenAddress.unmapped
        spec.allowedPeer = spec.allowedPeer.unmapped
        spec.target.address = spec.target.address.unmapped
        spec.sourceAddress = spec.sourceAddress?.unmapped
        let family = spec.listenAddress.isIPv4
        guard spec.allowedPeer.isIPv4 == family, spec.target.address.isIPv4 == family,
              spec.sourceAddress.map({ $0.isIPv4 == family }) ?? true else {
            return loop.makeFailedFuture(PinholeError.unsupported("the kernel cannot map between IPv4 and IPv6"))
        }
        let opened: Result<(NftablesDataPinhole, EventLoopFuture<Void>), PinholeError> = state.withLock { state in
            guard state.accepting else { return .failure(.shuttingDown) }
            let port: UInt16
            switch state.ledger.reserve(session: spec.session) {
            case .failure(let error): return .failure(error)
            case .success(let reserved): port = reserved
            }
            state.nextKey += 1
            let key = state.nextKey
            var elements = table.dnat(peer: spec.allowedPeer, local: Endpoint(address: spec.listenAddress, port: port),
                                      transport: .tcp, target: spec.target)
            if let source = spec.sourceAddress {
                elements.append(table.snat(target: spec.target, transport: .tcp, source: source, port: nil))
            }
            let once = elements.first { $0.set.hasPrefix("once") }
            let pinhole = NftablesDataPinhole(key: key, spec: spec, port: port, once: once, elements: elements,
                                              backend: self, eventLoop: loop, onEvent: onEvent)
            state.data[key] = pinhole
            let script = hold(elements, owner: key, timeout: spec.timeout + Self.kernelMargin, in: &state)
            return .success((pinhole, enqueue(script, on: loop)))
        }
        switch opened {
        case .failure(let error):
            return loop.makeFailedFuture(error)
        case .success(let (pinhole, applied)):
            return applied.flatMapErrorThrowing { error in
                pinhole.close()
                throw PinholeError.kernelRefused("\(error)")
            }.map {
                pinhole.armTimer()
                return pinhole
            }
        }
    }

    /// Called by a data pinhole when its timer runs out: deletes its one-use element, which succeeds only if no
    /// connection used it.
    func consume(_ element: NftablesPinholeTable.Element, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        let script = table.consumeScript(element)
        return state.withLock { _ in enqueue(script, on: loop) }.map { true }.recover { _ in false }
    }

    func closed(data key: UInt64, session: UInt64, port: UInt16, elements: [NftablesPinholeTable.Element]) {
        state.withLock { state in
            guard state.data.removeValue(forKey: key) != nil else { return }
            state.ledger.release(session: session, port: port)
            let script = drop(elements, owner: key, in: &state)
            enqueueLoggingErrors(script)
        }
    }

    // MARK: Media pinholes (UDP)

    public func openMediaPinhole(_ spec: MediaRelaySpec, on loop: any EventLoop,
                                 onEvent: @escaping @Sendable (MediaRelayEvent) -> Void) -> EventLoopFuture<any MediaPinhole> {
        var spec = spec
        spec.outsideAddress = spec.outsideAddress.unmapped
        spec.insideAddress = spec.insideAddress.unmapped
        spec.outsideAllowed = spec.outsideAllowed?.unmapped
        spec.insideAllowed = spec.insideAllowed?.unmapped
        guard spec.outsideAddress.isIPv4 == spec.insideAddress.isIPv4 else {
            return loop.makeFailedFuture(PinholeError.unsupported("the kernel cannot map between IPv4 and IPv6"))
        }
        let opened: Result<NftablesMediaPinhole, PinholeError> = state.withLock { state in
            guard state.accepting else { return .failure(.shuttingDown) }
            let outside: UInt16
            switch state.ledger.reservePair(session: spec.session) {
            case .failure(let error): return .failure(error)
            case .success(let port): outside = port
            }
            let inside: UInt16
            switch state.ledger.reservePair(session: spec.session) {
            case .failure(let error):
                state.ledger.releasePair(session: spec.session, port: outside)
                return .failure(error)
            case .success(let port): inside = port
            }
            state.nextKey += 1
            let pinhole = NftablesMediaPinhole(key: state.nextKey, spec: spec, outsidePort: outside, insidePort: inside,
                                               backend: self, eventLoop: loop, onEvent: onEvent)
            state.media[state.nextKey] = pinhole
            return .success(pinhole)
        }
        switch opened {
        case .failure(let error):
            return loop.makeFailedFuture(error)
        case .success(let pinhole):
            // Whatever the offer already tells goes into the kernel before the pinhole is announced.
            return pinhole.start().flatMapErrorThrowing { error in
                pinhole.close()
                throw PinholeError.kernelRefused("\(error)")
            }.map { pinhole }
        }
    }

    /// Replaces one side's elements of a media pinhole; the future fails when the kernel refused.
    func replace(media key: UInt64, old: [NftablesPinholeTable.Element], new: [NftablesPinholeTable.Element],
                 timeout: Duration, on loop: any EventLoop) -> EventLoopFuture<Void> {
        state.withLock { state in
            guard state.media[key] != nil else { return loop.makeSucceededVoidFuture() }
            var script = drop(old, owner: key, in: &state)
            script += hold(new, owner: key, timeout: timeout + Self.kernelMargin, in: &state)
            return enqueue(script, on: loop)
        }
    }

    func closed(media key: UInt64, session: UInt64, outsidePort: UInt16, insidePort: UInt16,
                elements: [NftablesPinholeTable.Element]) {
        state.withLock { state in
            guard state.media.removeValue(forKey: key) != nil else { return }
            state.ledger.releasePair(session: session, port: outsidePort)
            state.ledger.releasePair(session: session, port: insidePort)
            let script = drop(elements, owner: key, in: &state)
            enqueueLoggingErrors(script)
        }
    }

    // MARK: Elements and the kernel

    /// Takes `elements` for `owner` and returns the script that puts into the kernel what is not there yet. An
    /// element another pinhole holds with a different value is taken over: the newer announcement wins.
    private func hold(_ elements: [NftablesPinholeTable.Element], owner: UInt64, timeout: Duration,
                      in state: inout State) -> String {
        var stale: [NftablesPinholeTable.Element] = []
        var fresh: [NftablesPinholeTable.Element] = []
        for element in elements {
            let id = "\(element.set) \(element.key)"
            if var holding = state.held[id], holding.element == element {
                holding.holders.insert(owner)
                state.held[id] = holding
                continue
            }
            if let previous = state.held[id] { stale.append(previous.element) }
            state.held[id] = Holding(element: element, holders: [owner])
            fresh.append(element)
        }
        return (stale.isEmpty ? "" : table.removeScript(stale)) + table.addScript(fresh, timeout: timeout)
    }

    /// Lets go of `elements` for `owner`; returns the script that removes those nobody holds any more.
    private func drop(_ elements: [NftablesPinholeTable.Element], owner: UInt64, in state: inout State) -> String {
        var gone: [NftablesPinholeTable.Element] = []
        for element in elements {
            let id = "\(element.set) \(element.key)"
            guard var holding = state.held[id], holding.element == element,
                  holding.holders.remove(owner) != nil else { continue }
            if holding.holders.isEmpty {
                state.held[id] = nil
                gone.append(element)
            } else {
                state.held[id] = holding
            }
        }
        return gone.isEmpty ? "" : table.removeScript(gone)
    }

    /// Queues `script` behind every script queued before it. Call with the state locked, so that the kernel sees
    /// the scripts in the order the state changed.
    private func enqueue(_ script: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard !script.isEmpty else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        queue.submit(script) { promise.completeWith($0.mapError { $0 as any Error }) }
        return promise.futureResult
    }

    private func enqueueLoggingErrors(_ script: String) {
        guard !script.isEmpty else { return }
        let logger = self.logger
        queue.submit(script) { result in
            if case .failure(let error) = result {
                logger.error("nftables refused to remove pinhole elements", metadata: ["error": "\(error)"])
            }
        }
    }
}
