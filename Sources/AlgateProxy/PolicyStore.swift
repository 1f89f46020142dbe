public import AlgatePolicy
import AlgateRewrite
public import Logging
import NIOCore
import Synchronization

/// The policy rules in force, shared by every listener; replaced whole on reload (SIGHUP), so a message is judged
/// by one rule set, old or new, never a mix.
public final class PolicyStore: Sendable {
    private let current: Mutex<PolicyEngine>
    private let logger: Logger

    public init(_ engine: PolicyEngine, logger: Logger) {
        self.current = Mutex(engine)
        self.logger = logger
    }

    /// The rules in force now.
    public var engine: PolicyEngine { current.withLock { $0 } }

    /// Puts a new rule set in force.
    public func replace(with engine: PolicyEngine) {
        current.withLock { $0 = engine }
    }

    /// Judges a SIP request; logs what matched.
    func admit(_ message: SIPMessage, from flow: SIPFlow) -> SIPAdmission {
        let verdict = engine.evaluate(message, from: flow.remote.address)
        report(verdict, what: "\(message.method ?? "?") from \(flow)")
        guard let rule = verdict.deniedBy else { return .admit }
        switch rule.response {
        case .drop: return .drop
        case .reply(let code): return .refuse(code: code, reason: code == 403 ? "Forbidden" : "Refused by policy")
        }
    }

    /// Judges an FTP command; logs what matched.
    func admit(ftpCommand line: ByteBuffer, user: ByteBuffer?, from client: IPAddress) -> FTPAdmission {
        let verdict = engine.evaluate(ftpCommand: line, user: user, from: client)
        report(verdict, what: "FTP command from \(client)")
        guard let rule = verdict.deniedBy else { return .admit }
        switch rule.response {
        case .reply(let code):
            return .refuse(reply: code == 530 ? "530 Not logged in: refused by policy."
                                              : "\(code) Refused by policy.")
        case .drop:
            return .refuse(reply: "550 Refused by policy.")
        }
    }

    private func report(_ verdict: PolicyEngine.Verdict, what: String) {
        for rule in verdict.logged {
            logger.notice("policy log rule matched", metadata: ["rule": "\(rule.name)", "message": "\(what)"])
        }
        for rule in verdict.limitExceeded {
            logger.warning("policy pattern hit its match limit; counted as no match",
                           metadata: ["rule": "\(rule.name)", "message": "\(what)"])
        }
        if let rule = verdict.deniedBy {
            logger.warning("policy denied", metadata: [
                "rule": "\(rule.name)", "field": "\(rule.field)", "pattern": "\(rule.pattern.source)", "message": "\(what)",
            ])
        }
    }
}
