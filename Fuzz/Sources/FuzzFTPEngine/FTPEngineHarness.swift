import AlgateRewrite
import FuzzSupport
import NIOCore

/// libFuzzer's entry point: one input, an ``FTPTranscript``.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFTPEngine(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var harness = FTPEngineHarness(FTPTranscript.records(fuzzInput(data, size)))
    harness.run()
    return 0
}

/// Plays the proxy around ``FTPSessionStateMachine``: frames both control streams with ``FTPLineFramer`` as the
/// proxy does, feeds the lines, answers pinhole requests, and checks every action:
///
/// - no line forwarded either way is longer than the line limit;
/// - no line of a 227/228/229 reply reaches the client announcing the server's or the gateway's inside address
///   (as the address scanners read it), a rewritten one announces the public address, and no such line has an
///   inside address anywhere else in it: dotted or IPv6 text, or a number list that is an address form of FTP's
///   grammar (six numbers, or a long form, from where the list starts; `10,99,88,77` or `610,99,88,77` is none);
/// - a PORT/EPRT/LPRT reaches the server only rewritten, naming the gateway's inside address and the pinhole's port;
/// - every pinhole admits only the control peer it is for and relays only to the other control peer; an active one
///   never to a port below 1024.
struct FTPEngineHarness {
    static let maxLineLength = 512

    static let ipv4 = FTPSessionContext(
        client: Endpoint(address: .v4(0xc633_6407), port: 50_000),  // 198.51.100.7
        server: Endpoint(address: .v4(0x0a63_584d), port: 21),  // 10.99.88.77
        publicAddress: .v4(0xcb00_7105),  // 203.0.113.5
        insideAddress: .v4(0x0a63_5801))  // 10.99.88.1
    static let ipv6 = FTPSessionContext(
        client: Endpoint(address: .v6(high: 0x2001_0db8_0000_0000, low: 7), port: 50_000),
        server: Endpoint(address: .v6(high: 0xfd00_0099_0088_0000, low: 0x77), port: 21),
        publicAddress: .v6(high: 0x2001_0db8_0001_0000, low: 5),
        insideAddress: .v6(high: 0xfd00_0099_0088_0000, low: 1))

    private let records: [FTPTranscript.Record]
    private var engine: FTPSessionStateMachine
    private let context: FTPSessionContext
    private var framers = [FTPLineFramer(maxLineLength: maxLineLength), FTPLineFramer(maxLineLength: maxLineLength)]
    private var buffers: [[UInt8]] = [[], []]
    private var answers: [FTPTranscript.Record] = []
    private var closed = false
    private var passthrough = false
    /// The server's and the gateway's inside address, and their text (dotted or IPv6).
    private let insideAddresses: [IPAddress]
    private let insideForms: [[UInt8]]
    /// The reply to the client in progress: its code while a multi-line reply is open.
    private var openReply: Int?
    /// The engine reported a rewrite of the line it forwards next.
    private var rewritten = false
    /// The port of the active pinhole whose command is forwarded next.
    private var activePort: UInt16?
    private var nextDefaultPort: UInt16 = 40_000

    init(_ records: [FTPTranscript.Record]) {
        self.records = records
        context = records.first == .ipv6 ? Self.ipv6 : Self.ipv4
        engine = FTPSessionStateMachine(context: context)
        insideAddresses = [context.server.address, context.insideAddress]
        insideForms = insideAddresses.map(\.unmapped.asciiBytes)
    }

    mutating func run() {
        for record in records where !closed {
            switch record {
            case .bytes(let side, let bytes):
                receive(bytes, from: side)
            case .pinholeOpens, .pinholeFails:
                answers.append(record)
            case .ipv6, .ignored:
                break
            }
        }
        // The end of both streams: an unterminated rest is delivered as a line, as the proxy's decoder does.
        for side in [FTPSide.client, .server] where !closed && !buffers[index(side)].isEmpty {
            deliver(buffers[index(side)], from: side)
        }
    }

    private func index(_ side: FTPSide) -> Int { side == .client ? 0 : 1 }

    private mutating func receive(_ bytes: [UInt8], from side: FTPSide) {
        let i = index(side)
        buffers[i] += bytes
        while !closed {
            let length: Int?
            do {
                length = try framers[i].nextLine(in: buffers[i])
            } catch {
                closed = true  // The proxy closes the session on a line over the limit.
                return
            }
            guard let length else { return }
            let line = Array(buffers[i][..<length])
            buffers[i].removeFirst(length)
            deliver(line, from: side)
        }
    }

    private mutating func deliver(_ line: [UInt8], from side: FTPSide) {
        engine.receive(ByteBuffer(bytes: line), from: side)
        drain()
    }

