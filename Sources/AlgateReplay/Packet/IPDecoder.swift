import AlgateRewrite

/// A whole IP datagram: its addresses, the upper-layer protocol and that protocol's bytes.
struct IPDatagram {
    var source: IPAddress
    var destination: IPAddress
    /// The upper-layer protocol (6 TCP, 17 UDP, ...), past any IPv6 extension headers.
    var protocolNumber: UInt8
    var payload: ArraySlice<UInt8>
    /// Bytes the IP header announces that the capture does not hold (a snap length cut them off).
    var missingBytes: Int
}

/// Identifies the fragments of one datagram (RFC 791: source, destination, protocol, identification; RFC 8200:
/// source, destination, identification).
struct FragmentKey: Hashable, Sendable {
    var source: IPAddress
    var destination: IPAddress
    var identification: UInt32
    /// IPv4's protocol field; 0 for IPv6, where the protocol is known from the first fragment only.
    var protocolNumber: UInt8
    var isIPv6: Bool
}

/// One fragment of an IP datagram.
struct IPFragment {
    var key: FragmentKey
    /// Byte offset of this fragment's data in the datagram's payload.
    var offset: Int
    var moreFragments: Bool
    /// For IPv4 the protocol; for IPv6 the Next Header after the fragment header (meaningful in the first fragment).
    var nextHeader: UInt8
    var payload: [UInt8]
}

/// What the network layer of a packet holds.
enum IPPacket {
    case datagram(IPDatagram)
    case fragment(IPFragment)
    /// Nothing the replay can read (ESP, No Next Header), said why.
    case ignored(String)
    case malformed(String)
}

/// Decodes IPv4 and IPv6 headers, skipping IPv6 extension headers, and recognises fragments of either.
enum IPDecoder {
    static func decode(_ bytes: ArraySlice<UInt8>) -> IPPacket {
        guard let first = bytes.byte(at: 0) else { return .malformed("empty IP packet") }
        switch first >> 4 {
        case 4: return decodeIPv4(bytes)
        case 6: return decodeIPv6(bytes)
        default: return .malformed("IP version \(first >> 4)")
        }
    }

    private static func decodeIPv4(_ bytes: ArraySlice<UInt8>) -> IPPacket {
        guard let first = bytes.byte(at: 0), let announced = bytes.uint16(at: 2),
              let identification = bytes.uint16(at: 4), let fragmentField = bytes.uint16(at: 6),
              let protocolNumber = bytes.byte(at: 9),
              bytes.count >= 20 else { return .malformed("IPv4 header truncated") }
        let headerLength = Int(first & 0x0f) * 4
        guard headerLength >= 20, bytes.count >= headerLength else {
            return .malformed("IPv4 header length \(headerLength)")
        }
        // A total length of 0 is what segmentation offload leaves in captures: take what was captured.
        let totalLength = announced == 0 ? bytes.count : Int(announced)
        guard totalLength >= headerLength else {
            return .malformed("IPv4 total length \(totalLength) below its header")
        }
        guard let source = IPAddress(bytes: bytes.slice(at: 12, length: 4)),
              let destination = IPAddress(bytes: bytes.slice(at: 16, length: 4)) else {
            return .malformed("IPv4 addresses")
        }
        // Frames are padded (Ethernet's 60-byte minimum): the payload ends where the IP header says.
        let payload = bytes.slice(at: headerLength, length: totalLength - headerLength)
        let missing = totalLength - headerLength - payload.count
        let moreFragments = fragmentField & 0x2000 != 0
        let offset = Int(fragmentField & 0x1fff) * 8
        if moreFragments || offset > 0 {
            guard missing == 0 else { return .malformed("IPv4 fragment cut short by the capture's snap length") }
            let key = FragmentKey(source: source, destination: destination, identification: UInt32(identification),
                                  protocolNumber: protocolNumber, isIPv6: false)
            return .fragment(IPFragment(key: key, offset: offset, moreFragments: moreFragments,
                                        nextHeader: protocolNumber, payload: Array(payload)))
        }
        return .datagram(IPDatagram(source: source, destination: destination, protocolNumber: protocolNumber,
                                    payload: payload, missingBytes: missing))
    }

    private static func decodeIPv6(_ bytes: ArraySlice<UInt8>) -> IPPacket {
        guard let payloadLength = bytes.uint16(at: 4), let next = bytes.byte(at: 6), bytes.count >= 40,
              let source = IPAddress(bytes: bytes.slice(at: 8, length: 16)),
              let destination = IPAddress(bytes: bytes.slice(at: 24, length: 16)) else {
            return .malformed("IPv6 header truncated")
        }
        // Payload length 0 means a jumbogram (RFC 2675): take what was captured.
        let length = payloadLength == 0 ? bytes.count - 40 : Int(payloadLength)
        let payload = bytes.slice(at: 40, length: length)
        return walkIPv6(next: next, payload: payload, missing: length - payload.count, source: source,
                        destination: destination)
    }

    /// Follows the IPv6 Next Header chain to the upper layer (also used on a reassembled payload).
    static func walkIPv6(next first: UInt8, payload: ArraySlice<UInt8>, missing: Int, source: IPAddress,
                         destination: IPAddress) -> IPPacket {
        var next = first
        var rest = payload
        for _ in 0..<16 {
            switch next {
            case 0, 43, 60, 135, 139, 140:  // hop-by-hop, routing, destination options, mobility, HIP, shim6
                guard let following = rest.byte(at: 0), let units = rest.byte(at: 1) else {
                    return .malformed("IPv6 extension header truncated")
                }
                let length = (Int(units) + 1) * 8
                guard rest.count >= length else { return .malformed("IPv6 extension header truncated") }
                next = following
                rest = rest.suffix(from: length)
            case 51:  // authentication header: its length counts 4-byte units, minus 2
                guard let following = rest.byte(at: 0), let units = rest.byte(at: 1) else {
                    return .malformed("IPv6 authentication header truncated")
                }
                let length = (Int(units) + 2) * 4
                guard rest.count >= length else { return .malformed("IPv6 authentication header truncated") }
                next = following
                rest = rest.suffix(from: length)
            case 44:
                guard let following = rest.byte(at: 0), let field = rest.uint16(at: 2),
                      let identification = rest.uint32(at: 4) else {
                    return .malformed("IPv6 fragment header truncated")
                }
                let offset = Int(field >> 3) * 8
                let moreFragments = field & 1 != 0
                if offset == 0, !moreFragments {
                    // An atomic fragment (RFC 6946): a whole datagram with a fragment header.
                    next = following
                    rest = rest.suffix(from: 8)
                    continue
                }
                guard missing == 0 else { return .malformed("IPv6 fragment cut short by the capture's snap length") }
                let key = FragmentKey(source: source, destination: destination, identification: identification,
                                      protocolNumber: 0, isIPv6: true)
                return .fragment(IPFragment(key: key, offset: offset, moreFragments: moreFragments,
                                            nextHeader: following, payload: Array(rest.suffix(from: 8))))
            case 50:
                return .ignored("ESP-encrypted IPv6 payload")
            case 59:
                return .ignored("IPv6 packet with no next header")
            default:
                return .datagram(IPDatagram(source: source, destination: destination, protocolNumber: next,
                                            payload: rest, missingBytes: missing))
            }
        }
        return .malformed("more than 16 IPv6 extension headers")
    }
}
