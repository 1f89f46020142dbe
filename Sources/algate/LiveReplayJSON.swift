import AlgateReplay

/// `algate replay FILE --live --json`: the offline report, as `--json` prints it, with a `live` list added: per
/// session `session`, `protocol`, `result` (`matches`, `differs` or `skipped`), `reason` (why it was skipped),
/// `differences`, and the counts the text shows: `messages` (FTP lines, SIP messages), `rewrites`, `pinholes` (FTP
/// pinholes, SIP media relays) and `carried` (FTP data connections, SIP media flows carried both ways).
struct LiveReplayJSON: Encodable {
    struct Entry: Encodable {
        var session: Int
        var `protocol`: String
        var result: String
        var reason: String?
        var differences: [String]
        var messages: Int
        var rewrites: Int
        var pinholes: Int
        var carried: Int
    }

    private enum Key: String, CodingKey { case live }

    let report: ReplayReport
    let outcomes: [LiveReplay.Outcome]

    func encode(to encoder: any Encoder) throws {
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(outcomes.map { outcome in
            Entry(session: outcome.session, protocol: outcome.protocolName.lowercased(),
                  result: outcome.skipped != nil ? "skipped" : outcome.matched ? "matches" : "differs",
                  reason: outcome.skipped, differences: outcome.differences, messages: outcome.lines,
                  rewrites: outcome.rewrites, pinholes: outcome.pinholes, carried: outcome.transfers)
        }, forKey: .live)
    }
}
