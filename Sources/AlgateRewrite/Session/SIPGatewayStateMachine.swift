public import NIOCore

/// The SIP gateway engine of one listener in reverse mode: messages in, actions out. No sockets, no clocks.
///
/// It is a stateless proxy for routing (RFC 3261 16.11: its own Via on every request it forwards, with a branch
/// derived from the original so retransmissions and CANCEL match; responses follow the Via stack back) plus the
/// state a NAT gateway needs:
/// - contact mappings: every Contact that crosses is replaced by one of the gateway's own addresses with an
///   `algate` URI parameter naming a mapping to the original contact and the flow it came on, so requests sent to
///   it (an inbound INVITE to a registered phone, an in-dialog BYE) come back through the gateway and go on to
///   where that party really is: its source address and port, over the connection it used;
/// - registrations: a REGISTER's contact mapping lives as long as the registration (Expires; 0 removes it);
/// - dialogs: per Call-ID, a media relay per m= line, opened before the message whose SDP announces it is
///   forwarded, updated by later offers and answers, closed by BYE, CANCEL, a final error or the relay's timeout.
///
/// Feed each complete message with ``receive(_:from:side:now:)`` and drain ``nextAction()``. When it asks for a
/// media relay, nothing more comes out until ``mediaOpened(id:outsidePort:insidePort:)`` or ``mediaFailed(id:reason:)``.
public struct SIPGatewayStateMachine: Sendable {
    public let context: SIPGatewayContext
    public let limits: SIPLimits

    /// Contact mappings kept at most; past this the dialog mapping closest to expiry goes first.
    public var maxMappings = 10_000
    /// How long a contact mapping of a dialog (not a registration) lives after it was last used. Several dialogs
    /// may share one mapping (the same phone, the same contact), so no single dialog's end removes it.
    public var dialogMappingLifetime: Double = 3600
    /// What happens to the ICE candidates of relayed streams (``SDPRewrite/ICEMode``).
    public var ice: SDPRewrite.ICEMode = .replace
    /// Networks whose addresses no SDP the engine passes on may name, whichever way it goes (its own excepted).
    public var insideNetworks: [CIDR] = []
    /// Consulted for every request after it parsed and before it is routed; nil admits everything.
    public var admission: (@Sendable (_ message: SIPMessage, _ from: SIPFlow, _ side: SIPSide) -> SIPAdmission)?

    private struct Inbound: Sendable {
        var bytes: ByteBuffer
        var flow: SIPFlow
        var side: SIPSide
        var now: Double
    }

    /// A contact that crossed the gateway, and where requests to it must go.
    struct ContactMapping: Sendable {
        var flow: SIPFlow
        var side: SIPSide
        var originalURI: [UInt8]
        var aor: String?
        var expires: Double?
        var callID: String?
    }

    struct MediaStream: Sendable {
        var relay: UInt64
        var outsidePort: UInt16
        var insidePort: UInt16
    }

    struct Dialog: Sendable {
        var id: UInt64
        var streams: [Int: MediaStream] = [:]
        var established = false
    }

    /// A message waiting for its media relays.
    private struct Pending: Sendable {
        var work: SIPMessageWork
        var outstanding: Set<UInt64>
        var failure: String?
    }

    /// INVITEs the gateway answered itself (Call-ID and branch), for their CANCEL and ACK; the oldest go first.
    private var refusedInvites = BoundedKeySet(capacity: 1024)
    /// Calls whose INVITE response the gateway could not pass on (its SDP): their later responses end here too.
    private var refusedCalls = BoundedKeySet(capacity: 1024)
    private var inbox = CircularBuffer<Inbound>(initialCapacity: 16)
    private var outbox = CircularBuffer<SIPGatewayAction>(initialCapacity: 16)
    private var pending: Pending?
    var mappings: [String: ContactMapping] = [:]
    private var mappingByKey: [String: String] = [:]
    var dialogs: [String: Dialog] = [:]
    private var nextID: UInt64 = 1
    /// The remote end of each outside TCP connection, so responses name the connection's real peer.
    private var connectionRemotes: [UInt64: Endpoint] = [:]
    private let tokenSalt = UInt64.random(in: 1...UInt64.max)
    /// The gateway's own addresses: SDP may name these, and nothing else the sender announced.
    private let ownAddresses: Set<IPAddress>

    public init(context: SIPGatewayContext, limits: SIPLimits = .init()) {
        self.context = context
        self.limits = limits
        self.ownAddresses = Set([context.publicAddress, context.publicMediaAddress, context.insideAddress].map(\.unmapped))
    }

    /// The flows of live registrations, for NAT keep-alives.
    public var registeredFlows: [SIPFlow] {
        var seen = Set<SIPFlow>()
        for mapping in mappings.values where mapping.aor != nil && mapping.side == .outside {
            seen.insert(mapping.flow)
        }
        return Array(seen)
    }

    /// How many registrations and dialogs are alive (for tests and metrics).
    public var registrationCount: Int { mappings.values.filter { $0.aor != nil }.count }
    public var dialogCount: Int { dialogs.count }

