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
                var outcome = Accumulated()
                switch field {
                case .sipMethod:
                    if case .request = message.startLine, let first = message.startLineRange.first {
                        var end = first
                        while end < message.startLineRange.upperBound, bytes[end] != ASCII.space { end += 1 }
                        outcome.add(body(UnsafeRawBufferPointer(rebasing: bytes[first..<end])))
                    }
                case .sipRequestURI:
                    if let range = message.requestURIRange {
                        outcome.add(body(UnsafeRawBufferPointer(rebasing: bytes[range])))
                    }
                case .sipHeader(let name):
                    for field in message.headers where field.matches(name, in: bytes) {
                        outcome.add(body(UnsafeRawBufferPointer(rebasing: bytes[field.valueRange])))
                        if outcome.matched { break }
                    }
                case .ftpVerb, .ftpArgument, .ftpUser:
                    break
                }
                return outcome
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
                    return Accumulated(body(UnsafeRawBufferPointer(rebasing: bytes[range])))
                }
            case .ftpUser:
                guard let user else { return Accumulated() }
                return user.withUnsafeReadableBytes { Accumulated(body($0)) }
            case .sipMethod, .sipRequestURI, .sipHeader:
                return Accumulated()
            }
        }
    }

    /// What the values of one field gave: any match, any limit hit.
    struct Accumulated {
        var matched = false
        var limitExceeded = false

        init() {}

        init(_ outcome: PolicyPattern.Outcome) {
            add(outcome)
        }

        mutating func add(_ outcome: PolicyPattern.Outcome) {
            switch outcome {
            case .match: matched = true
            case .limitExceeded: limitExceeded = true
            case .noMatch, .error: break
            }
        }
    }

    /// The shared loop: `match(field, body)` runs `body` (the rule's pattern) on each value of the field and
    /// folds the outcomes; no value means the rule does not apply.
    private func evaluate(_ proto: PolicyRule.Application, from source: IPAddress,
                          match: (PolicyRule.Field, (UnsafeRawBufferPointer) -> PolicyPattern.Outcome)
                              -> Accumulated) -> Verdict {
        var verdict = Verdict()
        for rule in rules where rule.application == proto {
            if !rule.sources.isEmpty, !rule.sources.contains(where: { $0.contains(source) }) { continue }
            let outcome = match(rule.field) { rule.pattern.match($0) }
            if outcome.limitExceeded { verdict.limitExceeded.append(rule) }
            guard outcome.matched else { continue }
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

extension SIPHeaderField {
    /// Whether this field's name is `name` (lower case, long form), compact forms included, without building
    /// Strings: the known headers by the kind the parser already gave the field, any other by its bytes.
    func matches(_ name: String, in bytes: UnsafeRawBufferPointer) -> Bool {
        let wanted = name.utf8.withContiguousStorageIfAvailable { SIPHeaderName(UnsafeRawBufferPointer($0)) }
            ?? Array(name.utf8).withUnsafeBytes { SIPHeaderName($0) }
        if wanted != .other { return self.name == wanted }
        let fieldName = UnsafeRawBufferPointer(rebasing: bytes[nameRange])
        return fieldName.count == name.utf8.count
            && zip(fieldName, name.utf8).allSatisfy { ASCII.lower($0) == $1 }
    }
}