    private mutating func drain() {
        while let action = engine.nextAction() {
            switch action {
            case .forward(let buffer, let side):
                // After AUTH TLS the session relays bytes it cannot read: nothing of it is the engine's doing.
                guard !passthrough else { continue }
                let line = Array(buffer.readableBytesView)
                checkLength(line, to: side)
                if side == .client { checkReply(line) } else { checkCommand(line) }
                rewritten = false
            case .openPinhole(let request):
                checkPinhole(request)
                answer(request)
            case .report(.rewritten):
                rewritten = true
            case .close:
                closed = true
            case .enterPassthrough:
                passthrough = true
            case .report, .closePinhole:
                break
            }
        }
    }

    private func checkLength(_ line: [UInt8], to side: FTPSide) {
        Invariant.check(line.count <= Self.maxLineLength,
                        "a\(rewritten ? " rewritten" : "") line of \(line.count) bytes goes to the \(side), over the "
                        + "limit of \(Self.maxLineLength): \(Self.show(line))")
    }

    /// A line of a 227/228/229 reply must not name the inside.
    private mutating func checkReply(_ line: [UInt8]) {
        let code: Int?
        if let open = openReply {
            code = open
            if line.withUnsafeBytes({ FTPReplyLine.closes($0, code: open) }) { openReply = nil }
        } else if let reply = line.withUnsafeBytes({ FTPReplyLine($0) }) {
            code = reply.code
            if reply.opensMultiline { openReply = reply.code }
        } else {
            code = nil
        }
        guard let code, [227, 228, 229].contains(code) else { return }
        // The address a client reads from the line (the scanners are the rule clients follow too).
        let found: FTPAddressScanner.Match? = line.withUnsafeBytes { bytes in
            switch code {
            case 227: return try? FTPAddressScanner.scan227(bytes)
            case 228: return try? FTPAddressScanner.scan228(bytes)
            default: return nil  // 229 carries a port only.
            }
        }
        if let found {
            let announced = found.endpoint.address
            Invariant.check(!insideAddresses.contains { announced.isSameHost(as: $0) },
                            "a \(code) reply line announces the inside address \(announced): \(Self.show(line))")
            if rewritten {
                Invariant.check(announced.isSameHost(as: context.publicAddress),
                                "a rewritten \(code) reply announces \(announced), not the public address: "
                                + Self.show(line))
            }
        }
        // The inside addresses anywhere else in the line, the server's own words, which the engine masks: as text,
        // or as a number list that is an address form.
        for form in insideForms where Self.names(line, form) {
            Invariant.fail("a \(code) reply line names the inside address as "
                           + "\(String(decoding: form, as: UTF8.self)): \(Self.show(line))")
        }
        for list in Self.numberLists(line) {
            guard let address = Self.addressRead(from: list), insideAddresses.contains(where: { address.isSameHost(as: $0) })
            else { continue }
            Invariant.fail("a \(code) reply line has a number list naming the inside address \(address): "
                           + Self.show(line))
        }
    }