    // MARK: Input

    /// Takes one complete message (a datagram, or a framed message from a stream).
    public mutating func receive(_ bytes: ByteBuffer, from flow: SIPFlow, side: SIPSide, now: Double) {
        if inbox.count >= 1024 {
            outbox.append(.report(.refused(reason: "too many messages queued behind media set-up", from: flow,
                                           answered: nil)))
            return
        }
        inbox.append(Inbound(bytes: bytes, flow: flow, side: side, now: now))
    }

    /// The next thing to do, or nil when the engine waits for input or for media relays.
    public mutating func nextAction() -> SIPGatewayAction? {
        while outbox.isEmpty, pending == nil, let next = inbox.popFirst() {
            handle(next)
        }
        return outbox.popFirst()
    }

    /// A relay asked for is open on these ports.
    public mutating func mediaOpened(id: UInt64, outsidePort: UInt16, insidePort: UInt16) {
        guard var waiting = pending, waiting.outstanding.remove(id) != nil else { return }
        waiting.work.relayPorts[id] = (outsidePort, insidePort)
        pending = waiting
        finishIfReady()
    }

    /// A relay asked for could not be opened: the message goes on with its media untouched is not an option (the
    /// private address would leak and media would fail), so a request is answered 503 and a response dropped.
    public mutating func mediaFailed(id: UInt64, reason: String) {
        guard var waiting = pending, waiting.outstanding.remove(id) != nil else { return }
        waiting.failure = reason
        pending = waiting
        finishIfReady()
    }

    /// A relay closed by itself (media timeout): the dialog forgets it.
    public mutating func mediaClosed(id: UInt64) {
        for (callID, var dialog) in dialogs {
            let before = dialog.streams.count
            dialog.streams = dialog.streams.filter { $0.value.relay != id }
            if dialog.streams.count != before {
                dialogs[callID] = dialog
                outbox.append(.report(.media(callID: callID, what: "relay \(id) timed out")))
            }
        }
    }

    /// A TCP connection went away: mappings that lived on it are dead.
    public mutating func connectionClosed(_ flow: SIPFlow) {
        if let connection = flow.connection { connectionRemotes[connection] = nil }
        for (token, mapping) in mappings where mapping.flow.connection == flow.connection
            && mapping.flow.transport == .tcp {
            removeMapping(token)
            if let aor = mapping.aor {
                outbox.append(.report(.binding(aor: aor, flow: mapping.flow, expires: 0)))
            }
        }
    }

    /// Drops registrations whose time is up.
    public mutating func expire(now: Double) {
        for (token, mapping) in mappings {
            if let expires = mapping.expires, expires <= now {
                removeMapping(token)
                if let aor = mapping.aor { outbox.append(.report(.binding(aor: aor, flow: mapping.flow, expires: 0))) }
            }
        }
    }

    // MARK: Messages

    private mutating func handle(_ inbound: Inbound) {
        if inbound.flow.transport == .tcp, let connection = inbound.flow.connection, inbound.flow.remote != context.upstream {
            connectionRemotes[connection] = inbound.flow.remote
        }
        let message: SIPMessage
        do {
            message = try SIPMessage.parse(inbound.bytes, limits: limits)
        } catch {
            refuseUnparsable(inbound, error)
            return
        }
        if message.isRequest, let problem = Self.routingProblem(message) {
            answer(message, to: inbound.flow, code: 400, reason: SIPResponseBuilder.badRequestReason(problem), why: problem)
            return
        }
        if message.isRequest, absorbAfterRefusal(message, flow: inbound.flow) { return }
        if message.isRequest, let admission, case let verdict = admission(message, inbound.flow, inbound.side),
           verdict != .admit {
            switch verdict {
            case .refuse(let code, let reason):
                answer(message, to: inbound.flow, code: code, reason: reason, why: "refused by policy")
            default:
                outbox.append(.report(.refused(reason: "dropped by policy", from: inbound.flow, answered: nil)))
            }
            return
        }
        var work = SIPMessageWork(message: message, flow: inbound.flow, side: inbound.side, now: inbound.now)
        switch message.startLine {
        case .request:
            guard route(request: &work) else { return }
        case .response:
            guard route(response: &work) else { return }
        }
        guard planMedia(&work) else { return }
        if work.relayRequests.isEmpty {
            finish(work)
        } else {
            pending = Pending(work: work, outstanding: Set(work.relayRequests.map(\.id)))
            for request in work.relayRequests { outbox.append(.openMedia(request)) }
        }
    }

    private mutating func finishIfReady() {
        guard let waiting = pending, waiting.outstanding.isEmpty else { return }
        pending = nil
        if let failure = waiting.failure {
            let work = waiting.work
            for (id, _) in work.relayPorts { outbox.append(.closeMedia(id: id)) }
            for request in work.relayRequests { forgetStream(relay: request.id, callID: work.callID) }
            if work.message.isRequest {
                answer(work.message, to: work.flow, code: 503, reason: "Service Unavailable",
                       why: "no media relay: \(failure)")
            } else {
                outbox.append(.report(.refused(reason: "no media relay: \(failure); response dropped",
                                               from: work.flow, answered: nil)))
            }
            return
        }
        finish(waiting.work)
    }

