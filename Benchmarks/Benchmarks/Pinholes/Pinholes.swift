// Benchmarks of the pinhole backends (AlgatePinholes): how long a passive pinhole takes from the server's 227 to
// the rewritten 227 that may go to the client, and what 10,000 pinholes open at once cost, for the userspace
// backend (a listening socket per pinhole) and the nftables backend (elements in the kernel's NAT table, through
// libnftables on the backend's own thread).
//
// The nftables benchmarks need CAP_NET_ADMIN and install the table `inet algate_pinholes`: run them only in a
// network namespace of their own, as ../Scripts/bench-pinholes does (it names that namespace in ALGATE_BENCH_NETNS;
// anywhere else every benchmark here is skipped; it also raises the file-descriptor limit for
// the 10,000 listening sockets, and prints a summary with ratios). Every pinhole listens on 127.0.0.1, so the
// namespace needs nothing but `lo` up. package-benchmark runs each benchmark in a process of its own, so the peak
// resident memory of one benchmark is that process's.
//
// Latency (scalingFactor .one: one iteration = one pinhole, times in µs):
//   "latency: userspace" / "latency: nftables"   a fresh FTPSessionStateMachine with a PASV pending (not measured);
//       measured: the 227 goes in, the openPinhole request comes out, the backend opens it, the future completes,
//       pinholeOpened, the rewritten 227 comes out. Then (not measured) the pinhole is closed and, for nftables,
//       the benchmark waits until the kernel no longer has its one-use element, so that no removal is still queued
//       on the backend's thread when the next iteration starts.
//   baselines: the same 227 with the pinhole answered at once (the engine alone); binding one NIO listener on the
//       same event loop (the userspace backend's floor); one libnftables call adding one pinhole's elements from the
//       benchmark's own thread (the nftables backend's floor, without the hop to its thread).
// 10,000 pinholes (one iteration = 10,000 pinholes of 625 sessions of 16, all open at once, then all closed):
//   wall clock = opening all 10,000 until every future completed; the custom metric "close all (ms)" = closing
//   them until every one reported .closed (nftables: and the kernel removed the last one's elements).
//   baselines: binding 10,000 plain NIO listeners on the same loop; the 10,000 pinholes' elements added to the
//   kernel in one libnftables batch.

import AlgatePinholes
import AlgateRewrite
import Benchmark
import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Where it runs

/// The symbolic link /proc/PID/ns/net: the network namespace, e.g. "net:[4026531840]".
private func networkNamespace(_ pid: String) -> String? {
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { raw in
        readlink("/proc/\(pid)/ns/net", raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
    }
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self)
}

/// Whether this process runs in the network namespace that Scripts/bench-pinholes made for it: the script puts that
/// namespace's link in ALGATE_BENCH_NETNS. Every benchmark of this target is skipped otherwise: the nftables ones
/// would change the ruleset of whatever namespace they run in, and the 10,000 listeners need the script's raised
/// descriptor limit.
private let inNamespaceOfItsOwn: Bool = {
    guard let wanted = getenv("ALGATE_BENCH_NETNS").map({ String(cString: $0) }), !wanted.isEmpty,
          let own = networkNamespace("self") else { return false }
    return own == wanted
}()

// MARK: - Fixtures

/// Loopback addresses of the benchmark's own namespace: nothing is sent anywhere, pinholes only listen.
private let listenAddress = IPAddress("127.0.0.1")!
private let clientAddress = IPAddress("127.0.0.2")!
private let context = FTPSessionContext(
    client: Endpoint(address: clientAddress, port: 50_123),
    server: Endpoint("127.0.0.3:2121")!,
    publicAddress: listenAddress,
    insideAddress: listenAddress)

/// The public ports of both backends (the script's namespace has nothing else on them).
private let pinholePorts: ClosedRange<UInt16> = 20_000...39_999
private let pinholeCount = 10_000
private let sessionSize = 16
/// Long enough that no pinhole expires while a benchmark holds it.
private let pinholeTimeout: Duration = .seconds(600)

private func line(_ text: String) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeString(text)
    buffer.writeString("\r\n")
    return buffer
}

private let banner = line("220 (vsFTPd 3.0.3)")
private let pasvCommand = line("PASV")
private let reply227 = line("227 Entering Passive Mode (127,0,0,3,156,64).")

private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
private let loop = group.next()

private var quietLogger: Logger {
    var logger = Logger(label: "algate.benchmarks.pinholes")
    logger.logLevel = .error
    return logger
}

