public import NIOCore

/// Points the media of an SDP body at new addresses and ports, changing nothing but the o= address, the c=
/// addresses, the m= ports and a=rtcp (RFC 3605), and adding a line only where the old body cannot say the new
/// thing otherwise.
///
/// Per m= line (in order) a ``Target`` gives the new address, port and optionally RTCP port; a nil target, or a
/// media with port 0 (a disabled stream, RFC 3264), is left alone. Rules:
///
/// - o= and the session-level c= get ``sessionAddress`` (by default the first target's address).
/// - A media with its own c= gets the target address there. One that inherits the session c= is covered by the
///   session c= when the addresses agree; otherwise it gets its own `c=` line (after the m= and i= lines).
/// - A media left alone that inherited a session c= which changed gets its own c= line holding the old one's
///   text, so it keeps going where it went.
/// - Hold is preserved: a c= (or o=, or a=rtcp address) of `0.0.0.0` or `::` stays as it is, and direction
///   attributes (a=sendonly, a=inactive, ...) are never touched.
/// - When the address family changes, `IP4`/`IP6` changes with it.
/// - a=rtcp gets the target's RTCP port (and the target address if it names one). Without an a=rtcp line, one is
///   added when the RTCP port is not the RTP port + 1 (RFC 3605's reason to exist) and a=rtcp-mux is absent. A nil
///   RTCP port leaves a=rtcp alone. With a=rtcp-mux (RFC 5761) RTCP shares the RTP port: an a=rtcp line names the
///   target's RTP port, and no separate RTCP port is announced.
/// - Disabled streams (port 0) keep their port, but a c= or a=rtcp address of theirs gets the session address too:
///   a stream nobody will send to must still not name where the sender is.
/// - ICE (RFC 8839), by ``ice``: `replace` swaps the a=candidate lines of a relayed stream for host candidates on
///   the target (component 1 on the RTP port, component 2 on the RTCP port unless rtcp-mux), drops its
///   a=remote-candidates (the relay makes each stream one candidate pair, so there is nothing to select), and drops
///   the candidates of streams without a target; `strip` removes every candidate, remote-candidates and ICE
///   attribute line (ufrag, pwd, options, lite, ...), so the peers fall back to c= and m=; `pass` leaves them.
///   a=fingerprint, a=setup, a=crypto, and in `replace` mode a=ice-ufrag/a=ice-pwd, are never touched: the relay
///   is transparent to STUN checks, DTLS-SRTP and SRTP.
public struct SDPRewrite: Hashable, Sendable {
    /// What happens to ICE candidates (RFC 8839) in the streams the rewrite points elsewhere.
    public enum ICEMode: String, Hashable, Sendable, CaseIterable {
        /// Candidates for the target replace the sender's (the default: what media anchors do).
        case replace
        /// Every candidate and ICE attribute goes: the peers use c= and m=.
        case strip
        /// Candidates are left as they are (they keep the sender's addresses).
        case pass
    }

    /// Where one media stream must go now.
    public struct Target: Hashable, Sendable {
        public var address: IPAddress
        public var port: UInt16
        public var rtcpPort: UInt16?

        public init(address: IPAddress, port: UInt16, rtcpPort: UInt16? = nil) {
            self.address = address
            self.port = port
            self.rtcpPort = rtcpPort
        }
    }

    /// One change to the body: replace `range` (empty for an insertion) with `bytes`.
    public struct Edit: Hashable, Sendable {
        public var range: Range<Int>
        public var bytes: [UInt8]
    }

    /// Per m= line, in order; nil, or an index past the end, leaves that media alone.
    public var media: [Target?]
    /// The address for o= and the session-level c=; nil means the first target's address.
    public var sessionAddress: IPAddress?
    public var ice: ICEMode

    public init(media: [Target?], sessionAddress: IPAddress? = nil, ice: ICEMode = .replace) {
        self.media = media
        self.sessionAddress = sessionAddress
        self.ice = ice
    }