    /// Applies the media rewrite (ports now known) and sends.
    private mutating func finish(_ work: SIPMessageWork) {
        var work = work
        for (id, ports) in work.relayPorts {
            for index in work.streamRelays.keys where work.streamRelays[index] == id {
                dialogs[work.callID]?.streams[index] = MediaStream(relay: id, outsidePort: ports.0, insidePort: ports.1)
            }
        }
        if let sdp = work.sdp, let finding = rewriteSDP(&work, sdp) {
            // The rewrite left an address it must not pass: the relays this message asked for go, and so does it.
            for request in work.relayRequests {
                outbox.append(.closeMedia(id: request.id))
                forgetStream(relay: request.id, callID: work.callID)
            }
            refuseMedia(work, reason: "\(finding) after the rewrite")
            return
        }
        if work.destination.transport == .tcp {
            // Over UDP a message may do without Content-Length; over TCP it is what frames it (RFC 3261 18.3).
            work.editor.ensureContentLength()
        }
        let bytes = work.editor.build()
        outbox.append(.report(.forwarded(summary: work.summary, from: work.flow, to: work.destination)))
        outbox.append(.send(bytes, to: work.destination))
        if work.closesDialog, let dialog = dialogs.removeValue(forKey: work.callID) {
            for stream in dialog.streams.values { outbox.append(.closeMedia(id: stream.relay)) }
            outbox.append(.report(.media(callID: work.callID, what: "closed (\(work.summary))")))
        }
    }

    // MARK: Requests

    private mutating func route(request work: inout SIPMessageWork) -> Bool {
        let message = work.message
        guard case .request(let method, let uriRange) = message.startLine else { return false }
        if let maxForwards = message.maxForwards {
            if maxForwards == 0 {
                answer(message, to: work.flow, code: 483, reason: "Too Many Hops", why: "Max-Forwards is 0")
                return false
            }
            if let range = message.field(.maxForwards)?.valueRange {
                work.editor.replace(range, with: Array(String(maxForwards - 1).utf8))
            }
        }
        // Where it goes: requests to one of our contact mappings go to that party; anything else from outside
        // goes upstream; anything else from inside has no destination.
        let token = message.requestURI?.parameter(named: "algate")?.value
        if let token, var mapping = mappings[token], mapping.side != work.side {
            if mapping.aor == nil {
                mapping.expires = work.now + dialogMappingLifetime
                mappings[token] = mapping
            }
            work.destination = mapping.flow
            work.editor.replace(uriRange, with: mapping.originalURI)
        } else if work.side == .outside {
            work.destination = upstreamFlow(for: work.flow)
        } else {
            if method != "ACK" {
                answer(message, to: work.flow, code: 404, reason: "Not Found",
                       why: "request from upstream for no known contact")
            }
            return false
        }
        // RFC 3581 and 18.2.1: tell the next hop where the request really came from.
        if work.side == .outside {
            annotateReceived(&work, message.topVia)
        }
        let viaAddress = work.destination == upstreamFlow(for: work.flow) || work.side == .outside
            ? (context.insideAddress, context.insidePort) : (context.publicAddress, context.publicPort)
        var branch = SIPGatewayStateMachine.branch(for: message, flow: work.flow, salt: tokenSalt)
        if work.flow.transport == .tcp, let connection = work.flow.connection, work.side == .inside,
           work.flow.remote != context.upstream {
            // A request that came on a connection the upstream opened to us: its response must go back on it.
            branch += ".c\(connection)"
        }
        var via = Array("Via: SIP/2.0/\(work.destination.transport.viaToken) ".utf8)
        SIPGatewayStateMachine.appendHostPort(viaAddress.0, viaAddress.1, to: &via)
        via.append(contentsOf: Array(";branch=\(branch)\r\n".utf8))
        work.editor.insertHeaderLine(via, before: message.field(.via)?.lineRange.lowerBound ?? message.headerEnd)
        rewriteContacts(&work, registering: method == "REGISTER")
        stripOwnRoutes(&work)
        if ["INVITE", "SUBSCRIBE", "REFER"].contains(method), message.to.tag == nil {
            recordRoute(&work)
        }
        work.summary = "\(method) \(message.text(uriRange))"
        switch method {
        case "BYE", "CANCEL": work.closesDialog = true
        default: break
        }
        return true
    }

