import AlgateRewrite

/// Both ends of a connection or flow, in a fixed order, so that either direction finds the same entry.
struct FlowKey: Hashable {
    var low: Endpoint
    var high: Endpoint

    init(_ one: Endpoint, _ other: Endpoint) {
        if FlowKey.precedes(other, one) {
            low = other
            high = one
        } else {
            low = one
            high = other
        }
    }

    static func precedes(_ left: Endpoint, _ right: Endpoint) -> Bool {
        let leftBytes = left.address.bytes
        let rightBytes = right.address.bytes
        if leftBytes != rightBytes {
            if leftBytes.count != rightBytes.count { return leftBytes.count < rightBytes.count }
            return leftBytes.lexicographicallyPrecedes(rightBytes)
        }
        return left.port < right.port
    }
}

/// Two hosts, in a fixed order, with the transport: what a SIP session is keyed by.
struct HostPairKey: Hashable {
    var transport: String
    var low: IPAddress
    var high: IPAddress

    init(transport: String, _ one: IPAddress, _ other: IPAddress) {
        self.transport = transport
        let a = one.unmapped
        let b = other.unmapped
        if FlowKey.precedes(Endpoint(address: b, port: 0), Endpoint(address: a, port: 0)) {
            low = b
            high = a
        } else {
            low = a
            high = b
        }
    }
}
