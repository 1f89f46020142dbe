/// What a frame carries above its link layer.
enum NetworkPayload {
    /// An IPv4 or IPv6 packet (the version nibble says which).
    case ip(ArraySlice<UInt8>)
    /// Something else (ARP, LLDP, ...): not an error, just not for the replay.
    case notIP
    /// The frame is too short or inconsistent for its link type.
    case malformed(String)
}

/// Strips the link-layer header of a frame: Ethernet (with VLAN tags, 802.3 SNAP, PPPoE), Linux cooked SLL and
/// SLL2, raw IP, BSD and OpenBSD loopback.
enum LinkLayerDecoder {
    static let vlanTypes: Set<UInt16> = [0x8100, 0x88a8, 0x9100, 0x9200]

    static func networkPayload(_ bytes: ArraySlice<UInt8>, linkType: LinkType) -> NetworkPayload {
        switch linkType {
        case .ethernet:
            guard let type = bytes.uint16(at: 12) else { return .malformed("Ethernet frame shorter than its header") }
            return ethernetPayload(bytes, type: type, at: 14)
        case .linuxSLL:
            guard let type = bytes.uint16(at: 14) else { return .malformed("SLL frame shorter than its header") }
            return ethernetPayload(bytes, type: type, at: 16)
        case .linuxSLL2:
            guard let type = bytes.uint16(at: 0), bytes.count >= 20 else {
                return .malformed("SLL2 frame shorter than its header")
            }
            return ethernetPayload(bytes, type: type, at: 20)
        case .null, .loop:
            guard var family = bytes.uint32(at: 0) else { return .malformed("loopback frame shorter than its header") }
            if linkType == .null, family & 0xffff_0000 != 0 {
                family = family.byteSwapped  // written in the capturing host's order, which need not be ours
            }
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (OpenBSD, NetBSD), 28 (FreeBSD), 30 (macOS).
            return [2, 10, 24, 28, 30].contains(family) ? .ip(bytes.suffix(from: 4)) : .notIP
        case .raw, .rawOpenBSD, .linktypeRaw, .ipv4, .ipv6:
            return .ip(bytes)
        default:
            return .malformed("unsupported link type \(linkType)")
        }
    }

    /// Follows an EtherType through VLAN tags, PPPoE and SNAP to IP.
    private static func ethernetPayload(_ bytes: ArraySlice<UInt8>, type first: UInt16,
                                        at start: Int) -> NetworkPayload {
        var type = first
        var offset = start
        var tags = 0
        while true {
            switch type {
            case 0x0800, 0x86dd:
                return .ip(bytes.suffix(from: offset))
            case _ where vlanTypes.contains(type):
                tags += 1
                guard tags <= 8, let next = bytes.uint16(at: offset + 2) else { return .malformed("bad VLAN tag") }
                type = next
                offset += 4
            case 0x8864:
                // PPPoE session: 6-byte header, then a 2-byte PPP protocol (0x0021 IPv4, 0x0057 IPv6).
                guard let protocolNumber = bytes.uint16(at: offset + 6) else { return .malformed("short PPPoE frame") }
                switch protocolNumber {
                case 0x0021, 0x0057: return .ip(bytes.suffix(from: offset + 8))
                default: return .notIP
                }
            case ..<0x0600:
                // IEEE 802.3 with LLC; IP only behind SNAP (AA AA 03, OUI 00 00 00, EtherType).
                guard bytes.byte(at: offset) == 0xaa, bytes.byte(at: offset + 1) == 0xaa,
                      bytes.byte(at: offset + 2) == 0x03, let next = bytes.uint16(at: offset + 6) else { return .notIP }
                type = next
                offset += 8
                if type < 0x0600 { return .notIP }
            default:
                return .notIP
            }
        }
    }
}