    private mutating func annotateReceived(_ work: inout SIPMessageWork, _ via: SIPVia) {
        let source = work.flow.remote
        // What the sender wrote about where it is counts for nothing: received and rport always say where the
        // request really came from, or a forged received= would send the responses to a third host.
        var received = Array(";received=".utf8)
        source.address.appendASCII(to: &received)
        if let existing = via.parameter(named: "received") {
            work.editor.replace(existing.range, with: received)
        } else if via.host.address.map({ !$0.isSameHost(as: source.address) }) ?? true || via.hasRPort {
            work.editor.insert(received, at: via.parametersEnd)
        }
        if let rport = via.parameter(named: "rport") {
            // The parameter's range starts at its ';'.
            work.editor.replace(rport.range, with: Array(";rport=\(source.port)".utf8))
        }
    }

    /// Double Record-Route (RFC 5658): the gateway stays in the path of the dialog, and each side's route set
    /// names the gateway by the address that side can reach, never a proxy's private address first.
    private mutating func recordRoute(_ work: inout SIPMessageWork) {
        let towardsInside = work.side == .outside
        // The entry nearest the callee comes first: the interface the request leaves by.
        let order = towardsInside
            ? [(context.insideAddress, context.insidePort), (context.publicAddress, context.publicPort)]
            : [(context.publicAddress, context.publicPort), (context.insideAddress, context.insidePort)]
        var lines = [UInt8]()
        for (address, port) in order {
            lines.append(contentsOf: "Record-Route: <sip:".utf8)
            SIPGatewayStateMachine.appendHostPort(address, port, to: &lines)
            if work.flow.transport == .tcp { lines.append(contentsOf: ";transport=tcp".utf8) }
            lines.append(contentsOf: ";lr>\r\n".utf8)
        }
        let message = work.message
        let at = message.fields(.recordRoute).first?.lineRange.lowerBound
            ?? message.field(.callID)?.lineRange.lowerBound ?? message.headerEnd
        work.editor.insertHeaderLine(lines, before: at)
    }

    /// Removes the Route entries that name this gateway (it is where the request already is): the pair its double
    /// Record-Route put at the top of the sender's route set, one entry for each of its addresses, in either order.
    /// No more than that pair: in transparent mode the public address is the upstream's own, which the upstream
    /// may name in its own Record-Route right below (that entry is the upstream's, and must stay).
    private mutating func stripOwnRoutes(_ work: inout SIPMessageWork) {
        let message = work.message
        var unused = [(context.publicAddress, context.publicPort), (context.insideAddress, context.insidePort)]
        var ours: [SIPNameAddress] = []
        for route in message.routes {
            guard let address = route.uri.host.address,
                  let index = unused.firstIndex(where: { address.isSameHost(as: $0.0) && (route.uri.port ?? 5060) == $0.1 })
            else { break }
            unused.remove(at: index)
            ours.append(route)
            if unused.isEmpty { break }
        }
        guard !ours.isEmpty else { return }
        for field in message.fields(.route) {
            let values = message.routes.filter { field.valueRange.contains($0.range.lowerBound) }
            let mine = values.filter { value in ours.contains { $0.range == value.range } }
            if mine.count == values.count {
                work.editor.removeRange(field.lineRange)
            } else if let first = mine.first, let removal = message.removalRange(ofValue: first.range) {
                // Ours come first in a field; one at a time keeps the removals apart.
                work.editor.removeRange(removal)
            }
        }
    }

    // MARK: Responses

    private mutating func route(response work: inout SIPMessageWork) -> Bool {
        let message = work.message
        guard case .response(let code) = message.startLine else { return false }
        let top = message.topVia
        guard top.branch?.hasPrefix(SIPGatewayStateMachine.branchPrefix) == true,
              let removal = message.removalRange(ofValue: top.range) else {
            outbox.append(.report(.refused(reason: "response whose top Via is not this gateway's", from: work.flow,
                                           answered: nil)))
            return false
        }
        if SIPDialogTeardown.answersOwnRequest(message) {
            outbox.append(.report(.refused(reason: "answer to a request algate sent itself; absorbed", from: work.flow,
                                           answered: nil)))
            return false
        }
        if message.cseq?.method == "INVITE", refusedCalls.contains(work.callID) {
            // The caller was already told 500: nothing more of this INVITE crosses; a 2xx gets its ACK and BYE.
            if (200..<300).contains(code) { endCalleeDialog(work) }
            outbox.append(.report(.refused(reason: "response for a call algate ended; not forwarded", from: work.flow,
                                           answered: nil)))
            return false
        }
        work.editor.removeRange(removal)
        if work.side == .inside {
            guard message.vias.count > 1 else {
                outbox.append(.report(.refused(reason: "response with no Via left to follow", from: work.flow,
                                               answered: nil)))
                return false
            }
            let next = message.vias[1]
            let address = next.received ?? next.host.address
            guard let address else {
                outbox.append(.report(.refused(reason: "response to a Via host that is a name", from: work.flow,
                                               answered: nil)))
                return false
            }
            let port = next.rport ?? next.port ?? 5060
            var remote = Endpoint(address: address, port: port)
            if work.flow.transport == .tcp, let connection = work.flow.connection, let known = connectionRemotes[connection] {
                // Over TCP the response goes back on the request's connection, whatever the Via says.
                remote = known
            }
            work.destination = SIPFlow(transport: work.flow.transport, remote: remote, connection: work.flow.connection)
        } else if let connection = SIPGatewayStateMachine.connection(inBranch: top.branch),
                  let remote = connectionRemotes[connection] {
            work.destination = SIPFlow(transport: .tcp, remote: remote, connection: connection)
        } else {
            work.destination = upstreamFlow(for: work.flow)
        }
        let cseqMethod = message.cseq?.method ?? ""
        rewriteContacts(&work, registering: cseqMethod == "REGISTER", response: true)
        work.summary = "\(code) (\(cseqMethod))"
        if cseqMethod == "INVITE" {
            if (200..<300).contains(code) {
                dialogs[work.callID]?.established = true
            } else if code >= 300, dialogs[work.callID]?.established != true {
                work.closesDialog = true
            }
        }
        return true
    }

