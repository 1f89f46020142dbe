import AlgateRewrite
import FuzzSupport
import NIOCore

/// libFuzzer's entry point: one input, a ``SIPTranscript``.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSIPGateway(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var harness = SIPGatewayHarness()
    for record in SIPTranscript.records(fuzzInput(data, size)) { harness.play(record) }
    return 0
}

/// Plays the proxy around ``SIPGatewayStateMachine`` with two phones outside and a PBX inside, and checks every
/// action:
///
/// - every message sent parses, has no bytes past its body, a Content-Length equal to its body when it has one,
///   and over TCP one that frames it whole;
/// - a message forwarded outside has nothing a peer would read as an inside address (10.99.88.0/24,
///   fd00:99:88::/48; see ``insideLeak(_:in:)``) in any line of its SDP, or in a body that holds no SDP it can be
///   sure of, names only the public media address in its SDP's c= and o= lines (those of disabled streams too),
///   and only the public address in its Contacts (the phone's own contact handed back in a REGISTER's response
///   excepted); one forwarded inside names only the inside address in its SDP;
/// - a media relay admits only the outside party of its message: where a phone's message came from, or where a
///   message from the PBX goes; and only relays that were opened are updated or closed.
struct SIPGatewayHarness {
    static let context = SIPGatewayContext(
        publicAddress: .v4(0xcb00_7105), publicPort: 5060,  // 203.0.113.5
        insideAddress: .v4(0x0a63_5801), insidePort: 5060,  // 10.99.88.1
        upstream: Endpoint(address: .v4(0x0a63_584d), port: 5060))  // 10.99.88.77
    static let phones = [Endpoint(address: .v4(0xc633_640a), port: 5060),  // 198.51.100.10
                         Endpoint(address: .v4(0xc633_6414), port: 5062)]  // 198.51.100.20
    /// The inside networks, given to the engine as its `insideNetworks`: nothing of them may go outside.
    static let insideNetworks = ["10.99.88.0/24", "fd00:99:88::/48"].compactMap(CIDR.init)
    /// The inside IPv4 network as text, its first three octets and their dot.
    static let insidePrefix = Array("10.99.88.".utf8)
    static let limits = SIPLimits()

    private var engine: SIPGatewayStateMachine = {
        var engine = SIPGatewayStateMachine(context: SIPGatewayHarness.context, limits: SIPGatewayHarness.limits)
        engine.insideNetworks = SIPGatewayHarness.insideNetworks
        return engine
    }()
    private var now = 1000.0
    /// Per side (0 outside, 1 inside): the Via lines and the first Contact URI of the last request sent there.
    private var lastVias: [[[UInt8]]] = [[], []]
    private var lastContact: [[UInt8]?] = [nil, nil]
    private var openRelays: Set<UInt64> = []
    private var nextPort: UInt16 = 30_000

    // What the message being handled is.
    private var inbound: (flow: SIPFlow, side: SIPSide)?
    private var mediaFails = false
    private var requested: [SIPMediaRequest] = []
    private var forwarding = false

    static func flow(_ flags: SIPTranscript.Flags) -> (SIPFlow, SIPSide) {
        let second = flags.contains(.secondPeer)
        let tcp = flags.contains(.tcp)
        let connection: UInt64? = tcp ? (second ? 2 : 1) : nil
        if flags.contains(.inside) {
            return (SIPFlow(transport: tcp ? .tcp : .udp, remote: context.upstream, connection: connection), .inside)
        }
        return (SIPFlow(transport: tcp ? .tcp : .udp, remote: phones[second ? 1 : 0], connection: connection), .outside)
    }

