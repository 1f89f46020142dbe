import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A dumpcap capture on `lo` of the UDP traffic on a test's own ports, counted afterwards with tshark: the
/// independent witness that media really crossed (SIPp has no RTP receive counter on the caller's side).
///
/// Ready means "a datagram sent now is in the file": dumpcap prints "Capturing on" before its filter is attached,
/// and libpcap discards what arrived before the filter, so a capture taken as ready on that line missed the first
/// RTP packets of a run. The capture therefore also listens on a marker port of its own and is ready once a marker
/// datagram has been written (classic pcap format: anything past the 24-byte file header is a packet).
final class LoopbackCapture: Sendable {
    let file: URL
    private let process: SIPITProcess
    private let directory: URL
    private let peers: SIPITPeers

    /// Starts capturing UDP on any of `ports` (v4 and v6), and waits until dumpcap says it is capturing.
    init(ports: [ClosedRange<UInt16>], in directory: URL, peers: SIPITPeers,
         watchdog: Duration = .seconds(240)) async throws {
        let marker = try SIPITPorts.one()
        let filter = "udp and (" + (ports + [marker...marker]).map { "portrange \($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: " or ") + ")"
        let file = directory.appendingPathComponent("capture.pcap")
        let process = try peers.start(
            name: "dumpcap", executable: SIPITTools.dumpcap,
            arguments: ["-q", "-i", "lo", "-B", "64", "-P", "-f", filter, "-w", file.path,
                        "-a", "duration:\(watchdog.components.seconds)"],
            directory: directory)
        self.file = file
        self.process = process
        self.directory = directory
        self.peers = peers
        let sender = try MarkerSender(port: marker)
        defer { sender.close() }
        let ready = await sipitWait(within: .seconds(15)) {
            guard process.isRunning else { return true }
            sender.send()
            let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
            return size > 24
        }
        guard ready, process.isRunning else {
            throw SIPITError("dumpcap did not capture its marker datagram: \(process.outputTail())")
        }
    }

    /// Marker datagrams to 127.0.0.1:`port` (nothing listens; the capture only has to see them). Their port is
    /// in none of the ranges a test counts.
    private struct MarkerSender {
        let fd: Int32
        let port: UInt16

        init(port: UInt16) throws {
            fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { throw SIPITError("marker socket: errno \(errno)") }
            self.port = port
        }

        func send() {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            let byte: [UInt8] = [0x4d]
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, byte, 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }

        func close() { _ = Glibc.close(fd) }
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