    // MARK: Contacts

    private mutating func rewriteContacts(_ work: inout SIPMessageWork, registering: Bool, response: Bool = false) {
        let message = work.message
        let expiresHeader = message.field(.expires).flatMap { Int(message.text($0.valueRange)) }
        for contact in message.contacts {
            let uri = message.byteArray(contact.uriRange)
            let contactExpires = contact.parameter(named: "expires")?.value.flatMap { Int($0) }
            if registering, response {
                // The registrar lists our mapped contacts: give the phone its own back, and learn the expiry.
                guard let token = contact.uri.parameter(named: "algate")?.value, var mapping = mappings[token] else {
                    continue
                }
                work.editor.replace(contact.uriRange, with: mapping.originalURI)
                if let code = message.statusCode, (200..<300).contains(code) {
                    let seconds = contactExpires ?? expiresHeader ?? 3600
                    if seconds == 0 {
                        removeMapping(token)
                    } else {
                        mapping.expires = work.now + Double(seconds)
                        mappings[token] = mapping
                    }
                    if let aor = mapping.aor {
                        outbox.append(.report(.binding(aor: aor, flow: mapping.flow, expires: seconds)))
                    }
                }
                continue
            }
            // A contact from this side: requests to it must come back through us and go to this flow.
            let aor = registering ? message.text(message.to.uriRange) : nil
            let requested = registering ? (contactExpires ?? expiresHeader ?? 3600) : nil
            let token = mapping(for: uri, flow: work.flow, side: work.side, aor: aor,
                                expires: requested.map { work.now + Double(max($0, 60)) } ?? work.now + dialogMappingLifetime,
                                callID: registering ? nil : work.callID)
            let towardsInside = work.side == .outside
            let host = towardsInside ? (context.insideAddress, context.insidePort) : (context.publicAddress, context.publicPort)
            var replacement = Array("sip:".utf8)
            if let userRange = contact.uri.userRange {
                replacement.append(contentsOf: message.byteArray(userRange))
                replacement.append(UInt8(ascii: "@"))
            }
            SIPGatewayStateMachine.appendHostPort(host.0, host.1, to: &replacement)
            if work.destination.transport == .tcp { replacement.append(contentsOf: ";transport=tcp".utf8) }
            replacement.append(contentsOf: ";algate=\(token)".utf8)
            if !contact.hasAngleBrackets {
                // Without <>, a ;param after the URI belongs to the header: the mapping must sit inside the URI.
                replacement.insert(UInt8(ascii: "<"), at: 0)
                replacement.append(UInt8(ascii: ">"))
            }
            work.editor.replace(contact.uriRange, with: replacement)
            if registering, requested == 0 {
                // De-registration: forward it, then forget the mapping (the 200 confirms nothing we need).
                removeMapping(token)
                if let aor { outbox.append(.report(.binding(aor: aor, flow: work.flow, expires: 0))) }
            }
        }
    }

    /// The token of the mapping for this contact on this flow, made on first sight and reused after, so a
    /// registrar sees the same contact on every refresh.
    private mutating func mapping(for uri: [UInt8], flow: SIPFlow, side: SIPSide, aor: String?, expires: Double?,
                                  callID: String?) -> String {
        let key = "\(flow)|\(side.rawValue)|" + String(decoding: uri, as: UTF8.self)
        if let token = mappingByKey[key], var existing = mappings[token] {
            if let expires {
                // A registration refresh sets its expiry; a dialog using the same contact only extends it, so
                // the mapping outlives neither the registration nor the call.
                existing.expires = aor != nil ? expires : max(existing.expires ?? 0, expires)
            }
            if let aor { existing.aor = aor }
            mappings[token] = existing
            return token
        }
        if mappings.count >= maxMappings {
            // Evict the dialog mapping closest to expiry (registrations are kept: inbound calls need them).
            let victim = mappings.filter { $0.value.aor == nil }.min { ($0.value.expires ?? 0) < ($1.value.expires ?? 0) }
            if let victim { removeMapping(victim.key) }
        }
        let token = SIPGatewayStateMachine.token(nextID, salt: tokenSalt)
        nextID += 1
        mappings[token] = ContactMapping(flow: flow, side: side, originalURI: uri, aor: aor, expires: expires,
                                         callID: callID)
        mappingByKey[key] = token
        return token
    }

