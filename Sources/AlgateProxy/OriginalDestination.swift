import AlgatePinholes
import AlgateRewrite
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Where an accepted connection was headed before nftables redirected it to a transparent listener.
///
/// The kernel's NAT keeps the original tuple in the connection's conntrack entry; `getsockopt(SO_ORIGINAL_DST)`
/// reads it back: level `SOL_IP` with a `sockaddr_in` for IPv4 (also for an IPv4 client on a dual-stack socket,
/// where the address is IPv4-mapped), level `SOL_IPV6` with a `sockaddr_in6` for IPv6
/// (`IP6T_SO_ORIGINAL_DST`, the same number 80).
enum OriginalDestination {
    /// `SO_ORIGINAL_DST` (linux/netfilter_ipv4.h) and `IP6T_SO_ORIGINAL_DST` (linux/netfilter_ipv6/ip6_tables.h).
    static let optionName: SocketOptionName = 80

    /// The original destination of `channel`'s connection. Fails when the channel has no socket, when the
    /// connection went through no NAT at all (`ENOENT`: no conntrack entry), or on another `getsockopt` error.
    static func of(_ channel: any Channel) -> EventLoopFuture<Endpoint> {
        guard let provider = channel as? any SocketOptionProvider,
              let local = channel.localAddress.flatMap(Endpoint.init(socketAddress:)) else {
            return channel.eventLoop.makeFailedFuture(ChannelError.unknownLocalAddress)
        }
        if case .v6 = local.address, local.address.unmapped == local.address {
            return provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IPV6), name: optionName)
                .flatMapThrowing { (raw: sockaddr_in6) in
                    try Self.endpoint(SocketAddress(raw, host: ""))
                }
        }
        return provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IP), name: optionName)
            .flatMapThrowing { (raw: sockaddr_in) in
                try Self.endpoint(SocketAddress(raw, host: ""))
            }
    }

    private static func endpoint(_ address: SocketAddress) throws -> Endpoint {
        guard let endpoint = Endpoint(socketAddress: address) else { throw ChannelError.unknownLocalAddress }
        return endpoint
    }
}
