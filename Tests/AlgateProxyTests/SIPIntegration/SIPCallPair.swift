import Foundation
import Testing

/// The common set-up of the call tests: SIPp UAC (outside) -> gateway -> SIPp UAS with RTP echo (upstream), each
/// on the test's own ports, with a capture of the test's media ports.
struct SIPCallPair {
    struct Ports {
        var gateway: UInt16
        var uas: UInt16
        var uac: UInt16
        var uasControl: UInt16
        var uacControl: UInt16
        var extra: ClosedRange<UInt16>
        /// The gateway's relay pool.
        var pool: ClosedRange<UInt16>
        /// The UAS's `-mp` (SIPp binds it and +2).
        var uasMedia: ClosedRange<UInt16>
        /// The UAC's `-mp` and the ports uac_pcap forges as RTP sources (`-mp` + 4 * call).
        var uacMedia: ClosedRange<UInt16>

        init(calls: Int) throws {
            let sip = try SIPITPorts.block(12)
            gateway = sip.lowerBound
            uas = sip.lowerBound + 1
            uac = sip.lowerBound + 2
            uasControl = sip.lowerBound + 3
            uacControl = sip.lowerBound + 4
            extra = (sip.lowerBound + 5)...sip.upperBound
            pool = try SIPITPorts.block(200)
            uasMedia = try SIPITPorts.block(4)
            uacMedia = try SIPITPorts.block(4 * calls + 8)
        }
    }

    let ports: Ports
    let directory: URL
    let peers: SIPITPeers
    let gateway: SIPGatewayHarness
    let capture: LoopbackCapture
    let uas: SIPpRun
    let outsideIP: String
    let upstreamIP: String
    let tcp: Bool

