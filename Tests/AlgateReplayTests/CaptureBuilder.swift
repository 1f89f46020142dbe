import Foundation

/// Builds packets byte by byte and writes them as pcap or pcapng files, so tests can craft exactly the capture
/// they need (reordered, duplicated, truncated, fragmented, any link type) without any tool.
enum Packet {
    static func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }
    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }
    static func le32(_ value: UInt32) -> [UInt8] { be32(value).reversed() }
    static func le16(_ value: Int) -> [UInt8] { be16(value).reversed() }

    /// `192.0.2.1` -> 4 bytes; `2001:db8::1` -> 16 bytes (simple forms only).
    static func address(_ text: String) -> [UInt8] {
        if !text.contains(":") { return text.split(separator: ".").map { UInt8($0)! } }
        let halves = text.components(separatedBy: "::")
        func groups(_ part: String) -> [UInt16] {
            part.isEmpty ? [] : part.split(separator: ":").map { UInt16($0, radix: 16)! }
        }
        let head = groups(halves[0])
        let tail = halves.count > 1 ? groups(halves[1]) : []
        let all = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    static func tcp(_ sourcePort: Int, _ destinationPort: Int, seq: UInt32, ack: UInt32, flags: UInt8,
                    payload: [UInt8] = []) -> [UInt8] {
        be16(sourcePort) + be16(destinationPort) + be32(seq) + be32(ack) + [0x50, flags] + be16(65535) + [0, 0, 0, 0]
            + payload
    }

    static func udp(_ sourcePort: Int, _ destinationPort: Int, payload: [UInt8]) -> [UInt8] {
        be16(sourcePort) + be16(destinationPort) + be16(8 + payload.count) + [0, 0] + payload
    }

    static func ipv4(_ source: String, _ destination: String, protocolNumber: UInt8, payload: [UInt8],
                     identification: Int = 1, fragmentOffset: Int = 0, moreFragments: Bool = false) -> [UInt8] {
        let flags = (moreFragments ? 0x2000 : 0) | (fragmentOffset / 8)
        return [0x45, 0] + be16(20 + payload.count) + be16(identification) + be16(flags) + [64, protocolNumber, 0, 0]
            + address(source) + address(destination) + payload
    }

    /// An IPv6 packet; `extensions` are (type, body) pairs put before the payload (body padded to 8-byte units).
    static func ipv6(_ source: String, _ destination: String, nextHeader: UInt8, payload: [UInt8],
                     extensions: [(UInt8, [UInt8])] = []) -> [UInt8] {
        var chain: [UInt8] = []
        let types = extensions.map(\.0) + [nextHeader]
        for (index, (_, body)) in extensions.enumerated() {
            var header = [types[index + 1], 0] + body
            while header.count % 8 != 0 { header.append(0) }
            header[1] = UInt8(header.count / 8 - 1)
            chain += header
        }
        let first = extensions.first?.0 ?? nextHeader
        return [0x60, 0, 0, 0] + be16(chain.count + payload.count) + [first, 64] + address(source)
            + address(destination) + chain + payload
    }

    /// IPv6 fragments of an upper-layer payload, each carrying `size` bytes (a multiple of 8 but the last).
    static func ipv6Fragments(_ source: String, _ destination: String, nextHeader: UInt8, payload: [UInt8],
                              size: Int, identification: UInt32) -> [[UInt8]] {
        stride(from: 0, to: payload.count, by: size).map { offset in
            let end = min(offset + size, payload.count)
            let more = end < payload.count
            let fragmentHeader = [nextHeader, 0] + be16(offset | (more ? 1 : 0)) + be32(identification)
            let body = fragmentHeader + Array(payload[offset..<end])
            return [0x60, 0, 0, 0] + be16(body.count) + [44, 64] + address(source) + address(destination) + body
        }
    }

    /// IPv4 fragments of an upper-layer payload, each carrying `size` bytes (a multiple of 8 but the last).
    static func ipv4Fragments(_ source: String, _ destination: String, protocolNumber: UInt8, payload: [UInt8],
                              size: Int, identification: Int) -> [[UInt8]] {
        stride(from: 0, to: payload.count, by: size).map { offset in
            let end = min(offset + size, payload.count)
            return ipv4(source, destination, protocolNumber: protocolNumber, payload: Array(payload[offset..<end]),
                        identification: identification, fragmentOffset: offset, moreFragments: end < payload.count)
        }
    }

    /// The Internet checksum (RFC 1071) of `bytes`.
    static func internetChecksum(_ bytes: [UInt8]) -> Int {
        var sum = 0
        for index in stride(from: 0, to: bytes.count, by: 2) {
            sum += Int(bytes[index]) << 8 | (index + 1 < bytes.count ? Int(bytes[index + 1]) : 0)
        }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return ~sum & 0xffff
    }

    /// A GRE packet (RFC 2784, the key and sequence number of RFC 2890): `version` 1 is PPTP's enhanced GRE.
    static func gre(protocolType: Int, _ payload: [UInt8], checksum: Bool = false, key: UInt32? = nil,
                    sequence: UInt32? = nil, version: Int = 0) -> [UInt8] {
        var flags = version
        if checksum { flags |= 0x8000 }
        if key != nil { flags |= 0x2000 }
        if sequence != nil { flags |= 0x1000 }
        var header = be16(flags) + be16(protocolType)
        if checksum { header += [0, 0, 0, 0] }
        if let key { header += be32(key) }
        if let sequence { header += be32(sequence) }
        var packet = header + payload
        if checksum {
            let sum = be16(internetChecksum(packet))
            packet[4] = sum[0]
            packet[5] = sum[1]
        }
        return packet
    }

    /// An ERSPAN type II header (version 1, VLAN, session ID, index) before a mirrored Ethernet frame.
    static func erspanII(_ frame: [UInt8], session: Int = 7, vlan: Int = 100) -> [UInt8] {
        be16(0x1000 | vlan) + be16(session) + be32(42) + frame
    }

    /// An ERSPAN type III header (version 2, frame type `frameType`), with the 8-byte platform-specific subheader
    /// when `platform`, before the mirrored frame.
    static func erspanIII(_ frame: [UInt8], frameType: Int = 0, platform: Bool = false) -> [UInt8] {
        let header = be16(0x2000 | 100) + be16(7) + be32(123_456_789) + be16(0)
            + [UInt8(frameType << 2), 0x10 | (platform ? 1 : 0)]  // FT; hardware ID 1, O when a subheader follows
        return header + (platform ? [0x0c, 0, 0, 0] + be32(0xdead_beef) : []) + frame
    }

    /// A VXLAN header (I flag, `vni`) before an Ethernet frame (RFC 7348).
    static func vxlan(_ frame: [UInt8], vni: Int = 4242, flags: UInt8 = 0x08) -> [UInt8] {
        [flags, 0, 0, 0, UInt8(vni >> 16 & 0xff), UInt8(vni >> 8 & 0xff), UInt8(vni & 0xff), 0] + frame
    }

    /// An outer IP packet (IPv4 or IPv6 by the addresses) carrying `payload` as protocol `protocolNumber`.
    static func ip(_ source: String, _ destination: String, _ protocolNumber: UInt8, _ payload: [UInt8]) -> [UInt8] {
        source.contains(":")
            ? ipv6(source, destination, nextHeader: protocolNumber, payload: payload)
            : ipv4(source, destination, protocolNumber: protocolNumber, payload: payload)
    }

    static func ethernet(_ ip: [UInt8], vlans: [Int] = []) -> [UInt8] {
        var frame: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        for vlan in vlans { frame += [0x81, 0x00] + be16(vlan) }
        frame += ip.first.map { $0 >> 4 == 6 ? [0x86, 0xdd] : [0x08, 0x00] } ?? [0x08, 0x00]
        frame += ip
        while frame.count < 60 { frame.append(0) }  // Ethernet's minimum, as real captures pad
        return frame
    }

    static func sll(_ ip: [UInt8]) -> [UInt8] {
        let type: [UInt8] = ip.first! >> 4 == 6 ? [0x86, 0xdd] : [0x08, 0x00]
        return be16(0) + be16(1) + be16(6) + [0, 1, 2, 3, 4, 5, 0, 0] + type + ip
    }

    static func sll2(_ ip: [UInt8]) -> [UInt8] {
        (ip.first! >> 4 == 6 ? [0x86, 0xdd] : [0x08, 0x00]) + [0, 0] + be32(2) + be16(1) + [0, 6]
            + [0, 1, 2, 3, 4, 5, 0, 0] + ip
    }

    /// BSD loopback: the family in the byte order of the host that captured.
    static func null(_ ip: [UInt8], bigEndianHost: Bool = false) -> [UInt8] {
        let family: UInt32 = ip.first! >> 4 == 6 ? 30 : 2
        return (bigEndianHost ? be32(family) : le32(family)) + ip
    }

    static func loop(_ ip: [UInt8]) -> [UInt8] {
        be32(ip.first! >> 4 == 6 ? 24 : 2) + ip
    }
}