    mutating func play(_ record: SIPTranscript.Record) {
        let (flow, side) = Self.flow(record.flags)
        now += record.flags.contains(.laterHour) ? 3600 : 1
        if record.flags.contains(.laterHour) {
            engine.expire(now: now)
            drain()
        }
        guard !record.message.isEmpty else {
            if flow.transport == .tcp {
                engine.connectionClosed(flow)
                drain()
            }
            return
        }
        var message = record.message
        let towards = side == .inside ? 1 : 0
        if record.flags.contains(.echoVias) { message = Self.replacingVias(message, with: lastVias[towards]) }
        if record.flags.contains(.retarget), let contact = lastContact[towards] {
            message = Self.replacingRequestURI(message, with: contact)
        }
        if flow.transport == .tcp {
            // Over TCP the proxy's decoder hands on only what frames by its Content-Length.
            let frame = message.withUnsafeBytes { try? SIPStreamFramer(limits: Self.limits).nextFrame($0) }
            guard frame == .message(length: message.count) else { return }
        }
        inbound = (flow, side)
        mediaFails = record.flags.contains(.mediaFails)
        requested = []
        engine.receive(ByteBuffer(bytes: message), from: flow, side: side, now: now)
        drain()
        inbound = nil
    }

    private mutating func drain() {
        while let action = engine.nextAction() {
            switch action {
            case .send(let bytes, let destination):
                check(Array(bytes.readableBytesView), to: destination)
                forwarding = false
            case .openMedia(let request):
                requested.append(request)
                if mediaFails {
                    engine.mediaFailed(id: request.id, reason: "the transcript says so")
                } else {
                    openRelays.insert(request.id)
                    engine.mediaOpened(id: request.id, outsidePort: nextPort, insidePort: nextPort &+ 2000)
                    nextPort = nextPort >= 31_000 ? 30_000 : nextPort + 2
                }
            case .updateMedia(let id, _, _, _, _):
                Invariant.check(openRelays.contains(id), "relay \(id) is updated but was never opened")
            case .closeMedia(let id):
                Invariant.check(openRelays.contains(id), "relay \(id) is closed but was never opened")
                openRelays.remove(id)
            case .report(.forwarded):
                forwarding = true
            case .report:
                break
            }
        }
    }

    // MARK: Checks

    private mutating func check(_ bytes: [UInt8], to destination: SIPFlow) {
        let message: SIPMessage
        do {
            message = try SIPMessage.parse(ByteBuffer(bytes: bytes), limits: Self.limits)
        } catch {
            Invariant.fail("the gateway sends \(forwarding ? "a message" : "an answer of its own") that does not parse "
                           + "(\(error.explanation)): \(Self.show(bytes))")
        }
        Invariant.check(message.discardedBytes == 0, "a message is sent with \(message.discardedBytes) bytes past its body")
        if let declared = message.contentLength {
            Invariant.check(declared == message.body.count,
                            "a message is sent with Content-Length \(declared) and a body of \(message.body.count)")
        }
        if destination.transport == .tcp {
            let frame = bytes.withUnsafeBytes { try? SIPStreamFramer(limits: Self.limits).nextFrame($0) }
            Invariant.check(frame == .message(length: bytes.count),
                            "a message sent over TCP frames as \(String(describing: frame)), not as its \(bytes.count) "
                            + "bytes: \(Self.show(bytes))")
        }

        let towardsInside = destination.remote == Self.context.upstream
        if message.isRequest {
            lastVias[towardsInside ? 1 : 0] = message.fields(.via).map { message.byteArray($0.lineRange) }
        }
        if let contact = message.contacts.first {
            lastContact[towardsInside ? 1 : 0] = message.byteArray(contact.uriRange)
        }
        guard forwarding, let inbound else { return }

        for request in requested {
            let party = inbound.side == .outside ? inbound.flow.remote.address : destination.remote.address
            Invariant.check(request.outsideAllowed == party,
                            "relay \(request.id) admits \(request.outsideAllowed), the outside party is \(party)")
        }
        requested = []
        // Where the engine meant it to go: a response from the PBX goes outside, whatever its Via names.
        let inward = inbound.side == .outside
        checkSDP(message, towardsInside: inward)
        if !inward {
            let registerResponse = !message.isRequest && message.cseq?.method == "REGISTER"
            for contact in message.contacts where !registerResponse {
                Invariant.check(contact.uri.host.address == Self.context.publicAddress,
                                "a Contact sent outside names \(message.text(contact.uriRange)): \(Self.show(bytes))")
            }
        }
    }

