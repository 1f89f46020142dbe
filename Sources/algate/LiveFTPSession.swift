import AlgatePinholes
import AlgateProxy
import AlgateReplay
import AlgateRewrite
import Logging
import NIOCore
import NIOPosix

/// The bytes every live data connection carries (the capture's own data is not needed to test the path).
enum LivePayload {
    static let bytes: [UInt8] = (0..<65_536).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 8)) }
}

/// One FTP session played live.
struct LiveFTPSession {
    let session: ReplaySession
    let group: any EventLoopGroup

    /// A data connection to carry: which side connects, which side sends.
    struct Transfer {
        var pinholeKind: String     // passive: the client connects; active: the server connects
        var upload: Bool            // STOR/STOU/APPE: the client sends
        var flowFrame: Int
    }

    var loopback: String { session.server.hasPrefix("[") ? "::1" : "127.0.0.1" }

    func run(into outcome: inout LiveReplay.Outcome) async throws {
        let script = session.messages
        outcome.lines = script.count
        let transfers = plannedTransfers()
        let offlineRewritten = Set(session.rewrites.map(\.message))

        // The server side: one control connection (from the gateway), answering in the captured order.
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: loopback, port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try LiveChannel(wrappingChannelSynchronously: channel) }
            }
        guard let serverPort = server.channel.localAddress?.port, let loopbackAddress = IPAddress(loopback) else {
            throw LiveReplayError("the stand-in server has no port")
        }

        // The gateway, as `algate run` builds it, in front of the stand-in server.
        let logs = LiveLogStore()
        let logger = Logger(label: "algate.live") { _ in LiveLogStore.Handler(store: logs) }
        let base = UInt16.random(in: 46_000...47_400)
        let backend = UserspacePinholeBackend(ports: base...(base + 63), limits: .init(perSession: 16, total: 64),
                                              logger: logger)
        let registry = SessionRegistry()
        var configuration = FTPProxyConfiguration(listen: Endpoint(address: loopbackAddress, port: 0),
                                                  upstream: Endpoint(address: loopbackAddress,
                                                                     port: UInt16(serverPort)))
        configuration.publicAddress = loopbackAddress
        configuration.pinholeTimeout = .seconds(10)
        let listener = FTPListener(configuration: configuration, group: group, backend: backend, registry: registry,
                                   logger: logger)
        let gateway = try await listener.start()

        let results: (client: Side, server: Side)
        do {
            results = try await withThrowingTaskGroup(of: Side?.self) { tasks in
                tasks.addTask {
                    Side(clientOf: try await self.playClient(gateway: gateway, script: script, transfers: transfers))
                }
                tasks.addTask {
                    Side(serverOf: try await self.playServer(server, script: script, transfers: transfers))
                }
                tasks.addTask {
                    try await Task.sleep(for: .seconds(30))
                    throw LiveReplayError("timed out after 30 s")
                }
                var client: Side?, serverSide: Side?
                while let next = try await tasks.next() {
                    guard let next else { continue }
                    if next.isClient { client = next } else { serverSide = next }
                    if client != nil, serverSide != nil { break }
                }
                tasks.cancelAll()
                guard let client, let serverSide else { throw LiveReplayError("a side did not finish") }
                return (client, serverSide)
            }
        } catch {
            await listener.stop()
            registry.closeAll()
            backend.shutdown()
            throw error
        }
        await listener.stop()
        registry.beginDraining()
        let deadline = ContinuousClock.now + .seconds(5)
        while registry.count > 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        registry.closeAll()
        backend.shutdown()

        // Compare with the offline replay.
        var differences: [String] = []
        var liveRewritten = Set<Int>()
        for (index, message) in script.enumerated() {
            let sent = message.from == "client" ? results.client.sent[index] : results.server.sent[index]
            let received = message.from == "client" ? results.server.received[index] : results.client.received[index]
            guard let sent else { differences.append("message \(index) (\(message.text)) was not sent"); continue }
            guard let received else {
                differences.append("message \(index) (\(message.text)) did not arrive")
                continue
            }
            if sent != received { liveRewritten.insert(index) }
        }
        differences += LiveReplay.rewriteDifferences(offline: offlineRewritten, live: liveRewritten,
                                                     messages: script.map(\.text))
        let pinholes = logs.count("pinhole open")
        if pinholes != session.pinholes.count {
            differences.append("live opened \(pinholes) pinhole(s), offline predicts \(session.pinholes.count)")
        }
        let carried = results.client.transfersOK
        if carried != transfers.count {
            differences.append("live carried \(carried) data connection(s) intact, the capture has \(transfers.count) "
                               + "covered ones")
        }
        differences += results.client.problems + results.server.problems
        outcome.rewrites = liveRewritten.count
        outcome.pinholes = pinholes
        outcome.transfers = carried
        outcome.differences = differences
    }

    /// The covered data connections of the capture, in order, with who connects and who sends.
    func plannedTransfers() -> [Transfer] {
        session.flows.compactMap { flow -> Transfer? in
            guard let id = flow.coveredBy, let pinhole = session.pinholes.first(where: { $0.id == id }) else {
                return nil
            }
            let command = session.messages[(pinhole.message + 1)...].first {
                $0.from == "client" && Self.dataCommands.contains(Self.verb($0.text))
            }
            let upload = command.map { ["STOR", "STOU", "APPE"].contains(Self.verb($0.text)) } ?? false
            return Transfer(pinholeKind: pinhole.kind, upload: upload, flowFrame: flow.frame)
        }
    }

    static let dataCommands: Set<String> = ["RETR", "LIST", "NLST", "MLSD", "STOR", "STOU", "APPE"]
    static func verb(_ line: String) -> String { String(line.prefix { $0 != " " }).uppercased() }

    /// What one side sent and received, by message index.
    struct Side: Sendable {
        var isClient: Bool
        var sent: [Int: String] = [:]
        var received: [Int: String] = [:]
        var problems: [String] = []
        var transfersOK = 0

        init(clientOf side: Side) { self = side; isClient = true }
        init(serverOf side: Side) { self = side; isClient = false }
        init(isClient: Bool) { self.isClient = isClient }
    }

    // MARK: client

    func playClient(gateway: Endpoint, script: [ReplaySession.Message], transfers: [Transfer]) async throws -> Side {
        var side = Side(isClient: true)
        let connection = try await ClientBootstrap(group: group)
            .connect(host: loopback, port: Int(gateway.port)) { channel in
                channel.eventLoop.makeCompletedFuture { try LiveChannel(wrappingChannelSynchronously: channel) }
            }
        var dataTasks: [Task<String?, Never>] = []
        var transferIndex = 0
        try await connection.executeThenClose { inbound, outbound in
            var reader = LiveLineReader(iterator: inbound.makeAsyncIterator())
            var lastCommand = ""
            for (index, message) in script.enumerated() {
                if message.from == "server" {
                    guard let line = try await reader.next() else {
                        side.problems.append("client: the gateway closed the control connection before message \(index)")
                        break
                    }
                    side.received[index] = line
                    liveTrace("client <- \(line)")
                    // A passive reply to a pending PASV/EPSV: connect to what the gateway announced.
                    let code = line.prefix(3)
                    if (code == "227" && lastCommand == "PASV") || (code == "229" && lastCommand == "EPSV"),
                       transferIndex < transfers.count, transfers[transferIndex].pinholeKind == "passive" {
                        let transfer = transfers[transferIndex]
                        transferIndex += 1
                        let target: (String, Int)? = code == "227"
                            ? Self.parse227(line) : Self.parse229(line).map { (loopback, $0) }
                        guard let target else {
                            side.problems.append("client: cannot read the gateway's reply \(line)")
                            continue
                        }
                        let group = self.group
                        dataTasks.append(Task {
                            await Self.carry(connectTo: target, group: group, sends: transfer.upload)
                        })
                    }
                } else {
                    var text = message.text
                    let verb = Self.verb(text)
                    lastCommand = verb
                    if verb == "PORT" || verb == "EPRT", transferIndex < transfers.count,
                       transfers[transferIndex].pinholeKind == "active" {
                        let transfer = transfers[transferIndex]
                        transferIndex += 1
                        let data = try await ServerBootstrap(group: group)
                            .childChannelOption(.allowRemoteHalfClosure, value: true)
                            .bind(host: loopback, port: 0) { channel in Self.dataChannel(channel) }
                        let port = data.channel.localAddress?.port ?? 0
                        text = verb == "PORT"
                            ? "PORT \(loopback.split(separator: ".").joined(separator: ",")),\(port >> 8),\(port & 255)"
                            : "EPRT |\(loopback.contains(":") ? 2 : 1)|\(loopback)|\(port)|"
                        dataTasks.append(Task { await Self.carry(acceptOn: data, sends: transfer.upload) })
                    }
                    side.sent[index] = text
                    liveTrace("client -> \(text)")
                    try await outbound.write(ByteBuffer(string: text + "\r\n"))
                }
            }
            for task in dataTasks {
                if let problem = await task.value {
                    side.problems.append("client data connection: \(problem)")
                } else {
                    side.transfersOK += 1
                }
            }
        }
        return side
    }

    // MARK: server

    func playServer(_ server: NIOAsyncChannel<LiveChannel, Never>, script: [ReplaySession.Message],
                    transfers: [Transfer]) async throws -> Side {
        var side = Side(isClient: false)
        var activeTarget: (String, Int)? = nil
        var transferIndex = 0
        var dataTask: Task<String?, Never>? = nil
        try await server.executeThenClose { connections in
            var iterator = connections.makeAsyncIterator()
            guard let control = try await iterator.next() else { throw LiveReplayError("no control connection") }
            try await control.executeThenClose { inbound, outbound in
                var reader = LiveLineReader(iterator: inbound.makeAsyncIterator())
                var afterDataCommand = false
                for (index, message) in script.enumerated() {
                    if message.from == "client" {
                        guard let line = try await reader.next() else {
                            side.problems.append("server: the gateway closed the control connection before message \(index)")
                            break
                        }
                        side.received[index] = line
                        liveTrace("server <- \(line)")
                        let verb = Self.verb(line)
                        if verb == "PORT" { activeTarget = Self.parse227(line) }
                        if verb == "EPRT" { activeTarget = Self.parseEPRT(line) }
                        if Self.dataCommands.contains(verb) { afterDataCommand = true }
                        continue
                    }
                    // Active: connect where the gateway's PORT/EPRT pointed, when the capture's server did.
                    if transferIndex < transfers.count, transfers[transferIndex].pinholeKind == "active",
                       message.frame > transfers[transferIndex].flowFrame, let target = activeTarget {
                        let transfer = transfers[transferIndex]
                        transferIndex += 1
                        activeTarget = nil
                        let group = self.group
                        dataTask = Task { await Self.carry(connectTo: target, group: group, sends: !transfer.upload) }
                    }
                    // The final reply of a transfer goes after the transfer.
                    if afterDataCommand, !message.text.hasPrefix("1"), let task = dataTask {
                        if let problem = await task.value { side.problems.append("server data connection: \(problem)") }
                        dataTask = nil
                        afterDataCommand = false
                    }
                    var text = message.text
                    let code = text.prefix(3)
                    if (code == "227" || code == "229"), transferIndex < transfers.count,
                       transfers[transferIndex].pinholeKind == "passive" {
                        let transfer = transfers[transferIndex]
                        transferIndex += 1
                        let data = try await ServerBootstrap(group: group)
                            .childChannelOption(.allowRemoteHalfClosure, value: true)
                            .bind(host: loopback, port: 0) { channel in Self.dataChannel(channel) }
                        let port = data.channel.localAddress?.port ?? 0
                        text = code == "227" ? Self.replace227Port(text, port: port) : Self.replace229Port(text, port: port)
                        dataTask = Task { await Self.carry(acceptOn: data, sends: !transfer.upload) }
                    }
                    side.sent[index] = text
                    liveTrace("server -> \(text)")
                    try await outbound.write(ByteBuffer(string: text + "\r\n"))
                }
                if let task = dataTask, let problem = await task.value {
                    side.problems.append("server data connection: \(problem)")
                }
            }
        }
        return side
    }

    // MARK: data connections

    /// A data connection: the sender half-closes when done, the receiver reads to that end of file.
    static func dataChannel(_ channel: any Channel) -> EventLoopFuture<LiveChannel> {
        channel.eventLoop.makeCompletedFuture {
            try LiveChannel(wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    /// Accepts one connection on `listener` and sends or receives the payload; nil when it went through intact.
    static func carry(acceptOn listener: NIOAsyncChannel<LiveChannel, Never>, sends: Bool) async -> String? {
        do {
            return try await listener.executeThenClose { connections in
                var iterator = connections.makeAsyncIterator()
                guard let connection = try await iterator.next() else { return "no data connection came" }
                return try await exchange(connection, sends: sends)
            }
        } catch {
            return "\(error)"
        }
    }

    static func carry(connectTo target: (String, Int), group: any EventLoopGroup, sends: Bool) async -> String? {
        do {
            let connection = try await ClientBootstrap(group: group)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .connect(host: target.0, port: target.1) { channel in Self.dataChannel(channel) }
            return try await exchange(connection, sends: sends)
        } catch {
            return "connecting to \(target.0) port \(target.1): \(error)"
        }
    }

    static func exchange(_ connection: LiveChannel, sends: Bool) async throws -> String? {
        try await connection.executeThenClose { inbound, outbound in
            if sends {
                try await outbound.write(ByteBuffer(bytes: LivePayload.bytes))
                outbound.finish()
                for try await _ in inbound {}
                return nil
            }
            var received: [UInt8] = []
            for try await buffer in inbound { received += buffer.readableBytesView }
            return received == LivePayload.bytes
                ? nil : "received \(received.count) bytes, expected the \(LivePayload.bytes.count) sent"
        }
    }

    // MARK: FTP address texts

    /// The six numbers of a 227 or a PORT: address and port.
    static func parse227(_ line: String) -> (String, Int)? {
        guard let numbers = sixNumbers(line) else { return nil }
        return (numbers.values[0..<4].map(String.init).joined(separator: "."), numbers.values[4] * 256 + numbers.values[5])
    }

    static func sixNumbers(_ line: String) -> (values: [Int], range: Range<String.Index>)? {
        let text = line.dropFirst(4)
        var index = text.startIndex
        while index < text.endIndex {
            if text[index].isNumber {
                var values: [Int] = []
                var cursor = index
                while cursor < text.endIndex, values.count < 6 {
                    let start = cursor
                    while cursor < text.endIndex, text[cursor].isASCII, text[cursor].isNumber {
                        cursor = text.index(after: cursor)
                    }
                    guard start < cursor, let value = Int(text[start..<cursor]) else { break }
                    values.append(value)
                    if values.count < 6 {
                        guard cursor < text.endIndex, text[cursor] == "," else { break }
                        cursor = text.index(after: cursor)
                    }
                }
                if values.count == 6 { return (values, index..<cursor) }
            }
            index = text.index(after: index)
        }
        return nil
    }

    static func replace227Port(_ line: String, port: Int) -> String {
        guard let numbers = sixNumbers(line) else { return line }
        let replaced = numbers.values[0..<4].map(String.init) + ["\(port >> 8)", "\(port & 255)"]
        return line.replacingCharacters(in: numbers.range, with: replaced.joined(separator: ","))
    }

    /// `229 ... (|||port|)`: the port.
    static func parse229(_ line: String) -> Int? {
        guard let open = line.firstIndex(of: "("), let close = line[open...].firstIndex(of: ")") else { return nil }
        let inner = line[line.index(after: open)..<close]
        guard let delimiter = inner.first else { return nil }
        let fields = inner.split(separator: delimiter, omittingEmptySubsequences: false)
        return fields.count >= 4 ? Int(fields[3]) : nil
    }

    static func replace229Port(_ line: String, port: Int) -> String {
        guard let open = line.firstIndex(of: "("), let close = line[open...].firstIndex(of: ")") else { return line }
        let inner = line[line.index(after: open)..<close]
        guard let delimiter = inner.first else { return line }
        let d = String(delimiter)
        return line.replacingCharacters(in: open...close, with: "(\(d)\(d)\(d)\(port)\(d))")
    }

    /// `EPRT |af|address|port|`.
    static func parseEPRT(_ line: String) -> (String, Int)? {
        let argument = line.dropFirst(5)
        guard let delimiter = argument.first else { return nil }
        let fields = argument.split(separator: delimiter, omittingEmptySubsequences: false)
        guard fields.count >= 4, let port = Int(fields[3]) else { return nil }
        return (String(fields[2]), port)
    }
}
