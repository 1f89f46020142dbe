public import AlgateRewrite
public import NIOCore

/// A pinhole for one data connection (FTP), whichever backend made it.
public protocol DataPinhole: AnyObject, Sendable {
    /// The public port it admits the connection on.
    var port: UInt16 { get }
    /// Closes it; the backend reports `.closed` once and returns the port to the pool.
    func close()
}

/// A media pinhole for one m= line (RTP and RTCP, both directions), whichever backend made it.
public protocol MediaPinhole: AnyObject, Sendable {
    /// The even port announced to the outside peer (RTCP on the next one).
    var outsidePort: UInt16 { get }
    /// The even port announced to the inside peer (RTCP on the next one).
    var insidePort: UInt16 { get }
    /// Points both sides at new endpoints (from an SDP answer or a re-INVITE; nil leaves a side as it is); RTCP
    /// goes to the given port or the RTP port + 1.
    ///
    /// - Returns: nil when the change is in effect already (a userspace relay), else a future that succeeds once
    ///   it is (the kernel took the elements) or fails when the pinhole could not follow (it is then closed). A
    ///   message that announces the new endpoints must wait for it: a pinhole opens before its announcement.
    func setPeers(outside: Endpoint?, outsideRTCP: UInt16?, inside: Endpoint?, insideRTCP: UInt16?) -> EventLoopFuture<Void>?
    /// Closes it; the backend reports `.closed` once and returns the ports to the pool.
    func close()
}

/// Where pinholes come from: sockets of this process (``UserspacePinholeBackend``) or the kernel's NAT table
/// (``NftablesPinholeBackend``). One backend serves every listener of a gateway and is safe from any event loop.
public protocol PinholeBackend: Sendable {
    /// Pinholes open now, in the whole process.
    var openCount: Int { get }

    /// Opens a pinhole for one TCP connection; `onEvent` is called on `loop` for everything that happens to it.
    func openDataPinhole(_ spec: TCPPinholeSpec, on loop: any EventLoop,
                 onEvent: @escaping @Sendable (PinholeEvent) -> Void) -> EventLoopFuture<any DataPinhole>

    /// Opens a media pinhole (RTP and RTCP, outside and inside); `onEvent` is called on `loop`.
    func openMediaPinhole(_ spec: MediaRelaySpec, on loop: any EventLoop,
                   onEvent: @escaping @Sendable (MediaRelayEvent) -> Void) -> EventLoopFuture<any MediaPinhole>

    /// Makes the backend ready before the first pinhole (the nftables backend installs its table here).
    /// Never called on an event loop.
    func prepare() async throws

    /// Refuses new pinholes and closes every open one; the nftables backend also removes its table.
    /// Never called on an event loop.
    func shutdown() async
}

extension TCPPinhole: DataPinhole {}
extension MediaRelay: MediaPinhole {
    public func setPeers(outside: Endpoint?, outsideRTCP: UInt16?, inside: Endpoint?,
                         insideRTCP: UInt16?) -> EventLoopFuture<Void>? {
        setPeer(outside: true, outside, rtcpPort: outsideRTCP)
        setPeer(outside: false, inside, rtcpPort: insideRTCP)
        return nil
    }
}

extension UserspacePinholeBackend: PinholeBackend {
    public func openDataPinhole(_ spec: TCPPinholeSpec, on loop: any EventLoop,
                                onEvent: @escaping @Sendable (PinholeEvent) -> Void) -> EventLoopFuture<any DataPinhole> {
        openTCP(spec, on: loop, onEvent: onEvent).map { $0 }
    }

    public func openMediaPinhole(_ spec: MediaRelaySpec, on loop: any EventLoop,
                                 onEvent: @escaping @Sendable (MediaRelayEvent) -> Void) -> EventLoopFuture<any MediaPinhole> {
        openMedia(spec, on: loop, onEvent: onEvent).map { $0 }
    }

    /// Nothing to prepare: sockets are bound as pinholes open.
    public func prepare() async throws {}
}
