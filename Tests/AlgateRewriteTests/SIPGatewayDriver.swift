import AlgateRewrite
import NIOCore

/// Drives a SIPGatewayStateMachine like the SIP listener does, answering media requests from a port counter,
/// and records everything it was told to do.
struct SIPGatewayDriver {
    var machine: SIPGatewayStateMachine
    var sent: [(text: String, to: SIPFlow)] = []
    var opened: [SIPMediaRequest] = []
    var updated: [UInt64] = []
    var closed: [UInt64] = []
    var events: [SIPGatewayEvent] = []
    var nextPort: UInt16 = 40000
    var failMedia = false
    var now = 0.0

    static let context = SIPGatewayContext(
        publicAddress: IPAddress("203.0.113.7")!, publicPort: 5060,
        insideAddress: IPAddress("10.0.0.1")!, insidePort: 5060,
        upstream: Endpoint("10.0.0.6:5060")!)
    static let phone = SIPFlow(transport: .udp, remote: Endpoint("198.51.100.20:31000")!)
    static let pbx = SIPFlow(transport: .udp, remote: Endpoint("10.0.0.6:5060")!)

    init(context: SIPGatewayContext = Self.context, limits: SIPLimits = .init()) {
        machine = SIPGatewayStateMachine(context: context, limits: limits)
    }

    mutating func fromPhone(_ text: String, flow: SIPFlow = Self.phone) { feed(text, flow, .outside) }
    mutating func fromPBX(_ text: String, flow: SIPFlow = Self.pbx) { feed(text, flow, .inside) }

    mutating func feed(_ text: String, _ flow: SIPFlow, _ side: SIPSide) {
        machine.receive(ByteBuffer(string: text), from: flow, side: side, now: now)
        drain()
    }

    mutating func drain() {
        while let action = machine.nextAction() {
            switch action {
            case .send(let bytes, let flow):
                sent.append((String(buffer: bytes), flow))
            case .openMedia(let request):
                opened.append(request)
                if failMedia {
                    machine.mediaFailed(id: request.id, reason: "port pool exhausted")
                } else {
                    machine.mediaOpened(id: request.id, outsidePort: nextPort, insidePort: nextPort + 2)
                    nextPort += 4
                }
            case .updateMedia(let id, _, _, _, _):
                updated.append(id)
            case .closeMedia(let id):
                closed.append(id)
            case .report(let event):
                events.append(event)
            }
        }
    }

    /// The last message sent, and where.
    var last: (text: String, to: SIPFlow)? { sent.last }
}

/// SIP messages shaped like what SIPp and common phones send.
enum SIPSamples {
    static func sdp(_ address: String, _ port: Int) -> String {
        "v=0\r\no=user1 53655765 2353687637 IN IP4 \(address)\r\ns=-\r\nc=IN IP4 \(address)\r\nt=0 0\r\n"
            + "m=audio \(port) RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
    }

    static func invite(callID: String = "call-1", via: String = "SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-1;rport",
                       contact: String = "<sip:alice@192.168.1.20:5062>", maxForwards: Int = 70,
                       uri: String = "sip:bob@203.0.113.7:5060") -> String {
        let body = sdp("192.168.1.20", 18000)
        return "INVITE \(uri) SIP/2.0\r\nVia: \(via)\r\nMax-Forwards: \(maxForwards)\r\n"
            + "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: \(callID)\r\n"
            + "CSeq: 1 INVITE\r\nContact: \(contact)\r\nContent-Type: application/sdp\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
    }

    /// A response to `request` (its Via lines copied), as the PBX or the phone would answer.
    static func response(_ code: Int, _ reason: String, to request: String, cseq: String = "1 INVITE",
                         contact: String? = "<sip:bob@10.0.0.6:5060>", sdpFrom: (String, Int)? = nil,
                         toTag: String = "b1", callID: String = "call-1") -> String {
        let vias = request.components(separatedBy: "\r\n").filter { $0.hasPrefix("Via:") || $0.hasPrefix("v:") }
        let body = sdpFrom.map { sdp($0.0, $0.1) } ?? ""
        var text = "SIP/2.0 \(code) \(reason)\r\n" + vias.map { $0 + "\r\n" }.joined()
        text += "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=\(toTag)\r\nCall-ID: \(callID)\r\n"
        text += "CSeq: \(cseq)\r\n"
        if let contact { text += "Contact: \(contact)\r\n" }
        if !body.isEmpty { text += "Content-Type: application/sdp\r\n" }
        return text + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
    }
}
