import AlgateRewrite
import Foundation
import Testing

extension FTPIntegration {
    /// Every server x client x mode the client can do, both directions, 20 MB, over IPv4.
    @Suite("FTP transfers over IPv4")
    struct FTPTransferTests {
        struct Case: Sendable, CustomTestStringConvertible {
            var server: ServerKind
            var client: ClientKind
            var mode: DataMode
            var testDescription: String { "\(server) \(client) \(mode.verb)" }
        }

        static let cases: [Case] = ServerKind.allCases.flatMap { server in
            ClientKind.allCases.flatMap { client in
                client.modes(ipv6: false).map { Case(server: server, client: client, mode: $0) }
            }
        }

        static let size = 20 * 1024 * 1024

        @Test("20 MB through the gateway, SHA-256 equal", arguments: cases, Direction.allCases)
        func transfer(_ c: Case, _ direction: Direction) async throws {
            try await Scratch.with("v4-\(c.testDescription)-\(direction)") { scratch in
                try await c.server.with(on: "127.0.0.2", in: scratch) { server in
                    try await GatewayHarness.with(upstream: server.endpoint, .init(pool: LoopbackPorts.block(20))) {
                        gateway in
                        try await TransferCheck.run(c.client, c.mode, direction, bytes: Self.size, server: server,
                                                    gateway: gateway, scratch: scratch, publicAddress: "127.0.0.1")
                    }
                }
            }
        }
    }

    /// The same over IPv6 loopback: gateway on [::1], servers on [::1]; EPSV and EPRT (what IPv6 has).
    @Suite("FTP transfers over IPv6")
    struct FTPIPv6TransferTests {
        struct Case: Sendable, CustomTestStringConvertible {
            var server: ServerKind
            var client: ClientKind
            var mode: DataMode
            var testDescription: String { "\(server) \(client) \(mode.verb)" }
        }

        static let cases: [Case] = ServerKind.allCases.flatMap { server in
            ClientKind.allCases.flatMap { client in
                client.modes(ipv6: true).map { Case(server: server, client: client, mode: $0) }
            }
        }

        @Test("20 MB through the gateway on ::1, SHA-256 equal", arguments: cases, Direction.allCases)
        func transfer(_ c: Case, _ direction: Direction) async throws {
            try await Scratch.with("v6-\(c.testDescription)-\(direction)") { scratch in
                try await c.server.with(on: "::1", announcing: nil, in: scratch) { server in
                    var options = GatewayHarness.Options(pool: LoopbackPorts.block(20))
                    options.listen = "[::1]:0"
                    options.publicAddress = nil   // the address the client connected to: ::1
                    try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                        try await TransferCheck.run(c.client, c.mode, direction, bytes: FTPTransferTests.size,
                                                    server: server, gateway: gateway, scratch: scratch,
                                                    publicAddress: "::1")
                        if c.mode == .epsv {
                            // Client and server share ::1, so only the port tells whether the client went
                            // through the gateway: the 229 it saw must carry a pool port, and the server's
                            // original 229 another one.
                            let original = gateway.log.lines("rewrote")
                                .compactMap { logField("original", in: $0) }.first { $0.hasPrefix("229") }
                            let serverPort = original.flatMap {
                                FTPReply(code: 229, lines: [$0]).extendedPassivePort
                            }
                            let pinholePorts = gateway.log.lines("pinhole open")
                                .compactMap { logField("listen", in: $0).flatMap(Endpoint.init)?.port }
                            #expect(serverPort != nil && server.passivePorts.contains(serverPort!),
                                    "server's 229 \(original ?? "?") should carry one of its ports")
                            let allInPool = !pinholePorts.isEmpty && pinholePorts.allSatisfy(gateway.isPoolPort)
                            let serverPortUsed = pinholePorts.contains { $0 == serverPort }
                            #expect(allInPool, "pinholes on \(pinholePorts), pool \(gateway.pool)")
                            #expect(!serverPortUsed)
                        }
                    }
                }
            }
        }

        /// lftp's EPRT on IPv6 names the unspecified address: `EPRT |2|::|port|`. vsftpd takes that as "the
        /// control peer" and the transfer works; through the gateway it should work as well (the gateway can
        /// read `::` as the client's own address: no third host is named, so no bounce is possible).
        @Test("lftp's active mode over IPv6 (EPRT |2|::|port|) works through the gateway as it does directly")
        func lftpActiveModeOverIPv6() async throws {
            try await Scratch.with("v6-lftp-eprt") { scratch in
                try await ServerKind.vsftpd.with(on: "::1", announcing: nil, in: scratch) { server in
                    let source = server.downloadDirectory.appendingPathComponent("direct.bin")
                    try await Command.randomFile(source, bytes: 1024 * 1024)
                    let direct = try await ClientKind.lftp.run(ClientTransfer(
                        client: .lftp, mode: .eprt, direction: .download, target: server.endpoint,
                        remotePath: "pub/direct.bin", localFile: scratch.appendingPathComponent("direct-received.bin"),
                        scratch: scratch))
                    let sentUnspecified = direct.commands.contains { $0.hasPrefix("EPRT |2|::|") }
                    #expect(direct.result.succeeded, "lftp directly against vsftpd: \(direct)")
                    #expect(sentUnspecified, "lftp should send EPRT |2|::|port|: \(direct.commands)")

                    var options = GatewayHarness.Options(pool: LoopbackPorts.block(10))
                    options.listen = "[::1]:0"
                    options.publicAddress = nil
                    try await GatewayHarness.with(upstream: server.endpoint, options) { gateway in
                        try await TransferCheck.run(.lftp, .eprt, .download, bytes: 1024 * 1024, server: server,
                                                    gateway: gateway, scratch: scratch, publicAddress: "::1")
                    }
                }
            }
        }
    }
}
