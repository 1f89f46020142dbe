// Benchmarks of the FTP engine: FTPSessionStateMachine (AlgateRewrite/Session), fed lines the way the proxy
// feeds them, with every action drained and every pinhole request answered at once.
//
// All benchmarks run 1000 lines per measured iteration (scalingFactor .kilo), so in the text output
// `Throughput (K)` is thousands of lines per second and the starred rows (time, mallocs) are per line.
// The raw numbers that `thresholds update` writes to Thresholds/*.json are per 1000 lines.
//
// Two baselines are measured in the same run, so the table reads as ratios:
//   - "baseline: forward an unparsed line": a NOOP through the machine (parsed as a command, not rewritten);
//   - "baseline: copy the line bytes": a copy of a ByteBuffer as long as the 227 line, into a new ByteBuffer.

import AlgateRewrite
import Benchmark
import NIOCore

// MARK: - Fixtures

/// The same addresses as Tests/AlgateRewriteTests/FTPSessionDriver.swift. Nothing is sent anywhere: they are
/// values the machine compares and writes.
private let context = FTPSessionContext(
    client: Endpoint("198.51.100.20:50123")!,
    server: Endpoint("10.0.0.5:21")!,
    publicAddress: IPAddress("203.0.113.7")!,
    insideAddress: IPAddress("10.0.0.1")!)

private func line(_ text: String) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeString(text)
    buffer.writeString("\r\n")
    return buffer
}

private let c = FTPSide.client
private let s = FTPSide.server

/// A complete anonymous download/upload session as vsFTPd 3.0.3 and curl/lftp exchange it: 40 lines, 3 of
/// them rewritten (227, PORT, 229), each opening one pinhole.
private let realisticSession: [(FTPSide, ByteBuffer)] = [
    (s, line("220 (vsFTPd 3.0.3)")),
    (c, line("USER anonymous")),
    (s, line("331 Please specify the password.")),
    (c, line("PASS guest@example.com")),
    (s, line("230 Login successful.")),
    (c, line("SYST")),
    (s, line("215 UNIX Type: L8")),
    (c, line("FEAT")),
    (s, line("211-Features:")),
    (s, line(" EPRT")),
    (s, line(" EPSV")),
    (s, line(" MDTM")),
    (s, line(" PASV")),
    (s, line(" REST STREAM")),
    (s, line(" SIZE")),
    (s, line(" TVFS")),
    (s, line("211 End")),
    (c, line("PWD")),
    (s, line("257 \"/\" is the current directory")),
    (c, line("CWD pub")),
    (s, line("250 Directory successfully changed.")),
    (c, line("TYPE I")),
    (s, line("200 Switching to Binary mode.")),
    (c, line("PASV")),
    (s, line("227 Entering Passive Mode (10,0,0,5,156,64).")),
    (c, line("LIST")),
    (s, line("150 Here comes the directory listing.")),
    (s, line("226 Directory send OK.")),
    (c, line("PORT 198,51,100,20,195,80")),
    (s, line("200 PORT command successful. Consider using PASV.")),
    (c, line("RETR big.bin")),
    (s, line("150 Opening BINARY mode data connection for big.bin (1073741824 bytes).")),
    (s, line("226 Transfer complete.")),
    (c, line("EPSV")),
    (s, line("229 Entering Extended Passive Mode (|||40100|)")),
    (c, line("STOR upload.bin")),
    (s, line("150 Ok to send data.")),
    (s, line("226 Transfer complete.")),
    (c, line("QUIT")),
    (s, line("221 Goodbye.")),
]

private let banner = line("220 (vsFTPd 3.0.3)")
private let pasvCommand = line("PASV")
private let reply227 = line("227 Entering Passive Mode (10,0,0,5,156,64).")
private let portCommand = line("PORT 198,51,100,20,195,80")
private let noopCommand = line("NOOP")
private let reply200 = line("200 NOOP ok.")

/// The port every pinhole request is answered with (the machine only writes it into the rewritten line).
private let pinholePort: UInt16 = 41_234

// MARK: - Driving the machine

/// Drains the machine like the proxy does: pinhole requests are answered at once, forwarded bytes are counted
/// (standing in for the write). Returns the number of bytes forwarded.
@inline(__always)
private func drain(_ machine: inout FTPSessionStateMachine) -> Int {
    var forwarded = 0
    while let action = machine.nextAction() {
        switch action {
        case .forward(let bytes, _):
            forwarded &+= bytes.readableBytes
        case .openPinhole(let request):
            machine.pinholeOpened(id: request.id, port: pinholePort)
        case .close(let reason):
            fatalError("the benchmark session was closed: \(reason)")
        case .report, .closePinhole, .enterPassthrough:
            break
        }
    }
    return forwarded
}