private func makeBackend(_ kind: BackendKind) throws -> any PinholeBackend {
    let limits = PinholeLedger.Limits(perSession: sessionSize, total: pinholeCount + sessionSize)
    switch kind {
    case .userspace: return UserspacePinholeBackend(ports: pinholePorts, limits: limits, logger: quietLogger)
    case .nftables: return try NftablesPinholeBackend(ports: pinholePorts, limits: limits, logger: quietLogger)
    }
}

private enum BackendKind { case userspace, nftables }

/// What a benchmark process holds between its setup and teardown hooks (one benchmark per process).
private final class Fixture: @unchecked Sendable {
    var backend: (any PinholeBackend)?
    /// A libnftables context of the benchmark's own, to ask the kernel whether elements are gone.
    var runner: NftablesRunner?
    let table = NftablesPinholeTable()

    func setUp(_ kind: BackendKind?) async throws {
        guard let kind else { return }
        let backend = try makeBackend(kind)
        try await backend.prepare()
        self.backend = backend
        if kind == .nftables { runner = try NftablesRunner() }
    }

    func tearDown() async {
        await backend?.shutdown()
        backend = nil
        runner = nil
    }

    /// Waits (not measured) until the kernel no longer holds the one-use element of the pinhole `spec`/`port`:
    /// the backend runs its scripts one at a time in order, so then everything queued before is done too.
    func waitUntilRemoved(_ spec: TCPPinholeSpec, port: UInt16) {
        guard let runner else { return }
        let elements = table.dnat(peer: spec.allowedPeer, local: Endpoint(address: spec.listenAddress, port: port),
                                  transport: .tcp, target: spec.target)
        guard let once = elements.first(where: { $0.set.hasPrefix("once") }) else { return }
        let query = "get element inet \(table.name) \(once.set) { \(once.key) }\n"
        for _ in 0..<100_000 {
            do { _ = try runner.run(query) } catch { return }   // "No such file or directory": gone
        }
        fatalError("the kernel still holds \(once.key) after the pinhole closed")
    }
}

/// Collects `.closed` events: a promise per pinhole, or a countdown for many.
private final class ClosedCounter: Sendable {
    private let remaining: Mutex<Int>
    let done: EventLoopPromise<Void>

    init(_ count: Int, on loop: any EventLoop) {
        remaining = Mutex(count)
        done = loop.makePromise()
    }

    func onEvent(_ event: PinholeEvent) {
        guard case .closed = event else { return }
        let left = remaining.withLock { value in
            value -= 1
            return value
        }
        if left == 0 { done.succeed() }
    }
}

/// A fresh machine with the server's banner through and a PASV pending.
private func machineAwaiting227() -> FTPSessionStateMachine {
    var machine = FTPSessionStateMachine(context: context)
    machine.receive(banner, from: .server)
    machine.receive(pasvCommand, from: .client)
    while let action = machine.nextAction() {
        if case .close(let reason) = action { fatalError("the benchmark session was closed: \(reason)") }
    }
    return machine
}

/// The spec the proxy makes for a passive request (FTPSession.pinholeSpec): listen on the public side, admit the
/// control client, connect from the gateway's server-side address.
private func passiveSpec(_ request: FTPPinholeRequest, session: UInt64) -> TCPPinholeSpec {
    TCPPinholeSpec(session: session, listenAddress: listenAddress, allowedPeer: request.allowedPeer,
                   target: request.target, sourceAddress: listenAddress, timeout: pinholeTimeout)
}

/// The spec of the i-th of the 10,000: the same peer, a target port of its own (so nftables holds 3 elements
/// per pinhole, as for passive ports that differ).
private func bulkSpec(_ index: Int) -> TCPPinholeSpec {
    TCPPinholeSpec(session: UInt64(index / sessionSize), listenAddress: listenAddress, allowedPeer: clientAddress,
                   target: Endpoint(address: context.server.address, port: UInt16(40_000 + index % 20_000)),
                   sourceAddress: listenAddress, timeout: pinholeTimeout)
}