    private func checkSDP(_ message: SIPMessage, towardsInside: Bool) {
        let bodies: [Range<Int>]
        do {
            bodies = try SIPMultipart.sdpBodies(of: message, limits: Self.limits)
        } catch {
            // The engine could not find the SDP either; whatever holds an inside address went unchanged.
            if !towardsInside, message.body.count > 0, let leak = Self.insideLeak(message, in: message.body) {
                Invariant.fail("a body the gateway cannot read (\(error.explanation)) goes outside with \(leak)")
            }
            return
        }
        let expected = towardsInside ? Self.context.insideAddress : Self.context.publicMediaAddress
        for range in bodies {
            let sdp = message.bytes.withUnsafeReadableBytes { raw in
                try? SDPSessionDescription.parse(UnsafeRawBufferPointer(rebasing: raw[range]))
            }
            guard let sdp else {
                if !towardsInside, let leak = Self.insideLeak(message, in: range) {
                    Invariant.fail("an SDP that does not parse goes outside with \(leak)")
                }
                continue
            }
            if let origin = sdp.origin, origin.isInternet, !origin.isUnspecified {
                Invariant.check(origin.address == expected, "o= names \(message.text(origin.addressRange.shifted(range.lowerBound))), "
                                + "not \(expected): \(Self.show(message.byteArray(range)))")
            }
            var connections = sdp.connection.map { [$0] } ?? []
            connections += sdp.media.filter { !$0.isDisabled }.flatMap(\.connections)
            for connection in connections where connection.isInternet && !connection.isUnspecified {
                Invariant.check(connection.address == expected,
                                "c= names \(message.text(connection.addressRange.shifted(range.lowerBound))), not "
                                + "\(expected): \(Self.show(message.byteArray(range)))")
            }
            for connection in sdp.media.filter(\.isDisabled).flatMap(\.connections)
            where connection.isInternet && !connection.isUnspecified {
                Invariant.check(connection.address == expected,
                                "the c= of a disabled stream names "
                                + "\(message.text(connection.addressRange.shifted(range.lowerBound))), not \(expected)")
            }
            // Every line, whether the rewrite reads it or not (a vendor attribute, an ICE candidate, a disabled
            // stream): the audit behind `insideNetworks` reads them all.
            if !towardsInside, let leak = Self.insideLeak(message, in: range) {
                Invariant.fail("an SDP goes outside with \(leak): \(Self.show(message.byteArray(range)))")
            }
        }
    }

    // MARK: Helpers

    struct Leak: CustomStringConvertible {
        var offset: Int
        var line: String
        var description: String { "an inside address in \(line.debugDescription)" }
    }

    /// The first thing in `range` of the message that a peer would read as an address of the inside networks, with
    /// its line; the same reading as the engine's SDP audit (SDPAddressAudit), written apart from it:
    ///
    /// - IPv4: `10.99.88.` where no digit or dot comes before it, then one to three digits worth at most 255 and
    ///   no further digit (`x10.99.88.5:5060` is one, `110.99.88.5` and `1.10.99.88.5`'s second window are not
    ///   asked for, `10.99.88.1234` is none);
    /// - IPv6: a whole run of hex digits, colons and dots that is an IPv6 address of fd00:99:88::/48.
    static func insideLeak(_ message: SIPMessage, in range: Range<Int>) -> Leak? {
        let bytes = message.byteArray(range)
        let offsets = [insideIPv4(in: bytes), insideIPv6(in: bytes)].compactMap { $0 }
        guard let first = offsets.min() else { return nil }
        let offset = range.lowerBound + first
        return Leak(offset: offset, line: String(decoding: line(message, at: offset), as: UTF8.self))
    }

