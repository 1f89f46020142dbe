/// Renders a ``ReplayReport`` as text for people: per session a transcript, each message followed by what the
/// gateway would do with it (pinholes, rewrites, refusals), then the data-flow check.
public enum ReplayReportFormatter {
    /// The report as lines of text, ending in a newline.
    public static func text(_ report: ReplayReport) -> String {
        var out: [String] = []
        let ftp = report.sessions(.ftp).count
        let sip = report.sessions(.sip).count
        out.append("\(report.file): \(report.linkType)\(report.compressed ? ", gzip" : ""), \(report.frames) frame(s); "
            + "\(ftp) FTP session(s), \(sip) SIP session(s)")
        if !report.capture.decapsulated.isEmpty {
            out.append("tunnels decapsulated: " + Self.counts(report.capture.decapsulated))
        }
        for problem in report.problems { out.append("problem: \(problem)") }
        if report.sessions.isEmpty {
            out.append("no FTP or SIP control session in this capture (\(report.capture.tcpConnections) TCP "
                + "connection(s), \(report.capture.udpFlows) UDP flow(s)): nothing to replay")
            return out.joined(separator: "\n") + "\n"
        }
        out.append("replayed as if the \(report.side) were behind NAT with public address \(report.publicAddress)")
        for session in report.sessions {
            out.append("")
            out.append(contentsOf: lines(session))
        }
        let counts = report.sessions.reduce(into: (0, 0, 0)) { total, session in
            total.0 += session.dataFlows.observed
            total.1 += session.dataFlows.covered
            total.2 += session.errors.count
        }
        out.append("")
        out.append("total: \(report.sessions.count) session(s), \(counts.2) error(s); data flows observed \(counts.0), "
            + "covered \(counts.1)")
        return out.joined(separator: "\n") + "\n"
    }

    static func lines(_ session: ReplaySession) -> [String] {
        var out: [String] = []
        out.append("session \(session.id): \(session.protocol.rawValue.uppercased()) over "
            + "\(session.transport.uppercased()), client \(session.client), server \(session.server) "
            + "(detected by \(session.detectedBy))")
        out.append("  \(session.messages.count) message(s), \(session.rewrites.count) rewrite(s), "
            + "\(session.pinholes.count) pinhole(s), \(session.errors.count) error(s)")
        var rewrites: [Int: [ReplaySession.Rewrite]] = [:]
        for rewrite in session.rewrites { rewrites[rewrite.message, default: []].append(rewrite) }
        var pinholes: [Int: [ReplaySession.Pinhole]] = [:]
        for pinhole in session.pinholes { pinholes[pinhole.message, default: []].append(pinhole) }
        var errors: [Int: [ReplaySession.Problem]] = [:]
        var unplaced: [ReplaySession.Problem] = []
        for error in session.errors {
            if let message = error.message {
                errors[message, default: []].append(error)
            } else {
                unplaced.append(error)
            }
        }
        for (index, message) in session.messages.enumerated() {
            let arrow = message.from == "client" ? "C->S" : "S->C"
            let frame = "#\(message.frame)".paddedRight(to: 7)
            out.append("  \(frame) \(arrow) \(message.text)")
            for pinhole in pinholes[index] ?? [] { out.append("          " + describe(pinhole)) }
            for rewrite in rewrites[index] ?? [] {
                if session.protocol == .ftp {
                    out.append("          rewritten: \(rewrite.after)")
                } else {
                    out.append("          rewritten:")
                    for line in rewrite.before.split(separator: "\n", omittingEmptySubsequences: false)
                        where !rewrite.before.isEmpty {
                        out.append("            - \(line)")
                    }
                    for line in rewrite.after.split(separator: "\n", omittingEmptySubsequences: false)
                        where !rewrite.after.isEmpty {
                        out.append("            + \(line)")
                    }
                }
            }
            for error in errors[index] ?? [] { out.append("          error: \(error.problem); \(error.action)") }
        }
        for error in unplaced { out.append("  error: \(error.problem); \(error.action)") }
        for note in session.notes { out.append("  note: \(note)") }
        let flows = session.dataFlows
        out.append("  data flows: observed \(flows.observed), predicted \(flows.predicted), covered \(flows.covered)"
            + (flows.allCovered ? "" : "  <- NOT ALL COVERED"))
        for flow in session.flows {
            let verdict = flow.coveredBy.map { "covered by pinhole \($0)" } ?? "NOT COVERED"
            out.append("    frame \(flow.frame) \(flow.kind) \(flow.transport) \(flow.from) -> \(flow.to): \(verdict)")
        }
        return out
    }

    /// `GRE 3, VXLAN 1`: counts by name, in name order.
    static func counts(_ counts: [String: Int]) -> String {
        counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    static func describe(_ pinhole: ReplaySession.Pinhole) -> String {
        let ports = pinhole.ports.map(String.init).joined(separator: "/")
        let closed = pinhole.closed ? " (closed again)" : ""
        return "pinhole \(pinhole.id) \(pinhole.kind): port \(ports), admits \(pinhole.admits), relays to "
            + pinhole.relaysTo.joined(separator: ", ") + closed
    }
}

extension String {
    /// The string padded with spaces to `length` characters (never cut).
    func paddedRight(to length: Int) -> String {
        count >= length ? self : self + String(repeating: " ", count: length - count)
    }
}