/// Feeds the 227, opens the pinhole the machine asks for with `backend`, waits for it, and returns the pinhole,
/// its spec and the rewritten reply.
private func openFrom227(_ machine: inout FTPSessionStateMachine, backend: any PinholeBackend,
                         closed: ClosedCounter) throws -> (any DataPinhole, TCPPinholeSpec, ByteBuffer) {
    machine.receive(reply227, from: .server)
    var request: FTPPinholeRequest?
    while let action = machine.nextAction() {
        switch action {
        case .openPinhole(let wanted): request = wanted
        case .close(let reason): fatalError("the benchmark session was closed: \(reason)")
        default: break
        }
    }
    guard let request else { fatalError("the 227 asked for no pinhole") }
    let spec = passiveSpec(request, session: 1)
    let pinhole = try backend.openDataPinhole(spec, on: loop) { closed.onEvent($0) }.wait()
    machine.pinholeOpened(id: request.id, port: pinhole.port)
    var rewritten: ByteBuffer?
    while let action = machine.nextAction() {
        switch action {
        case .forward(let bytes, .client): rewritten = bytes
        case .close(let reason): fatalError("the benchmark session was closed: \(reason)")
        default: break
        }
    }
    guard let rewritten else { fatalError("no rewritten 227 after pinholeOpened") }
    return (pinhole, spec, rewritten)
}

