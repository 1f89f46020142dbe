import AlgatePinholes
import AlgateRewrite
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Media relays on real loopback UDP sockets.
@Suite(.serialized) struct MediaRelayTests {
    /// A UDP endpoint that records every datagram it receives (payload and source).
    final class Endpoint: Sendable {
        let channel: any Channel
        let received = NIOLockedValueBox<[(String, SocketAddress)]>([])

        init(group: any EventLoopGroup, host: String) async throws {
            let received = self.received
            channel = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Recorder(received: received))
                    }
                }
                .bind(host: host, port: 0).get()
        }

        var address: AlgateRewrite.Endpoint { AlgateRewrite.Endpoint(socketAddress: channel.localAddress!)! }

        func send(_ text: String, to host: String, port: UInt16) async throws {
            let destination = try SocketAddress(ipAddress: host, port: Int(port))
            try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: ByteBuffer(string: text)))
        }

        /// Waits (bounded) until `count` datagrams arrived, by hopping through the channel's loop.
        func waitFor(_ count: Int) async throws -> [(String, SocketAddress)] {
            for _ in 0..<200 {
                let now = received.withLockedValue { $0 }
                if now.count >= count { return now }
                try await channel.eventLoop.scheduleTask(in: .milliseconds(10)) {}.futureResult.get()
            }
            return received.withLockedValue { $0 }
        }
    }

    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let received: NIOLockedValueBox<[(String, SocketAddress)]>
        init(received: NIOLockedValueBox<[(String, SocketAddress)]>) { self.received = received }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            received.withLockedValue { $0.append((String(buffer: envelope.data), envelope.remoteAddress)) }
        }
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let backend = UserspacePinholeBackend(ports: 45200...45299, limits: .init(perSession: 8, total: 100),
                                          logger: Logger(label: "test"))

    func relay(phone: Endpoint, pbx: Endpoint, phoneSDPPort: UInt16? = nil, idle: Duration = .seconds(10),
               events: NIOLockedValueBox<[MediaRelayEvent]> = .init([])) async throws -> MediaRelay {
        let spec = MediaRelaySpec(
            session: 1, outsideAddress: IPAddress("127.0.0.1")!, insideAddress: IPAddress("127.0.0.1")!,
            outsidePeer: AlgateRewrite.Endpoint(address: phone.address.address, port: phoneSDPPort ?? phone.address.port),
            insidePeer: pbx.address, outsideAllowed: IPAddress("127.0.0.1"), insideAllowed: IPAddress("127.0.0.2"),
            idleTimeout: idle)
        return try await backend.openMedia(spec, on: group.next()) { event in
            events.withLockedValue { $0.append(event) }
        }.get()
    }

    @Test func relaysBothWaysAndHidesEachSideFromTheOther() async throws {
        let phone = try await Endpoint(group: group, host: "127.0.0.1")
        let pbx = try await Endpoint(group: group, host: "127.0.0.2")
        let relay = try await relay(phone: phone, pbx: pbx)
        #expect(relay.outsidePort % 2 == 0 && relay.insidePort % 2 == 0)

        try await phone.send("rtp from phone", to: "127.0.0.1", port: relay.outsidePort)
        let atPBX = try await pbx.waitFor(1)
        #expect(atPBX.first?.0 == "rtp from phone")
        #expect(atPBX.first?.1.port == Int(relay.insidePort))   // the PBX sees the relay, never the phone

        try await pbx.send("rtp from pbx", to: "127.0.0.1", port: relay.insidePort)
        let atPhone = try await phone.waitFor(1)
        #expect(atPhone.first?.0 == "rtp from pbx")
        #expect(atPhone.first?.1.port == Int(relay.outsidePort))

        // RTCP goes to RTP + 1 unless a=rtcp (RFC 3605) names another port: here the PBX's own socket.
        relay.setPeer(outside: false, pbx.address, rtcpPort: pbx.address.port)
        try await phone.send("rtcp from phone", to: "127.0.0.1", port: relay.outsidePort + 1)
        #expect(try await pbx.waitFor(2).count == 2)
        let counters = try await relay.eventLoop.submit { relay.counters }.get()
        #expect(counters.inbound == 2 && counters.outbound == 1 && counters.dropped == 0)
        relay.close()
        try await phone.channel.close()
        try await pbx.channel.close()
    }

    @Test func latchesOntoWherePacketsReallyComeFrom() async throws {
        let phone = try await Endpoint(group: group, host: "127.0.0.1")
        let pbx = try await Endpoint(group: group, host: "127.0.0.2")
        // The phone's SDP names a port it does not use (a NAT in front of it changed it).
        let relay = try await relay(phone: phone, pbx: pbx, phoneSDPPort: 9)
        try await phone.send("hello", to: "127.0.0.1", port: relay.outsidePort)
        _ = try await pbx.waitFor(1)
        try await pbx.send("answer", to: "127.0.0.1", port: relay.insidePort)
        #expect(try await phone.waitFor(1).first?.0 == "answer")
        relay.close()
        try await phone.channel.close()
        try await pbx.channel.close()
    }

    @Test func dropsPacketsFromAddressesThatAreNotAdmitted() async throws {
        let phone = try await Endpoint(group: group, host: "127.0.0.1")
        let pbx = try await Endpoint(group: group, host: "127.0.0.2")
        let intruder = try await Endpoint(group: group, host: "127.0.0.9")
        let relay = try await relay(phone: phone, pbx: pbx)
        try await intruder.send("spoofed", to: "127.0.0.1", port: relay.outsidePort)
        try await intruder.send("spoofed", to: "127.0.0.1", port: relay.insidePort)
        try await phone.send("real", to: "127.0.0.1", port: relay.outsidePort)
        #expect(try await pbx.waitFor(1).map(\.0) == ["real"])
        let counters = try await relay.eventLoop.submit { relay.counters }.get()
        #expect(counters.dropped == 2)
        // The intruder did not become the latched peer: the PBX's answer still reaches the phone.
        try await pbx.send("answer", to: "127.0.0.1", port: relay.insidePort)
        #expect(try await phone.waitFor(1).map(\.0) == ["answer"])
        #expect(intruder.received.withLockedValue { $0 }.isEmpty)
        relay.close()
        for endpoint in [phone, pbx, intruder] { try await endpoint.channel.close() }
    }

    @Test func closesAfterTheInactivityTimeoutAndFreesItsPorts() async throws {
        let phone = try await Endpoint(group: group, host: "127.0.0.1")
        let pbx = try await Endpoint(group: group, host: "127.0.0.2")
        let events = NIOLockedValueBox<[MediaRelayEvent]>([])
        let before = backend.openCount
        _ = try await relay(phone: phone, pbx: pbx, idle: .milliseconds(150), events: events)
        #expect(backend.openCount == before + 2)
        for _ in 0..<100 where events.withLockedValue({ $0.count }) < 2 {
            try await group.next().scheduleTask(in: .milliseconds(20)) {}.futureResult.get()
        }
        let seen = events.withLockedValue { $0 }
        #expect(seen.count == 2)
        if case .idle = seen.first {} else { Issue.record("expected an idle event first, got \(seen)") }
        #expect(backend.openCount == before)
        try await phone.channel.close()
        try await pbx.channel.close()
    }

    /// A pair already bound by another program: the backend takes the next, and the relay it hands over is the only
    /// one its owner hears of (the attempt that could not bind says nothing, or the owner would count a `closed`
    /// for a relay it never had).
    @Test func aPortTakenElsewhereIsSkippedSilently() async throws {
        let backend = UserspacePinholeBackend(ports: 45300...45307, limits: .init(perSession: 8, total: 100),
                                              logger: Logger(label: "test"))
        defer { backend.shutdown() }
        let blocker = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 45300).get()
        let phone = try await Endpoint(group: group, host: "127.0.0.1")
        let pbx = try await Endpoint(group: group, host: "127.0.0.2")
        let events = NIOLockedValueBox<[MediaRelayEvent]>([])
        let spec = MediaRelaySpec(
            session: 1, outsideAddress: IPAddress("127.0.0.1")!, insideAddress: IPAddress("127.0.0.1")!,
            outsidePeer: phone.address, insidePeer: pbx.address, outsideAllowed: IPAddress("127.0.0.1"),
            insideAllowed: IPAddress("127.0.0.2"), idleTimeout: .milliseconds(150))
        let relay = try await backend.openMedia(spec, on: group.next()) { event in
            events.withLockedValue { $0.append(event) }
        }.get()
        #expect(relay.outsidePort != 45300)
        for _ in 0..<100 where events.withLockedValue({ $0.count }) < 2 {
            try await group.next().scheduleTask(in: .milliseconds(20)) {}.futureResult.get()
        }
        // One more round of the loop, so that a late event would be seen.
        try await relay.eventLoop.submit {}.get()
        let seen = events.withLockedValue { $0 }
        #expect(seen.count == 2, "\(seen)")
        if case .idle = seen.first {} else { Issue.record("expected an idle event first, got \(seen)") }
        try await blocker.close()
        try await phone.channel.close()
        try await pbx.channel.close()
    }
}
