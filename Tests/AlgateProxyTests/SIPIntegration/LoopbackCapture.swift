import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A dumpcap capture on `lo` of the UDP traffic on a test's own ports, counted afterwards with tshark: the
/// independent witness that media really crossed (SIPp has no RTP receive counter on the caller's side).
final class LoopbackCapture: Sendable {
    let file: URL
    private let process: SIPITProcess
    private let directory: URL
    private let peers: SIPITPeers

    /// Starts capturing UDP on any of `ports` (v4 and v6), and waits until dumpcap says it is capturing.
    init(ports: [ClosedRange<UInt16>], in directory: URL, peers: SIPITPeers,
         watchdog: Duration = .seconds(240)) async throws {
        let filter = "udp and (" + ports.map { "portrange \($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: " or ") + ")"
        let file = directory.appendingPathComponent("capture.pcapng")
        let process = try peers.start(
            name: "dumpcap", executable: SIPITTools.dumpcap,
            arguments: ["-q", "-i", "lo", "-B", "64", "-f", filter, "-w", file.path,
                        "-a", "duration:\(watchdog.components.seconds)"],
            directory: directory)
        self.file = file
        self.process = process
        self.directory = directory
        self.peers = peers
        let ready = await sipitWait(within: .seconds(15)) {
            !process.isRunning || sipitRead(process.output).contains("Capturing on")
        }
        guard ready, process.isRunning else {
            throw SIPITError("dumpcap did not start: \(process.outputTail())")
        }
    }

    /// Stops the capture (SIGINT: dumpcap flushes and closes the file).
    func stop() async {
        await process.stop(with: SIGINT, grace: .seconds(5))
    }

    /// Packets the capture lost (dumpcap's own count at exit: "received/dropped on interface ...: R/D"), or nil
    /// while it runs. On a busy machine the kernel may drop some; compare counts on the wire with this slack.
    var dropped: Int? {
        guard !process.isRunning else { return nil }
        for line in sipitRead(process.output).split(whereSeparator: \.isNewline)
        where line.contains("received/dropped") {
            guard let counts = line.split(separator: " ").first(where: { $0.contains("/") && $0.first!.isNumber }),
                  let drops = counts.split(separator: "/").last.flatMap({ Int($0) }) else { continue }
            return drops
        }
        return nil
    }

    /// UDP datagrams per (source port, destination port), ICMP errors (which quote UDP headers) left out.
    func udpFlows() async throws -> [SIPITFlowKey: Int] {
        await stop()
        let out = directory.appendingPathComponent("tshark-flows.txt")
        let tshark = try peers.start(
            name: "tshark", executable: SIPITTools.tshark,
            arguments: ["-n", "-r", file.path, "-Y", "udp && !icmp && !icmpv6", "-T", "fields",
                        "-e", "udp.srcport", "-e", "udp.dstport"],
            directory: directory, output: out)
        guard let status = await tshark.waitForExit(within: .seconds(60)) else {
            await tshark.stop()
            throw SIPITError("tshark did not finish within 60 s")
        }
        var flows: [SIPITFlowKey: Int] = [:]
        for line in sipitRead(out).split(separator: "\n") {
            let fields = line.split(separator: "\t")
            guard fields.count == 2, let source = UInt16(fields[0]), let destination = UInt16(fields[1]) else {
                continue
            }
            flows[SIPITFlowKey(source: source, destination: destination), default: 0] += 1
        }
        if status != 0 && flows.isEmpty {
            throw SIPITError("tshark exit \(status): \(sipitRead(out).sipitTail(10))")
        }
        return flows
    }
}

struct SIPITFlowKey: Hashable, Sendable {
    var source: UInt16
    var destination: UInt16
}

extension Dictionary where Key == SIPITFlowKey, Value == Int {
    /// Datagrams from a port in `source` to a port in `destination`.
    func count(from source: ClosedRange<UInt16>, to destination: ClosedRange<UInt16>) -> Int {
        reduce(0) { sum, entry in
            source.contains(entry.key.source) && destination.contains(entry.key.destination) ? sum + entry.value : sum
        }
    }

    func count(from source: UInt16, to destination: ClosedRange<UInt16>) -> Int {
        count(from: source...source, to: destination)
    }

    func count(from source: ClosedRange<UInt16>, to destination: UInt16) -> Int {
        count(from: source, to: destination...destination)
    }
}