/// One captured frame for a file.
struct Frame {
    var time: Double
    var bytes: [UInt8]
}

/// Writes classic pcap (microsecond) and pcapng files.
enum CaptureFile {
    static func pcap(linkType: Int, frames: [Frame]) -> [UInt8] {
        var out = Packet.le32(0xa1b2_c3d4) + Packet.le16(2) + Packet.le16(4) + Packet.le32(0) + Packet.le32(0)
            + Packet.le32(262_144) + Packet.le32(UInt32(linkType))
        for frame in frames {
            let seconds = UInt32(frame.time.rounded(.down))
            let micros = UInt32(((frame.time - Double(seconds)) * 1e6).rounded())
            out += Packet.le32(seconds) + Packet.le32(micros) + Packet.le32(UInt32(frame.bytes.count))
                + Packet.le32(UInt32(frame.bytes.count)) + frame.bytes
        }
        return out
    }

    static func pcapng(linkType: Int, frames: [Frame]) -> [UInt8] {
        func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
            var padded = body
            while padded.count % 4 != 0 { padded.append(0) }
            let length = UInt32(12 + padded.count)
            return Packet.le32(type) + Packet.le32(length) + padded + Packet.le32(length)
        }
        var out = block(0x0a0d_0d0a, Packet.le32(0x1a2b_3c4d) + Packet.le16(1) + Packet.le16(0)
                        + Packet.le32(0xffff_ffff) + Packet.le32(0xffff_ffff))
        out += block(1, Packet.le16(linkType) + Packet.le16(0) + Packet.le32(262_144))
        for frame in frames {
            let micros = UInt64((frame.time * 1e6).rounded())
            let length = Packet.le32(UInt32(frame.bytes.count))
            let timestamp = Packet.le32(UInt32(micros >> 32)) + Packet.le32(UInt32(micros & 0xffff_ffff))
            out += block(6, Packet.le32(0) + timestamp + length + length + frame.bytes)
        }
        return out
    }

    /// Writes bytes to a fresh temporary file; the caller removes it.
    static func write(_ bytes: [UInt8], suffix: String = ".pcap") throws -> String {
        let path = NSTemporaryDirectory() + "algate-replay-\(UUID().uuidString)\(suffix)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// A TCP connection between two endpoints, built segment by segment with correct sequence and acknowledgment
/// numbers; each segment is an IP packet (IPv4 or IPv6 by the addresses).
struct TCPConversation {
    struct Segment {
        var fromClient: Bool
        var packet: [UInt8]
    }

    let client: (address: String, port: Int)
    let server: (address: String, port: Int)
    private(set) var segments: [Segment] = []
    private var clientSeq: UInt32 = 1_000_000
    private var serverSeq: UInt32 = 4_294_967_000  // wraps around during the test: sequence arithmetic is modular

    init(client: (String, Int), server: (String, Int)) {
        self.client = client
        self.server = server
    }

    private func ip(_ fromClient: Bool, _ tcp: [UInt8]) -> [UInt8] {
        let (source, destination) = fromClient ? (client.address, server.address) : (server.address, client.address)
        return source.contains(":")
            ? Packet.ipv6(source, destination, nextHeader: 6, payload: tcp)
            : Packet.ipv4(source, destination, protocolNumber: 6, payload: tcp)
    }

    private func segment(_ fromClient: Bool, seq: UInt32, ack: UInt32, flags: UInt8, _ payload: [UInt8]) -> Segment {
        let (sourcePort, destinationPort) = fromClient ? (client.port, server.port) : (server.port, client.port)
        return Segment(fromClient: fromClient,
                       packet: ip(fromClient, Packet.tcp(sourcePort, destinationPort, seq: seq, ack: ack, flags: flags,
                                                         payload: payload)))
    }

    mutating func handshake() {
        segments.append(segment(true, seq: clientSeq, ack: 0, flags: 0x02, []))
        segments.append(segment(false, seq: serverSeq, ack: clientSeq &+ 1, flags: 0x12, []))
        clientSeq &+= 1
        serverSeq &+= 1
        segments.append(segment(true, seq: clientSeq, ack: serverSeq, flags: 0x10, []))
    }

    /// Sends bytes from one side, cut into segments of at most `segmentSize` bytes.
    mutating func send(fromClient: Bool, _ text: String, segmentSize: Int = 1460) {
        send(fromClient: fromClient, Array(text.utf8), segmentSize: segmentSize)
    }

    mutating func send(fromClient: Bool, _ bytes: [UInt8], segmentSize: Int = 1460) {
        var offset = 0
        while offset < bytes.count {
            let chunk = Array(bytes[offset..<min(offset + segmentSize, bytes.count)])
            if fromClient {
                segments.append(segment(true, seq: clientSeq, ack: serverSeq, flags: 0x18, chunk))
                clientSeq &+= UInt32(chunk.count)
            } else {
                segments.append(segment(false, seq: serverSeq, ack: clientSeq, flags: 0x18, chunk))
                serverSeq &+= UInt32(chunk.count)
            }
            offset += chunk.count
        }
    }

    mutating func close() {
        segments.append(segment(true, seq: clientSeq, ack: serverSeq, flags: 0x11, []))
        clientSeq &+= 1
        segments.append(segment(false, seq: serverSeq, ack: clientSeq, flags: 0x11, []))
        serverSeq &+= 1
        segments.append(segment(true, seq: clientSeq, ack: serverSeq, flags: 0x10, []))
    }

    /// A segment re-sent with other bytes for some of its sequence numbers (first data must win), from an
    /// existing segment's sequence number and acknowledgment.
    func conflictingCopy(of index: Int, replacing replacement: UInt8) -> Segment {
        var copy = segments[index]
        let headerLength = copy.packet[0] >> 4 == 6 ? 40 : 20
        for position in (headerLength + 20)..<copy.packet.count { copy.packet[position] = replacement }
        return copy
    }
}

/// A deterministic generator for shuffles, so a failing test fails the same way every time.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
