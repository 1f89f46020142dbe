import AlgateRewrite
import FuzzSupport

/// libFuzzer's entry point: one input, one SDP body.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSDP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    SDPHarness.run(fuzzInput(data, size))
    return 0
}

/// ``SDPSessionDescription/parse(_:limits:)`` and ``SDPRewrite``, with targets derived from the input (IPv4 or IPv6,
/// some streams left alone, RTCP ports or not). The rewritten body re-parses; each stream with a target goes to it
/// (port, c= whether its own or the session's, a=rtcp) unless it was on hold; each stream left alone still goes
/// where it went; o= and the session c= name the session address; and every line the rewrite does not own (o=, c=,
/// m=, a=rtcp, ICE candidates) is unchanged, in order; the candidates left are the relay's, on the target.
enum SDPHarness {
    static func run(_ input: [UInt8]) {
        let limits = SDPLimits()
        guard let sdp = input.withUnsafeBytes({ try? SDPSessionDescription.parse($0, limits: limits) }) else { return }
        let hash = FuzzHash(input)
        let rewrite = SDPRewrite(media: targets(sdp.media.count, hash), sessionAddress: sessionAddress(hash))
        let output = input.withUnsafeBytes { rewrite.apply(to: sdp, body: $0) }

        var grown = limits
        grown.maxLines += 2 * sdp.media.count + 1
        grown.maxLineBytes += 64
        let reparsed: Result<SDPSessionDescription, SIPParseError> = output.withUnsafeBytes { raw in
            do throws(SIPParseError) {
                return .success(try SDPSessionDescription.parse(raw, limits: grown))
            } catch {
                return .failure(error)
            }
        }
        let after: SDPSessionDescription
        switch reparsed {
        case .success(let description): after = description
        case .failure(let error):
            Invariant.check(false, "the rewritten SDP does not parse (\(error.explanation)): \(show(output))")
            return
        }
        Invariant.check(after.media.count == sdp.media.count, "\(after.media.count) m= lines, was \(sdp.media.count)")

        let targets = rewrite.media
        let session = rewrite.sessionAddress ?? sdp.media.indices.lazy
            .compactMap { $0 < targets.count && !sdp.media[$0].isDisabled ? targets[$0] : nil }.first?.address
        if let session {
            if let origin = sdp.origin, origin.isInternet, !origin.isUnspecified {
                Invariant.check(after.origin?.address == session.unmapped,
                                "o= names \(String(describing: after.origin?.address)), not \(session): \(show(output))")
            }
            if let connection = sdp.connection, connection.isInternet, !connection.isUnspecified {
                Invariant.check(after.connection?.address == session.unmapped,
                                "the session c= names \(String(describing: after.connection?.address)), not \(session)")
            }
        }
        for (index, media) in sdp.media.enumerated() {
            let new = after.media[index]
            Invariant.check(new.kind == media.kind && new.transport == media.transport,
                            "m= line \(index) changed its media or transport from \(media.kind.debugDescription) "
                            + "\(media.transport.debugDescription) to \(new.kind.debugDescription) "
                            + "\(new.transport.debugDescription): \(show(input)) -> \(show(output))")
            let target = index < targets.count && !media.isDisabled ? targets[index] : nil
            guard let target else {
                Invariant.check(new.port == media.port, "m= line \(index) was left alone and changed its port")
                if !media.isDisabled {
                    let before = sdp.connectionAddress(of: media)
                    Invariant.check(after.connectionAddress(of: new) == before,
                                    "m= line \(index) was left alone and now goes to "
                                    + "\(String(describing: after.connectionAddress(of: new))), not \(String(describing: before))")
                }
                continue
            }
            Invariant.check(new.port == target.port, "m= line \(index) has port \(new.port), not \(target.port)")
            let old = media.connection ?? sdp.connection
            let onHold = old?.isUnspecified ?? false
            if old == nil || old?.isInternet == true, !onHold {
                Invariant.check(after.connectionAddress(of: new) == target.address.unmapped,
                                "m= line \(index) goes to \(String(describing: after.connectionAddress(of: new))), "
                                + "not \(target.address): \(show(output))")
                for connection in new.connections where connection.isInternet && !connection.isUnspecified {
                    Invariant.check(connection.address == target.address.unmapped,
                                    "a c= of m= line \(index) names \(String(describing: connection.address))")
                }
            }
            if let rtcpPort = target.rtcpPort, let rtcp = media.rtcp {
                Invariant.check(new.rtcp?.port == rtcpPort, "a=rtcp of m= line \(index) is not \(rtcpPort)")
                if rtcp.address != nil, rtcp.isInternet, !rtcp.isUnspecified {
                    Invariant.check(new.rtcp?.address == target.address.unmapped,
                                    "a=rtcp of m= line \(index) names \(String(describing: new.rtcp?.address))")
                }
            }
        }
        Invariant.check(untouchedLines(input) == untouchedLines(output),
                        "a line the rewrite does not own changed: \(show(output))")
        checkCandidates(after, output, targets: targets, sdp: sdp)
    }

