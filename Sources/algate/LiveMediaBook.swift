import AlgateReplay
import AlgateRewrite
import NIOCore
import Synchronization

/// What both stand-in peers of a live SIP replay know about media, and the media exchange itself.
///
/// Each side announces its own RTP sockets in the SDP it sends (``socket(side:host:capturedPort:)`` and
/// ``announce(side:callID:line:socket:payloadType:)``), and learns where to send from the SDP it receives, which
/// the gateway rewrote to its media relay (``learn(side:callID:lines:)``). ``exchange(callID:)`` then sends RTP
/// each way of every media line both sides know, through the relays, and counts the lines whose packets all
/// arrived at the other end in both directions.
final class LiveMediaBook: Sendable {
    enum Side: Int, Sendable { case client = 0, server = 1 }

    struct Key: Hashable, Sendable {
        var callID: String
        var line: Int
    }

    private struct State {
        var sockets: [String: LiveMediaSocket] = [:]
        var own: [[Key: (socket: LiveMediaSocket, payloadType: UInt8)]] = [[:], [:]]
        var destinations: [[Key: Endpoint]] = [[:], [:]]
        var order: [Key] = []
        var exchanged: Set<Key> = []
        var carried = 0
        var problems: [String] = []
    }

    private let state = Mutex(State())
    private let group: any EventLoopGroup
    /// Captured RTP payloads per media relay of the offline replay (in order): client -> server, server -> client.
    private let captured: [(toServer: [[UInt8]], toClient: [[UInt8]])]
    static let syntheticPackets = 5

    init(group: any EventLoopGroup, session: ReplaySession) {
        self.group = group
        let clientHost = Endpoint(session.client)?.address
        captured = session.pinholes.map { pinhole in
            guard let flow = session.flows.first(where: { $0.coveredBy == pinhole.id && $0.kind == "rtp" }) else {
                return ([], [])
            }
            let fromClient = Endpoint(flow.from)?.address == clientHost || Endpoint(flow.to)?.address != clientHost
            return fromClient ? (flow.forward, flow.backward) : (flow.backward, flow.forward)
        }
    }

    /// Media lines carried both ways so far.
    var carried: Int { state.withLock { $0.carried } }
    /// What went wrong in the exchanges.
    var problems: [String] { state.withLock { $0.problems } }

    /// The side's RTP socket for a captured media port on `host`: the same one each time the capture names it.
    func socket(side: Side, host: String, capturedPort: Int) async throws -> LiveMediaSocket {
        let name = "\(side.rawValue)|\(host)|\(capturedPort)"
        if let known = state.withLock({ $0.sockets[name] }) { return known }
        let socket = try await LiveMediaSocket.bind(host: host, group: group)
        state.withLock { $0.sockets[name] = socket }
        return socket
    }

    /// The side announced `socket` for media line `line` of call `callID`.
    func announce(side: Side, callID: String, line: Int, socket: LiveMediaSocket, payloadType: UInt8) {
        let key = Key(callID: callID, line: line)
        state.withLock { state in
            state.own[side.rawValue][key] = (socket, payloadType)
            if !state.order.contains(key) { state.order.append(key) }
        }
    }

    /// The side received SDP for call `callID`: where its media goes now.
    func learn(side: Side, callID: String, lines: [LiveSIPText.MediaLine]) {
        state.withLock { state in
            for line in lines {
                let key = Key(callID: callID, line: line.index)
                guard line.port > 0, let text = line.address, let address = IPAddress(text) else {
                    state.destinations[side.rawValue][key] = nil
                    continue
                }
                state.destinations[side.rawValue][key] = Endpoint(address: address, port: UInt16(line.port))
            }
        }
    }

    /// Sends RTP both ways over every media line of `callID` (every call when nil) that both sides know and that
    /// was not exchanged yet.
    func exchange(callID: String?) async {
        liveTrace("media exchange for \(callID ?? "every call")")
        let work: [(Key, Int, (LiveMediaSocket, UInt8), Endpoint, (LiveMediaSocket, UInt8), Endpoint)] =
            state.withLock { state in
                var work: [(Key, Int, (LiveMediaSocket, UInt8), Endpoint, (LiveMediaSocket, UInt8), Endpoint)] = []
                for (ordinal, key) in state.order.enumerated()
                    where (callID == nil || key.callID == callID) && !state.exchanged.contains(key) {
                    guard let client = state.own[0][key], let server = state.own[1][key],
                          let toServer = state.destinations[0][key], let toClient = state.destinations[1][key] else {
                        liveTrace("media \(key.callID) line \(key.line): not known to both sides yet")
                        continue
                    }
                    state.exchanged.insert(key)
                    work.append((key, ordinal, client, toServer, server, toClient))
                }
                return work
            }
        for (key, ordinal, client, toServer, server, toClient) in work {
            let recorded: (toServer: [[UInt8]], toClient: [[UInt8]]) = ordinal < captured.count
                ? captured[ordinal] : ([], [])
            let up = recorded.toServer.isEmpty ? Self.synthetic(payloadType: client.1, ssrc: 0x1111_0000) : recorded.toServer
            let down = recorded.toClient.isEmpty ? Self.synthetic(payloadType: server.1, ssrc: 0x2222_0000) : recorded.toClient
            let there = await carry(up, from: client.0, to: toServer, at: server.0)
            let back = await carry(down, from: server.0, to: toClient, at: client.0)
            liveTrace("media \(key.callID) line \(key.line): \(there)/\(up.count) to the server, \(back)/\(down.count) back")
            state.withLock { state in
                if there == up.count, back == down.count {
                    state.carried += 1
                } else {
                    state.problems.append("media line \(key.line) of call \(key.callID): \(there) of \(up.count) RTP "
                        + "packet(s) reached the server side through \(toServer), \(back) of \(down.count) reached "
                        + "the client side through \(toClient)")
                }
            }
        }
    }

    private func carry(_ payloads: [[UInt8]], from sender: LiveMediaSocket, to target: Endpoint,
                       at receiver: LiveMediaSocket) async -> Int {
        async let received = receiver.receive(payloads, timeout: .seconds(3))
        do {
            try await sender.send(payloads, to: target)
        } catch {
            state.withLock { $0.problems.append("sending RTP to \(target): \(error)") }
        }
        return await received
    }

    /// A handful of RTP packets (version 2, the line's first payload type, 20 ms of 8 kHz audio each).
    static func synthetic(payloadType: UInt8, ssrc: UInt32) -> [[UInt8]] {
        (0..<syntheticPackets).map { number in
            let sequence = UInt16(1000 + number)
            let timestamp = UInt32(160 * number)
            var packet: [UInt8] = [0x80, payloadType & 0x7f, UInt8(sequence >> 8), UInt8(sequence & 0xff)]
            packet += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: timestamp >> $0) }
            packet += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: ssrc >> $0) }
            packet += (0..<160).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ number) }
            return packet
        }
    }

    /// Closes every media socket.
    func close() async {
        let sockets = state.withLock { Array($0.sockets.values) }
        for socket in sockets { await socket.close() }
    }
}
