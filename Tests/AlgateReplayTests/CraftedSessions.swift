import AlgateReplay
import Foundation

/// Sessions written packet by packet for the tests, as the IP packets each side sent, in order.
final class PacketScript {
    /// (connection number, IP packet); connection 0 is the control connection.
    private(set) var packets: [(connection: Int, bytes: [UInt8])] = []
    private var conversations: [TCPConversation] = []
    private var taken: [Int] = []

    /// Starts a TCP connection (with its handshake); returns its number.
    @discardableResult
    func connect(client: (String, Int), server: (String, Int)) -> Int {
        var conversation = TCPConversation(client: client, server: server)
        conversation.handshake()
        conversations.append(conversation)
        taken.append(0)
        flush(conversations.count - 1)
        return conversations.count - 1
    }

    func send(_ connection: Int, fromClient: Bool, _ text: String, segmentSize: Int = 1460) {
        conversations[connection].send(fromClient: fromClient, text, segmentSize: segmentSize)
        flush(connection)
    }

    func close(_ connection: Int) {
        conversations[connection].close()
        flush(connection)
    }

    func udp(_ source: (String, Int), _ destination: (String, Int), _ payload: [UInt8]) {
        let datagram = Packet.udp(source.1, destination.1, payload: payload)
        packets.append((-1, source.0.contains(":")
            ? Packet.ipv6(source.0, destination.0, nextHeader: 17, payload: datagram)
            : Packet.ipv4(source.0, destination.0, protocolNumber: 17, payload: datagram)))
    }

    func raw(_ bytes: [UInt8]) {
        packets.append((-1, bytes))
    }

    private func flush(_ connection: Int) {
        let segments = conversations[connection].segments
        for segment in segments[taken[connection]...] { packets.append((connection, segment.packet)) }
        taken[connection] = segments.count
    }

    /// The index of the first packet whose bytes contain `text`.
    func firstPacket(containing text: String) -> Int? {
        packets.firstIndex { String(decoding: $0.bytes, as: UTF8.self).contains(text) }
    }

    /// The conversation of a connection (for building retransmissions).
    func conversation(_ connection: Int) -> TCPConversation { conversations[connection] }

    /// The frames, one packet each, 10 ms apart, wrapped by `link`.
    static func frames(_ packets: [[UInt8]], link: ([UInt8]) -> [UInt8] = { Packet.ethernet($0) }) -> [Frame] {
        packets.enumerated().map { Frame(time: 1_700_000_000 + Double($0.offset) * 0.01, bytes: link($0.element)) }
    }
}

enum CraftedSessions {
    static let client = ("192.0.2.10", 50000)
    static let server = ("198.51.100.5", 21)

    /// An FTP session with a passive download and an active listing, each with its data connection; server replies
    /// cut into segments of `replySegment` bytes.
    static func ftp(replySegment: Int = 1460, serverPort: Int = 21) -> PacketScript {
        let script = PacketScript()
        let control = script.connect(client: client, server: (server.0, serverPort))
        script.send(control, fromClient: false, "220 Crafted FTP server ready.\r\n", segmentSize: replySegment)
        script.send(control, fromClient: true, "USER anonymous\r\n")
        script.send(control, fromClient: false, "331 Password please.\r\n", segmentSize: replySegment)
        script.send(control, fromClient: true, "PASS guest\r\n")
        script.send(control, fromClient: false, "230-Welcome.\r\n230-Second line.\r\n230 Logged in.\r\n",
                    segmentSize: replySegment)
        script.send(control, fromClient: true, "PASV\r\n")
        script.send(control, fromClient: false, "227 Entering Passive Mode (198,51,100,5,195,80).\r\n",
                    segmentSize: replySegment)
        script.send(control, fromClient: true, "RETR file.txt\r\n")
        let passive = script.connect(client: ("192.0.2.10", 50001), server: ("198.51.100.5", 50000))
        script.send(control, fromClient: false, "150 Opening data connection.\r\n", segmentSize: replySegment)
        script.send(passive, fromClient: false, "the file's contents\n")
        script.close(passive)
        script.send(control, fromClient: false, "226 Transfer complete.\r\n", segmentSize: replySegment)
        script.send(control, fromClient: true, "PORT 192,0,2,10,200,10\r\n")
        script.send(control, fromClient: false, "200 PORT command successful.\r\n", segmentSize: replySegment)
        script.send(control, fromClient: true, "LIST\r\n")
        let active = script.connect(client: ("198.51.100.5", 20), server: ("192.0.2.10", 51210))
        script.send(control, fromClient: false, "150 Here comes the listing.\r\n", segmentSize: replySegment)
        script.send(active, fromClient: true, "-rw-r--r-- 1 ftp ftp 20 file.txt\r\n")
        script.close(active)
        script.send(control, fromClient: false, "226 Directory send OK.\r\n", segmentSize: replySegment)
        script.send(control, fromClient: true, "QUIT\r\n")
        script.send(control, fromClient: false, "221 Goodbye.\r\n", segmentSize: replySegment)
        script.close(control)
        return script
    }

