import Synchronization

/// How far each stand-in of a live SIP replay has got through the captured messages: a player marks each message
/// it is done with (sent, arrived, or given up on at its deadline), and another can wait until it got that far.
/// A player waits only for messages before the one it is about to send, and every player marks everything done when
/// it stops, so waiting always ends.
final class LivePlayProgress: Sendable {
    private struct Waiter {
        var side: Int
        var index: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var done: [Int] = [-1, -1]
        var waiters: [Waiter] = []
    }

    private let state = Mutex(State())

    /// `side` is done with every message up to `index`.
    func done(side: LiveMediaBook.Side, through index: Int) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.done[side.rawValue] = max(state.done[side.rawValue], index)
            let done = state.done
            let ready = state.waiters.filter { done[$0.side] >= $0.index }.map(\.continuation)
            state.waiters.removeAll { done[$0.side] >= $0.index }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Whether `side` is done with every message up to `index`.
    func isDone(side: LiveMediaBook.Side, through index: Int) -> Bool {
        state.withLock { $0.done[side.rawValue] >= index }
    }

    /// Returns once `side` is done with every message up to `index`.
    func wait(side: LiveMediaBook.Side, through index: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now: Bool = state.withLock { state in
                if state.done[side.rawValue] >= index { return true }
                state.waiters.append(Waiter(side: side.rawValue, index: index, continuation: continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }
}
