import AlgatePolicy
import AlgateRewrite
import NIOCore
import Testing

@Suite struct PolicyEngineTests {
    func rule(_ action: PolicyRule.Action, _ application: PolicyRule.Application, _ field: PolicyRule.Field,
              _ pattern: String, sources: [String] = [], response: PolicyRule.Response = .reply(403)) throws -> PolicyRule {
        PolicyRule(name: "\(action)-\(field)", action: action, application: application, field: field,
                   pattern: try PolicyPattern(pattern), sources: sources.compactMap(CIDR.init), response: response)
    }

    func invite(userAgent: String = "Linphone/5.0", uri: String = "sip:bob@203.0.113.7") throws -> SIPMessage {
        try SIPMessage.parse(ByteBuffer(string: "INVITE \(uri) SIP/2.0\r\nv: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-1\r\n"
            + "Max-Forwards: 70\r\nf: <sip:alice@example.com>;tag=1\r\nt: <sip:bob@example.com>\r\ni: c1\r\n"
            + "CSeq: 1 INVITE\r\nUser-Agent: \(userAgent)\r\nX-Custom: hello world\r\nContent-Length: 0\r\n\r\n"))
    }

    let phone = IPAddress("198.51.100.20")!

    @Test(arguments: [
        (PolicyRule.Field.sipMethod, "^INVITE$"),
        (.sipRequestURI, "^sip:bob@"),
        (.sipHeader("from"), "alice@example\\.com"),      // compact f: is found
        (.sipHeader("to"), "bob@"),
        (.sipHeader("user-agent"), "(?i)linphone"),
        (.sipHeader("x-custom"), "hello"),
    ])
    func everySIPFieldCanDeny(field: PolicyRule.Field, pattern: String) throws {
        let engine = PolicyEngine(rules: [try rule(.deny, .sip, field, pattern)])
        #expect(engine.evaluate(try invite(), from: phone).deniedBy?.field == field)
        let other = PolicyEngine(rules: [try rule(.deny, .sip, field, "^nothing-like-it$")])
        #expect(other.evaluate(try invite(), from: phone).isAllowed)
    }

    @Test func firstMatchWinsAndLogRulesGoOn() throws {
        let engine = PolicyEngine(rules: [
            try rule(.log, .sip, .sipHeader("user-agent"), "friendly"),
            try rule(.allow, .sip, .sipMethod, "^INVITE$", sources: ["198.51.100.0/24"]),
            try rule(.deny, .sip, .sipHeader("user-agent"), "friendly-scanner"),
        ])
        let fromTrusted = engine.evaluate(try invite(userAgent: "friendly-scanner"), from: phone)
        #expect(fromTrusted.isAllowed)
        #expect(fromTrusted.logged.count == 1)
        let fromElsewhere = engine.evaluate(try invite(userAgent: "friendly-scanner"), from: IPAddress("192.0.2.9")!)
        #expect(fromElsewhere.deniedBy?.action == .deny)
        #expect(fromElsewhere.logged.count == 1)
    }

    @Test func rulesOfTheOtherProtocolDoNotApply() throws {
        let engine = PolicyEngine(rules: [try rule(.deny, .ftp, .ftpVerb, ".*")])
        #expect(engine.evaluate(try invite(), from: phone).isAllowed)
    }

    @Test func ftpVerbArgumentAndUser() throws {
        let engine = PolicyEngine(rules: [
            try rule(.deny, .ftp, .ftpVerb, "(?i)^SITE$", response: .reply(550)),
            try rule(.deny, .ftp, .ftpUser, "^(root|admin)$", response: .reply(530)),
            try rule(.deny, .ftp, .ftpArgument, "\\.\\./"),
        ])
        func verdict(_ line: String, user: String? = nil) -> PolicyEngine.Verdict {
            engine.evaluate(ftpCommand: ByteBuffer(string: line), user: user.map { ByteBuffer(string: $0) }, from: phone)
        }
        #expect(verdict("site chmod 777 x\r\n").deniedBy?.response == .reply(550))
        #expect(verdict("RETR f\r\n", user: "root").deniedBy?.response == .reply(530))
        #expect(verdict("CWD ../../etc\r\n").deniedBy?.field == .ftpArgument)
        #expect(verdict("RETR f\r\n", user: "anonymous").isAllowed)
        #expect(verdict("SITEX\r\n").isAllowed)
    }

    @Test func aLimitHitCountsAsNoMatchAndIsReported() throws {
        let catastrophic = PolicyRule(name: "slow", action: .deny, application: .sip, field: .sipHeader("user-agent"),
                                      pattern: try PolicyPattern("^(a+)+$", matchLimit: 5_000), response: .drop)
        let engine = PolicyEngine(rules: [catastrophic])
        let verdict = engine.evaluate(try invite(userAgent: String(repeating: "a", count: 4_000) + "!"), from: phone)
        #expect(verdict.isAllowed)
        #expect(verdict.limitExceeded == [catastrophic])
    }

    @Test func cidrs() {
        #expect(CIDR("10.0.0.0/8")?.contains(IPAddress("10.200.1.1")!) == true)
        #expect(CIDR("10.0.0.0/8")?.contains(IPAddress("11.0.0.1")!) == false)
        #expect(CIDR("10.0.0.0/8")?.contains(IPAddress("::ffff:10.1.2.3")!) == true)
        #expect(CIDR("2001:db8::/32")?.contains(IPAddress("2001:db8:ffff::1")!) == true)
        #expect(CIDR("2001:db8::/32")?.contains(IPAddress("2001:db9::1")!) == false)
        #expect(CIDR("0.0.0.0/0")?.contains(IPAddress("192.0.2.1")!) == true)
        #expect(CIDR("192.0.2.1")?.prefix == 32)
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("10.0.0.0/x") == nil)
        #expect(CIDR("example.com/8") == nil)
    }
}
