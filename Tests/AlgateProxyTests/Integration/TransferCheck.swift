import AlgateRewrite
import Foundation
import Testing

/// One transfer of a random file by a real client through the gateway to a real server, and everything that
/// shows it went the way it should:
/// - the client exited 0, and the bytes on the receiving end have the SHA-256 of the bytes sent;
/// - the client used exactly the data mode under test (no silent fallback);
/// - the gateway opened a pinhole of the right kind on a pool port, and rewrote the line that announced it;
/// - in passive modes the client was told the gateway's public address and a pool port, never the server's.
enum TransferCheck {
    struct Outcome: Sendable {
        var transcript: ClientTranscript
        var bytesEqual: Bool
    }

    @discardableResult
    static func run(_ client: ClientKind, _ mode: DataMode, _ direction: Direction, bytes: Int,
                    server: FTPServerUnderTest, gateway: GatewayHarness, scratch: URL,
                    publicAddress: String, name: String? = nil, interface: String? = nil,
                    activeAddress: String? = nil, curlRateLimit: String? = nil) async throws -> Outcome {
        let id = name ?? "\(client.rawValue)-\(mode.rawValue)-\(direction.rawValue)"
        let source: URL, local: URL, landed: URL, remote: String
        switch direction {
        case .download:
            source = server.downloadDirectory.appendingPathComponent("\(id).bin")
            remote = "pub/\(id).bin"
            local = scratch.appendingPathComponent("received-\(id).bin")
            landed = local
        case .upload:
            source = scratch.appendingPathComponent("send-\(id).bin")
            remote = "upload/\(id).bin"
            local = source
            landed = server.uploadDirectory.appendingPathComponent("\(id).bin")
        }
        try await Command.randomFile(source, bytes: bytes)

        let transcript = try await client.run(ClientTransfer(
            client: client, mode: mode, direction: direction, target: gateway.endpoint, remotePath: remote,
            localFile: local, scratch: scratch, interface: interface, activeAddress: activeAddress,
            curlRateLimit: curlRateLimit))
        let context = "\(transcript)\n--- gateway log (tail)\n\(gateway.log.tail())\n\(server.logTail())"

        #expect(transcript.result.succeeded, "\(client) \(mode.verb) \(direction) failed: \(context)")
        var bytesEqual = false
        if FileManager.default.fileExists(atPath: landed.path) {
            let want = try await Command.sha256(source)
            let got = try await Command.sha256(landed)
            bytesEqual = want == got
            #expect(got == want, "SHA-256 differs: sent \(want), received \(got)\n\(context)")
        } else {
            Issue.record("nothing arrived at \(landed.path)\n\(context)")
        }

        #expect(transcript.dataVerbs == [mode.verb],
                "the client must use \(mode.verb) and nothing else; it sent \(transcript.dataVerbs)\n\(context)")

        let opened = gateway.log.lines("pinhole open").filter { logField("purpose", in: $0) == mode.pinholePurpose }
        #expect(!opened.isEmpty, "no \(mode.pinholePurpose) pinhole opened\n\(context)")
        for line in opened {
            let port = logField("listen", in: line).flatMap(Endpoint.init)?.port
            #expect(port.map(gateway.isPoolPort) == true, "pinhole outside the pool: \(line)")
        }

        let rewrites = gateway.log.lines("rewrote")
        if mode.isPassive {
            let code = mode == .pasv ? "227" : "229"
            let serverReplies = rewrites.filter { logField("from", in: $0) == "server" }
                .compactMap { logField("original", in: $0) }.filter { $0.hasPrefix(code) }
            #expect(!serverReplies.isEmpty, "no \(code) reply was rewritten\n\(context)")
            if let announced = transcript.announcedDataPort {
                #expect(gateway.isPoolPort(announced.port),
                        "the client was told port \(announced.port), not a pool port \(gateway.pool)\n\(context)")
                #expect(!server.passivePorts.contains(announced.port),
                        "the client was told the server's own passive port \(announced.port)\n\(context)")
                if mode == .pasv {
                    #expect(announced.address == publicAddress,
                            "227 told the client \(announced.address ?? "?"), not \(publicAddress)\n\(context)")
                }
            } else if transcript.result.succeeded {
                Issue.record("the client's transcript shows no \(code) reply\n\(context)")
            }
            if mode == .pasv, server.endpoint.address.isIPv4 {
                // The server announced its unreachable address; only the rewrite made the transfer possible.
                let namesUnreachable = serverReplies.contains { $0.contains("127,0,0,3") }
                #expect(namesUnreachable, "the server's 227 should name 127.0.0.3: \(serverReplies)")
            }
        } else {
            let commands = rewrites.filter { logField("from", in: $0) == "client" }
                .compactMap { logField("original", in: $0) }.filter { $0.uppercased().hasPrefix(mode.verb) }
            #expect(!commands.isEmpty, "no \(mode.verb) command was rewritten\n\(context)")
        }
        #expect(gateway.log.count("refused command") == 0, "\(context)")
        return Outcome(transcript: transcript, bytesEqual: bytesEqual)
    }
}
