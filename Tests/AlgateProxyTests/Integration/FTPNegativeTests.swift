import AlgateRewrite
import Foundation
import Testing

extension FTPIntegration {
    /// What must fail, and does: the same clients through a plain relay instead of the gateway, bounce attempts,
    /// strangers at a pinhole, an exhausted pool, an expired pinhole.
    @Suite("FTP negative cases")
    struct FTPNegativeTests {
        static let size = 1024 * 1024

        /// A transfer that must fail: the client exits non-zero and nothing of the file arrives intact.
        private static func expectFailure(_ transcript: ClientTranscript, _ what: String,
                                          sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(!transcript.result.succeeded, "\(what) should have failed: \(transcript)",
                    sourceLocation: sourceLocation)
            #expect(!transcript.result.timedOut, "\(what) should fail fast, not hang: \(transcript)",
                    sourceLocation: sourceLocation)
        }

        /// Whether connecting to `endpoint` from 127.0.0.1 fails (nothing listens there any more).
        private static func connectionRefused(_ endpoint: Endpoint) async -> Bool {
            do {
                _ = try await RawDataConnection.receiveAll(from: endpoint, source: "127.0.0.1", lifetime: .seconds(3))
                return false
            } catch {
                return true
            }
        }

        @Test("Through a plain relay, passive mode fails; through the gateway the same client works",
              arguments: ServerKind.allCases, [DataMode.pasv, .epsv])
        func plainRelayBreaksPassiveMode(_ kind: ServerKind, _ mode: DataMode) async throws {
            try await Scratch.with("relay-\(kind)-\(mode.verb)") { scratch in
                try await kind.with(on: "127.0.0.2", in: scratch) { server in
                    let source = server.downloadDirectory.appendingPathComponent("relay.bin")
                    try await Command.randomFile(source, bytes: Self.size)
                    try await SocatRelay.with(upstream: server.endpoint, in: scratch) { relay in
                        let transcript = try await ClientKind.curl.run(ClientTransfer(
                            client: .curl, mode: mode, direction: .download, target: relay,
                            remotePath: "pub/relay.bin", localFile: scratch.appendingPathComponent("relay-out.bin"),
                            scratch: scratch))
                        Self.expectFailure(transcript, "\(mode.verb) through socat")
                        #expect(transcript.dataVerbs.first == mode.verb, "\(transcript)")
                        if mode == .pasv {
                            // The server's own address reached the client unchanged, and nothing is there.
                            #expect(transcript.reply(227)?.contains("127,0,0,3") == true, "\(transcript)")
                            #expect(transcript.result.stderr.contains("127.0.0.3"), "\(transcript)")
                        } else {
                            // The server's port reached the client unchanged; it is not open on the relay's host.
                            let port = transcript.announcedDataPort?.port
                            #expect(port.map(server.passivePorts.contains) == true, "\(transcript)")
                        }
                    }
                    try await GatewayHarness.with(upstream: server.endpoint, .init(pool: LoopbackPorts.block(10))) {
                        gateway in
                        try await TransferCheck.run(.curl, mode, .download, bytes: Self.size, server: server,
                                                    gateway: gateway, scratch: scratch, publicAddress: "127.0.0.1")
                    }
                }
            }
        }