    /// ICE in the default `replace` mode: no candidate is left at session level, no a=remote-candidates anywhere,
    /// and the candidates of a stream are the relay's, on its target, or none when it has no target.
    static func checkCandidates(_ after: SDPSessionDescription, _ output: [UInt8], targets: [SDPRewrite.Target?],
                                sdp: SDPSessionDescription) {
        for line in after.sessionICELines {
            Invariant.check(!isCandidateLine(output[line]),
                            "a candidate stays at session level: \(show(Array(output[line])))")
        }
        for (index, media) in after.media.enumerated() {
            Invariant.check(media.remoteCandidateLines.isEmpty, "m= line \(index) keeps its a=remote-candidates")
            let target = index < targets.count && !sdp.media[index].isDisabled ? targets[index] : nil
            for line in media.candidateLines {
                // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
                let fields = output[line].split(separator: 0x20)
                let address = fields.count > 4 ? IPAddress(String(decoding: fields[4], as: UTF8.self)) : nil
                Invariant.check(target != nil && address == target?.address.unmapped,
                                "m= line \(index) has a candidate not on its target "
                                + "\(target.map { "\($0.address)" } ?? "(none)"): \(show(Array(output[line])))")
            }
        }
    }

    /// An a=rtcp line, its name in any case as the parser reads it (`a=rtCp:` is one).
    static func isRTCPLine(_ line: ArraySlice<UInt8>) -> Bool {
        String(decoding: line.prefix(7), as: UTF8.self).lowercased() == "a=rtcp:"
    }

    /// A line the rewrite owns in `replace` mode: a=candidate or a=remote-candidates (any case).
    static func isCandidateLine(_ line: ArraySlice<UInt8>) -> Bool {
        let lower = String(decoding: line.prefix(19), as: UTF8.self).lowercased()
        return lower.hasPrefix("a=candidate") || lower.hasPrefix("a=remote-candidates")
    }

    /// Per m= line: none (a quarter), an IPv4 or an IPv6 target, with an RTCP port or not.
    static func targets(_ count: Int, _ hash: FuzzHash) -> [SDPRewrite.Target?] {
        (0..<count).map { index in
            let bits = hash.bits((index * 4) % 60, 4)
            if bits & 3 == 0 { return nil }
            let address: IPAddress = bits & 3 == 3 ? .v6(high: 0x2001_0db8_0001_0000, low: UInt64(index + 5))
                                                   : .v4(0xcb00_7105 &+ UInt32(truncatingIfNeeded: index))
            let port = UInt16(40_000 + 2 * (index % 1000))
            return SDPRewrite.Target(address: address, port: port, rtcpPort: bits & 4 == 0 ? nil : port &+ 7)
        }
    }

    static func sessionAddress(_ hash: FuzzHash) -> IPAddress? {
        switch hash.bits(60, 2) {
        case 0: return .v4(0xcb00_7105)
        case 1: return .v6(high: 0x2001_0db8_0001_0000, low: 5)
        default: return nil
        }
    }

    /// The lines other than o=, c=, m=, a=rtcp: and the ICE candidates (which `replace`, the default, swaps for
    /// the relay's or drops), without their line ends.
    static func untouchedLines(_ body: [UInt8]) -> [ArraySlice<UInt8>] {
        body.split(separator: 0x0A, omittingEmptySubsequences: true).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }.filter { line in
            !line.isEmpty && !line.starts(with: Array("o=".utf8)) && !line.starts(with: Array("c=".utf8))
                && !line.starts(with: Array("m=".utf8)) && !isRTCPLine(line)
                && !isCandidateLine(line)
        }
    }

    static func show(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix(400), as: UTF8.self).debugDescription
    }
}