/// Checks once, outside any measurement, that the reply really is rewritten to the pinhole's port.
private func check(_ rewritten: ByteBuffer, port: UInt16) {
    let expected = "227 Entering Passive Mode (127,0,0,1,\(port >> 8),\(port & 0xFF)).\r\n"
    guard String(buffer: rewritten) == expected else {
        fatalError("Pinholes: the 227 was rewritten to \(String(buffer: rewritten).debugDescription), not \(expected.debugDescription)")
    }
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    // Silently: package-benchmark starts this executable once per benchmark and once to list them.
    let skip = !inNamespaceOfItsOwn
    let latency = Benchmark.Configuration(
        metrics: [.wallClock, .throughput],
        timeUnits: .microseconds,
        warmupIterations: 10,
        scalingFactor: .one,
        maxDuration: .seconds(4),
        maxIterations: 2_000,
        skip: skip)

    for (name, kind) in [("latency: userspace (227 to rewritten 227)", BackendKind.userspace),
                         ("latency: nftables (227 to rewritten 227)", BackendKind.nftables)] {
        let fixture = Fixture()
        var checked = false
        Benchmark(name, configuration: latency, closure: { benchmark in
            guard let backend = fixture.backend else { fatalError("no backend: the setup hook did not run") }
            var machine = machineAwaiting227()
            let closed = ClosedCounter(1, on: loop)
            benchmark.startMeasurement()
            let opened = try openFrom227(&machine, backend: backend, closed: closed)
            benchmark.stopMeasurement()
            let (pinhole, spec, rewritten) = opened
            if !checked {
                check(rewritten, port: pinhole.port)
                checked = true
            }
            blackHole(rewritten)
            pinhole.close()
            try closed.done.futureResult.wait()
            fixture.waitUntilRemoved(spec, port: pinhole.port)
        }, setup: { try await fixture.setUp(kind) }, teardown: { await fixture.tearDown() })
    }

    Benchmark("baseline: 227 rewrite, pinhole answered at once", configuration: latency) { benchmark in
        var machine = machineAwaiting227()
        benchmark.startMeasurement()
        machine.receive(reply227, from: .server)
        var rewritten: ByteBuffer?
        while let action = machine.nextAction() {
            switch action {
            case .openPinhole(let request): machine.pinholeOpened(id: request.id, port: 41_234)
            case .forward(let bytes, .client): rewritten = bytes
            default: break
            }
        }
        benchmark.stopMeasurement()
        blackHole(rewritten)
    }

    // Like a pinhole's listener: a given port of the pool (not port 0, which makes the kernel search for one) and a
    // ready-made address (bind(host:port:) would resolve the host each time).
    var listenerPort = Int(pinholePorts.lowerBound)
    Benchmark("baseline: bind one NIO listener", configuration: latency) { benchmark in
        listenerPort = listenerPort == Int(pinholePorts.upperBound) ? Int(pinholePorts.lowerBound) : listenerPort + 1
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: listenerPort)
        benchmark.startMeasurement()
        let channel = try ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 8)
            .bind(to: address).wait()
        benchmark.stopMeasurement()
        try channel.close().wait()
    }

    do {
        let fixture = Fixture()
        var port: UInt16 = pinholePorts.lowerBound
        Benchmark("baseline: one libnftables call (a pinhole's elements, same thread)", configuration: latency, closure: { benchmark in
            guard let runner = fixture.runner else { fatalError("no libnftables context: the setup hook did not run") }
            port = port == pinholePorts.upperBound ? pinholePorts.lowerBound : port + 1
            let spec = bulkSpec(0)
            var elements = fixture.table.dnat(peer: spec.allowedPeer, local: Endpoint(address: listenAddress, port: port),
                                              transport: .tcp, target: spec.target)
            elements.append(fixture.table.snat(target: spec.target, transport: .tcp, source: listenAddress, port: nil))
            let add = fixture.table.addScript(elements, timeout: pinholeTimeout)
            let remove = fixture.table.removeScript(elements)
            benchmark.startMeasurement()
            _ = try runner.run(add)
            benchmark.stopMeasurement()
            _ = try runner.run(remove)
        }, setup: { try await fixture.setUp(.nftables) }, teardown: { await fixture.tearDown() })
    }

    // 10,000 at once: a few iterations of a few seconds each.
    let closeMetric = BenchmarkMetric.custom("close all (ms)", polarity: .prefersSmaller, useScalingFactor: false)
    let bulk = Benchmark.Configuration(
        metrics: [.wallClock, .peakMemoryResident, .peakMemoryResidentDelta, closeMetric],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(20),
        maxIterations: 5,
        skip: skip)

    for (name, kind) in [("10,000 pinholes: userspace", BackendKind.userspace),
                         ("10,000 pinholes: nftables", BackendKind.nftables)] {
        let fixture = Fixture()
        Benchmark(name, configuration: bulk, closure: { benchmark in
            guard let backend = fixture.backend else { fatalError("no backend: the setup hook did not run") }
            let closed = ClosedCounter(pinholeCount, on: loop)
            let specs = (0..<pinholeCount).map(bulkSpec)
            benchmark.startMeasurement()
            let futures = specs.map { spec in backend.openDataPinhole(spec, on: loop) { closed.onEvent($0) } }
            let pinholes = try EventLoopFuture.whenAllSucceed(futures, on: loop).wait()
            benchmark.stopMeasurement()
            guard backend.openCount == pinholeCount else {
                fatalError("\(backend.openCount) pinholes open, not \(pinholeCount)")
            }
            let start = ContinuousClock.now
            for pinhole in pinholes { pinhole.close() }
            try closed.done.futureResult.wait()
            if let last = pinholes.last { fixture.waitUntilRemoved(specs[specs.count - 1], port: last.port) }
            let elapsed = ContinuousClock.now - start
            benchmark.measurement(closeMetric, Int(elapsed / .milliseconds(1)))
            guard backend.openCount == 0 else { fatalError("\(backend.openCount) pinholes still open after closing") }
        }, setup: { try await fixture.setUp(kind) }, teardown: { await fixture.tearDown() })
    }

    Benchmark("baseline: 10,000 NIO listeners", configuration: bulk) { benchmark in
        let bootstrap = ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 8)
        let addresses = try (0..<pinholeCount).map { index in
            try SocketAddress(ipAddress: "127.0.0.1", port: Int(pinholePorts.lowerBound) + index)
        }
        benchmark.startMeasurement()
        let futures = addresses.map { bootstrap.bind(to: $0) }
        let channels = try EventLoopFuture.whenAllSucceed(futures, on: loop).wait()
        benchmark.stopMeasurement()
        let start = ContinuousClock.now
        try EventLoopFuture.andAllSucceed(channels.map { $0.close() }, on: loop).wait()
        benchmark.measurement(closeMetric, Int((ContinuousClock.now - start) / .milliseconds(1)))
    }

    do {
        let fixture = Fixture()
        Benchmark("baseline: 10,000 pinholes' elements in one libnftables batch", configuration: bulk, closure: { benchmark in
            guard let runner = fixture.runner else { fatalError("no libnftables context: the setup hook did not run") }
            var elements: [NftablesPinholeTable.Element] = []
            elements.reserveCapacity(pinholeCount * 3)
            for index in 0..<pinholeCount {
                let spec = bulkSpec(index)
                let port = pinholePorts.lowerBound + UInt16(index)
                elements += fixture.table.dnat(peer: spec.allowedPeer, local: Endpoint(address: listenAddress, port: port),
                                               transport: .tcp, target: spec.target)
                elements.append(fixture.table.snat(target: spec.target, transport: .tcp, source: listenAddress, port: nil))
            }
            let add = fixture.table.addScript(elements, timeout: pinholeTimeout)
            var remove = ""
            for element in elements { remove += "delete element inet \(fixture.table.name) \(element.set) { \(element.key) }\n" }
            benchmark.startMeasurement()
            _ = try runner.run(add)
            benchmark.stopMeasurement()
            let start = ContinuousClock.now
            _ = try runner.run(remove)
            benchmark.measurement(closeMetric, Int((ContinuousClock.now - start) / .milliseconds(1)))
        }, setup: { try await fixture.setUp(.nftables) }, teardown: { await fixture.tearDown() })
    }
}
