import NIOConcurrencyHelpers

/// Counts the sessions of the process against a limit and tells shutdown when the last one ended.
///
/// Each session registers itself with a closure that asks it to wind down; that closure hops to the session's own
/// event loop, so the registry itself is usable from anywhere.
public final class SessionRegistry: Sendable {
    private struct State {
        var sessions: [UInt64: @Sendable (_ force: Bool) -> Void] = [:]
        var nextID: UInt64 = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var draining = false
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Sessions alive now.
    public var count: Int { state.withLockedValue { $0.sessions.count } }

    /// Registers a session if fewer than `limit` are alive and shutdown has not begun; returns its id.
    public func register(limit: Int, windDown: @escaping @Sendable (_ force: Bool) -> Void) -> UInt64? {
        state.withLockedValue { state in
            guard !state.draining, state.sessions.count < limit else { return nil }
            state.nextID += 1
            state.sessions[state.nextID] = windDown
            return state.nextID
        }
    }

    /// Sets what winding a registered session down means, once the session is fully set up.
    public func replaceWindDown(_ id: UInt64, _ windDown: @escaping @Sendable (_ force: Bool) -> Void) {
        let draining = state.withLockedValue { state in
            if state.sessions[id] != nil { state.sessions[id] = windDown }
            return state.draining
        }
        // Shutdown began while the session was being set up: it winds down right away.
        if draining { windDown(false) }
    }

    /// Removes an ended session; the last one to go after `beginDraining` wakes `drained()`.
    public func unregister(_ id: UInt64) {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLockedValue { state in
            state.sessions[id] = nil
            guard state.sessions.isEmpty, state.draining else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Refuses new sessions and asks every live one to wind down: idle ones close now, ones with a transfer
    /// running close when it ends.
    public func beginDraining() {
        let windDowns = state.withLockedValue { state in
            state.draining = true
            return Array(state.sessions.values)
        }
        for windDown in windDowns { windDown(false) }
    }

    /// Closes every session still alive, transfers or not (the shutdown deadline has passed).
    public func closeAll() {
        let windDowns = state.withLockedValue { state in
            state.draining = true
            return Array(state.sessions.values)
        }
        for windDown in windDowns { windDown(true) }
    }

    /// Returns when no session is left (call after `beginDraining`).
    public func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLockedValue { state in
                if state.sessions.isEmpty { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
