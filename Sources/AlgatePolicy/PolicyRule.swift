public import AlgateRewrite

/// One `[[policy.allow]]`, `[[policy.deny]]` or `[[policy.log]]` rule: a pattern on one field of one protocol,
/// optionally only for some source networks.
public struct PolicyRule: Hashable, Sendable {
    public enum Action: String, Hashable, Sendable {
        /// Stop here and let the message through.
        case allow
        /// Stop here and refuse the message.
        case deny
        /// Log the match and go on to the next rule.
        case log
    }

    public enum Application: String, Hashable, Sendable {
        case sip
        case ftp
    }

    /// What part of a message the pattern is matched against.
    public enum Field: Hashable, Sendable, CustomStringConvertible {
        /// A SIP request's method.
        case sipMethod
        /// A SIP request's Request-URI.
        case sipRequestURI
        /// Every value of a SIP header, by its name (lower case; compact forms are found too).
        case sipHeader(String)
        /// An FTP command's verb.
        case ftpVerb
        /// An FTP command's argument.
        case ftpArgument
        /// The name the session logged in with (USER's argument), for every command of the session.
        case ftpUser

        public var description: String {
            switch self {
            case .sipMethod: "method"
            case .sipRequestURI: "request-uri"
            case .sipHeader(let name): "header \(name)"
            case .ftpVerb: "verb"
            case .ftpArgument: "argument"
            case .ftpUser: "user"
            }
        }
    }

    /// How a denied message is answered.
    public enum Response: Hashable, Sendable {
        /// A reply with this code (SIP 403, FTP 550 or 530 by default).
        case reply(Int)
        /// Nothing at all (SIP over UDP: a scanner learns nothing from silence).
        case drop
    }

    /// Where the rule stands in the configuration, for log lines: `policy.deny[0] (line 12)`.
    public var name: String
    public var action: Action
    public var application: Application
    public var field: Field
    public var pattern: PolicyPattern
    /// The rule applies only to sources in these networks; empty means every source.
    public var sources: [CIDR]
    public var response: Response

    public init(name: String, action: Action, application: Application, field: Field, pattern: PolicyPattern,
                sources: [CIDR] = [], response: Response) {
        self.name = name
        self.action = action
        self.application = application
        self.field = field
        self.pattern = pattern
        self.sources = sources
        self.response = response
    }

    public static func == (lhs: PolicyRule, rhs: PolicyRule) -> Bool {
        lhs.name == rhs.name && lhs.action == rhs.action && lhs.application == rhs.application && lhs.field == rhs.field
            && lhs.pattern.source == rhs.pattern.source && lhs.sources == rhs.sources && lhs.response == rhs.response
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(pattern.source)
    }
}
