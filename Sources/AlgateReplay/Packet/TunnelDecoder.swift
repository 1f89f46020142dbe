/// What an encapsulation header leads to.
enum Decapsulated: Equatable {
    /// An inner IPv4 or IPv6 packet.
    case ip(ArraySlice<UInt8>)
    /// An inner Ethernet frame (transparent Ethernet bridging, ERSPAN, VXLAN).
    case ethernet(ArraySlice<UInt8>)
    /// A header the replay cannot read past, said why: this is what the report counts and names.
    case notDecodable(String)
}

/// Strips the tunnel headers that mirrored and overlay traffic arrives in: GRE (RFC 2784 with the key and
/// sequence number of RFC 2890), ERSPAN types I, II and III inside GRE, VXLAN (RFC 7348) inside UDP. IP-in-IP
/// (protocols 4 and 41) needs no header of its own: the payload is the inner packet.
///
/// Each function takes the tunnel protocol's bytes (the IP payload for GRE, the UDP payload for VXLAN) and says
/// which kind of tunnel it was, for the report's counts.
enum TunnelDecoder {
    /// VXLAN's IANA port (RFC 7348 section 5); Linux's historical default 8472 is not assumed.
    static let vxlanPort: UInt16 = 4789
    /// Tunnels inside tunnels are followed this deep; one more is reported, not decoded (a crafted packet must not
    /// recurse without end).
    static let maxDepth = 4

    /// GRE: the kind of tunnel (GRE itself or the ERSPAN type it carries) and what it leads to.
    static func gre(_ bytes: ArraySlice<UInt8>) -> (kind: String, result: Decapsulated) {
        guard let flags = bytes.uint16(at: 0), let protocolType = bytes.uint16(at: 2) else {
            return ("GRE", .notDecodable("GRE header truncated"))
        }
        let version = flags & 0x0007
        if version == 1 { return ("GRE", .notDecodable("GRE version 1 (PPTP)")) }
        guard version == 0 else { return ("GRE", .notDecodable("GRE version \(version)")) }
        // RFC 1701's routing bit brings source route entries after the header; RFC 2784 forbids it.
        guard flags & 0x4000 == 0 else { return ("GRE", .notDecodable("GRE with source routing (RFC 1701)")) }
        let hasChecksum = flags & 0x8000 != 0
        let hasKey = flags & 0x2000 != 0
        let hasSequence = flags & 0x1000 != 0
        let length = 4 + (hasChecksum ? 4 : 0) + (hasKey ? 4 : 0) + (hasSequence ? 4 : 0)
        guard bytes.count >= length else { return ("GRE", .notDecodable("GRE header truncated")) }
        let payload = bytes.suffix(from: length)
        switch protocolType {
        case 0x0800, 0x86dd:
            return ("GRE", .ip(payload))
        case 0x6558:
            return ("GRE", .ethernet(payload))
        case 0x88be where !hasSequence:
            // ERSPAN type I has no header of its own and no sequence number (which types II and III require).
            return ("ERSPAN type I", .ethernet(payload))
        case 0x88be:
            return ("ERSPAN type II", erspanII(payload))
        case 0x22eb:
            return ("ERSPAN type III", erspanIII(payload))
        default:
            return ("GRE", .notDecodable("GRE protocol type 0x\(hex(protocolType))"))
        }
    }

    /// ERSPAN type II: an 8-byte header (version 1, VLAN, COS, session ID, index), then the mirrored Ethernet frame.
    static func erspanII(_ bytes: ArraySlice<UInt8>) -> Decapsulated {
        guard let first = bytes.byte(at: 0), bytes.count >= 8 else {
            return .notDecodable("ERSPAN type II header truncated")
        }
        guard first >> 4 == 1 else { return .notDecodable("ERSPAN type II header with version \(first >> 4)") }
        return .ethernet(bytes.suffix(from: 8))
    }

    /// ERSPAN type III: a 12-byte header (version 2, ..., timestamp, SGT, P, FT, hardware ID, D, Gra, O), the
    /// 8-byte platform-specific subheader when O is set, then the mirrored frame: Ethernet (FT 0) or IP (FT 2).
    static func erspanIII(_ bytes: ArraySlice<UInt8>) -> Decapsulated {
        guard let first = bytes.byte(at: 0), let frameByte = bytes.byte(at: 10), let last = bytes.byte(at: 11) else {
            return .notDecodable("ERSPAN type III header truncated")
        }
        guard first >> 4 == 2 else { return .notDecodable("ERSPAN type III header with version \(first >> 4)") }
        let length = last & 0x01 != 0 ? 20 : 12
        guard bytes.count >= length else { return .notDecodable("ERSPAN type III header truncated") }
        let frameType = frameByte >> 2 & 0x1f
        switch frameType {
        case 0: return .ethernet(bytes.suffix(from: length))
        case 2: return .ip(bytes.suffix(from: length))
        default: return .notDecodable("ERSPAN type III frame type \(frameType)")
        }
    }

    /// VXLAN: an 8-byte header whose I flag says the VNI is valid, then the Ethernet frame.
    static func vxlan(_ bytes: ArraySlice<UInt8>) -> Decapsulated {
        guard let flags = bytes.byte(at: 0), bytes.count >= 8 else { return .notDecodable("VXLAN header truncated") }
        guard flags & 0x08 != 0 else { return .notDecodable("VXLAN header without the I flag") }
        return .ethernet(bytes.suffix(from: 8))
    }

    private static func hex(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}
