public import NIOCore
import Synchronization

/// A TCP pinhole in the kernel: a one-use DNAT element (and an SNAT element when the target must see the
/// gateway's address) that the kernel applies to the first connection from the expected peer.
///
/// algate never sees the connection; when the timer runs out it asks the kernel whether the one-use element is
/// still there, which tells an unused pinhole (reported `.expired`) from a used one.
public final class NftablesDataPinhole: DataPinhole {
    private struct State {
        var closed = false
        var timer: Scheduled<Void>?
    }

    let key: UInt64
    public let spec: TCPPinholeSpec
    public let port: UInt16
    public let eventLoop: any EventLoop
    private let once: NftablesPinholeTable.Element?
    private let elements: [NftablesPinholeTable.Element]
    private let backend: NftablesPinholeBackend
    private let onEvent: @Sendable (PinholeEvent) -> Void
    private let state = Mutex(State())

    init(key: UInt64, spec: TCPPinholeSpec, port: UInt16, once: NftablesPinholeTable.Element?,
         elements: [NftablesPinholeTable.Element], backend: NftablesPinholeBackend, eventLoop: any EventLoop,
         onEvent: @escaping @Sendable (PinholeEvent) -> Void) {
        self.key = key
        self.spec = spec
        self.port = port
        self.once = once
        self.elements = elements
        self.backend = backend
        self.eventLoop = eventLoop
        self.onEvent = onEvent
    }

    func armTimer() {
        let timeout = TimeAmount(spec.timeout)
        let timer = eventLoop.scheduleTask(in: timeout) { [self] in self.timerFired() }
        let closed = state.withLock { state in
            if !state.closed { state.timer = timer }
            return state.closed
        }
        if closed { timer.cancel() }
    }

    private func timerFired() {
        guard let once, !state.withLock({ $0.closed }) else { return close() }
        backend.consume(once, on: eventLoop).whenSuccess { [self] unused in
            if unused { self.onEvent(.expired) }
            self.close()
        }
    }

    public func close() {
        let timer: Scheduled<Void>?? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            defer { state.timer = nil }
            return .some(state.timer)
        }
        guard let timer else { return }
        timer?.cancel()
        backend.closed(data: key, session: spec.session, port: port, elements: elements)
        if eventLoop.inEventLoop { onEvent(.closed) } else { eventLoop.execute { [onEvent] in onEvent(.closed) } }
    }
}

