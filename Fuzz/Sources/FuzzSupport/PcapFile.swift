/// The frames of a classic pcap file held in memory, read leniently: the harness wants frames, not a judgement of
/// the file (libpcap is not what is fuzzed). Both byte orders and both timestamp resolutions; a record cut short
/// ends the file.
public struct PcapFile: Sendable {
    public struct Frame: Sendable {
        public var timestamp: Double
        public var bytes: [UInt8]
        public var originalLength: Int
    }

    public var linkType: Int32
    public var frames: [Frame]

    /// nil when `bytes` do not start with a pcap header.
    public init?(_ bytes: [UInt8], maxFrames: Int = 4096) {
        guard bytes.count >= 24 else { return nil }
        let magic = Self.uint32(bytes, 0, bigEndian: false)
        let bigEndian: Bool
        let nanoseconds: Bool
        switch magic {
        case 0xa1b2_c3d4: (bigEndian, nanoseconds) = (false, false)
        case 0xd4c3_b2a1: (bigEndian, nanoseconds) = (true, false)
        case 0xa1b2_3c4d: (bigEndian, nanoseconds) = (false, true)
        case 0x4d3c_b2a1: (bigEndian, nanoseconds) = (true, true)
        default: return nil
        }
        linkType = Int32(bitPattern: Self.uint32(bytes, 20, bigEndian: bigEndian) & 0x0fff_ffff)
        frames = []
        var offset = 24
        while offset + 16 <= bytes.count, frames.count < maxFrames {
            let seconds = Double(Self.uint32(bytes, offset, bigEndian: bigEndian))
            let fraction = Double(Self.uint32(bytes, offset + 4, bigEndian: bigEndian))
            let included = Int(Self.uint32(bytes, offset + 8, bigEndian: bigEndian))
            let original = Int(Self.uint32(bytes, offset + 12, bigEndian: bigEndian))
            offset += 16
            guard included <= bytes.count - offset else { break }
            frames.append(Frame(timestamp: seconds + fraction / (nanoseconds ? 1e9 : 1e6),
                                bytes: Array(bytes[offset..<(offset + included)]),
                                originalLength: max(original, included)))
            offset += included
        }
    }

    static func uint32(_ bytes: [UInt8], _ offset: Int, bigEndian: Bool) -> UInt32 {
        let value = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
            | UInt32(bytes[offset + 3]) << 24
        return bigEndian ? value.byteSwapped : value
    }
}