    /// ``ftp(replySegment:serverPort:)`` as Ethernet frames.
    static func ftpFrames() -> [Frame] {
        PacketScript.frames(ftp().packets.map(\.bytes))
    }

    static func sdp(_ address: String, _ port: Int) -> String {
        let family = address.contains(":") ? "IP6" : "IP4"
        return "v=0\r\no=- 1 1 IN \(family) \(address)\r\ns=-\r\nc=IN \(family) \(address)\r\nt=0 0\r\n"
            + "m=audio \(port) RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    }

    static func host(_ address: String) -> String { address.contains(":") ? "[\(address)]" : address }

    /// An INVITE with SDP from `caller` to `callee` (media at the caller's address, `mediaPort`).
    static func invite(from caller: (String, Int), to callee: (String, Int), mediaPort: Int, transport: String = "UDP",
                       callID: String = "call-1@crafted") -> String {
        let body = sdp(caller.0, mediaPort)
        return "INVITE sip:bob@\(host(callee.0)):\(callee.1) SIP/2.0\r\n"
            + "Via: SIP/2.0/\(transport) \(host(caller.0)):\(caller.1);branch=z9hG4bK-c1\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
            + "Call-ID: \(callID)\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@\(host(caller.0)):\(caller.1)>\r\n"
            + "Content-Type: application/sdp\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    /// The callee's 200 OK (with SDP) to `invite`.
    static func ok(to invite: String, from callee: (String, Int), mediaPort: Int) -> String {
        let body = sdp(callee.0, mediaPort)
        let vias = invite.components(separatedBy: "\r\n").filter { $0.hasPrefix("Via:") }
        let callID = invite.components(separatedBy: "\r\n").first { $0.hasPrefix("Call-ID:") } ?? "Call-ID: x"
        return "SIP/2.0 200 OK\r\n" + vias.map { $0 + "\r\n" }.joined()
            + "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n\(callID)\r\n"
            + "CSeq: 1 INVITE\r\nContact: <sip:bob@\(host(callee.0)):\(callee.1)>\r\n"
            + "Content-Type: application/sdp\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    /// An RTP packet (version 2, PCMU).
    static func rtp(sequence: Int) -> [UInt8] {
        [0x80, 0x00] + Packet.be16(sequence) + Packet.be32(UInt32(sequence * 160)) + Packet.be32(0x1234_5678)
            + [UInt8](repeating: 0xff, count: 160)
    }
}

/// Replays crafted frames: writes them as a capture file, replays it, removes the file.
func replayCrafted(_ frames: [Frame], linkType: Int = 1, pcapng: Bool = false,
                   settings: ReplaySettings = ReplaySettings()) throws -> ReplayReport {
    let bytes = pcapng ? CaptureFile.pcapng(linkType: linkType, frames: frames)
                       : CaptureFile.pcap(linkType: linkType, frames: frames)
    let path = try CaptureFile.write(bytes, suffix: pcapng ? ".pcapng" : ".pcap")
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try CaptureReplayer.replay(path: path, settings: settings)
}
