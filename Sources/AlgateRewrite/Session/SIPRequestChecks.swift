/// The checks a request must pass before the gateway routes it, beyond what ``SIPMessage/parse(_:limits:)`` checks.
extension SIPGatewayStateMachine {
    /// What makes a request that parsed unfit to route: the fields routing and registration read must be what
    /// they say (RFC 3261 8.1.1.3: From carries a tag; 20.19: Expires is delta-seconds). CSeq, Max-Forwards and
    /// Content-Length are checked by the parser.
    static func routingProblem(_ message: SIPMessage) -> String? {
        if message.from.tag?.isEmpty ?? true { return "From has no tag" }
        for field in message.headers where field.name == .expires && !isDeltaSeconds(message.text(field.valueRange)) {
            return "malformed Expires"
        }
        for contact in message.contacts {
            if let value = contact.parameter(named: "expires").map({ $0.value ?? "" }), !isDeltaSeconds(value) {
                return "malformed Contact expires"
            }
        }
        return nil
    }

    /// 1 to 10 digits (RFC 3261 25.1 delta-seconds, with a bound so that it fits).
    static func isDeltaSeconds(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 10 && text.utf8.allSatisfy { ASCII.isDigit($0) }
    }

    /// Call-ID and top Via branch: what an INVITE shares with its CANCEL and its non-2xx ACK (RFC 3261 9.1, 17.1.1.3).
    static func transactionKey(_ message: SIPMessage) -> String {
        message.callID + "|" + (message.topVia.branch ?? "")
    }
}
