import AlgatePinholes
import Testing

@Suite struct PortPoolTests {
    @Test func handsOutEveryPortOnceThenNothing() {
        var pool = PortPool(range: 40000...40002)
        let ports = [pool.allocate(), pool.allocate(), pool.allocate()]
        #expect(Set(ports.compactMap { $0 }) == [40000, 40001, 40002])
        #expect(pool.allocate() == nil)
        pool.release(40001)
        #expect(pool.allocate() == 40001)
    }

    @Test func doesNotReuseAJustReleasedPortWhileOthersAreFree() {
        var pool = PortPool(range: 40000...40009)
        let first = pool.allocate()
        pool.release(40000)
        #expect(first == 40000)
        #expect(pool.allocate() == 40001)
    }

    @Test func releasingAFreePortChangesNothing() {
        var pool = PortPool(range: 1024...1024)
        pool.release(1024)
        #expect(pool.allocatedCount == 0)
        #expect(pool.allocate() == 1024)
        #expect(pool.allocatedCount == 1)
    }

    @Test func ledgerEnforcesPerSessionAndTotalLimits() {
        var ledger = PinholeLedger(ports: 40000...40099, limits: .init(perSession: 2, total: 3))
        #expect(throws: Never.self) { try ledger.reserve(session: 1).get() }
        _ = ledger.reserve(session: 1)
        #expect(ledger.reserve(session: 1) == .failure(.sessionLimit(2)))
        guard case .success(let port) = ledger.reserve(session: 2) else {
            Issue.record("session 2 should get a port")
            return
        }
        #expect(ledger.reserve(session: 3) == .failure(.totalLimit(3)))
        ledger.release(session: 2, port: port)
        #expect(ledger.count(session: 2) == 0)
        #expect(ledger.total == 2)
        #expect((try? ledger.reserve(session: 3).get()) != nil)
    }

    @Test func ledgerReportsPoolExhaustion() {
        var ledger = PinholeLedger(ports: 40000...40000, limits: .init(perSession: 5, total: 5))
        _ = ledger.reserve(session: 1)
        #expect(ledger.reserve(session: 2) == .failure(.poolExhausted))
    }
}

@Suite struct PortPairTests {
    @Test func pairsAreEvenAndTheirOddNeighbour() {
        var pool = PortPool(range: 40001...40006)
        #expect(pool.allocatePair() == 40002)
        #expect(pool.allocatePair() == 40004)
        #expect(pool.allocatePair() == nil)  // 40006 has no 40007 in range
        pool.release(40002)
        pool.release(40003)
        #expect(pool.allocatePair() == 40002)
    }

    @Test func aPairNeedsBothPortsFree() {
        var pool = PortPool(range: 40000...40003)
        #expect(pool.allocate() == 40000)
        #expect(pool.allocatePair() == 40002)
        #expect(pool.allocatePair() == nil)
        #expect(pool.allocate() == 40001)
    }

    @Test func ledgerCountsAPairAsOnePinhole() {
        var ledger = PinholeLedger(ports: 40000...40009, limits: .init(perSession: 1, total: 10))
        guard case .success(let port) = ledger.reservePair(session: 7) else {
            Issue.record("a pair should be free")
            return
        }
        #expect(ledger.reservePair(session: 7) == .failure(.sessionLimit(1)))
        ledger.releasePair(session: 7, port: port)
        #expect(ledger.total == 0)
        #expect(ledger.reservePair(session: 7) == .success(port + 2))
    }
}