    private mutating func removeMapping(_ token: String) {
        guard let mapping = mappings.removeValue(forKey: token) else { return }
        let key = "\(mapping.flow)|\(mapping.side.rawValue)|" + String(decoding: mapping.originalURI, as: UTF8.self)
        mappingByKey[key] = nil
    }

    // MARK: Media

    /// Decides which relays the message's SDP needs; the rewrite waits until they are open. False when the message
    /// was refused instead: an SDP the gateway cannot rewrite must not cross (it would carry the sender's addresses
    /// and no relay would stand behind it).
    private mutating func planMedia(_ work: inout SIPMessageWork) -> Bool {
        let found: Range<Int>?
        do {
            found = try SIPMultipart.sdpBody(of: work.message, limits: limits)
        } catch {
            refuseMedia(work, reason: "SDP body cannot be read: \(error.explanation)")
            return false
        }
        guard let sdpRange = found else { return true }
        let message = work.message
        let parsed = message.bytes.withUnsafeReadableBytes { bytes -> Result<SDPSessionDescription, SIPParseError> in
            let body = UnsafeRawBufferPointer(rebasing: bytes[sdpRange])
            // A datagram longer than its Content-Length, cut inside an SDP line: what is left may parse, wrongly.
            if message.discardedBytes > 0, sdpRange.upperBound == message.body.upperBound, let last = body.last,
               last != ASCII.lf {
                return .failure(.badSDP(line: 0))
            }
            do throws(SIPParseError) {
                return .success(try SDPSessionDescription.parse(body))
            } catch {
                return .failure(error)
            }
        }
        let sdp: SDPSessionDescription
        switch parsed {
        case .success(let description):
            sdp = description
        case .failure(.badSDP(line: 0)):
            refuseMedia(work, reason: "SDP cut short by its Content-Length")
            return false
        case .failure(let error):
            refuseMedia(work, reason: "SDP does not parse: \(error.explanation)")
            return false
        }
        if sdp.connection.map({ !$0.isInternet }) == true || sdp.origin.map({ !$0.isInternet }) == true
            || sdp.media.contains(where: { $0.connections.contains { !$0.isInternet } }) {
            refuseMedia(work, reason: "SDP names a network type other than IN IP4/IP6")
            return false
        }
        work.sdp = (sdpRange, sdp)
        if dialogs[work.callID] == nil {
            dialogs[work.callID] = Dialog(id: nextID)
            nextID += 1
        }
        let outsideAllowed = work.side == .outside ? work.flow.remote.address : work.destination.remote.address
        // BUNDLE (RFC 9143): m= lines that name the same address and port are one transport, so one relay.
        // (A few m= lines at most: a scan of the earlier ones costs nothing a table would save.)
        for (index, media) in sdp.media.enumerated() where !media.isDisabled {
            var peer: Endpoint? = nil
            if let address = sdp.connectionAddress(of: media), !SDPSessionDescription.isUnspecified(address) {
                peer = Endpoint(address: address, port: media.port)
            }
            if let peer, let first = sdp.media[..<index].indices.first(where: { earlier in
                !sdp.media[earlier].isDisabled && sdp.media[earlier].port == peer.port
                    && sdp.connectionAddress(of: sdp.media[earlier]) == peer.address
            }) {
                if let relay = work.streamRelays[first] { work.streamRelays[index] = relay }
                continue
            }
            let rtcp = media.rtcp?.port
            if let stream = dialogs[work.callID]?.streams[index] {
                work.streamRelays[index] = stream.relay
                work.relayPorts[stream.relay] = (stream.outsidePort, stream.insidePort)
                outbox.append(work.side == .outside
                    ? .updateMedia(id: stream.relay, outsidePeer: peer, outsideRTCPPort: rtcp, insidePeer: nil, insideRTCPPort: nil)
                    : .updateMedia(id: stream.relay, outsidePeer: nil, outsideRTCPPort: nil, insidePeer: peer, insideRTCPPort: rtcp))
            } else {
                let id = nextID
                nextID += 1
                work.streamRelays[index] = id
                work.relayRequests.append(SIPMediaRequest(
                    id: id, callID: work.callID, dialog: dialogs[work.callID]?.id ?? 0,
                    outsidePeer: work.side == .outside ? peer : nil, insidePeer: work.side == .inside ? peer : nil,
                    outsideRTCPPort: work.side == .outside ? rtcp : nil, insideRTCPPort: work.side == .inside ? rtcp : nil,
                    outsideAllowed: outsideAllowed))
            }
        }
        return true
    }

