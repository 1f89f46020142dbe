import AlgateRewrite
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What a transparent SIP listener needs from the kernel besides its sockets: the `IP_TRANSPARENT` option, the
/// gateway's own address towards a peer, and whether an address is one of the gateway's.
enum TransparentSocket {
    /// `IP_TRANSPARENT` (level `SOL_IP`, 19) for IPv4, `IPV6_TRANSPARENT` (level `SOL_IPV6`, 75) for IPv6: set before
    /// bind, it lets a socket receive what TPROXY hands it and bind and send from an address that is not the
    /// gateway's (the destination a phone asked for). Needs CAP_NET_ADMIN.
    static func option(for address: IPAddress) -> ChannelOptions.Types.SocketOption {
        if case .v6 = address, address.unmapped == address {
            return ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_IPV6), name: 75)
        }
        return ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_IP), name: 19)
    }

    /// The source address the kernel picks for traffic to `peer`: a UDP socket is connected (a route lookup, no
    /// packet is sent, nothing waits) and asked for its local address.
    static func sourceAddress(towards peer: Endpoint) -> IPAddress? {
        guard let remote = try? SocketAddress(peer) else { return nil }
        let family = remote.protocol.rawValue
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let connected = remote.withSockAddr { address, length in connect(fd, address, socklen_t(length)) }
        guard connected == 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        let local: SocketAddress
        switch Int32(storage.ss_family) {
        case AF_INET:
            local = withUnsafeBytes(of: storage) { SocketAddress($0.load(as: sockaddr_in.self), host: "") }
        case AF_INET6:
            local = withUnsafeBytes(of: storage) { SocketAddress($0.load(as: sockaddr_in6.self), host: "") }
        default:
            return nil
        }
        return Endpoint(socketAddress: local)?.address.unmapped
    }

    /// Whether `address` is one of this host's (network namespace's) own addresses. A transparent listener never
    /// takes such an address for an original destination: it would be its own upstream.
    ///
    /// `getifaddrs` is a netlink round trip that does not wait on the network; it runs once per new destination.
    static func isLocal(_ address: IPAddress) -> Bool {
        guard let devices = try? System.enumerateDevices() else {
            // Unknown is treated as local: refusing one destination is better than proxying to ourselves.
            return true
        }
        let wanted = address.unmapped
        return devices.contains { device in
            device.address.flatMap(Endpoint.init(socketAddress:)).map { $0.address.unmapped == wanted } ?? false
        }
    }
}