    /// Whether `line` has `form`, an address's text, as a whole: no digit, dot (or, for IPv6, hex digit or colon)
    /// right before it, none right after it (a dot only when a digit follows): `10.99.88.10` and `110.99.88.1` do
    /// not name 10.99.88.1, `10.99.88.1.` and `x10.99.88.1:21` do.
    static func names(_ line: [UInt8], _ form: [UInt8]) -> Bool {
        let v6 = form.contains(0x3A)
        let isPart: (UInt8) -> Bool = { byte in
            (0x30...0x39).contains(byte)
                || (v6 && (byte == 0x3A || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)))
        }
        var from = 0
        while let found = line[from...].firstRange(of: form) {
            from = found.lowerBound + 1
            let before = found.lowerBound > 0 ? line[found.lowerBound - 1] : nil
            let after = found.upperBound < line.count ? line[found.upperBound] : nil
            let afterNext = found.upperBound + 1 < line.count ? line[found.upperBound + 1] : nil
            if let before, isPart(before) || before == 0x2E { continue }
            if let after, isPart(after) || (after == 0x2E && afterNext.map { (0x30...0x39).contains($0) } == true) {
                continue
            }
            return true
        }
        return false
    }

    /// The comma-separated number lists of the line (spaces allowed after a comma), each from where a list
    /// starts: a digit after no digit and no comma.
    static func numberLists(_ line: [UInt8]) -> [[Int]] {
        let isDigit: (UInt8) -> Bool = { (0x30...0x39).contains($0) }
        var lists: [[Int]] = []
        var index = 0
        while index < line.count {
            guard isDigit(line[index]), index == 0 || (!isDigit(line[index - 1]) && line[index - 1] != 0x2C) else {
                index += 1
                continue
            }
            var numbers: [Int] = []
            while true {
                let digits = line[index...].prefix(while: isDigit)
                numbers.append(digits.prefix(7).reduce(0) { $0 * 10 + Int($1 - 0x30) })
                index += digits.count
                var next = index
                guard next < line.count, line[next] == 0x2C else { break }
                next += 1
                while next < line.count, line[next] == 0x20 { next += 1 }
                guard next < line.count, isDigit(line[next]) else { break }
                index = next
            }
            lists.append(numbers)
        }
        return lists
    }

    /// The address a number list names as a client reads it: the host of six numbers (`h1,h2,h3,h4,p1,p2`,
    /// PORT/227), or of a long form (LPRT/228: `4,4,h1..h4,2,p1,p2`, `6,16,h1..h16,2,p1,p2`), each number 0-255;
    /// of a longer list, its first six (ftplib and curl read those); nil for any other list.
    static func addressRead(from numbers: [Int]) -> IPAddress? {
        if numbers.count > 6, numbers[..<6].allSatisfy({ $0 <= 255 }),
           !(numbers.allSatisfy({ $0 <= 255 }) && longFormHost(numbers) != nil) {
            return IPAddress(bytes: numbers[..<4].map { UInt8($0) })
        }
        guard numbers.allSatisfy({ $0 <= 255 }) else { return nil }
        if numbers.count == 6 { return IPAddress(bytes: numbers[..<4].map { UInt8($0) }) }
        return longFormHost(numbers)
    }

    /// The host of an LPRT/228 long form, or nil.
    static func longFormHost(_ numbers: [Int]) -> IPAddress? {
        guard numbers.count >= 2, let length = [4: 4, 6: 16][numbers[0]], numbers[1] == length,
              numbers.count == 2 + length + 3, numbers[2 + length] == 2 else { return nil }
        return IPAddress(bytes: numbers[2..<(2 + length)].map { UInt8($0) })
    }

    /// An active-mode command reaches the server only as the engine's rewrite.
    private mutating func checkCommand(_ line: [UInt8]) {
        let command = line.withUnsafeBytes { FTPCommandLine($0) }
        guard [.port, .eprt, .lprt].contains(command.verb) else { return }
        Invariant.check(rewritten, "an active-mode command reaches the server unrewritten: \(Self.show(line))")
        let endpoint: Endpoint? = line.withUnsafeBytes { bytes in
            let argument = UnsafeRawBufferPointer(rebasing: bytes[command.argument])
            switch command.verb {
            case .port: return try? FTPAddressScanner.parsePORT(argument)
            case .lprt: return try? FTPAddressScanner.parseLPRT(argument)
            default: return try? FTPAddressScanner.parseEPRT(argument)
            }
        }
        Invariant.check(endpoint?.address.isSameHost(as: context.insideAddress) == true
                        && endpoint?.port == activePort,
                        "the rewritten command names \(endpoint.map(String.init(describing:)) ?? "nothing"), not "
                        + "the inside pinhole: \(Self.show(line))")
        activePort = nil
    }

    private func checkPinhole(_ request: FTPPinholeRequest) {
        let (peer, target) = request.purpose == .passive ? (context.client, context.server) : (context.server, context.client)
        Invariant.check(request.allowedPeer.isSameHost(as: peer.address),
                        "a \(request.purpose) pinhole admits \(request.allowedPeer), not \(peer.address)")
        Invariant.check(request.target.address.isSameHost(as: target.address),
                        "a \(request.purpose) pinhole relays to \(request.target), not to \(target.address)")
        if request.purpose == .active {
            Invariant.check(request.target.port >= 1024, "an active pinhole relays to port \(request.target.port)")
        }
    }

    private mutating func answer(_ request: FTPPinholeRequest) {
        let next = answers.isEmpty ? nil : answers.removeFirst()
        switch next {
        case .pinholeFails:
            engine.pinholeFailed(id: request.id, reason: "the transcript says so")
        case .pinholeOpens(let port?) where port > 0:
            openPinhole(request, port: port)
        default:
            openPinhole(request, port: nextDefaultPort)
            nextDefaultPort = nextDefaultPort == 60_000 ? 40_000 : nextDefaultPort + 1
        }
    }

    private mutating func openPinhole(_ request: FTPPinholeRequest, port: UInt16) {
        if request.purpose == .active { activePort = port }
        engine.pinholeOpened(id: request.id, port: port)
    }

    static func show(_ line: [UInt8]) -> String {
        String(decoding: line.prefix(200), as: UTF8.self).debugDescription + (line.count > 200 ? "..." : "")
    }
}
