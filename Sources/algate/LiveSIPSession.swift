import AlgatePinholes
import AlgateProxy
import AlgateReplay
import AlgateRewrite
import Logging
import NIOCore
import NIOPosix

/// One SIP session played live: a ``SIPListener`` in this process (reverse mode, the session's transport, userspace
/// media relays) on 127.0.0.1, a stand-in client on 127.0.0.2 that plays the capture's client messages against it,
/// and a stand-in server on 127.0.0.3, the listener's upstream, that plays the capture's server messages. Both play
/// in the captured order and wait for each message of the other side to arrive before going on.
///
/// Before a stand-in sends a captured message, it changes what the gateway would otherwise find incoherent, as the
/// offline replay does: captured addresses become live ones (the client's and the server's own, the server's
/// address in the client's messages becomes the gateway's, any other host becomes 127.0.0.4 on the client's side
/// and 127.0.0.3 on the server's); SDP media ports become the stand-in's own RTP sockets; a response carries the Via
/// fields of its request as the stand-in received it; a request from the server to the client's contact carries
/// the contact the gateway gave the server. Before a BYE, a CANCEL or a final error response to an INVITE (once the
/// other side has got everything sent before), and at the end, RTP goes both ways through every media relay both
/// sides were told of (the captured packets when the capture has them, else a few synthetic ones).
struct LiveSIPSession {
    let session: ReplaySession
    let group: any EventLoopGroup

    static let gatewayHost = "127.0.0.1"
    static let clientHost = "127.0.0.2"
    static let serverHost = "127.0.0.3"
    static let clientOtherHost = "127.0.0.4"
    static let messageTimeout = TimeAmount.seconds(5)

    /// What one stand-in sent and received, by message index.
    struct Side: Sendable {
        var sent: [Int: ByteBuffer] = [:]
        /// What was sent, as the capture has it in live addresses (see ``LiveSIPPlayer``).
        var baseline: [Int: ByteBuffer] = [:]
        var received: [Int: ByteBuffer] = [:]
        var problems: [String] = []
    }

