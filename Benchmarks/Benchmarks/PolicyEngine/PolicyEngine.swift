// Benchmarks of the policy rules (AlgatePolicy's PolicyEngine on PCRE2): the cost of judging one SIP request
// with 1, 10 and 100 rules, against the SIP engine's own cost of rewriting the same request, in the same run.
//
// The rules are the worst case for evaluation: none of them matches, so every rule's pattern runs on its field
// (User-Agent, From, the method, the Request-URI in turn) and the message is allowed by default at the end.
// 1000 messages per measured iteration (scalingFactor .kilo): time and mallocs are per message.

import AlgatePolicy
import AlgateRewrite
import Benchmark
import NIOCore

private let context = SIPGatewayContext(
    publicAddress: IPAddress("203.0.113.7")!, publicPort: 5060,
    insideAddress: IPAddress("10.0.0.1")!, insidePort: 5060,
    upstream: Endpoint("10.0.0.6:5060")!)
private let phone = SIPFlow(transport: .udp, remote: Endpoint("198.51.100.20:31000")!)

private func invite(_ n: Int) -> ByteBuffer {
    let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n"
        + "m=audio 18000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
    let id = String(100_000_000 + n)
    return ByteBuffer(string: "INVITE sip:service@203.0.113.7:5060 SIP/2.0\r\n"
        + "Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-\(id);rport\r\n"
        + "From: sipp <sip:sipp@192.168.1.20:5062>;tag=\(id)\r\nTo: service <sip:service@203.0.113.7:5060>\r\n"
        + "Call-ID: \(id)@192.168.1.20\r\nCSeq: 1 INVITE\r\nContact: <sip:sipp@192.168.1.20:5062>\r\n"
        + "Max-Forwards: 70\r\nUser-Agent: Linphone/5.2.0 (belle-sip/5.2.0)\r\n"
        + "Content-Type: application/sdp\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n" + sdp)
}

/// `count` rules that match nothing in the INVITE, cycling over four fields.
private func rules(_ count: Int) -> PolicyEngine {
    let fields: [PolicyRule.Field] = [.sipHeader("user-agent"), .sipHeader("from"), .sipMethod, .sipRequestURI]
    return PolicyEngine(rules: (0..<count).map { index in
        let pattern = index % 4 == 2 ? "^(OPTIONS|REGISTER)-\(index)$" : "(?i)friendly-scanner-\(index)|sipvicious|sipcli"
        // The patterns are constants that compile; a benchmark has nothing useful to do if they did not.
        guard let compiled = try? PolicyPattern(pattern) else { preconditionFailure("pattern \(pattern) must compile") }
        return PolicyRule(name: "rule \(index)", action: .deny, application: .sip, field: fields[index % 4],
                          pattern: compiled, response: .reply(403))
    })
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 200)

    let messages = (0..<1000).map(invite)
    // Parsed once: the policy runs on the engine's parsed message, so parsing is not part of its cost.
    let parsed = messages.map { message -> SIPMessage in
        guard let parsed = try? SIPMessage.parse(message) else { preconditionFailure("the benchmark INVITE must parse") }
        return parsed
    }
    let source = IPAddress("198.51.100.20")!

    for count in [1, 10, 100] {
        let engine = rules(count)
        Benchmark("policy: judge one INVITE, \(count) rule(s)") { benchmark in
            for index in benchmark.scaledIterations {
                blackHole(engine.evaluate(parsed[index % parsed.count], from: source).isAllowed)
            }
        }
    }

    Benchmark("engine: rewrite the same INVITE (the baseline)") { benchmark in
        // A fresh engine per measured iteration, so its dialog table holds at most 1000 calls.
        var machine = SIPGatewayStateMachine(context: context)
        for index in benchmark.scaledIterations {
            machine.receive(messages[index % messages.count], from: phone, side: .outside, now: 0)
            while let action = machine.nextAction() {
                if case .openMedia(let request) = action {
                    machine.mediaOpened(id: request.id, outsidePort: 40000, insidePort: 40002)
                }
                blackHole(action)
            }
        }
    }
}
