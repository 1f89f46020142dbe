import AlgateReplay
import Foundation
import Testing

/// Captures that start after a TCP connection did (no SYN, the first bytes in the middle of a message): SIP and
/// FTP control connections are found by content on any port, and read from their first message boundary.
@Suite struct MidStreamReplayTests {
    static let client = ("192.0.2.30", 40500)

    static func options(_ pbx: (String, Int)) -> String {
        "OPTIONS sip:bob@\(pbx.0):\(pbx.1) SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.30:40500;branch=z9hG4bK-o1\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=o\r\nTo: <sip:bob@example.com>\r\n"
            + "Call-ID: options-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    }

    static func optionsOK(_ pbx: (String, Int)) -> String {
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.30:40500;branch=z9hG4bK-o1\r\n"
            + "From: <sip:alice@example.com>;tag=o\r\nTo: <sip:bob@example.com>;tag=p\r\n"
            + "Call-ID: options-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    }

    static func ack(_ pbx: (String, Int)) -> String {
        "ACK sip:bob@\(pbx.0):\(pbx.1) SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.30:40500;branch=z9hG4bK-c2\r\n"
            + "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
            + "Call-ID: call-1@crafted\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    }

    /// A SIP-over-TCP call to `pbx` as a capture that starts in the middle of an OPTIONS request: the handshake
    /// and its first `droppedSegments` segments (of 60 bytes) are not in it. RTP flows both ways after the ACK.
    static func midStreamCall(pbx: (String, Int), droppedSegments: Int = 2) -> [[UInt8]] {
        let script = PacketScript()
        let connection = script.connect(client: client, server: pbx)
        script.send(connection, fromClient: true, options(pbx), segmentSize: 60)
        script.send(connection, fromClient: false, optionsOK(pbx))
        let invite = CraftedSessions.invite(from: client, to: pbx, mediaPort: 18000, transport: "TCP")
        script.send(connection, fromClient: true, invite, segmentSize: 200)
        script.send(connection, fromClient: false, CraftedSessions.ok(to: invite, from: pbx, mediaPort: 10000))
        script.send(connection, fromClient: true, ack(pbx))
        for sequence in 1...3 {
            script.udp((client.0, 18000), (pbx.0, 10000), CraftedSessions.rtp(sequence: sequence))
            script.udp((pbx.0, 10000), (client.0, 18000), CraftedSessions.rtp(sequence: sequence))
        }
        script.close(connection)
        return Array(script.packets.map(\.bytes).dropFirst(3 + droppedSegments))
    }

    @Test(arguments: [5090, 6060, 5060])
    func sipOverTCPCapturedMidStreamIsFoundAndReadFromItsFirstMessage(_ port: Int) throws {
        let pbx = ("198.51.100.6", port)
        let report = try replayCrafted(PacketScript.frames(Self.midStreamCall(pbx: pbx)))
        #expect(report.problems.isEmpty, "\(report.problems)")
        let session = try #require(report.sessions.first)
        #expect(report.sessions.count == 1)
        #expect(session.protocol == .sip)
        #expect(session.transport == "tcp")
        #expect(session.detectedBy == (port == 5060 ? "port 5060" : "content (SIP start line, mid-stream)"))
        #expect(session.client == "192.0.2.30:40500")
        #expect(session.server == "198.51.100.6:\(port)")
        #expect(session.messages.map(\.text) == ["SIP/2.0 200 OK", "INVITE sip:bob@198.51.100.6:\(port) SIP/2.0",
                                                  "SIP/2.0 200 OK", "ACK sip:bob@198.51.100.6:\(port) SIP/2.0"])
        #expect(session.pinholes.count == 1)
        #expect(session.dataFlows == ReplaySession.DataFlows(observed: 1, predicted: 1, covered: 1))
        // The 120 bytes of the OPTIONS before the capture started are missing; the rest of it is skipped.
        let skipped = Self.options(pbx).utf8.count - 120
        #expect(session.notes.contains("the capture starts after the TCP connection did: each direction is read "
            + "from its first SIP start line (skipped before it: \(skipped) byte(s) from 192.0.2.30:40500)"),
            "\(session.notes)")
    }

    @Test func aMidStreamCaptureThatStartsAtAMessageBoundaryLosesNothing() throws {
        let pbx = ("198.51.100.6", 5090)
        let report = try replayCrafted(PacketScript.frames(Self.midStreamCall(pbx: pbx, droppedSegments: 0)))
        let session = try #require(report.sessions.first)
        #expect(session.messages.first?.text == "OPTIONS sip:bob@198.51.100.6:5090 SIP/2.0")
        #expect(session.messages.count == 5)
        #expect(session.notes.contains("the capture starts after the TCP connection did: each direction is read "
            + "from its first SIP start line"), "\(session.notes)")
    }

    @Test func aSIPLookingLineWithoutASIPHeaderSectionIsNotSIP() throws {
        // An HTTP body that quotes a request line, captured mid-stream: no CSeq follows it, so it is not SIP.
        let script = PacketScript()
        let web = script.connect(client: ("192.0.2.30", 40502), server: ("198.51.100.6", 8080))
        script.send(web, fromClient: true, "POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\n")
        script.send(web, fromClient: true, "INVITE sip:x@y SIP/2.0\r\nVia: a\r\n\r\nxxxx\r\n")
        script.send(web, fromClient: false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        script.close(web)
        let report = try replayCrafted(PacketScript.frames(Array(script.packets.map(\.bytes).dropFirst(3))))
        #expect(report.sessions.isEmpty)
        #expect(report.capture.tcpConnections == 1)
        #expect(report.capture.unrelatedFlows == 1)
    }

    @Test func aSIPPortConnectionCapturedMidStreamWithNoSIPInItIsAProblem() throws {
        let script = PacketScript()
        let connection = script.connect(client: ("192.0.2.30", 40504), server: ("198.51.100.6", 5060))
        script.send(connection, fromClient: true, "no SIP here\r\nnor here\r\n")
        script.send(connection, fromClient: false, "nothing\r\n")
        let report = try replayCrafted(PacketScript.frames(Array(script.packets.map(\.bytes).dropFirst(3))))
        #expect(report.sessions.isEmpty)
        #expect(report.problems == ["TCP connection 192.0.2.30:40504 <-> 198.51.100.6:5060 (frame 1, port 5060, "
            + "captured without its handshake): no SIP message starts in its 32 byte(s)"], "\(report.problems)")
    }

    /// The crafted FTP session on port 2121, its control connection captured from the packet holding `first` on.
    static func midStreamFTP(from first: String) throws -> [[UInt8]] {
        let script = CraftedSessions.ftp(serverPort: 2121)
        let start = try #require(script.firstPacket(containing: first))
        return script.packets.enumerated()
            .filter { $0.offset >= start || $0.element.connection != 0 }
            .map(\.element.bytes)
    }

    /// From USER, the client is seen first; from 331, the server is (and is first taken for the initiator).
    @Test(arguments: ["USER anonymous", "331 Password"])
    func ftpCapturedMidStreamOnAnotherPortIsFoundByItsCommandsAndReplies(_ first: String) throws {
        let report = try replayCrafted(PacketScript.frames(try Self.midStreamFTP(from: first)))
        #expect(report.problems.isEmpty, "\(report.problems)")
        let session = try #require(report.sessions.first)
        #expect(report.sessions.count == 1)
        #expect(session.protocol == .ftp)
        #expect(session.detectedBy == "content (FTP commands and replies, mid-stream)")
        #expect(session.client == "192.0.2.10:50000")
        #expect(session.server == "198.51.100.5:2121")
        #expect(session.messages.first?.text == (first.hasPrefix("USER") ? "USER anonymous" : "331 Password please."))
        #expect(session.notes.contains { $0.contains("starts after the connection did") })
        #expect(session.errors.isEmpty, "\(session.errors)")
        #expect(session.dataFlows == ReplaySession.DataFlows(observed: 2, predicted: 2, covered: 2))
    }

    @Test func smtpCapturedMidStreamIsNotTakenForFTP() throws {
        let script = PacketScript()
        let mail = script.connect(client: ("192.0.2.30", 40503), server: ("198.51.100.6", 2525))
        script.send(mail, fromClient: false, "220 mail ESMTP\r\n")
        script.send(mail, fromClient: true, "NOOP\r\n")
        script.send(mail, fromClient: false, "250 OK\r\n")
        script.send(mail, fromClient: true, "MAIL FROM:<a@example.com>\r\n")
        script.send(mail, fromClient: false, "250 OK\r\n")
        script.send(mail, fromClient: true, "QUIT\r\n")
        script.send(mail, fromClient: false, "221 Bye\r\n")
        script.close(mail)
        // From NOOP on: a command FTP shares with SMTP, then one FTP does not have.
        let report = try replayCrafted(PacketScript.frames(Array(script.packets.map(\.bytes).dropFirst(4))))
        #expect(report.sessions.isEmpty)
        #expect(report.capture.unrelatedFlows == 1)
    }
}
