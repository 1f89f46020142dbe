@testable import AlgatePinholes
@testable import AlgateProxy
import AlgateRewrite
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// The session and its handlers on two EmbeddedChannels sharing one loop: everything but real pinholes.
@Suite struct FTPSessionHandlerTests {
    struct Pair {
        let loop = EmbeddedEventLoop()
        let client: EmbeddedChannel
        let server: EmbeddedChannel
        let registry = SessionRegistry()

        init(maxLineLength: Int = 128) throws {
            client = EmbeddedChannel(loop: loop)
            server = EmbeddedChannel(loop: loop)
            try client.connect(to: SocketAddress(ipAddress: "198.51.100.20", port: 50000)).wait()
            try server.connect(to: SocketAddress(ipAddress: "10.0.0.5", port: 21)).wait()
            client.localAddress = try SocketAddress(ipAddress: "203.0.113.7", port: 21)
            server.localAddress = try SocketAddress(ipAddress: "10.0.0.1", port: 40123)
            var configuration = FTPProxyConfiguration(listen: Endpoint("203.0.113.7:21")!,
                                                      upstream: Endpoint("10.0.0.5:21")!)
            configuration.maxLineLength = maxLineLength
            let backend = UserspacePinholeBackend(ports: 40000...40009, limits: .init(perSession: 4, total: 10),
                                                  logger: Logger(label: "test"))
            let id = registry.register(limit: 10) { _ in }!
            let session = FTPSession(
                id: id, client: client, server: server,
                context: FTPSessionContext(client: Endpoint("198.51.100.20:50000")!, server: Endpoint("10.0.0.5:21")!,
                                           publicAddress: IPAddress("203.0.113.7")!,
                                           insideAddress: IPAddress("10.0.0.1")!),
                configuration: configuration, backend: backend, registry: registry, logger: Logger(label: "test"))
            for (channel, side) in [(client, FTPSide.client), (server, FTPSide.server)] {
                try channel.pipeline.syncOperations.addHandler(
                    ByteToMessageHandler(FTPLineDecoder(maxLineLength: maxLineLength)))
                try channel.pipeline.syncOperations.addHandler(FTPControlHandler(side: side, session: session))
            }
            session.start()
        }

        func fromClient(_ text: String) throws { try client.writeInbound(ByteBuffer(string: text)) }
        func fromServer(_ text: String) throws { try server.writeInbound(ByteBuffer(string: text)) }

        /// Everything written to a channel so far, as one string.
        func written(_ channel: EmbeddedChannel) throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }
    }

    @Test func linesWithoutAddressesPassUntouchedBothWays() throws {
        let pair = try Pair()
        try pair.fromServer("220 hello\r\n")
        try pair.fromClient("USER anonymous\r\nPASS x\r\n")
        try pair.fromServer("331 pw\r\n230 in\r\n")
        #expect(try pair.written(pair.client) == "220 hello\r\n331 pw\r\n230 in\r\n")
        #expect(try pair.written(pair.server) == "USER anonymous\r\nPASS x\r\n")
        #expect(pair.registry.count == 1)
    }

    @Test func aCommandSplitAcrossSegmentsIsOneLine() throws {
        let pair = try Pair()
        try pair.fromClient("PO")
        try pair.fromClient("RT 192,0,2,99,")
        #expect(try pair.written(pair.server) == "")
        try pair.fromClient("4,3\r\n")
        // A third host: refused, never forwarded.
        #expect(try pair.written(pair.client).hasPrefix("500 "))
        #expect(try pair.written(pair.server) == "")
    }

    @Test func aTooLongLineClosesTheSession() throws {
        let pair = try Pair(maxLineLength: 64)
        try? pair.fromClient(String(repeating: "A", count: 100))
        pair.loop.run()
        #expect(try pair.written(pair.client).hasPrefix("500 Command line too long"))
        #expect(!pair.client.isActive)
        #expect(!pair.server.isActive)
        #expect(pair.registry.count == 0)
    }

    @Test func aTooLongReplyClosesTheSessionWithoutTellingTheClientAnythingFalse() throws {
        let pair = try Pair(maxLineLength: 64)
        try? pair.fromServer("227 " + String(repeating: "1,", count: 100))
        pair.loop.run()
        #expect(try pair.written(pair.client) == "")
        #expect(!pair.client.isActive)
    }

    @Test func authTLSRemovesTheFramingAndPassesRawBytes() throws {
        let pair = try Pair()
        try pair.fromServer("220 hi\r\n")
        try pair.fromClient("AUTH TLS\r\n")
        try pair.fromServer("234 go\r\n")
        // The decoders leave their pipelines once their current decode pass is over.
        pair.loop.run()
        #expect(try pair.written(pair.client) == "220 hi\r\n234 go\r\n")
        #expect(throws: (any Error).self) {
            try pair.client.pipeline.syncOperations.handler(type: ByteToMessageHandler<FTPLineDecoder>.self)
        }
        // TLS records have no line structure; they go through as they come, with no limit on length.
        let record = String(repeating: "\u{16}", count: 500)
        try pair.fromClient(record)
        #expect(try pair.written(pair.server) == "AUTH TLS\r\n" + record)
    }

    @Test func theClientClosingEndsTheSession() throws {
        let pair = try Pair()
        try pair.client.close().wait()
        pair.loop.run()
        #expect(!pair.server.isActive)
        #expect(pair.registry.count == 0)
    }
}