    /// Runs `body` with a gateway, a capture and a UAS up; stops them all afterwards.
    static func with<T>(_ name: String, calls: Int, tcp: Bool = false, v6: Bool = false,
                        uasScenario: SIPpConfig.Scenario? = nil,
                        _ body: (SIPCallPair) async throws -> T) async throws -> T {
        let ports = try Ports(calls: calls)
        let outsideIP = v6 ? "::1" : "127.0.0.1"
        let upstreamIP = v6 ? "::1" : "127.0.0.2"
        func hostPort(_ host: String, _ port: UInt16) -> String { v6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
        return try await SIPITScratch.with(name) { dir in
            try SIPITScratch.linkPcaps(in: dir)
            return try await SIPITPeers.with { peers in
                let options = SIPGatewayHarness.Options(
                    listen: hostPort(outsideIP, ports.gateway), upstream: hostPort(upstreamIP, ports.uas),
                    pool: ports.pool, publicAddress: outsideIP, insideAddress: outsideIP)
                return try await SIPGatewayHarness.with(options) { gateway in
                    let capture = try await LoopbackCapture(ports: [ports.pool, ports.uasMedia, ports.uacMedia],
                                                            in: dir, peers: peers)
                    let scenario = uasScenario ?? (tcp || v6 ? .fixture("uas_no_timewait.xml") : .builtin("uas"))
                    let uas = try await SIPpRun.server(
                        SIPpConfig(name: "uas", scenario: scenario, localIP: upstreamIP, localPort: ports.uas, tcp: tcp,
                                   mediaIP: upstreamIP, mediaPort: ports.uasMedia.lowerBound,
                                   controlPort: ports.uasControl, rtpEcho: true,
                                   keys: ["media_base": "\(ports.uasMedia.lowerBound)"], watchdog: .seconds(180)),
                        in: dir, peers: peers)
                    let pair = SIPCallPair(ports: ports, directory: dir, peers: peers, gateway: gateway,
                                           capture: capture, uas: uas, outsideIP: outsideIP, upstreamIP: upstreamIP,
                                           tcp: tcp)
                    return try await body(pair)
                }
            }
        }
    }

    /// A UAC config aimed at the gateway (uac_pcap: RTP from pcap, 9 s per call).
    func uacConfig(name: String = "uac", scenario: SIPpConfig.Scenario = .builtin("uac_pcap"), calls: Int,
                   rate: Int, limit: Int, localPort: UInt16? = nil, controlPort: UInt16? = nil,
                   mediaPort: UInt16? = nil) -> SIPpConfig {
        SIPpConfig(name: name, scenario: scenario, remote: gateway.address, localIP: outsideIP,
                   localPort: localPort ?? ports.uac, tcp: tcp, mediaIP: outsideIP,
                   mediaPort: mediaPort ?? ports.uacMedia.lowerBound, controlPort: controlPort ?? ports.uacControl,
                   calls: calls, rate: rate, limit: limit,
                   keys: ["media_base": "\(mediaPort ?? ports.uacMedia.lowerBound)"], watchdog: .seconds(120))
    }

    /// Checks what the caller saw in every 200 OK to its INVITEs: the gateway's public media address and a port of
    /// the relay pool, never the UAS's own address or media port. Returns the number of distinct calls answered.
    @discardableResult
    func expectCallerSawOnlyPublicMedia(_ uac: SIPpRun, calls: Int) -> Int {
        let received = uac.messages.filter(\.received)
        let answers = received.filter { $0.statusCode == 200 && $0.cseqMethod == "INVITE" }
        let callIDs = Set(answers.compactMap(\.callID))
        #expect(callIDs.count == calls, "200 OK (INVITE) seen by the caller for \(callIDs.count) of \(calls) calls")
        for answer in answers {
            #expect(answer.sdpConnection == outsideIP,
                    "200 OK SDP c= \(answer.sdpConnection ?? "none"), expected the public address \(outsideIP)")
            let port = answer.sdpMediaPort
            #expect(port.map { ports.pool.contains($0) } == true,
                    "200 OK SDP m= port \(port.map(String.init) ?? "none") is not in the relay pool \(ports.pool)")
            #expect(port != ports.uasMedia.lowerBound)
        }
        // Nothing of the inside leaks into what the caller received (Contact, o=, Via, Record-Route...).
        if !upstreamIP.hasPrefix("::") {
            let leaks = received.filter { $0.text.contains(upstreamIP) }
            #expect(leaks.isEmpty, "the caller received \(leaks.count) messages naming \(upstreamIP), e.g.\n\(leaks.first?.text ?? "")")
        }
        return callIDs.count
    }

    /// Checks what the UAS saw in the INVITEs: the gateway's inside address and a relay port, never the caller's.
    func expectCalleeSawOnlyInsideMedia(calls: Int) {
        let invites = uas.messages.filter { $0.received && $0.method == "INVITE" }
        #expect(Set(invites.compactMap(\.callID)).count == calls)
        for invite in invites {
            #expect(invite.sdpConnection == outsideIP, "INVITE SDP c= \(invite.sdpConnection ?? "none") at the UAS")
            let port = invite.sdpMediaPort
            #expect(port.map { ports.pool.contains($0) } == true,
                    "INVITE SDP m= port \(port.map(String.init) ?? "none") at the UAS is not a relay port")
        }
    }

    /// RTP datagrams on the wire, per leg: caller -> relay, relay -> UAS, UAS -> relay (echo), relay -> caller.
    struct RTPCounts: CustomStringConvertible {
        var callerToRelay: Int
        var relayToCallee: Int
        var calleeToRelay: Int
        var relayToCaller: Int
        /// Packets the capture itself lost (dumpcap's count): the slack for comparisons with the wire.
        var captureDropped: Int
        var description: String {
            "caller->relay \(callerToRelay), relay->UAS \(relayToCallee), UAS->relay \(calleeToRelay), "
                + "relay->caller \(relayToCaller) (capture dropped \(captureDropped))"
        }

        /// Whether a count on the wire matches `other` (counted elsewhere) within what the capture lost.
        func matches(_ wire: Int, _ other: Int?) -> Bool {
            guard let other else { return false }
            return wire <= other && other - wire <= captureDropped
        }
    }

    func rtpOnTheWire() async throws -> RTPCounts {
        let flows = try await capture.udpFlows()
        let uasPort = ports.uasMedia.lowerBound
        return RTPCounts(callerToRelay: flows.count(from: ports.uacMedia, to: ports.pool),
                         relayToCallee: flows.count(from: ports.pool, to: uasPort),
                         calleeToRelay: flows.count(from: uasPort, to: ports.pool),
                         relayToCaller: flows.count(from: ports.pool, to: ports.uacMedia),
                         captureDropped: capture.dropped ?? 0)
    }
}
