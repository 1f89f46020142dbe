import AlgateRewrite
import Foundation
import Testing

extension FTPIntegration {
    /// Nothing of the inside network reaches the client in a reply: real servers' STAT output and passive ports
    /// below 1024, and, from a scripted server, the replies no real server sends on purpose.
    @Suite("FTP replies carry nothing of the inside")
    struct FTPReplyLeakTests {
        /// The gateway of these tests listens on 127.0.0.4 and announces it; it reaches the servers on 127.0.0.2
        /// from its inside address (127.0.0.1, the kernel's choice), which the servers see as their client.
        static func outsideOptions(pool: Int = 10) -> GatewayHarness.Options {
            var options = GatewayHarness.Options(pool: LoopbackPorts.block(pool))
            options.listen = "127.0.0.4:0"
            options.publicAddress = "127.0.0.4"
            return options
        }

        /// The server's address and the gateway's (or a relay's) towards it.
        static let insideAddresses = ["127.0.0.1", "127.0.0.2"]

        /// The gateway's inside address of its one session, from its log.
        static func insideAddress(_ gateway: GatewayHarness) -> String? {
            gateway.log.lines("session start").first.flatMap { logField("inside-address", in: $0) }
        }

        /// STAT names the server's client: through a plain relay the client learns the inside address.
        @Test("STAT through the gateway shows the client no inside address", arguments: ServerKind.allCases)
        func statIsMasked(_ kind: ServerKind) async throws {
            try await Scratch.with("stat-\(kind)") { scratch in
                try await kind.with(on: "127.0.0.2", in: scratch) { server in
                    try await SocatRelay.with(listen: "127.0.0.4", upstream: server.endpoint, in: scratch) { relay in
                        let control = try await RawFTPConnection.connect(to: relay)
                        try await withCleanup {
                            try await control.login()
                            let stat = try await control.command("STAT")
                            // vsftpd names its client (socat, from 127.0.0.1), pyftpdlib itself (127.0.0.2).
                            let named = Self.insideAddresses.filter { stat.text.contains($0) }
                            #expect(stat.code == 211 && !named.isEmpty, "\(stat)")
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                    }
                    try await GatewayHarness.with(upstream: server.endpoint, Self.outsideOptions()) { gateway in
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                        try await withCleanup {
                            try await control.login()
                            let stat = try await control.command("STAT")
                            let inside = try #require(Self.insideAddress(gateway), "\(gateway.log.tail())")
                            #expect(inside == "127.0.0.1")
                            #expect(stat.code == 211, "\(stat)")
                            let named = Self.insideAddresses.filter { stat.text.contains($0) }
                            #expect(named.isEmpty && stat.text.contains("127.0.0.4"), "\(stat)")
                            let masked = gateway.log.count("masked inside address in a reply")
                            #expect(masked >= 1, "\(gateway.log.tail())")
                            // The session goes on, and a PASV is still rewritten to a pinhole.
                            let pasv = try await control.command("PASV")
                            let data = try #require(pasv.passiveEndpoint, "\(pasv)")
                            #expect("\(data.address)" == "127.0.0.4" && gateway.isPoolPort(data.port), "\(pasv)")
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                    }
                }
            }
        }

        /// With allow-privileged-ports the same reply opens a pinhole that carries the file. pyftpdlib only:
        /// vsftpd does not offer a passive port below 1024 (given `pasv_min_port=900`, it took one above 50000).
        @Test("A passive reply naming a server port below 1024 gets 425 and opens nothing")
        func privilegedPassivePort() async throws {
            let kind = ServerKind.pyftpdlib
            let low = try LoopbackPorts.privileged()
            try await Scratch.with("privileged-pasv-\(kind)") { scratch in
                try await kind.with(on: "127.0.0.2", in: scratch, passiveRange: low...low) { server in
                    let source = server.downloadDirectory.appendingPathComponent("low.bin")
                    try await Command.randomFile(source, bytes: 256 * 1024)
                    try await GatewayHarness.with(upstream: server.endpoint, .init(pool: LoopbackPorts.block(10))) {
                        gateway in
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                        try await withCleanup {
                            try await control.login()
                            let pasv = try await control.command("PASV")
                            #expect(pasv.code == 425 && pasv.text.contains("port \(low), below 1024"), "\(pasv)")
                            let epsv = try await control.command("EPSV")
                            #expect(epsv.code == 425 && epsv.text.contains("port \(low), below 1024"), "\(epsv)")
                            #expect(try await control.command("NOOP").code == 200)
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                        let refusals = gateway.log.lines("passive reply answered with 425")
                        let named = refusals.filter { logField("reason", in: $0) == "port \(low) is below 1024" }
                        #expect(named.count == 2, "\(gateway.log.tail())")
                        #expect(gateway.log.count("pinhole open") == 0, "\(gateway.log.tail())")
                        #expect(gateway.backend.openCount == 0)
                    }

                    var options = GatewayHarness.Options(pool: LoopbackPorts.block(10))
                    options.allowPrivilegedPorts = true
                    try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                        try await withCleanup {
                            try await control.login()
                            #expect(try await control.command("TYPE I").code == 200)
                            let pasv = try await control.command("PASV")
                            let data = try #require(pasv.passiveEndpoint, "\(pasv)")
                            #expect(gateway.isPoolPort(data.port), "\(pasv)")
                            async let received = RawDataConnection.receiveAll(from: data, source: "127.0.0.1")
                            let retr = try await control.command("RETR pub/low.bin")
                            #expect(retr.code == 150 || retr.code == 125, "\(retr)")
                            let outcome = try await received
                            #expect(outcome.error == nil, "\(outcome.error ?? "")")
                            let done = try await control.readReply()
                            #expect(done.code == 226, "\(done)")
                            let file = scratch.appendingPathComponent("low-received.bin")
                            try Data(outcome.bytes).write(to: file)
                            #expect(try await Command.sha256(file) == Command.sha256(source))
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                        let target = gateway.log.lines("pinhole open").first.flatMap { logField("target", in: $0) }
                        #expect(target == "127.0.0.2:\(low)", "\(gateway.log.tail())")
                    }
                }
            }
        }

        /// A server that answers NOOP twice (the second a 227), PASV twice, and a PORT with a 500 and a 227.
        static let strayPassiveReplies: @Sendable (String) -> [String] = { line in
            switch line {
            case "USER anonymous": ["230 Logged in."]
            case "NOOP": ["200 NOOP ok.", "227 Entering Passive Mode (127,0,0,3,195,80)."]
            case "PASV": ["227 Entering Passive Mode (127,0,0,3,195,81).", "227 Entering Passive Mode (127,0,0,3,195,82)."]
            case let port where port.hasPrefix("PORT "):
                ["500 Illegal PORT command.", "227 Entering Passive Mode (127,0,0,3,195,83)."]
            case "QUIT": ["221 Goodbye."]
            default: ["502 Command not implemented."]
            }
        }

        /// A 227 nobody asked for, a second 227 to one PASV and a 227 after a PORT the server refused.
        @Test("Stray 227 replies reach the client masked and open nothing")
        func strayPassiveRepliesAreMasked() async throws {
            try await Scratch.with("stray-227") { scratch in
                try await ScriptedFTPServer.with(script: Self.strayPassiveReplies) { server in
                    // Without an ALG the server's address goes through.
                    try await SocatRelay.with(listen: "127.0.0.4", upstream: server.endpoint, in: scratch) { relay in
                        let control = try await RawFTPConnection.connect(to: relay)
                        try await withCleanup {
                            try await control.login()
                            #expect(try await control.command("NOOP").code == 200)
                            let stray = try await control.readReply()
                            #expect(stray.text.contains("127,0,0,3,195,80"), "\(stray)")
                        } cleanup: {
                            await control.close()
                        }
                    }
                    try await GatewayHarness.with(upstream: server.endpoint, Self.outsideOptions()) { gateway in
                        // From 127.0.0.1, the address the PORT below names.
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint, from: "127.0.0.1")
                        var replies: [FTPReply] = []
                        try await withCleanup {
                            try await control.login()
                            replies.append(try await control.command("NOOP"))
                            replies.append(try await control.readReply())
                            replies.append(try await control.command("PASV"))
                            replies.append(try await control.readReply())
                            replies.append(try await control.command("PORT 127,0,0,1,200,10"))
                            replies.append(try await control.readReply())
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                        let texts = replies.map(\.text)
                        let pinhole = replies[2].passiveEndpoint
                        #expect(pinhole.map { "\($0.address)" == "127.0.0.4" && gateway.isPoolPort($0.port) } == true,
                                "\(texts)")
                        #expect(texts[0] == "200 NOOP ok.")
                        #expect(texts[1] == "227 Entering Passive Mode (127,0,0,4,0,0).")
                        #expect(texts[3] == "227 Entering Passive Mode (127,0,0,4,0,0).")
                        #expect(texts[4] == "500 Illegal PORT command.")
                        #expect(texts[5] == "227 Entering Passive Mode (127,0,0,4,0,0).")
                        let leaked = texts.filter { $0.contains("127,0,0,3") || $0.contains("127.0.0.3") }
                        #expect(leaked.isEmpty, "\(texts)")
                        let passive = gateway.log.lines("pinhole open").filter { logField("purpose", in: $0) == "passive" }
                        #expect(passive.count == 1, "\(gateway.log.tail())")
                        #expect(gateway.log.count("masked inside address in a reply") == 3, "\(gateway.log.tail())")
                        // The server got the PASV and the PORT (rewritten to the gateway's inside address).
                        let port = server.commands.first { $0.hasPrefix("PORT ") }
                        #expect(port?.hasPrefix("PORT 127,0,0,1,") == true, "\(server.commands)")
                    }
                }
            }
        }

        @Test("Every line of a multi-line 227 reaches the client clean; only its first address opens a pinhole")
        func multilinePassiveReplyIsMasked() async throws {
            try await ScriptedFTPServer.with(script: { line in
                switch line {
                case "USER anonymous": ["230 Logged in."]
                case "PASV": ["227-Entering Passive Mode (127,0,0,3,195,80)",
                              " or try 127,0,0,3,195,81 at 127.0.0.3 or 127.0.0.2",
                              "227 OK (|||50002|)"]
                default: ["221 Goodbye."]
                }
            }) { server in
                try await GatewayHarness.with(upstream: server.endpoint, Self.outsideOptions()) { gateway in
                    let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                    try await withCleanup {
                        try await control.login()
                        let pasv = try await control.command("PASV")
                        let first = FTPReply(code: pasv.code, lines: Array(pasv.lines.prefix(1)))
                        let data = try #require(first.passiveEndpoint, "\(pasv)")
                        #expect(gateway.isPoolPort(data.port), "\(pasv)")
                        #expect(pasv.lines.count == 3, "\(pasv)")
                        #expect(pasv.lines.first == "227-Entering Passive Mode (127,0,0,4,\(data.port >> 8),\(data.port & 255))")
                        #expect(Array(pasv.lines.dropFirst()) == [" or try 127,0,0,4,0,0 at 127.0.0.4 or 127.0.0.4",
                                                                  "227 OK (|||0|)"])
                        _ = try? await control.command("QUIT")
                    } cleanup: {
                        await control.close()
                    }
                    #expect(gateway.log.count("pinhole open") == 1, "\(gateway.log.tail())")
                }
            }
        }