    func run(into outcome: inout LiveReplay.Outcome) async throws {
        let script = session.messages
        outcome.lines = script.count
        guard let transport = SIPTransport(rawValue: session.transport),
              let capturedClient = Endpoint(session.client), let capturedServer = Endpoint(session.server) else {
            throw LiveReplayError("session endpoints \(session.client) / \(session.server) are not addresses")
        }
        guard script.allSatisfy({ $0.raw != nil }) else {
            throw LiveReplayError("the report holds no message bytes to play")
        }
        let limits = SIPLimits()

        // The gateway, as `algate run` builds a [[sip]] listener, in front of the stand-in server.
        let logs = LiveLogStore()
        let logger = Logger(label: "algate.live") { _ in LiveLogStore.Handler(store: logs) }
        let base = UInt16.random(in: 47_500...48_900)
        let backend = UserspacePinholeBackend(ports: base...(base + 63), limits: .init(perSession: 16, total: 64),
                                              logger: logger)
        let started: (listener: SIPListener, gateway: Endpoint, server: LiveSIPPeer)
        do {
            started = try await startGateway(transport: transport, backend: backend, logger: logger, limits: limits)
        } catch {
            backend.shutdown()
            throw error
        }
        let listener = started.listener
        let gateway = started.gateway
        let server = started.server
        let media = LiveMediaBook(group: group, session: session)
        let client: LiveSIPPeer
        do {
            client = try await LiveSIPPeer.client(transport: transport, host: Self.clientHost, gateway: gateway,
                                                  group: group, limits: limits)
        } catch {
            await server.close()
            await listener.stop()
            backend.shutdown()
            throw error
        }
        liveTrace("sip gateway \(gateway), client \(client.local), server \(server.local)")

        // Captured addresses -> live ones, for what each side sends.
        var clientMap = LiveSIPText.AddressMap(other: IPAddress(Self.clientOtherHost) ?? .v4(0x7f00_0004))
        clientMap.endpoints[capturedClient] = client.local
        clientMap.endpoints[capturedServer] = gateway
        clientMap.addresses[capturedServer.address] = gateway.address
        clientMap.addresses[capturedClient.address] = client.local.address
        clientMap.portless[capturedClient.address] = client.local
        var serverMap = LiveSIPText.AddressMap(other: server.local.address)
        serverMap.endpoints[capturedServer] = server.local
        serverMap.endpoints[capturedClient] = client.local
        serverMap.addresses[capturedClient.address] = client.local.address
        serverMap.addresses[capturedServer.address] = server.local.address
        serverMap.portless[capturedServer.address] = server.local

        let progress = LivePlayProgress()
        let clientPlayer = LiveSIPPlayer(side: .client, script: script, peer: client, map: clientMap,
                                         peerMap: serverMap, media: media, progress: progress)
        let serverPlayer = LiveSIPPlayer(side: .server, script: script, peer: server, map: serverMap,
                                         peerMap: clientMap, media: media, progress: progress)
        let results: (client: Side, server: Side)
        do {
            results = try await withThrowingTaskGroup(of: (Bool, Side)?.self) { tasks in
                tasks.addTask { (true, await clientPlayer.play()) }
                tasks.addTask { (false, await serverPlayer.play()) }
                let limit = 60 + script.count
                tasks.addTask {
                    try await Task.sleep(for: .seconds(limit))
                    throw LiveReplayError("timed out after \(limit) s")
                }
                var clientSide: Side?, serverSide: Side?
                while let next = try await tasks.next() {
                    guard let (isClient, side) = next else { continue }
                    if isClient { clientSide = side } else { serverSide = side }
                    if clientSide != nil, serverSide != nil { break }
                }
                tasks.cancelAll()
                guard let clientSide, let serverSide else { throw LiveReplayError("a side did not finish") }
                return (clientSide, serverSide)
            }
            // Calls that did not end in the capture: their media goes now, while the relays are open.
            await media.exchange(callID: nil)
        } catch {
            await client.close()
            await server.close()
            await media.close()
            await listener.stop()
            backend.shutdown()
            throw error
        }
        await client.close()
        await server.close()
        await media.close()
        await listener.stop()
        backend.shutdown()

        // Compare with the offline replay.
        var differences: [String] = []
        var liveRewritten = Set<Int>()
        for (index, message) in script.enumerated() {
            let fromClient = message.from == "client"
            let sent = fromClient ? results.client.baseline[index] : results.server.baseline[index]
            let received = fromClient ? results.server.received[index] : results.client.received[index]
            guard let sent else { differences.append("message \(index) (\(message.text)) was not sent"); continue }
            guard let received else {
                differences.append("message \(index) (\(message.text)) did not arrive")
                continue
            }
            if LiveSIPText.rewritten(baseline: sent, received: received) { liveRewritten.insert(index) }
        }
        let offlineRewritten = Set(session.rewrites.map(\.message))
        differences += LiveReplay.rewriteDifferences(offline: offlineRewritten, live: liveRewritten,
                                                     messages: script.map(\.text))
        let relays = logs.count("media relay open")
        if relays != session.pinholes.count {
            differences.append("live opened \(relays) media relay(s), offline predicts \(session.pinholes.count)")
        }
        // A relay whose both ends the offline replay knows carries media both ways.
        let expected = session.pinholes.filter { $0.relaysTo.count >= 4 }.count
        let carried = media.carried
        if carried != expected {
            differences.append("live carried RTP both ways through \(carried) media relay(s), offline predicts "
                               + "\(expected) with both ends known")
        }
        differences += results.client.problems + results.server.problems + media.problems
        outcome.rewrites = liveRewritten.count
        outcome.pinholes = relays
        outcome.transfers = carried
        outcome.differences = differences
    }

    /// Starts the stand-in server and the listener in front of it, on a port free for the session's transport.
    private func startGateway(transport: SIPTransport, backend: UserspacePinholeBackend, logger: Logger,
                              limits: SIPLimits) async throws
        -> (listener: SIPListener, gateway: Endpoint, server: LiveSIPPeer) {
        guard let gatewayAddress = IPAddress(Self.gatewayHost) else { throw LiveReplayError("bad gateway address") }
        var lastError: any Error = LiveReplayError("no port for the gateway")
        for _ in 0..<5 {
            // The engine names its own port in Via, Record-Route and Contact: the listener needs a real one.
            let port = UInt16.random(in: 49_000...59_999)
            let gateway = Endpoint(address: gatewayAddress, port: port)
            let server: LiveSIPPeer
            do {
                server = try await LiveSIPPeer.server(transport: transport, host: Self.serverHost, gateway: gateway,
                                                      group: group, limits: limits)
            } catch {
                lastError = error
                continue
            }
            var configuration = SIPProxyConfiguration(listen: gateway, upstream: server.local)
            configuration.transports = [transport]
            configuration.publicAddress = gatewayAddress
            let listener = SIPListener(configuration: configuration, group: group, backend: backend, logger: logger)
            do {
                let bound = try await listener.start()
                return (listener, bound, server)
            } catch {
                lastError = error
                await listener.stop()
                await server.close()
            }
        }
        throw lastError
    }
}
