public import AlgateRewrite
public import NIOCore

/// Evaluates the policy rules against a message: first match wins, `log` rules log and go on, the default is allow.
///
/// Patterns run on the message's own bytes (no copies into Strings), each within its match limit; a limit hit
/// counts as no match and is reported.
public struct PolicyEngine: Hashable, Sendable {
    public var rules: [PolicyRule]

    public init(rules: [PolicyRule] = []) {
        self.rules = rules
    }

    /// The outcome of evaluating one message.
    public struct Verdict: Hashable, Sendable {
        /// The rule that denied the message; nil when it is allowed.
        public var deniedBy: PolicyRule?
        /// The `log` rules that matched.
        public var logged: [PolicyRule] = []
        /// Rules whose match hit the match or depth limit (counted as no match).
        public var limitExceeded: [PolicyRule] = []

        public var isAllowed: Bool { deniedBy == nil }
    }

    /// Evaluates the SIP rules against a request from `source`.
    public func evaluate(_ message: SIPMessage, from source: IPAddress) -> Verdict {
        evaluate(.sip, from: source) { field, body in
            message.bytes.withUnsafeReadableBytes { bytes in
                var outcomes: [PolicyPattern.Outcome] = []
                switch field {
                case .sipMethod:
                    if case .request = message.startLine, let first = message.startLineRange.first {
                        var end = first
                        while end < message.startLineRange.upperBound, bytes[end] != ASCII.space { end += 1 }
                        outcomes.append(body(UnsafeRawBufferPointer(rebasing: bytes[first..<end])))
                    }
                case .sipRequestURI:
                    if let range = message.requestURIRange {
                        outcomes.append(body(UnsafeRawBufferPointer(rebasing: bytes[range])))
                    }
                case .sipHeader(let name):
                    for field in message.fields(named: name) {
                        outcomes.append(body(UnsafeRawBufferPointer(rebasing: bytes[field.valueRange])))
                    }
                case .ftpVerb, .ftpArgument, .ftpUser:
                    break
                }
                return outcomes
            }
        }
    }

    /// Evaluates the FTP rules against a command line from `source`; `user` is the session's USER name so far.
    public func evaluate(ftpCommand line: ByteBuffer, user: ByteBuffer?, from source: IPAddress) -> Verdict {
        let command = line.withUnsafeReadableBytes { FTPCommandLine($0) }
        return evaluate(.ftp, from: source) { field, body in
            switch field {
            case .ftpVerb, .ftpArgument:
                return line.withUnsafeReadableBytes { bytes in
                    let range: Range<Int>
                    if field == .ftpArgument {
                        range = command.argument
                    } else {
                        var start = 0
                        while start + 1 < bytes.count, bytes[start] == ASCII.telnetIAC { start += 2 }
                        var end = start
                        while end < command.terminator.lowerBound, bytes[end] != ASCII.space { end += 1 }
                        range = start..<end
                    }
                    return [body(UnsafeRawBufferPointer(rebasing: bytes[range]))]
                }
            case .ftpUser:
                guard let user else { return [] }
                return user.withUnsafeReadableBytes { [body($0)] }
            case .sipMethod, .sipRequestURI, .sipHeader:
                return []
            }
        }
    }

    /// The shared loop: `match(field, body)` runs `body` (the rule's pattern) on each value of the field and
    /// returns the outcomes; no value means the rule does not apply.
    private func evaluate(_ proto: PolicyRule.Application, from source: IPAddress,
                          match: (PolicyRule.Field, (UnsafeRawBufferPointer) -> PolicyPattern.Outcome)
                              -> [PolicyPattern.Outcome]) -> Verdict {
        var verdict = Verdict()
        for rule in rules where rule.application == proto {
            if !rule.sources.isEmpty, !rule.sources.contains(where: { $0.contains(source) }) { continue }
            let outcomes = match(rule.field) { rule.pattern.match($0) }
            if outcomes.contains(.limitExceeded) { verdict.limitExceeded.append(rule) }
            guard outcomes.contains(.match) else { continue }
            switch rule.action {
            case .log: verdict.logged.append(rule)
            case .allow: return verdict
            case .deny:
                verdict.deniedBy = rule
                return verdict
            }
        }
        return verdict
    }
}
