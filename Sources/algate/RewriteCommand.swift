import AlgateRewrite
import ArgumentParser
import NIOCore

/// `algate rewrite ftp`: runs a control-session transcript from stdin through the engine and prints what the
/// gateway would forward and which pinholes it would open.
struct RewriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Rewrite a control-session transcript read from stdin and print the result and the pinholes.",
        subcommands: [FTP.self])

    struct FTP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ftp",
            abstract: "Rewrite an FTP control transcript.",
            discussion: """
                Each input line is one control line. `C:` marks a line from the client, `S:` one from the server; \
                without a marker, a line that starts with three digits is a server reply and any other line a \
                client command. Output: `C->S` and `S->C` lines as the gateway would forward them, `  was:` under \
                a rewritten or replaced line, `pinhole` lines for what would open, `note` lines for what the \
                gateway would log.
                """)

        @Option(help: "The client's address (PORT/EPRT must name it).")
        var client = "192.0.2.10"

        @Option(help: "The server's address (where passive data connections go).")
        var server = "10.0.0.5"

        @Option(help: "The public address announced to the client in 227/228.")
        var publicAddress = "203.0.113.7"

        @Option(help: "The gateway's address on the server side, announced in PORT/EPRT.")
        var insideAddress = "10.0.0.1"

        @Option(help: "The first pinhole port handed out.")
        var firstPort: UInt16 = 40000

        @Flag(help: "Admit PORT/EPRT to ports below 1024.")
        var allowPrivilegedPorts = false

        func run() throws {
            guard let client = IPAddress(client), let server = IPAddress(server),
                  let publicAddress = IPAddress(publicAddress), let inside = IPAddress(insideAddress) else {
                throw UsageError(message: "rewrite ftp: --client, --server, --public-address and --inside-address "
                    + "take IP addresses")
            }
            var configuration = FTPSessionStateMachine.Configuration()
            configuration.allowPrivilegedPorts = allowPrivilegedPorts
            var run = FTPDryRun(
                context: FTPSessionContext(client: Endpoint(address: client, port: 50000),
                                           server: Endpoint(address: server, port: 21),
                                           publicAddress: publicAddress, insideAddress: inside),
                configuration: configuration, firstPort: firstPort)
            var printed = 0
            while let text = readLine(strippingNewline: true) {
                let (side, body) = Self.split(text)
                var line = ByteBuffer()
                line.writeString(String(body))
                line.writeBytes([ASCII.cr, ASCII.lf])
                run.feed(line, from: side)
                for entry in run.entries.dropFirst(printed) { print(Self.describe(entry)) }
                printed = run.entries.count
            }
        }

        static func split(_ text: String) -> (FTPSide, Substring) {
            var body = Substring(text)
            if body.hasSuffix("\r") { body = body.dropLast() }
            for (marker, side) in [("C:", FTPSide.client), ("S:", .server)] where body.hasPrefix(marker) {
                body = body.dropFirst(2)
                if body.hasPrefix(" ") { body = body.dropFirst() }
                return (side, body)
            }
            let isReply = body.utf8.prefix(3).count == 3 && body.utf8.prefix(3).allSatisfy(ASCII.isDigit)
            return (isReply ? .server : .client, body)
        }

        static func describe(_ entry: FTPDryRun.Entry) -> String {
            switch entry {
            case .forwarded(let bytes, let side, let original):
                let arrow = side == .server ? "C->S" : "S->C"
                var out = "\(arrow) \(Self.text(bytes))"
                if let original { out += "\n  was: \(Self.text(original))" }
                return out
            case .pinhole(let request, let port):
                let at = request.purpose == .passive ? "public port" : "inside port"
                return "pinhole \(request.id) \(request.purpose.rawValue): \(at) \(port) admits \(request.allowedPeer) "
                    + "-> \(request.target)"
            case .pinholeClosed(let id):
                return "pinhole \(id) closed"
            case .note(let text):
                return "note \(text)"
            }
        }

        static func text(_ buffer: ByteBuffer) -> String {
            var bytes = Array(buffer.readableBytesView)
            while let last = bytes.last, last == ASCII.lf || last == ASCII.cr { bytes.removeLast() }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
