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
                without a marker, a line that starts with three digits is a server reply, a line inside a \
                multi-line reply (`ddd-` up to `ddd `) belongs to it, and any other line is a client command. Output: `C->S` and `S->C` lines as the gateway would forward them, `  was:` under \
                a rewritten or replaced line, `pinhole` lines for what would open, `note` lines for what the \
                gateway would log.

                The transcript may start anywhere: when its first line is not the server's greeting (120, 220 or \
                421), replies answer the commands from the first one on. A line longer than --max-line-length \
                (CR LF included) ends the session, as it does in the gateway.
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

        @Flag(help: "Admit PORT/EPRT to ports below 1024, and passive replies naming server ports below 1024.")
        var allowPrivilegedPorts = false

        @Option(help: "The longest control line, CR LF included (the listener's max-line-length, 512 to 1048576).")
        var maxLineLength = 4096

        /// The range `max-line-length` has in the configuration.
        static let maxLineLengthRange = 512...1_048_576

        func run() throws {
            guard let client = IPAddress(client), let server = IPAddress(server),
                  let publicAddress = IPAddress(publicAddress), let inside = IPAddress(insideAddress) else {
                throw UsageError(message: "rewrite ftp: --client, --server, --public-address and --inside-address "
                    + "take IP addresses")
            }
            guard Self.maxLineLengthRange.contains(maxLineLength) else {
                throw UsageError(message: "rewrite ftp: --max-line-length \(maxLineLength) must be between "
                    + "\(Self.maxLineLengthRange.lowerBound) and \(Self.maxLineLengthRange.upperBound)")
            }
            var configuration = FTPSessionStateMachine.Configuration()
            configuration.allowPrivilegedPorts = allowPrivilegedPorts
            configuration.maxLineLength = maxLineLength
            let context = FTPSessionContext(client: Endpoint(address: client, port: 50000),
                                            server: Endpoint(address: server, port: 21),
                                            publicAddress: publicAddress, insideAddress: inside)
            // Made at the first line, which tells whether the transcript starts with the greeting.
            var run: FTPDryRun?
            var printed = 0
            var openReply: Int?
            while let text = readLine(strippingNewline: true) {
                let (side, body) = Self.split(text, inReply: openReply != nil)
                if side == .server { openReply = Self.openReply(after: body, open: openReply) }
                var line = ByteBuffer()
                line.writeString(String(body))
                line.writeBytes([ASCII.cr, ASCII.lf])
                if run == nil {
                    configuration.expectsGreeting = side == .server && Self.isGreeting(body)
                    run = FTPDryRun(context: context, configuration: configuration, firstPort: firstPort)
                    if !configuration.expectsGreeting {
                        print("note the transcript starts after the greeting: replies answer commands from the first")
                    }
                }
                guard line.readableBytes <= maxLineLength else {
                    // The gateway's line decoder closes the session here, before the engine sees the line.
                    if side == .client { print("S->C 500 Command line too long; closing.") }
                    print("note session closed: \(side.rawValue) sent a line longer than \(maxLineLength) bytes")
                    return
                }
                run?.feed(line, from: side)
                let entries = run?.entries ?? []
                for entry in entries.dropFirst(printed) { print(Self.describe(entry)) }
                printed = entries.count
            }
        }

        /// A reply that may open a session (RFC 959 5.4): 120 (ready soon), 220 (ready) or 421 (not available).
        static func isGreeting(_ body: Substring) -> Bool {
            ["120", "220", "421"].contains { body.hasPrefix($0) }
        }

        /// The side a transcript line is from, and the line without its marker. `inReply`: a multi-line reply is
        /// open, so an unmarked line is one of its lines.
        static func split(_ text: String, inReply: Bool = false) -> (FTPSide, Substring) {
            var body = Substring(text)
            if body.hasSuffix("\r") { body = body.dropLast() }
            for (marker, side) in [("C:", FTPSide.client), ("S:", .server)] where body.hasPrefix(marker) {
                body = body.dropFirst(2)
                if body.hasPrefix(" ") { body = body.dropFirst() }
                return (side, body)
            }
            let isReply = inReply || body.utf8.prefix(3).count == 3 && body.utf8.prefix(3).allSatisfy(ASCII.isDigit)
            return (isReply ? .server : .client, body)
        }

        /// The code of the multi-line reply still open after the server line `body` (RFC 959 4.2), or nil.
        static func openReply(after body: Substring, open: Int?) -> Int? {
            let reply = Array(body.utf8).withUnsafeBytes { FTPReplyLine($0) }
            if let open { return reply.map { $0.code == open && !$0.opensMultiline } == true ? nil : open }
            return reply.flatMap { $0.opensMultiline ? $0.code : nil }
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
