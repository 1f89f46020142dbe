internal import NIOCore

/// A set of keys that holds at most `capacity`, forgetting the oldest first: memory of recent transactions that no
/// flood of new ones can grow.
struct BoundedKeySet: Sendable {
    let capacity: Int
    private var members: Set<String> = []
    private var order = CircularBuffer<String>()

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    var count: Int { members.count }

    func contains(_ key: String) -> Bool { members.contains(key) }

    mutating func insert(_ key: String) {
        guard members.insert(key).inserted else { return }
        order.append(key)
        if order.count > capacity, let oldest = order.popFirst() {
            members.remove(oldest)
        }
    }
}