    /// A message whose SDP cannot be rewritten does not cross. A request is answered 488 (an ACK, which cannot be
    /// answered, is dropped). A response is not forwarded: the party that asked gets a 500 in its place and, when
    /// it was a 2xx to an INVITE, the callee gets an ACK and a BYE, so that no half-call stays up; the call's
    /// relays close and its later responses end here too.
    private mutating func refuseMedia(_ work: SIPMessageWork, reason: String) {
        let message = work.message
        if message.isRequest {
            if message.method == "ACK" {
                outbox.append(.report(.refused(reason: reason + "; ACK dropped", from: work.flow, answered: nil)))
            } else {
                answer(message, to: work.flow, code: 488, reason: "Not Acceptable Here", why: reason)
            }
            return
        }
        outbox.append(.report(.refused(reason: reason + "; response not forwarded", from: work.flow, answered: 500)))
        if let replacement = SIPDialogTeardown.replacement(for: message, code: 500, reason: "Server Internal Error") {
            outbox.append(.send(replacement, to: work.destination))
        }
        guard message.cseq?.method == "INVITE" else { return }
        refusedCalls.insert(work.callID)
        if message.vias.count > 1 {
            // The caller's ACK of the 500 carries its INVITE's branch: it ends here.
            refusedInvites.insert(work.callID + "|" + (message.vias[1].branch ?? ""))
        }
        if let code = message.statusCode, (200..<300).contains(code) { endCalleeDialog(work) }
        if let dialog = dialogs.removeValue(forKey: work.callID) {
            for stream in Set(dialog.streams.values.map(\.relay)) { outbox.append(.closeMedia(id: stream)) }
            outbox.append(.report(.media(callID: work.callID, what: "closed (\(reason))")))
        }
    }

    /// ACK and BYE to the callee of a 2xx the gateway did not pass on, from the gateway's address on its side.
    private mutating func endCalleeDialog(_ work: SIPMessageWork) {
        let (address, port) = work.side == .inside ? (context.insideAddress, context.insidePort)
                                                   : (context.publicAddress, context.publicPort)
        var via = Array("SIP/2.0/\(work.flow.transport.viaToken) ".utf8)
        Self.appendHostPort(address, port, to: &via)
        let seed = Self.token(nextID, salt: tokenSalt)
        nextID += 1
        let ours = [(context.publicAddress, context.publicPort), (context.insideAddress, context.insidePort)]
        let isOwn: (SIPNameAddress) -> Bool = { route in
            guard let host = route.uri.host.address else { return false }
            return ours.contains { host.isSameHost(as: $0.0) && (route.uri.port ?? 5060) == $0.1 }
        }
        guard let (ack, bye) = SIPDialogTeardown.ackAndBye(for: work.message, via: via, branchSeed: seed, isOwn: isOwn)
        else { return }
        outbox.append(.send(ack, to: work.flow))
        outbox.append(.send(bye, to: work.flow))
        outbox.append(.report(.media(callID: work.callID, what: "ended at the callee (ACK and BYE sent)")))
    }

    private mutating func forgetStream(relay: UInt64, callID: String) {
        guard var dialog = dialogs[callID] else { return }
        dialog.streams = dialog.streams.filter { $0.value.relay != relay }
        dialogs[callID] = dialog
    }

    /// Points the SDP at the relays, then audits what would go out; returns what the audit found (nothing is
    /// changed in the editor then), or nil when the rewritten SDP may cross.
    private func rewriteSDP(_ work: inout SIPMessageWork,
                            _ sdp: (range: Range<Int>, description: SDPSessionDescription)) -> SDPAddressAudit.Finding? {
        // What goes inside names the gateway's inside address and the relays' inside ports, and vice versa.
        let towardsInside = work.side == .outside
        let address = towardsInside ? context.insideAddress : context.publicMediaAddress
        var targets = [SDPRewrite.Target?](repeating: nil, count: sdp.description.media.count)
        for (index, relay) in work.streamRelays where index < targets.count {
            guard let ports = work.relayPorts[relay] else { continue }
            let port = towardsInside ? ports.1 : ports.0
            targets[index] = SDPRewrite.Target(address: address, port: port, rtcpPort: port &+ 1)
        }
        let rewrite = SDPRewrite(media: targets, sessionAddress: address, ice: ice)
        let ownAddresses = self.ownAddresses
        let finding = work.message.bytes.withUnsafeReadableBytes { raw -> SDPAddressAudit.Finding? in
            let body = UnsafeRawBufferPointer(rebasing: raw[sdp.range])
            var forbidden = SDPAddressAudit.announcedAddresses(sdp.description, body: body, candidates: ice != .pass)
            if work.side == .inside { forbidden.insert(context.upstream.address.unmapped) }
            forbidden.subtract(ownAddresses)
            let rewritten = rewrite.apply(to: sdp.description, body: body)
            return rewritten.withUnsafeBytes {
                SDPAddressAudit.firstForbidden(in: $0, forbidden: forbidden, networks: insideNetworks,
                                               allowed: ownAddresses, skippingCandidates: ice == .pass)
            }
        }
        if let finding { return finding }
        rewrite.apply(to: sdp.description, at: sdp.range, in: &work.editor)
        work.summary += " [SDP: \(targets.compactMap { $0 }.count) stream(s) via \(address)]"
        return nil
    }