    /// Where the first inside IPv4 address starts in `bytes` (see ``insideLeak(_:in:)``).
    static func insideIPv4(in bytes: [UInt8]) -> Int? {
        var from = bytes.startIndex
        while let found = bytes[from...].firstRange(of: insidePrefix) {
            from = found.lowerBound + 1
            if found.lowerBound > 0, isDigit(bytes[found.lowerBound - 1]) || bytes[found.lowerBound - 1] == 0x2E {
                continue
            }
            let digits = bytes[found.upperBound...].prefix(while: isDigit)
            guard (1...3).contains(digits.count),
                  digits.reduce(0, { $0 * 10 + Int($1 - 0x30) }) <= 255 else { continue }
            return found.lowerBound
        }
        return nil
    }

    /// Where the first run of hex digits, colons and dots that is an inside IPv6 address starts in `bytes`.
    static func insideIPv6(in bytes: [UInt8]) -> Int? {
        let isRunByte: (UInt8) -> Bool = { isHexDigit($0) || $0 == 0x3A || $0 == 0x2E }
        var start = bytes.startIndex
        while start < bytes.endIndex {
            guard isRunByte(bytes[start]) else { start += 1; continue }
            let end = bytes[start...].firstIndex { !isRunByte($0) } ?? bytes.endIndex
            if let address = IPAddress(String(decoding: bytes[start..<end], as: UTF8.self)), !address.isIPv4,
               insideNetworks.contains(where: { $0.contains(address) }) {
                return start
            }
            start = end
        }
        return nil
    }

    static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
    }

    /// The line of the message around `offset`, without its line end.
    static func line(_ message: SIPMessage, at offset: Int) -> [UInt8] {
        let bytes = message.byteArray(0..<message.bytes.readableBytes)
        let start = bytes[..<offset].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        let end = bytes[offset...].firstIndex(of: 0x0A) ?? bytes.count
        var line = Array(bytes[start..<end])
        if line.last == 0x0D { line.removeLast() }
        return line
    }

    /// The message with its Via lines (`Via:` or `v:`, before the empty line) replaced by `vias`, right after the
    /// start line.
    static func replacingVias(_ message: [UInt8], with vias: [[UInt8]]) -> [UInt8] {
        guard !vias.isEmpty, let firstEnd = message.firstIndex(of: 0x0A) else { return message }
        var out = Array(message[...firstEnd])
        vias.forEach { out += $0 }
        var start = firstEnd + 1
        while start < message.count {
            let end = message[start...].firstIndex(of: 0x0A).map { $0 + 1 } ?? message.count
            let line = message[start..<end]
            if line.first == 0x0D || line.first == 0x0A {
                out += message[start...]  // The empty line and the body.
                return out
            }
            if !isVia(line) { out += line }
            start = end
        }
        return out
    }

    static func isVia(_ line: ArraySlice<UInt8>) -> Bool {
        let name = line.prefix { $0 != UInt8(ascii: ":") && $0 != 0x20 && $0 != 0x09 }
        let lower = String(decoding: name, as: UTF8.self).lowercased()
        return lower == "via" || lower == "v"
    }

    /// A request with its Request-URI replaced.
    static func replacingRequestURI(_ message: [UInt8], with uri: [UInt8]) -> [UInt8] {
        guard let firstSpace = message.firstIndex(of: 0x20),
              let secondSpace = message[(firstSpace + 1)...].firstIndex(of: 0x20),
              message[..<secondSpace].firstIndex(of: 0x0A) == nil else { return message }
        return Array(message[...firstSpace]) + uri + Array(message[secondSpace...])
    }

    static func show(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(600), as: UTF8.self).debugDescription
    }
}

extension Range<Int> {
    func shifted(_ offset: Int) -> Range<Int> { (lowerBound + offset)..<(upperBound + offset) }
}
