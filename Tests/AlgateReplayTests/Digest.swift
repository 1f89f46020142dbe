import AlgateReplay
import Foundation

/// What two replays of the same sessions must agree on: every message, rewrite, pinhole, error and data-flow
/// verdict, without frame numbers, times and notes (which differ between a clean capture and a reordered or
/// duplicated one), and with the engine's random branch and contact tokens masked.
struct Digest: Equatable, CustomStringConvertible {
    var sessions: [String]

    init(_ report: ReplayReport) {
        sessions = report.sessions.map { session in
            var lines = ["\(session.protocol) \(session.transport) \(session.client) \(session.server) "
                + session.detectedBy]
            lines += session.messages.map { "\($0.from): \($0.text) (\($0.bytes) bytes)" }
            lines += session.rewrites.map {
                "rewrite of \(session.messages[$0.message].text): \($0.before) -> \($0.after)"
            }
            lines += session.pinholes.map {
                "pinhole \($0.id) \($0.kind) \($0.ports) admits \($0.admits) to \($0.relaysTo) closed \($0.closed)"
            }
            lines += session.errors.map { "error: \($0.problem); \($0.action)" }
            let flows = session.dataFlows
            lines.append("flows \(flows.observed)/\(flows.predicted)/\(flows.covered)")
            lines += session.flows.map {
                "\($0.kind) \($0.from) -> \($0.to) covered by \($0.coveredBy.map(String.init) ?? "-")"
            }
            return Digest.masked(lines.joined(separator: "\n"))
        }
    }

    /// Masks what the SIP engine derives from a random salt: its Via branches and contact tokens.
    static func masked(_ text: String) -> String {
        var out = text
        for pattern in ["z9hG4bK-ag[0-9a-z]+", "algate=[0-9a-z]+"] {
            out = out.replacingOccurrences(of: pattern, with: "<masked>", options: .regularExpression)
        }
        return out
    }

    var description: String { sessions.joined(separator: "\n---\n") }
}
