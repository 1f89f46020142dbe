public import NIOCore

/// What the gateway sends when it must not pass on a response (its SDP cannot be rewritten): a `500` to the
/// party that asked, in place of the response, and, when the response was a 2xx to an INVITE (the callee thinks
/// the call is up), an ACK and a BYE to the callee, so that no half-call stays up.
///
/// The ACK and BYE are the ones the caller would send (RFC 3261 13.2.2.4, 15): to the callee's Contact, with the
/// route set the callee's side recorded (the 2xx's Record-Route entries above the gateway's own, in reverse), From
/// and To of the dialog, the INVITE's CSeq number (ACK) and the next one (BYE). Their Via is the gateway's own,
/// with a branch marked ``ownBranchMarker`` so that the callee's answers end at the gateway.
public enum SIPDialogTeardown {
    /// Part of the branch of every request the gateway originates itself.
    static let ownBranchMarker = ".own"

    /// A response of `code` in place of `response`, for the next hop back: its Via stack without the gateway's own
    /// (the top one), its From, To, Call-ID and CSeq.
    public static func replacement(for response: SIPMessage, code: Int, reason: String) -> ByteBuffer? {
        guard !response.isRequest, response.vias.count > 1, let cseq = response.cseq else { return nil }
        return response.bytes.withUnsafeReadableBytes { raw -> ByteBuffer in
            var out = Array("SIP/2.0 \(code) \(reason)\r\n".utf8)
            for via in response.vias.dropFirst() {
                out.append(contentsOf: "Via: ".utf8)
                SIPResponseBuilder.appendUnfolded(raw, via.range, to: &out)
                out.append(contentsOf: [ASCII.cr, ASCII.lf])
            }
            appendDialogFields(response, raw, cseq: "\(cseq.number) \(cseq.method)", to: &out)
            out.append(contentsOf: "Content-Length: 0\r\n\r\n".utf8)
            return ByteBuffer(bytes: out)
        }
    }

    /// The ACK and the BYE that end the dialog a 2xx to an INVITE set up, sent by the gateway (Via `via`, a
    /// transport token and host:port) to the callee; nil when the 2xx has no Contact to send them to.
    public static func ackAndBye(for response: SIPMessage, via: [UInt8], branchSeed: String,
                                 isOwn: (SIPNameAddress) -> Bool) -> (ack: ByteBuffer, bye: ByteBuffer)? {
        guard let cseq = response.cseq, let contact = response.contacts.first else { return nil }
        return response.bytes.withUnsafeReadableBytes { raw -> (ByteBuffer, ByteBuffer) in
            // The callee's side of the route set: the entries it (and the proxies on its side) recorded, which
            // stand above the gateway's own in the response, nearest the callee first; the request visits them
            // in the reverse order.
            let recorded = response.recordRoutes
            let calleeSide = recorded.firstIndex(where: isOwn).map { Array(recorded[..<$0]) } ?? recorded
            var routes: [UInt8] = []
            for route in calleeSide.reversed() {
                routes.append(contentsOf: "Route: ".utf8)
                SIPResponseBuilder.appendUnfolded(raw, route.range, to: &routes)
                routes.append(contentsOf: [ASCII.cr, ASCII.lf])
            }
            func request(_ method: String, number: UInt32) -> ByteBuffer {
                var out = Array("\(method) ".utf8)
                out.append(contentsOf: raw[contact.uriRange])
                out.append(contentsOf: " SIP/2.0\r\nVia: ".utf8)
                out.append(contentsOf: via)
                out.append(contentsOf: ";branch=\(SIPGatewayStateMachine.branchPrefix)\(branchSeed)\(ownBranchMarker)\(method.lowercased())\r\n".utf8)
                out.append(contentsOf: "Max-Forwards: 70\r\n".utf8)
                out.append(contentsOf: routes)
                appendDialogFields(response, raw, cseq: "\(number) \(method)", to: &out)
                out.append(contentsOf: "Content-Length: 0\r\n\r\n".utf8)
                return ByteBuffer(bytes: out)
            }
            return (request("ACK", number: cseq.number), request("BYE", number: cseq.number &+ 1))
        }
    }

    /// Whether a response answers a request the gateway originated (its top Via carries the marker).
    public static func answersOwnRequest(_ response: SIPMessage) -> Bool {
        response.topVia.branch?.contains(ownBranchMarker) ?? false
    }

    private static func appendDialogFields(_ message: SIPMessage, _ raw: UnsafeRawBufferPointer, cseq: String,
                                           to out: inout [UInt8]) {
        out.append(contentsOf: "From: ".utf8)
        SIPResponseBuilder.appendUnfolded(raw, message.from.range, to: &out)
        out.append(contentsOf: "\r\nTo: ".utf8)
        SIPResponseBuilder.appendUnfolded(raw, message.to.range, to: &out)
        out.append(contentsOf: "\r\nCall-ID: \(message.callID)\r\nCSeq: \(cseq)\r\n".utf8)
    }
}
