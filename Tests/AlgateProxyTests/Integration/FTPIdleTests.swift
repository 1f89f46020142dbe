import AlgateRewrite
import Foundation
import Testing

extension FTPIntegration {
    /// The control connection never idles out while a data transfer through one of its pinholes runs
    /// (DESIGN.md, FTP semantics), and does idle out when nothing runs.
    @Suite("FTP idle timeout")
    struct FTPIdleTests {
        @Test("A client idle on the control connection during a slow transfer keeps its session",
              arguments: zip([DataMode.epsv, .port], [Direction.download, .upload]))
        func slowTransferKeepsSession(_ mode: DataMode, _ direction: Direction) async throws {
            try await Scratch.with("idle-slow-\(mode.verb)-\(direction)") { scratch in
                try await ServerKind.vsftpd.with(on: "127.0.0.2", in: scratch) { server in
                    var options = GatewayHarness.Options(pool: LoopbackPorts.block(10))
                    options.idleTimeout = .seconds(2)
                    try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                        // Throttled by curl: several seconds of transfer with not one control line in between. A
                        // download needs more bytes, since the socket buffers on the way take megabytes at once.
                        let bytes = direction == .download ? 16 * 1024 * 1024 : 5 * 1024 * 1024
                        let rate = direction == .download ? "2M" : "1M"
                        let outcome = try await TransferCheck.run(
                            .curl, mode, direction, bytes: bytes, server: server, gateway: gateway,
                            scratch: scratch, publicAddress: "127.0.0.1", curlRateLimit: rate)
                        let transcript = outcome.transcript
                        #expect(transcript.reply(226) != nil, "the session must still be there for the 226")
                        // The relay itself must have run well past the idle timeout, or the test proves nothing.
                        let started = gateway.log.entries("pinhole connected").first?.at
                        let ended = gateway.log.entries("pinhole transfer done").first?.at
                        let relayTime = started.flatMap { start in ended.map { $0 - start } } ?? .zero
                        #expect(relayTime > .seconds(3), "the relay ran \(relayTime), not past the idle timeout")
                        let ends = gateway.log.lines("session end")
                        let idleEnd = ends.contains { logField("reason", in: $0)?.contains("idle") == true }
                        let idleReply = gateway.log.all.contains { $0.contains("Idle timeout") }
                        #expect(!idleEnd, "\(gateway.log.tail())")
                        #expect(!idleReply, "\(gateway.log.tail())")
                    }
                }
            }
        }

        @Test("A session with nothing running is closed after the idle timeout with a 421")
        func idleSessionIsClosed() async throws {
            try await Scratch.with("idle-close") { scratch in
                try await ServerKind.vsftpd.with(on: "127.0.0.2", in: scratch) { server in
                    var options = GatewayHarness.Options(pool: LoopbackPorts.block(10))
                    options.idleTimeout = .seconds(2)
                    try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                        let control = try await RawFTPConnection.connect(to: gateway.endpoint, lifetime: .seconds(15))
                        try await withCleanup {
                            try await control.login()
                            let start = ContinuousClock.now
                            let reply = try await control.readReply()
                            let waited = ContinuousClock.now - start
                            #expect(reply.code == 421, "\(reply)")
                            #expect(waited > .seconds(1) && waited < .seconds(6), "closed after \(waited)")
                            #expect(try await control.readLine() == nil, "the connection should be closed")
                        } cleanup: {
                            await control.close()
                        }
                        let ends = gateway.log.lines("session end")
                        let idleEnd = ends.contains { logField("reason", in: $0)?.contains("idle") == true }
                        #expect(idleEnd, "\(gateway.log.tail())")
                    }
                }
            }
        }
    }
}
