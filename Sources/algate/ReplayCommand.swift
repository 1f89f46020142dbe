import AlgateReplay
import AlgateRewrite
import ArgumentParser
import Foundation

/// `algate replay FILE`: runs every FTP and SIP control session of a capture through the gateway's engine, offline,
/// and reports what it would rewrite, which pinholes it would open, what it would refuse, and whether the data
/// connections and media flows the capture holds fall into those pinholes.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay the FTP and SIP control sessions of a capture through the gateway's engine.",
        discussion: """
            FILE is a pcap or pcapng capture, optionally gzip-compressed, or - to read it from standard input \
            (Ethernet with VLAN tags, Linux cooked SLL/SLL2, raw IP, BSD/OpenBSD loopback; IPv4 and IPv6, fragments \
            reassembled; IP-in-IP, GRE, ERSPAN I/II/III and VXLAN (UDP 4789) tunnels decapsulated, what cannot be is \
            listed among the problems; TCP reassembled). FTP control sessions are found on port 21 or by a 220 \
            greeting, SIP on port 5060/5061 or by a SIP start line; a TCP connection captured without its handshake \
            is SIP when either direction has a line that starts a SIP message, FTP when its lines are FTP commands \
            one way and replies the other. Each session runs through the same engine the proxy uses, as if --side \
            were behind NAT with --public-address, and the report lists per session its messages, the rewrites \
            (before and after), the pinholes that would open, malformed or refused messages and what was done with \
            them, and the data-flow check: every data connection (FTP) or RTP/RTCP flow (SIP) of the capture should \
            fall into a predicted pinhole. Exit status: 0 when the capture was replayed (also when it holds no FTP or \
            SIP, or is truncated: the report says so), 2 when FILE is not a readable capture or an option is wrong. \
            With --live, each session is then also played through a gateway started in this process on loopback: the \
            capture's client side against it, a stand-in server answering in the captured order (addresses, PORT/EPRT \
            and 227/229, SIP Via, Contact and SDP c=/m= made to fit the live run), FTP data connections and SIP RTP \
            (both ways) carried through the pinholes and media relays; the live run must deliver every message, \
            rewrite the same ones, open as many pinholes or media relays and carry every covered data connection \
            (FTP) and every media relay whose both ends are known (SIP) intact, else the exit status is 1 (IPv6 SIP \
            sessions are played on IPv4 loopback, their addresses substituted). Sessions with refused or malformed \
            messages are listed as skipped by --live. With --json too, the report gets a "live" list: per session its \
            result (matches, differs, skipped), the differences, and the counts.
            """)

    @Argument(help: "The capture file (pcap or pcapng, optionally gzip-compressed); - for standard input.")
    var file: String

    @Option(help: "The public address of the side behind NAT.")
    var publicAddress = "203.0.113.7"

    @Option(help: ArgumentHelp("Which side of each session is behind NAT.", valueName: "client|server"))
    var side = "client"

    @Flag(help: "Print the report as JSON (per session: protocol, messages, rewrites, pinholes, errors, dataFlows; with --live also a live list).")
    var json = false

    @Flag(help: "Also replay each FTP and SIP session through a gateway started on loopback, and compare with the offline run.")
    var live = false

    func run() async throws {
        guard let address = IPAddress(publicAddress) else {
            throw UsageError(message: "replay: --public-address \(publicAddress): not an IPv4 or IPv6 address")
        }
        guard let nattedSide = ReplaySide(rawValue: side) else {
            throw UsageError(message: "replay: --side \(side): expected client or server")
        }
        let report: ReplayReport
        do {
            var settings = ReplaySettings(side: nattedSide, publicAddress: address)
            settings.keepsMessageBytes = live
            report = try CaptureReplayer.replay(path: file, settings: settings)
        } catch {
            throw UsageError(message: "replay: \(error.description)")
        }
        if report.truncated, let problem = report.problems.first {
            Algate.printError("algate: warning: \(problem)")
        }
        if live {
            if !json { print(ReplayReportFormatter.text(report), terminator: "") }
            let outcomes = await LiveReplay.run(report)
            if json {
                try printJSON(LiveReplayJSON(report: report, outcomes: outcomes))
            } else {
                print(LiveReplay.text(outcomes), terminator: "")
            }
            let differing = outcomes.filter { $0.skipped == nil && !$0.matched }.count
            if differing > 0 {
                throw RuntimeError(message: "replay --live: \(differing) session(s) differ from the offline replay")
            }
            return
        }
        if json {
            try printJSON(report)
        } else {
            print(ReplayReportFormatter.text(report), terminator: "")
        }
    }

    private func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw RuntimeError(message: "replay: cannot encode the report: \(error)")
        }
        print(String(decoding: data, as: UTF8.self))
    }
}