        @Test("PORT from a client on 127.0.0.5 fails through a plain relay and works through the gateway",
              arguments: ServerKind.allCases)
        func foreignActiveAddress(_ kind: ServerKind) async throws {
            try await Scratch.with("port-127.0.0.5-\(kind)") { scratch in
                try await kind.with(on: "127.0.0.2", in: scratch) { server in
                    let source = server.downloadDirectory.appendingPathComponent("active.bin")
                    try await Command.randomFile(source, bytes: Self.size)
                    try await SocatRelay.with(upstream: server.endpoint, in: scratch) { relay in
                        // The server sees the relay (127.0.0.1) as its control peer, and the PORT names 127.0.0.5.
                        let transcript = try await ClientKind.curl.run(ClientTransfer(
                            client: .curl, mode: .port, direction: .download, target: relay,
                            remotePath: "pub/active.bin", localFile: scratch.appendingPathComponent("relay-out.bin"),
                            scratch: scratch, interface: "127.0.0.5", activeAddress: "127.0.0.5"))
                        Self.expectFailure(transcript, "PORT 127.0.0.5 through socat")
                        let sentForeignPORT = transcript.commands.contains { $0.hasPrefix("PORT 127,0,0,5,") }
                        let refusal = transcript.replies.first { $0.hasPrefix("500") || $0.hasPrefix("501") }
                        #expect(sentForeignPORT, "\(transcript)")
                        #expect(refusal != nil, "the server should refuse the foreign PORT: \(transcript)")
                    }
                    try await GatewayHarness.with(upstream: server.endpoint, .init(pool: LoopbackPorts.block(10))) {
                        gateway in
                        let outcome = try await TransferCheck.run(
                            .curl, .port, .download, bytes: Self.size, server: server, gateway: gateway,
                            scratch: scratch, publicAddress: "127.0.0.1", name: "active-via-gateway",
                            interface: "127.0.0.5", activeAddress: "127.0.0.5")
                        let sentForeignPORT = outcome.transcript.commands.contains { $0.hasPrefix("PORT 127,0,0,5,") }
                        let rewrite = gateway.log.lines("rewrote").first { logField("from", in: $0) == "client" }
                        let original = rewrite.flatMap { logField("original", in: $0) } ?? "none"
                        let rewritten = rewrite.flatMap { logField("rewritten", in: $0) } ?? "none"
                        #expect(sentForeignPORT, "\(outcome.transcript)")
                        #expect(original.hasPrefix("PORT 127,0,0,5,"), "\(gateway.log.tail())")
                        #expect(rewritten.hasPrefix("PORT 127,0,0,1,"), "\(gateway.log.tail())")
                    }
                }
            }
        }

        @Test("PORT/EPRT naming a third host or a port below 1024 is refused; nothing opens, nothing reaches the server")
        func bounceRefused() async throws {
            try await Scratch.with("bounce") { scratch in
                try await ServerKind.vsftpd.with(on: "127.0.0.2", in: scratch) { server in
                    try await GatewayHarness.with(upstream: server.endpoint, .init(pool: LoopbackPorts.block(10))) {
                        gateway in
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                        try await withCleanup {
                            try await control.login()
                            let port = try await control.command("PORT 127,0,0,9,78,32")
                            #expect(port.code == 500, "\(port)")
                            let eprt = try await control.command("EPRT |1|127.0.0.9|20000|")
                            #expect(eprt.code == 500, "\(eprt)")
                            let privileged = try await control.command("PORT 127,0,0,1,0,21")
                            #expect(privileged.code == 504, "\(privileged)")
                            // The session goes on.
                            let noop = try await control.command("NOOP")
                            #expect(noop.code == 200, "\(noop)")
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                        let refused = gateway.log.lines("refused command")
                        #expect(refused.count == 3, "\(gateway.log.tail())")
                        let refusedPORT = refused.contains { $0.contains("PORT 127,0,0,9") }
                        let refusedEPRT = refused.contains { $0.contains("EPRT |1|127.0.0.9|") }
                        let refusedLowPort = refused.contains { $0.contains("PORT 127,0,0,1,0,21") }
                        #expect(refusedPORT && refusedEPRT && refusedLowPort, "\(refused)")
                        #expect(gateway.log.count("pinhole open") == 0, "\(gateway.log.tail())")
                        #expect(gateway.backend.openCount == 0)
                        // vsftpd logs every command it gets: it got NOOP, and none of the refused ones.
                        let seen = await gateway.log.wait(within: .seconds(5)) { _ in
                            server.protocolLogText().contains("\"NOOP\"")
                        }
                        #expect(seen, "vsftpd's protocol log should show the NOOP: \(server.logTail())")
                        let serverLog = server.protocolLogText()
                        #expect(!serverLog.contains("127,0,0,9") && !serverLog.contains("127.0.0.9")
                                    && !serverLog.contains("0,21"), "\(server.logTail())")
                    }
                }
            }
        }

