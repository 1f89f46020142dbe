public import AlgateRewrite
public import NIOCore
import Synchronization

/// A media pinhole in the kernel, for one m= line: the same four public ports as a userspace relay (RTP and
/// RTCP, outside and inside), made of DNAT elements towards each side's peer and SNAT elements so that each
/// peer sees its packets come from the ports it was told.
///
/// A side gets its elements once its peer is known (offer, answer, re-INVITE); each change replaces them and
/// restarts the timer. The kernel does not report packets to algate, so the pinhole closes `idleTimeout` after
/// the last change; media that flows by then stays up in conntrack, which ends it when it goes quiet.
public final class NftablesMediaPinhole: MediaPinhole {
    private struct State {
        var closed = false
        var timer: Scheduled<Void>?
        var outsideElements: [NftablesPinholeTable.Element] = []
        var insideElements: [NftablesPinholeTable.Element] = []
    }

    let key: UInt64
    public let spec: MediaRelaySpec
    public let outsidePort: UInt16
    public let insidePort: UInt16
    public let eventLoop: any EventLoop
    private let backend: NftablesPinholeBackend
    private let onEvent: @Sendable (MediaRelayEvent) -> Void
    private let state = Mutex(State())

    init(key: UInt64, spec: MediaRelaySpec, outsidePort: UInt16, insidePort: UInt16, backend: NftablesPinholeBackend,
         eventLoop: any EventLoop, onEvent: @escaping @Sendable (MediaRelayEvent) -> Void) {
        self.key = key
        self.spec = spec
        self.outsidePort = outsidePort
        self.insidePort = insidePort
        self.backend = backend
        self.eventLoop = eventLoop
        self.onEvent = onEvent
    }

    /// Puts the peers the spec already knows into the kernel and arms the timer.
    func start() -> EventLoopFuture<Void> {
        let outside = apply(outside: true, spec.outsidePeer, rtcpPort: nil)
        let inside = apply(outside: false, spec.insidePeer, rtcpPort: nil)
        return outside.and(inside).map { _ in () }
    }

    public func setPeers(outside: Endpoint?, outsideRTCP: UInt16?, inside: Endpoint?,
                         insideRTCP: UInt16?) -> EventLoopFuture<Void>? {
        let applied = apply(outside: true, outside, rtcpPort: outsideRTCP)
            .and(apply(outside: false, inside, rtcpPort: insideRTCP)).map { _ in () }
        applied.whenFailure { [self] _ in
            // The kernel refused: the call cannot have media through this pinhole; say so by closing it.
            self.close()
        }
        return applied
    }

    /// The elements that carry packets towards the peer of one side. `outside` is the outside peer: packets
    /// for it arrive on the inside ports, and leave from the outside ones.
    private func elements(outside: Bool, _ peer: Endpoint, rtcpPort: UInt16?) -> [NftablesPinholeTable.Element] {
        let table = backend.table
        let rtcp = Endpoint(address: peer.address, port: rtcpPort ?? (peer.port == .max ? peer.port : peer.port + 1))
        let arrival = outside ? (spec.insideAddress, insidePort, spec.insideAllowed)
            : (spec.outsideAddress, outsidePort, spec.outsideAllowed)
        let departure = outside ? (spec.outsideAddress, outsidePort) : (spec.insideAddress, insidePort)
        var elements: [NftablesPinholeTable.Element] = []
        for (offset, target) in [(UInt16(0), peer), (UInt16(1), rtcp)] {
            elements += table.dnat(peer: arrival.2, local: Endpoint(address: arrival.0, port: arrival.1 + offset),
                                   transport: .udp, target: target)
            elements.append(table.snat(target: target, transport: .udp, source: departure.0, port: departure.1 + offset))
        }
        return elements
    }

    private func apply(outside: Bool, _ endpoint: Endpoint?, rtcpPort: UInt16?) -> EventLoopFuture<Void> {
        guard var endpoint else { return eventLoop.makeSucceededVoidFuture() }
        endpoint.address = endpoint.address.unmapped
        guard endpoint.address.isIPv4 == spec.outsideAddress.isIPv4 else {
            return eventLoop.makeFailedFuture(PinholeError.unsupported("the kernel cannot map between IPv4 and IPv6"))
        }
        let new = elements(outside: outside, endpoint, rtcpPort: rtcpPort)
        let old: [NftablesPinholeTable.Element]? = state.withLock { state in
            guard !state.closed else { return nil }
            defer { if outside { state.outsideElements = new } else { state.insideElements = new } }
            return outside ? state.outsideElements : state.insideElements
        }
        guard let old else { return eventLoop.makeSucceededVoidFuture() }
        rearm()
        guard old != new else { return eventLoop.makeSucceededVoidFuture() }
        return backend.replace(media: key, old: old, new: new, timeout: spec.idleTimeout, on: eventLoop)
    }

    private func rearm() {
        let timer = eventLoop.scheduleTask(in: TimeAmount(spec.idleTimeout)) { [self] in self.close() }
        let previous: Scheduled<Void>?? = state.withLock { state in
            guard !state.closed else { return nil }
            defer { state.timer = timer }
            return .some(state.timer)
        }
        switch previous {
        case .none: timer.cancel()
        case .some(let earlier): earlier?.cancel()
        }
    }

    public func close() {
        let taken: (Scheduled<Void>?, [NftablesPinholeTable.Element])? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            defer { state.timer = nil }
            return (state.timer, state.outsideElements + state.insideElements)
        }
        guard let (timer, elements) = taken else { return }
        timer?.cancel()
        backend.closed(media: key, session: spec.session, outsidePort: outsidePort, insidePort: insidePort,
                       elements: elements)
        // The kernel counts nothing for algate: the counters of a kernel pinhole stay zero.
        let event = MediaRelayEvent.closed(MediaRelayCounters())
        if eventLoop.inEventLoop { onEvent(event) } else { eventLoop.execute { [onEvent] in onEvent(event) } }
    }
}