    /// The edits, sorted by offset and not overlapping; offsets are those of `body`, the bytes `sdp` was parsed from.
    public func edits(for sdp: SDPSessionDescription, body: UnsafeRawBufferPointer) -> [Edit] {
        var edits: [Edit] = []
        let targets = sdp.media.indices.map { index -> Target? in
            index < media.count && !sdp.media[index].isDisabled ? media[index] : nil
        }
        let newSessionAddress = sessionAddress ?? targets.lazy.compactMap { $0 }.first?.address

        if let newSessionAddress, let origin = sdp.origin, origin.isInternet, !origin.isUnspecified {
            edits += Self.address(newSessionAddress, at: origin.addressRange, type: origin.addressTypeRange,
                                  wasIPv6: origin.isIPv6)
        }
        var sessionConnectionChanged = false
        if let newSessionAddress, let connection = sdp.connection, connection.isInternet, !connection.isUnspecified {
            edits += Self.address(newSessionAddress, at: connection.addressRange, type: connection.addressTypeRange,
                                  wasIPv6: connection.isIPv6)
            sessionConnectionChanged = true
        }

        for line in sdp.sessionICELines {
            // Strip takes every ICE line; replace takes the candidates misplaced at session level, since no
            // relay stands behind them.
            let isCandidate = Self.startsWith(body, line, "a=candidate") || Self.startsWith(body, line, "a=remote-candidates")
            if ice == .strip || (ice == .replace && isCandidate) { edits.append(Edit(range: line, bytes: [])) }
        }
        for (index, item) in sdp.media.enumerated() {
            guard let target = targets[index] else {
                if item.isDisabled, let newSessionAddress {
                    // Nothing is sent to a disabled stream, but its lines must not say where the sender is.
                    for connection in item.connections where connection.isInternet && !connection.isUnspecified {
                        edits += Self.address(newSessionAddress, at: connection.addressRange,
                                              type: connection.addressTypeRange, wasIPv6: connection.isIPv6)
                    }
                    if let rtcp = item.rtcp, let range = rtcp.addressRange, let type = rtcp.addressTypeRange,
                       rtcp.isInternet, !rtcp.isUnspecified {
                        edits += Self.address(newSessionAddress, at: range, type: type, wasIPv6: rtcp.isIPv6)
                    }
                } else if item.connections.isEmpty, sessionConnectionChanged, let connection = sdp.connection {
                    // Keep a media we leave alone where the old session c= sent it.
                    var line = Array(body[connection.lineRange])
                    if line.last != ASCII.lf { line += sdp.lineEnding }
                    edits.append(Self.insertion(line, at: item.connectionInsertionPoint, body: body, sdp: sdp))
                }
                if ice != .pass {
                    // No relay, so nothing to offer in place of the sender's own candidates.
                    for line in item.candidateLines + item.remoteCandidateLines { edits.append(Edit(range: line, bytes: [])) }
                    if ice == .strip { for line in item.iceLines { edits.append(Edit(range: line, bytes: [])) } }
                }
                continue
            }
            edits += iceEdits(item, target: target, sdp: sdp, body: body)
            edits.append(Edit(range: item.portRange, bytes: Self.decimal(Int(target.port))))
            if item.connections.isEmpty {
                let covered = sessionConnectionChanged && newSessionAddress == target.address
                let onHold = sdp.connection?.isUnspecified ?? false
                if !covered, !onHold {
                    var line = Array("c=IN ".utf8) + (target.address.unmapped.isIPv4 ? Array("IP4 ".utf8)
                                                                                       : Array("IP6 ".utf8))
                    target.address.unmapped.appendASCII(to: &line)
                    line += sdp.lineEnding
                    edits.append(Self.insertion(line, at: item.connectionInsertionPoint, body: body, sdp: sdp))
                }
            } else {
                for connection in item.connections where connection.isInternet && !connection.isUnspecified {
                    edits += Self.address(target.address, at: connection.addressRange,
                                          type: connection.addressTypeRange, wasIPv6: connection.isIPv6)
                }
            }
            guard let rtcpPort = item.rtcpMux ? target.port : target.rtcpPort else { continue }
            if let rtcp = item.rtcp {
                edits.append(Edit(range: rtcp.portRange, bytes: Self.decimal(Int(rtcpPort))))
                if let range = rtcp.addressRange, let type = rtcp.addressTypeRange, rtcp.isInternet,
                   !rtcp.isUnspecified {
                    edits += Self.address(target.address, at: range, type: type, wasIPv6: rtcp.isIPv6)
                }
            } else if !item.rtcpMux, Int(rtcpPort) != Int(target.port) + 1 {
                let line = Array("a=rtcp:".utf8) + Self.decimal(Int(rtcpPort)) + sdp.lineEnding
                edits.append(Self.insertion(line, at: item.range.upperBound, body: body, sdp: sdp))
            }
        }
        // Sort by offset, insertions before a replacement at the same offset, otherwise in the order made.
        return edits.enumerated().sorted { left, right in
            if left.element.range.lowerBound != right.element.range.lowerBound {
                return left.element.range.lowerBound < right.element.range.lowerBound
            }
            if left.element.range.isEmpty != right.element.range.isEmpty { return left.element.range.isEmpty }
            return left.offset < right.offset
        }.map(\.element)
    }

