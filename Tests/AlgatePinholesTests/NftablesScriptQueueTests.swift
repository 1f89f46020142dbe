@testable import AlgatePinholes
import Foundation
import Synchronization
import Testing

/// The queue in front of libnftables: order kept, and one bad script in a batch fails alone. The scripts only read
/// (`list tables`) or do not parse, so nothing of the machine's ruleset changes.
@Suite(.enabled("needs root (libnftables reads the ruleset)") { geteuid() == 0 })
struct NftablesScriptQueueTests {
    @Test func aBadScriptAmongGoodOnesFailsAloneAndEveryoneHearsBackInOrder() async throws {
        let queue = NftablesScriptQueue(runner: try NftablesRunner())
        let heard = Mutex<[(Int, Bool)]>([])
        let scripts = (0..<40).map { $0 % 7 == 3 ? "this is not nft \($0)\n" : "list tables\n" }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            for (index, script) in scripts.enumerated() {
                queue.submit(script) { result in
                    let count = heard.withLock { heard in
                        heard.append((index, (try? result.get()) != nil))
                        return heard.count
                    }
                    if count == scripts.count { continuation.resume() }
                }
            }
        }
        let results = heard.withLock { $0 }
        #expect(results.map(\.0) == Array(0..<40), "answers out of order")
        #expect(results.map(\.1) == scripts.map { !$0.hasPrefix("this") }, "\(results)")
        await queue.close()
        // After close nothing runs, and the caller hears so at once.
        await #expect(throws: NftablesError.self) { try await queue.run("list tables\n") }
    }
}
