import NIOPosix
import Synchronization

/// Runs nft scripts on one thread of its own, in the order they were queued, never on an event loop.
///
/// When scripts queue up faster than the kernel takes them (a burst of pinholes), the thread sends everything
/// waiting as one libnftables call: one netlink batch costs about as much as one element, so a burst of 10,000
/// pinholes goes through in a third of the time. A batch is all-or-nothing, so when one fails, its scripts are run
/// again one by one and only the one at fault fails.
final class NftablesScriptQueue: Sendable {
    private struct Job {
        var script: String
        var done: @Sendable (Result<Void, NftablesError>) -> Void
    }

    private struct Pending {
        var jobs: [Job] = []
        var draining = false
        var closed = false
    }

    /// At most this many scripts in one call: libnftables holds a whole batch's parse in memory at once.
    static let maxBatch = 256

    private let runner: NftablesRunner
    private let thread: NIOThreadPool
    private let pending = Mutex(Pending())

    init(runner: NftablesRunner) {
        self.runner = runner
        self.thread = NIOThreadPool(numberOfThreads: 1)
        self.thread.start()
    }

    /// Queues `script`; `done` is called on the queue's thread once the kernel took or refused it.
    func submit(_ script: String, done: @escaping @Sendable (Result<Void, NftablesError>) -> Void) {
        let start: Bool? = pending.withLock { pending in
            guard !pending.closed else { return nil }
            pending.jobs.append(Job(script: script, done: done))
            defer { pending.draining = true }
            return !pending.draining
        }
        switch start {
        case nil:
            done(.failure(NftablesError(script: script, message: "the nftables queue is closed")))
        case true?:
            thread.submit { [self] _ in self.drain() }
        case false?:
            break
        }
    }

    /// Queues `script` and waits until the kernel took it.
    func run(_ script: String) async throws(NftablesError) {
        let result: Result<Void, NftablesError> = await withCheckedContinuation { continuation in
            submit(script) { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    /// Refuses new scripts, lets the queued ones run, and stops the thread.
    func close() async {
        pending.withLock { $0.closed = true }
        try? await thread.shutdownGracefully()
    }

    private func drain() {
        while true {
            let jobs: [Job] = pending.withLock { pending in
                if pending.jobs.isEmpty { pending.draining = false }
                let taken = pending.jobs.prefix(Self.maxBatch)
                pending.jobs.removeFirst(taken.count)
                return Array(taken)
            }
            guard !jobs.isEmpty else { return }
            if jobs.count > 1, (try? runner.run(jobs.map(\.script).joined())) != nil {
                for job in jobs { job.done(.success(())) }
                continue
            }
            for job in jobs {
                do throws(NftablesError) {
                    try runner.run(job.script)
                    job.done(.success(()))
                } catch {
                    job.done(.failure(error))
                }
            }
        }
    }
}
