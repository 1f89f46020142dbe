public import NIOCore
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Logging

/// The default pinhole backend: every pinhole is a socket of this process that relays to the target.
///
/// It needs no privileges. One instance serves every listener of the process, so the port pool and the limits are
/// shared; it is safe to use from any event loop.
public final class UserspacePinholeBackend: Sendable {
    private struct State {
        var ledger: PinholeLedger
        var accepting = true
        var open: [UInt64: TCPPinhole] = [:]
        var nextKey: UInt64 = 0
        var media: [UInt64: MediaRelay] = [:]
    }

    private let state: NIOLockedValueBox<State>
    private let logger: Logger
    /// How many pool ports to try when a port is taken by another program.
    private let bindAttempts = 8

    public init(ports: ClosedRange<UInt16>, limits: PinholeLedger.Limits, logger: Logger) {
        self.state = NIOLockedValueBox(State(ledger: PinholeLedger(ports: ports, limits: limits)))
        self.logger = logger
    }

    /// Pinholes open now, in the whole process.
    public var openCount: Int { state.withLockedValue { $0.ledger.total } }

    /// Opens a TCP pinhole on `loop`. `onEvent` is called on that loop for everything that happens to it.
    public func openTCP(_ spec: TCPPinholeSpec, on loop: any EventLoop,
                        onEvent: @escaping @Sendable (PinholeEvent) -> Void) -> EventLoopFuture<TCPPinhole> {
        attempt(spec, on: loop, onEvent: onEvent, attemptsLeft: bindAttempts)
    }

    private func attempt(_ spec: TCPPinholeSpec, on loop: any EventLoop,
                         onEvent: @escaping @Sendable (PinholeEvent) -> Void,
                         attemptsLeft: Int) -> EventLoopFuture<TCPPinhole> {
        let reserved: Result<(UInt16, UInt64), PinholeError> = state.withLockedValue { state in
            guard state.accepting else { return .failure(.shuttingDown) }
            state.nextKey += 1
            let key = state.nextKey
            return state.ledger.reserve(session: spec.session).map { ($0, key) }
        }
        let port: UInt16
        let key: UInt64
        switch reserved {
        case .failure(let error): return loop.makeFailedFuture(error)
        case .success(let value): (port, key) = value
        }
        let pinhole = TCPPinhole(spec: spec, port: port, eventLoop: loop, onEvent: onEvent, release: { [self] in
            self.release(spec.session, port, key: key)
        })
        state.withLockedValue { $0.open[key] = pinhole }
        return pinhole.start().map { pinhole }.flatMapError { [self] error in
            let portInUse = (error as? IOError)?.errnoCode == EADDRINUSE
            if portInUse, attemptsLeft > 1 {
                // Another program holds this port: keep it reserved while the next one is tried, so the retry
                // does not get the same port back, then give it back.
                self.logger.debug("pinhole port busy, trying another", metadata: ["port": "\(port)"])
                let next = self.attempt(spec, on: loop, onEvent: onEvent, attemptsLeft: attemptsLeft - 1)
                next.whenComplete { _ in pinhole.close() }
                return next
            }
            pinhole.close()
            if portInUse { return loop.makeFailedFuture(PinholeError.poolExhausted) }
            return loop.makeFailedFuture(PinholeError.bindFailed("\(spec.listenAddress):\(port): \(error)"))
        }
    }

    /// Opens a media relay (RTP and RTCP, outside and inside) on `loop`; `onEvent` is called on that loop.
    public func openMedia(_ spec: MediaRelaySpec, on loop: any EventLoop,
                          onEvent: @escaping @Sendable (MediaRelayEvent) -> Void) -> EventLoopFuture<MediaRelay> {
        attemptMedia(spec, on: loop, onEvent: onEvent, attemptsLeft: bindAttempts)
    }

    private func attemptMedia(_ spec: MediaRelaySpec, on loop: any EventLoop,
                              onEvent: @escaping @Sendable (MediaRelayEvent) -> Void,
                              attemptsLeft: Int) -> EventLoopFuture<MediaRelay> {
        let reserved: Result<(UInt16, UInt16, UInt64), PinholeError> = state.withLockedValue { state in
            guard state.accepting else { return .failure(.shuttingDown) }
            state.nextKey += 1
            let key = state.nextKey
            switch state.ledger.reservePair(session: spec.session) {
            case .failure(let error): return .failure(error)
            case .success(let outside):
                switch state.ledger.reservePair(session: spec.session) {
                case .failure(let error):
                    state.ledger.releasePair(session: spec.session, port: outside)
                    return .failure(error)
                case .success(let inside):
                    return .success((outside, inside, key))
                }
            }
        }
        let outside: UInt16
        let inside: UInt16
        let key: UInt64
        switch reserved {
        case .failure(let error): return loop.makeFailedFuture(error)
        case .success(let ports): (outside, inside, key) = ports
        }
        let relay = MediaRelay(spec: spec, outsidePort: outside, insidePort: inside, eventLoop: loop,
                               onEvent: onEvent, release: { [self] in
            self.state.withLockedValue { state in
                state.ledger.releasePair(session: spec.session, port: outside)
                state.ledger.releasePair(session: spec.session, port: inside)
                state.media[key] = nil
            }
        })
        state.withLockedValue { $0.media[key] = relay }
        return relay.start().map { relay }.flatMapError { [self] error in
            let portInUse = (error as? IOError)?.errnoCode == EADDRINUSE
            if portInUse, attemptsLeft > 1 {
                let next = self.attemptMedia(spec, on: loop, onEvent: onEvent, attemptsLeft: attemptsLeft - 1)
                next.whenComplete { _ in relay.abandon() }
                return next
            }
            relay.abandon()
            if portInUse { return loop.makeFailedFuture(PinholeError.poolExhausted) }
            return loop.makeFailedFuture(PinholeError.bindFailed("media on \(spec.outsideAddress)/\(spec.insideAddress): \(error)"))
        }
    }

    private func release(_ session: UInt64, _ port: UInt16, key: UInt64) {
        state.withLockedValue { state in
            state.ledger.release(session: session, port: port)
            state.open[key] = nil
        }
    }

    /// Refuses new pinholes and closes every open one.
    public func shutdown() {
        let (open, media) = state.withLockedValue { state in
            state.accepting = false
            return (Array(state.open.values), Array(state.media.values))
        }
        for pinhole in open { pinhole.close() }
        for relay in media { relay.close() }
    }
}