/// A machine that has greeted, and whose command queue has room for `lines` commands without reallocating:
/// what a benchmark measures afterwards is the line, not the growth of the machine's buffers.
private func warmedMachine(forLines lines: Int) -> FTPSessionStateMachine {
    var configuration = FTPSessionStateMachine.Configuration()
    configuration.maxPipelinedCommands = lines + 8
    var machine = FTPSessionStateMachine(context: context, configuration: configuration)
    machine.receive(banner, from: .server)
    _ = drain(&machine)
    for _ in 0..<lines {
        machine.receive(noopCommand, from: .client)
        _ = drain(&machine)
    }
    for _ in 0..<lines {
        machine.receive(reply200, from: .server)
        _ = drain(&machine)
    }
    return machine
}

/// Runs the realistic session once outside any measurement and checks that the three rewrites happen, so the
/// numbers below are known to measure rewriting and not some early-out.
private func checkFixtures() {
    var machine = FTPSessionStateMachine(context: context)
    var toClient: [String] = []
    var toServer: [String] = []
    var pinholes = 0
    for (side, bytes) in realisticSession {
        machine.receive(bytes, from: side)
        while let action = machine.nextAction() {
            switch action {
            case .forward(let out, .client): toClient.append(String(buffer: out))
            case .forward(let out, .server): toServer.append(String(buffer: out))
            case .openPinhole(let request):
                pinholes += 1
                machine.pinholeOpened(id: request.id, port: pinholePort)
            case .close(let reason): fatalError("fixture session closed: \(reason)")
            default: break
            }
        }
    }
    let expected227 = "227 Entering Passive Mode (203,0,113,7,161,18).\r\n"
    let expectedPORT = "PORT 10,0,0,1,161,18\r\n"
    let expected229 = "229 Entering Extended Passive Mode (|||41234|)\r\n"
    guard pinholes == 3, toClient.count + toServer.count == realisticSession.count,
          toClient.contains(expected227), toServer.contains(expectedPORT), toClient.contains(expected229) else {
        fatalError("""
            FTPEngine fixtures: the session did not rewrite as expected (pinholes: \(pinholes));
            to client: \(toClient)
            to server: \(toServer)
            """)
    }
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    checkFixtures()

    // Bounded: each benchmark stops at 3 s or 2000 iterations of 1000 lines, whichever comes first.
    let perLine: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]
    Benchmark.defaultConfiguration = .init(
        metrics: perLine,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 2_000)

    // Allocation counts are deterministic here: any change is a finding (`thresholds check` exits 2 for more
    // allocations, 4 for fewer; then run `thresholds update`).
    let exactAllocations: [BenchmarkMetric: BenchmarkThresholds] = [
        .mallocCountTotal: .init(relative: BenchmarkThresholds.Relative.strict,
                                 absolute: BenchmarkThresholds.Absolute.strict),
    ]

    Benchmark(
        "FTP session, realistic",
        configuration: .init(metrics: perLine + [.peakMemoryResident])
    ) { benchmark in
        let sessions = benchmark.scaledIterations.count / realisticSession.count
        precondition(sessions * realisticSession.count == benchmark.scaledIterations.count)
        var forwarded = 0
        for _ in 0..<sessions {
            var machine = FTPSessionStateMachine(context: context)
            for (side, bytes) in realisticSession {
                machine.receive(bytes, from: side)
                forwarded &+= drain(&machine)
            }
        }
        blackHole(forwarded)
    }

    Benchmark(
        "rewrite one 227 line",
        configuration: .init(thresholds: exactAllocations)
    ) { benchmark in
        // Set-up (not measured): one PASV pending per 227 that follows.
        let lines = benchmark.scaledIterations.count
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.maxPipelinedCommands = lines + 8
        var machine = FTPSessionStateMachine(context: context, configuration: configuration)
        machine.receive(banner, from: .server)
        _ = drain(&machine)
        for _ in 0..<lines {
            machine.receive(pasvCommand, from: .client)
            _ = drain(&machine)
        }
        var forwarded = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            machine.receive(reply227, from: .server)
            forwarded &+= drain(&machine)
        }
        benchmark.stopMeasurement()
        blackHole(forwarded)
    }

    Benchmark(
        "rewrite one PORT line",
        configuration: .init(thresholds: exactAllocations)
    ) { benchmark in
        var machine = warmedMachine(forLines: benchmark.scaledIterations.count)
        var forwarded = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            machine.receive(portCommand, from: .client)
            forwarded &+= drain(&machine)
        }
        benchmark.stopMeasurement()
        blackHole(forwarded)
    }

    Benchmark("baseline: forward an unparsed line") { benchmark in
        var machine = warmedMachine(forLines: benchmark.scaledIterations.count)
        var forwarded = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            machine.receive(noopCommand, from: .client)
            forwarded &+= drain(&machine)
        }
        benchmark.stopMeasurement()
        blackHole(forwarded)
    }

    Benchmark("baseline: copy the line bytes") { benchmark in
        // As long as the 227 line (the longer of the two rewritten lines), copied into a buffer of its own.
        let original = reply227
        for _ in benchmark.scaledIterations {
            var copy = ByteBufferAllocator().buffer(capacity: original.readableBytes)
            copy.writeImmutableBuffer(original)
            blackHole(copy)
        }
    }
}