        @Test("A 227 as long as max-line-length is rewritten within the limit")
        func longPassiveReplyStaysWithinTheLimit() async throws {
            // 510 bytes and CR LF: exactly the limit; the gateway's address and pool port are longer than the
            // ones they replace (port 1025 is 4,1).
            let head = "227 Entering Passive Mode (10,0,0,5,4,1) "
            // The rewrite grows the line by 3 to 5 bytes (the pool port varies): the last word goes, whole.
            let long = head + String(repeating: "x", count: 510 - head.utf8.count - 15) + " last endofline"
            try await ScriptedFTPServer.with(script: { line in
                switch line {
                case "USER anonymous": ["230 Logged in."]
                case "PASV": [long]
                default: ["221 Goodbye."]
                }
            }) { server in
                var options = Self.outsideOptions()
                options.maxLineLength = 512
                try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                    let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                    try await withCleanup {
                        try await control.login()
                        let pasv = try await control.command("PASV")
                        let data = try #require(pasv.passiveEndpoint, "\(pasv)")
                        #expect(gateway.isPoolPort(data.port), "\(pasv)")
                        let sent = try #require(pasv.lines.first)
                        #expect(sent.utf8.count + 2 <= 512, "\(sent.utf8.count) bytes")
                        #expect(sent.hasPrefix("227 Entering Passive Mode (127,0,0,4,") && sent.hasSuffix(" last "),
                                "\(sent)")
                        _ = try? await control.command("QUIT")
                    } cleanup: {
                        await control.close()
                    }
                    #expect(gateway.log.count("reply text shortened to fit max-line-length") == 1,
                            "\(gateway.log.tail())")
                }
            }
        }
    }
}
