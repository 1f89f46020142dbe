import AlgateRewrite
import NIOCore

/// Drives an FTPSessionStateMachine like the proxy does, answering pinhole requests from a list of ports, and
/// records what it was told to do.
struct FTPSessionDriver {
    var machine: FTPSessionStateMachine
    var toServer: [String] = []
    var toClient: [String] = []
    var opened: [FTPPinholeRequest] = []
    var closedPinholes: [UInt64] = []
    var events: [FTPSessionEvent] = []
    var passthrough = false
    var closeReason: String?
    /// Ports handed out to pinhole requests in order; when empty, requests fail as if the pool were exhausted.
    var ports: [UInt16]
    /// When false, pinhole requests stay unanswered until `answerPinhole` is called.
    var answerImmediately = true
    var unanswered: FTPPinholeRequest?

    static let context = FTPSessionContext(
        client: Endpoint("198.51.100.20:50123")!,
        server: Endpoint("10.0.0.5:21")!,
        publicAddress: IPAddress("203.0.113.7")!,
        insideAddress: IPAddress("10.0.0.1")!)

    init(context: FTPSessionContext = Self.context, ports: [UInt16] = [40000, 40001, 40002, 40003],
         configuration: FTPSessionStateMachine.Configuration = .init()) {
        machine = FTPSessionStateMachine(context: context, configuration: configuration)
        self.ports = ports
    }

    mutating func client(_ text: String) { feed(text, from: .client) }
    mutating func server(_ text: String) { feed(text, from: .server) }

    mutating func feed(_ text: String, from side: FTPSide) {
        var buffer = ByteBuffer()
        buffer.writeString(text)
        machine.receive(buffer, from: side)
        drain()
    }

    mutating func answerPinhole() {
        guard let request = unanswered else { return }
        unanswered = nil
        if ports.isEmpty {
            machine.pinholeFailed(id: request.id, reason: "port pool exhausted")
        } else {
            machine.pinholeOpened(id: request.id, port: ports.removeFirst())
        }
        drain()
    }

    mutating func drain() {
        while let action = machine.nextAction() {
            switch action {
            case .forward(let bytes, .server): toServer.append(String(buffer: bytes))
            case .forward(let bytes, .client): toClient.append(String(buffer: bytes))
            case .openPinhole(let request):
                opened.append(request)
                unanswered = request
                if answerImmediately { answerPinhole() }
            case .closePinhole(let id): closedPinholes.append(id)
            case .enterPassthrough: passthrough = true
            case .report(let event): events.append(event)
            case .close(let reason): closeReason = reason
            }
        }
    }
}