        @Test("A passive pinhole admits only the control client's address, and only once")
        func pinholeAdmitsOnlyControlPeer() async throws {
            try await Scratch.with("pinhole-peer") { scratch in
                try await ServerKind.vsftpd.with(on: "127.0.0.2", in: scratch) { server in
                    let source = server.downloadDirectory.appendingPathComponent("peer.bin")
                    try await Command.randomFile(source, bytes: Self.size)
                    try await GatewayHarness.with(upstream: server.endpoint, .init(pool: LoopbackPorts.block(10))) {
                        gateway in
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                        try await withCleanup {
                            try await control.login()
                            #expect(try await control.command("TYPE I").code == 200)
                            let pasv = try await control.command("PASV")
                            let data = try #require(pasv.passiveEndpoint, "\(pasv)")
                            #expect("\(data.address)" == "127.0.0.1" && gateway.isPoolPort(data.port), "\(pasv)")

                            // A stranger: accepted by the kernel, closed by the gateway, no byte relayed.
                            let stranger = try await RawDataConnection.receiveAll(from: data, source: "127.0.0.7",
                                                                                  lifetime: .seconds(5))
                            #expect(stranger.bytes.isEmpty)
                            #expect(stranger.elapsed < .seconds(4), "the gateway should close it at once")
                            let rejected = await gateway.log.wait {
                                $0.lines("pinhole refused a connection from an unexpected peer").contains {
                                    logField("from", in: $0)?.hasPrefix("127.0.0.7:") == true
                                }
                            }
                            #expect(rejected, "\(gateway.log.tail())")

                            // The real client still gets its file through the same pinhole.
                            async let received = RawDataConnection.receiveAll(from: data, source: "127.0.0.1")
                            let retr = try await control.command("RETR pub/peer.bin")
                            #expect(retr.code == 150, "\(retr)")
                            let outcome = try await received
                            #expect(outcome.error == nil, "\(outcome.error ?? "")")
                            let done = try await control.readReply()
                            #expect(done.code == 226, "\(done)")
                            let file = scratch.appendingPathComponent("peer-received.bin")
                            try Data(outcome.bytes).write(to: file)
                            #expect(try await Command.sha256(file) == Command.sha256(source))

                            // One connection only: the pinhole is gone now.
                            let refusedNow = await Self.connectionRefused(data)
                            #expect(refusedNow, "\(gateway.log.tail())")
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                        #expect(gateway.log.count("pinhole open") == 1)
                    }
                }
            }
        }

        @Test("With a one-port pool, a second session's PASV gets 425 until the first session gives the port back")
        func poolExhaustion() async throws {
            try await Scratch.with("pool-exhaustion") { scratch in
                try await ServerKind.vsftpd.with(on: "127.0.0.2", in: scratch) { server in
                    var options = GatewayHarness.Options(pool: LoopbackPorts.block(1))
                    options.pinholeTimeout = .seconds(60)
                    try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                        let first = try await RawFTPConnection.connect(to: gateway.endpoint)
                        let second = try await RawFTPConnection.connect(to: gateway.endpoint)
                        try await withCleanup {
                            try await first.login()
                            try await second.login()
                            let granted = try await first.command("PASV")
                            #expect(granted.code == 227, "\(granted)")
                            #expect(granted.passiveEndpoint?.port == gateway.pool.lowerBound, "\(granted)")

                            let refused = try await second.command("PASV")
                            #expect(refused.code == 425, "\(refused)\n\(gateway.log.tail())")
                            #expect(gateway.log.count("passive reply answered with 425") == 1, "\(gateway.log.tail())")
                            // The second session survives the refusal.
                            #expect(try await second.command("NOOP").code == 200)

                            // The first session ends: its pinhole closes and the port returns to the pool.
                            _ = try? await first.command("QUIT")
                            await first.close()
                            let released = await gateway.log.wait { _ in gateway.backend.openCount == 0 }
                            #expect(released, "\(gateway.log.tail())")
                            let again = try await second.command("PASV")
                            #expect(again.code == 227, "\(again)\n\(gateway.log.tail())")
                            #expect(again.passiveEndpoint?.port == gateway.pool.lowerBound, "\(again)")
                            _ = try? await second.command("QUIT")
                        } cleanup: {
                            await first.close()
                            await second.close()
                        }
                    }
                }
            }
        }

        @Test("An unused pinhole expires after the pinhole timeout and then refuses connections")
        func pinholeExpires() async throws {
            try await Scratch.with("pinhole-expiry") { scratch in
                try await ServerKind.vsftpd.with(on: "127.0.0.2", in: scratch) { server in
                    var options = GatewayHarness.Options(pool: LoopbackPorts.block(10))
                    options.pinholeTimeout = .seconds(1)
                    try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint)
                        try await withCleanup {
                            try await control.login()
                            let pasv = try await control.command("PASV")
                            let data = try #require(pasv.passiveEndpoint, "\(pasv)")
                            let expired = await gateway.log.wait(within: .seconds(5)) {
                                $0.count("pinhole expired unused") == 1
                            }
                            #expect(expired, "\(gateway.log.tail())")
                            #expect(gateway.backend.openCount == 0)
                            let refusedNow = await Self.connectionRefused(data)
                            #expect(refusedNow, "\(gateway.log.tail())")
                            _ = try? await control.command("QUIT")
                        } cleanup: {
                            await control.close()
                        }
                    }
                }
            }
        }
    }
}
