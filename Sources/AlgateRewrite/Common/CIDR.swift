/// A network in CIDR notation, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public var network: IPAddress
    public var prefix: Int

    /// Parses `ADDRESS/PREFIX` or `ADDRESS`; nil for anything else, or a prefix longer than the family allows.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maximum = address.isIPv4 ? 32 : 128
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), parts[1].allSatisfy(\.isNumber), (0...maximum).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            self.prefix = maximum
        }
        self.network = address
    }

    /// Whether `address` lies in the network (an IPv4-mapped IPv6 address counts as its IPv4 form).
    public func contains(_ address: IPAddress) -> Bool {
        let candidate = address.unmapped
        switch (network.unmapped, candidate) {
        case (.v4(let net), .v4(let value)):
            guard prefix > 0 else { return true }
            let mask = prefix >= 32 ? UInt32.max : ~(UInt32.max >> UInt32(prefix))
            return net & mask == value & mask
        case (.v6(let netHigh, let netLow), .v6(let high, let low)):
            let highBits = min(prefix, 64)
            let lowBits = max(prefix - 64, 0)
            let highMask: UInt64 = highBits == 0 ? 0 : (highBits == 64 ? .max : ~(UInt64.max >> UInt64(highBits)))
            let lowMask: UInt64 = lowBits == 0 ? 0 : (lowBits == 64 ? .max : ~(UInt64.max >> UInt64(lowBits)))
            return netHigh & highMask == high & highMask && netLow & lowMask == low & lowMask
        default:
            return false
        }
    }

    public var description: String { "\(network)/\(prefix)" }
}