    // MARK: Helpers

    private func upstreamFlow(for flow: SIPFlow) -> SIPFlow {
        SIPFlow(transport: flow.transport, remote: context.upstream, connection: flow.transport == .tcp ? flow.connection : nil)
    }

    /// Answers a request the gateway itself refuses (400, 404, 483, 488, 503), built from the request's own
    /// headers. A refused INVITE is remembered, so that its CANCEL and its ACK end here too: the other side never
    /// saw the INVITE.
    private mutating func answer(_ message: SIPMessage, to flow: SIPFlow, code: Int, reason: String, why: String) {
        outbox.append(.report(.refused(reason: why, from: flow, answered: code)))
        if message.method == "INVITE" { refusedInvites.insert(Self.transactionKey(message)) }
        if let response = SIPResponseBuilder.response(to: message, code: code, reason: reason) {
            outbox.append(.send(response, to: flow))
        }
    }

    /// A CANCEL or ACK of an INVITE the gateway answered itself ends here: the CANCEL gets its 200 (RFC 3261 9.2:
    /// it matched a transaction, which is already answered), the ACK of the refusal is absorbed.
    private mutating func absorbAfterRefusal(_ message: SIPMessage, flow: SIPFlow) -> Bool {
        guard message.method == "CANCEL" || message.method == "ACK", refusedInvites.count > 0,
              refusedInvites.contains(Self.transactionKey(message)) else { return false }
        if message.method == "CANCEL", let ok = SIPResponseBuilder.response(to: message, code: 200, reason: "OK") {
            outbox.append(.report(.refused(reason: "CANCEL of an INVITE algate refused; answered here", from: flow,
                                           answered: 200)))
            outbox.append(.send(ok, to: flow))
        } else {
            outbox.append(.report(.refused(reason: "ACK of an INVITE algate refused; absorbed", from: flow,
                                           answered: nil)))
        }
        return true
    }

    private mutating func refuseUnparsable(_ inbound: Inbound, _ error: SIPParseError) {
        let explanation = error.explanation
        if case let (code, response?) = SIPResponseBuilder.refusal(inbound.bytes, error: error) {
            outbox.append(.report(.refused(reason: explanation, from: inbound.flow, answered: code)))
            outbox.append(.send(response, to: inbound.flow))
        } else {
            outbox.append(.report(.refused(reason: explanation, from: inbound.flow, answered: nil)))
        }
    }

    static let branchPrefix = "z9hG4bK-ag"

    /// A branch derived from the request's own top branch and where it came from (RFC 3261 16.11), so that a
    /// retransmission, and the CANCEL or non-2xx ACK of an INVITE, get the same branch.
    static func branch(for message: SIPMessage, flow: SIPFlow, salt: UInt64) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        mix((message.topVia.branch ?? message.callID).utf8)
        mix(flow.description.utf8)
        return branchPrefix + String(hash, radix: 36)
    }

    /// The connection number a branch carries (`...c7`), if any.
    static func connection(inBranch branch: String?) -> UInt64? {
        guard let branch, let last = branch.split(separator: ".").last, last.first == "c",
              branch.split(separator: ".").count > 1 else { return nil }
        return UInt64(last.dropFirst())
    }

    static func token(_ counter: UInt64, salt: UInt64) -> String {
        var value = counter &* 0x9E37_79B9_7F4A_7C15 ^ salt
        value ^= value >> 29
        return String(value, radix: 36)
    }

    static func appendHostPort(_ address: IPAddress, _ port: UInt16, to out: inout [UInt8]) {
        if address.isIPv4 {
            address.appendASCII(to: &out)
        } else {
            out.append(ASCII.openBracket)
            address.appendASCII(to: &out)
            out.append(ASCII.closeBracket)
        }
        out.append(ASCII.colon)
        ASCII.appendDecimal(Int(port), to: &out)
    }
}

/// One message on its way through the engine: the parsed message, the edits so far, and its media plan.
struct SIPMessageWork: Sendable {
    var message: SIPMessage
    var flow: SIPFlow
    var side: SIPSide
    var now: Double
    var editor: SIPMessageEditor
    var destination: SIPFlow
    var callID: String
    var summary = ""
    var closesDialog = false
    var sdp: (range: Range<Int>, description: SDPSessionDescription)?
    /// m= line index -> relay id.
    var streamRelays: [Int: UInt64] = [:]
    /// relay id -> (outside port, inside port), once known.
    var relayPorts: [UInt64: (UInt16, UInt16)] = [:]
    var relayRequests: [SIPMediaRequest] = []

    init(message: SIPMessage, flow: SIPFlow, side: SIPSide, now: Double) {
        self.message = message
        self.flow = flow
        self.side = side
        self.now = now
        self.editor = SIPMessageEditor(message)
        self.destination = flow
        self.callID = message.callID
    }
}
