/// Bounds-checked big-endian reads at offsets from a slice's start: nil instead of a trap when the bytes are short.
extension ArraySlice where Element == UInt8 {
    func byte(at offset: Int) -> UInt8? {
        offset >= 0 && offset < count ? self[startIndex + offset] : nil
    }

    func uint16(at offset: Int) -> UInt16? {
        guard offset >= 0, offset + 2 <= count else { return nil }
        return UInt16(self[startIndex + offset]) << 8 | UInt16(self[startIndex + offset + 1])
    }

    func uint32(at offset: Int) -> UInt32? {
        guard offset >= 0, offset + 4 <= count else { return nil }
        var value: UInt32 = 0
        for index in 0..<4 { value = value << 8 | UInt32(self[startIndex + offset + index]) }
        return value
    }

    /// The bytes from `offset` on (empty when past the end).
    func suffix(from offset: Int) -> ArraySlice<UInt8> {
        self[(startIndex + Swift.min(Swift.max(offset, 0), count))...]
    }

    /// `length` bytes from `offset`, clipped to what there is.
    func slice(at offset: Int, length: Int) -> ArraySlice<UInt8> {
        let start = startIndex + Swift.min(Swift.max(offset, 0), count)
        let end = Swift.min(start + Swift.max(length, 0), endIndex)
        return self[start..<end]
    }
}
