/// The link type of a capture: the DLT value libpcap reports (`pcap_datalink`), which for the types here equals
/// the LINKTYPE value stored in the file, except LINKTYPE_RAW (101), which libpcap reports as DLT_RAW (12, or 14
/// on OpenBSD).
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The DLT value.
    public var rawValue: Int32

    /// Any DLT value; ``isSupported`` says whether frames of it can be read.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    public static let null = LinkType(rawValue: 0)
    /// Ethernet II, with any number of 802.1Q/802.1ad VLAN tags.
    public static let ethernet = LinkType(rawValue: 1)
    /// Raw IP (DLT_RAW on most systems).
    public static let raw = LinkType(rawValue: 12)
    /// Raw IP (DLT_RAW on OpenBSD).
    public static let rawOpenBSD = LinkType(rawValue: 14)
    /// Raw IP (LINKTYPE_RAW, as stored in files).
    public static let linktypeRaw = LinkType(rawValue: 101)
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    public static let loop = LinkType(rawValue: 108)
    /// Linux "cooked" capture (SLL), as `tcpdump -i any` writes.
    public static let linuxSLL = LinkType(rawValue: 113)
    /// Raw IPv4 only.
    public static let ipv4 = LinkType(rawValue: 228)
    /// Raw IPv6 only.
    public static let ipv6 = LinkType(rawValue: 229)
    /// Linux "cooked" capture v2 (SLL2), as newer `tcpdump -i any` writes.
    public static let linuxSLL2 = LinkType(rawValue: 276)

    /// Whether the replay can find IP packets in frames of this type.
    public var isSupported: Bool {
        [.null, .ethernet, .raw, .rawOpenBSD, .linktypeRaw, .loop, .linuxSLL, .linuxSLL2, .ipv4, .ipv6].contains(self)
    }

    /// Its name and number, for reports.
    public var description: String {
        switch self {
        case .null: return "BSD loopback (0)"
        case .ethernet: return "Ethernet (1)"
        case .raw, .rawOpenBSD, .linktypeRaw: return "raw IP (\(rawValue))"
        case .loop: return "OpenBSD loopback (108)"
        case .linuxSLL: return "Linux cooked SLL (113)"
        case .linuxSLL2: return "Linux cooked SLL2 (276)"
        case .ipv4: return "raw IPv4 (228)"
        case .ipv6: return "raw IPv6 (229)"
        default: return "link type \(rawValue)"
        }
    }
}
