/// FNV-1a over the input: harnesses derive their settings (split points, targets, limits) from it, so that each
/// input is replayed exactly, with nothing random outside it.
public struct FuzzHash: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
    }

    /// Bits `from..<from+count` of the hash.
    public func bits(_ from: Int, _ count: Int) -> Int {
        Int(truncatingIfNeeded: (value >> UInt64(from)) & ((1 << UInt64(count)) - 1))
    }
}
