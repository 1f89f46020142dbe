import AlgatePinholes
import AlgateRewrite
import NIOCore

/// One upstream of a SIP listener and everything the listener keeps for it: the engine that routes between that
/// upstream and the phones, the TCP connections to it, the media relays of its dialogs and, in transparent mode over
/// UDP, the socket that answers phones in the upstream's name.
///
/// A reverse-mode listener has one (its `upstream`). A transparent listener makes one per original destination, on
/// the first message a phone sends there, and keeps it until it stops: each destination is a registrar or proxy of
/// its own, with its own contact mappings, registrations and dialogs. One ``SIPGatewayStateMachine`` per upstream,
/// rather than one engine that knows many upstreams, keeps the engine as it is (its context, its Via and
/// Record-Route addresses, its side rules), so reverse and transparent mode run exactly the same routing code.
///
/// Lives on the listener's event loop, like the rest of the listener.
final class SIPUpstreamEngine {
    /// Where the engine's inside traffic goes: reverse mode's upstream, or the phone's original destination.
    let upstream: Endpoint
    var machine: SIPGatewayStateMachine
    /// The TCP connection to upstream that carries the requests of each phone connection, by the phone
    /// connection's id; made on first use.
    var upstreamConnections: [UInt64: EventLoopFuture<any Channel>] = [:]
    /// Open media relays by the engine's relay id.
    var relays: [UInt64: any MediaPinhole] = [:]
    /// Media updates the kernel has not taken yet; the engine's actions wait while this is above zero.
    var mediaUpdatesPending = 0
    /// Transparent mode over UDP: a socket bound (`IP_TRANSPARENT`) to the upstream's own address and port. Phones
    /// sent to that address; what goes back to them must come from it, or they would drop it as a stranger's.
    var impersonator: EventLoopFuture<any Channel>?

    init(upstream: Endpoint, machine: SIPGatewayStateMachine) {
        self.upstream = upstream
        self.machine = machine
    }

    /// Closes the relays, the connections to upstream and the impersonating socket.
    func close() -> EventLoopFuture<Void>? {
        for relay in relays.values { relay.close() }
        relays.removeAll()
        for connection in upstreamConnections.values { connection.whenSuccess { $0.close(promise: nil) } }
        upstreamConnections.removeAll()
        return impersonator?.flatMap { $0.close() }
    }
}