    /// The rewritten body.
    public func apply(to sdp: SDPSessionDescription, body: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 128)
        var cursor = 0
        for edit in edits(for: sdp, body: body) {
            out += body[cursor..<edit.range.lowerBound]
            out += edit.bytes
            cursor = edit.range.upperBound
        }
        out += body[cursor...]
        return out
    }

    /// The rewritten body, from and to a ByteBuffer.
    public func apply(to sdp: SDPSessionDescription, body: ByteBuffer) -> ByteBuffer {
        body.withUnsafeReadableBytes { raw in ByteBuffer(bytes: apply(to: sdp, body: raw)) }
    }

    /// Adds the edits to a message editor, for an SDP that sits at `sdpRange` of the editor's message (from
    /// ``SIPMultipart/sdpBody(of:limits:)``). Content-Length then follows by itself. False when the editor refused
    /// an edit (see ``SIPMessageEditor/conflicts``).
    @discardableResult
    public func apply(to sdp: SDPSessionDescription, at sdpRange: Range<Int>,
                      in editor: inout SIPMessageEditor) -> Bool {
        var accepted = true
        let offset = sdpRange.lowerBound
        let edits = editor.message.bytes.withUnsafeReadableBytes { raw in
            self.edits(for: sdp, body: UnsafeRawBufferPointer(rebasing: raw[sdpRange]))
        }
        for edit in edits {
            let range = (edit.range.lowerBound + offset)..<(edit.range.upperBound + offset)
            accepted = editor.replace(range, with: edit.bytes) && accepted
        }
        return accepted
    }

    // MARK: Pieces

    /// The ICE edits of a stream with a target: its candidates replaced or removed, per ``ice``.
    func iceEdits(_ item: SDPSessionDescription.Media, target: Target, sdp: SDPSessionDescription,
                  body: UnsafeRawBufferPointer) -> [Edit] {
        switch ice {
        case .pass:
            return []
        case .strip:
            return (item.candidateLines + item.remoteCandidateLines + item.iceLines).map { Edit(range: $0, bytes: []) }
        case .replace:
            guard let first = item.candidateLines.first else {
                return item.remoteCandidateLines.map { Edit(range: $0, bytes: []) }
            }
            // Where the first candidate was, the relay's: one host candidate per component.
            var lines: [UInt8] = []
            let rtcpPort = item.rtcpMux ? nil : (target.rtcpPort ?? target.port &+ 1)
            for (component, port) in [(1, target.port)] + (rtcpPort.map { [(2, $0)] } ?? []) {
                lines += Self.hostCandidate(component: component, address: target.address, port: port)
                lines += sdp.lineEnding
            }
            var edits = [Edit(range: first.lowerBound..<first.lowerBound, bytes: lines)]
            for line in item.candidateLines + item.remoteCandidateLines { edits.append(Edit(range: line, bytes: [])) }
            return edits
        }
    }

    static func startsWith(_ body: UnsafeRawBufferPointer, _ line: Range<Int>, _ prefix: String) -> Bool {
        let bytes = Array(prefix.utf8)
        guard line.count >= bytes.count else { return false }
        return zip(body[line.lowerBound..<(line.lowerBound + bytes.count)], bytes).allSatisfy { ASCII.lower($0) == $1 }
    }

    /// `a=candidate:1 <component> UDP <priority> <address> <port> typ host` (RFC 8839 5.1), with the host type's
    /// priority (RFC 8445 5.1.2.1: type preference 126, local preference 65535).
    static func hostCandidate(component: Int, address: IPAddress, port: UInt16) -> [UInt8] {
        let priority = (1 << 24) * 126 + (1 << 8) * 65535 + (256 - component)
        var line = Array("a=candidate:1 \(component) UDP \(priority) ".utf8)
        address.unmapped.appendASCII(to: &line)
        line += Array(" \(port) typ host".utf8)
        return line
    }

    /// Edits that write `address` over an address field, and its family over the addrtype when that changes.
    static func address(_ address: IPAddress, at range: Range<Int>, type: Range<Int>, wasIPv6: Bool) -> [Edit] {
        let plain = address.unmapped
        var edits = [Edit(range: range, bytes: plain.asciiBytes)]
        if plain.isIPv4 == wasIPv6 {
            edits.append(Edit(range: type, bytes: Array((plain.isIPv4 ? "IP4" : "IP6").utf8)))
        }
        return edits
    }

    /// An insertion of a whole line at `offset`, with a line end before it when the line before has none (the
    /// last line of a body cut at its Content-Length).
    static func insertion(_ line: [UInt8], at offset: Int, body: UnsafeRawBufferPointer,
                          sdp: SDPSessionDescription) -> Edit {
        guard offset > 0, body[offset - 1] != ASCII.lf else { return Edit(range: offset..<offset, bytes: line) }
        // A last line that ends in a bare CR (a body cut between CR and LF) gets its LF, not a second line end.
        if body[offset - 1] == ASCII.cr { return Edit(range: offset..<offset, bytes: [ASCII.lf] + line) }
        return Edit(range: offset..<offset, bytes: sdp.lineEnding + line)
    }

    static func decimal(_ value: Int) -> [UInt8] {
        var out: [UInt8] = []
        ASCII.appendDecimal(value, to: &out)
        return out
    }
}
