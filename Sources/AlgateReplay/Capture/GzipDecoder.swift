/// Decompresses gzip (RFC 1952) data compressed with DEFLATE (RFC 1951), in pure Swift and in bounded memory.
///
/// libpcap reads pcap and pcapng but not `.pcap.gz`, zlib is not among the project's dependencies, and a library
/// must not shell out to `gzip`: so the small decoder the formats need is here. Input comes from a pull closure
/// (the capture file, a chunk at a time), output goes to a push closure in chunks (the temporary file libpcap then
/// reads). Memory is the 32 KiB window, one input chunk and one output chunk, whatever the sizes. Several members
/// one after the other (`cat a.gz b.gz`) are decoded as one stream, as `gzip -dc` does; each member's CRC-32 and
/// length are checked.
public struct GzipDecoder {
    /// Largest output accepted; past it decoding stops with an error (a "gzip bomb" must not fill the disk).
    public var maxOutputBytes: Int

    /// A decoder that stops with ``GzipError/tooLarge(_:)`` past `maxOutputBytes` (8 GiB by default).
    public init(maxOutputBytes: Int = 8 << 30) {
        self.maxOutputBytes = maxOutputBytes
    }

    /// Whether the first bytes are gzip's magic number (1f 8b).
    public static func isGzip(_ prefix: some Collection<UInt8>) -> Bool {
        prefix.count >= 2 && prefix.first == 0x1f && prefix.dropFirst().first == 0x8b
    }

    /// Decodes everything `read` returns (an empty array means end of input) and hands the output to `write`.
    /// Returns the number of bytes written.
    @discardableResult
    public func decode(read: @escaping () -> [UInt8], write: @escaping ([UInt8]) -> Bool) throws(GzipError) -> Int {
        var input = BitReader(read: read)
        var output = InflateOutput(limit: maxOutputBytes, write: write)
        var members = 0
        while true {
            if members > 0 {
                // Trailing zero padding after the last member is tolerated, as gzip does.
                guard let first = input.peekByte(), first != 0 else { break }
            }
            try Self.readHeader(&input)
            output.startMember()
            do {
                try Inflater.inflate(&input, &output)
            } catch {
                // Hand on what was decoded before the damage: a cut-off capture is still worth replaying.
                try? output.flush()
                throw error
            }
            try output.flush()
            input.alignToByte()
            let crc: UInt32
            do {
                crc = try input.readLittleEndian32()
            } catch {
                throw .truncated
            }
            let size = try input.readLittleEndian32()
            guard crc == output.memberCRC else { throw .checksumMismatch }
            guard size == UInt32(truncatingIfNeeded: output.memberLength) else { throw .lengthMismatch }
            members += 1
        }
        return output.total
    }

    private static func readHeader(_ input: inout BitReader) throws(GzipError) {
        guard try input.readByte() == 0x1f, try input.readByte() == 0x8b else { throw .notGzip }
        guard try input.readByte() == 8 else { throw .unsupportedMethod }
        let flags = try input.readByte()
        guard flags & 0xe0 == 0 else { throw .badHeader }
        for _ in 0..<6 { _ = try input.readByte() }  // mtime, xfl, os
        if flags & 0x04 != 0 {  // FEXTRA
            let length = Int(try input.readByte()) | Int(try input.readByte()) << 8
            for _ in 0..<length { _ = try input.readByte() }
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            var count = 0
            while try input.readByte() != 0 {
                count += 1
                if count > 1 << 20 { throw .badHeader }
            }
        }
        if flags & 0x02 != 0 { _ = try input.readByte(); _ = try input.readByte() }  // FHCRC
    }
}

/// Why a gzip stream could not be decoded.
public enum GzipError: Error, Hashable, Sendable {
    /// The data does not start with gzip's magic number.
    case notGzip
    /// A compression method other than deflate (8).
    case unsupportedMethod
    /// Reserved flags set, or a header field too long.
    case badHeader
    /// The data ends before the stream does.
    case truncated
    /// The deflate data breaks RFC 1951; the text says how.
    case badBlock(String)
    /// The CRC-32 in a member's trailer does not match its data.
    case checksumMismatch
    /// The length in a member's trailer does not match its data.
    case lengthMismatch
    /// More output than the limit (the limit).
    case tooLarge(Int)
    /// The output could not be written.
    case writeFailed

    /// One line for people: what is wrong with the data.
    public var explanation: String {
        switch self {
        case .notGzip: return "not gzip data"
        case .unsupportedMethod: return "gzip compression method is not deflate"
        case .badHeader: return "malformed gzip header"
        case .truncated: return "compressed data ends early (truncated file)"
        case .badBlock(let why): return "corrupt deflate data: \(why)"
        case .checksumMismatch: return "CRC-32 mismatch: the compressed file is corrupt"
        case .lengthMismatch: return "length mismatch: the compressed file is corrupt"
        case .tooLarge(let limit): return "decompressed data exceeds the limit of \(limit) bytes"
        case .writeFailed: return "could not write the decompressed data"
        }
    }
}

/// Reads bits least significant first, as DEFLATE packs them, from chunks pulled on demand.
struct BitReader {
    private let read: () -> [UInt8]
    private var chunk: [UInt8] = []
    private var position = 0
    private var bitBuffer: UInt32 = 0
    private var bitCount = 0
    private var ended = false

    init(read: @escaping () -> [UInt8]) {
        self.read = read
    }

    private mutating func refill() -> Bool {
        guard !ended else { return false }
        chunk = read()
        position = 0
        if chunk.isEmpty { ended = true }
        return !chunk.isEmpty
    }

    /// The next whole byte without consuming it (bit buffer must be empty); nil at the end of input.
    mutating func peekByte() -> UInt8? {
        if position >= chunk.count, !refill() { return nil }
        return chunk[position]
    }

    mutating func readByte() throws(GzipError) -> UInt8 {
        if bitCount >= 8 {
            let byte = UInt8(truncatingIfNeeded: bitBuffer)
            bitBuffer >>= 8
            bitCount -= 8
            return byte
        }
        if position >= chunk.count, !refill() { throw .truncated }
        defer { position += 1 }
        return chunk[position]
    }

    mutating func readLittleEndian32() throws(GzipError) -> UInt32 {
        var value: UInt32 = 0
        for shift in stride(from: 0, to: 32, by: 8) { value |= UInt32(try readByte()) << UInt32(shift) }
        return value
    }

    mutating func bits(_ count: Int) throws(GzipError) -> Int {
        while bitCount < count {
            if position >= chunk.count, !refill() { throw .truncated }
            bitBuffer |= UInt32(chunk[position]) << UInt32(bitCount)
            position += 1
            bitCount += 8
        }
        let value = Int(bitBuffer & ((1 << UInt32(count)) - 1))
        bitBuffer >>= UInt32(count)
        bitCount -= count
        return value
    }

    /// Drops the bits left of the current byte (before a stored block and at the end of a member).
    mutating func alignToByte() {
        let drop = bitCount % 8
        bitBuffer >>= UInt32(drop)
        bitCount -= drop
    }
}

/// The sliding window and the output chunk of one decode.
struct InflateOutput {
    private static let windowSize = 32_768
    private var window = [UInt8](repeating: 0, count: InflateOutput.windowSize)
    private var windowPosition = 0
    /// How much of the window holds output of the current member (back-references may not reach further).
    private var windowFill = 0
    private var pending: [UInt8] = []
    private let limit: Int
    private let write: ([UInt8]) -> Bool
    private(set) var total = 0
    private(set) var memberLength = 0
    private(set) var memberCRC: UInt32 = 0
    private var crc: UInt32 = 0xffff_ffff

    init(limit: Int, write: @escaping ([UInt8]) -> Bool) {
        self.limit = limit
        self.write = write
        pending.reserveCapacity(65_536)
    }

    mutating func startMember() {
        windowFill = 0
        memberLength = 0
        crc = 0xffff_ffff
    }

    mutating func append(_ byte: UInt8) throws(GzipError) {
        // Refused before it is taken: what decode() hands on before the error must stay within the limit.
        guard total < limit else { throw .tooLarge(limit) }
        window[windowPosition] = byte
        windowPosition = (windowPosition + 1) & (Self.windowSize - 1)
        if windowFill < Self.windowSize { windowFill += 1 }
        pending.append(byte)
        crc = CRC32.table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        memberLength += 1
        total += 1
        if pending.count >= 65_536 { try flush() }
    }

    mutating func copy(distance: Int, length: Int) throws(GzipError) {
        guard distance > 0, distance <= windowFill else {
            throw .badBlock("distance \(distance) reaches before the data")
        }
        for _ in 0..<length {
            let byte = window[(windowPosition - distance) & (Self.windowSize - 1)]
            try append(byte)
        }
    }

    mutating func flush() throws(GzipError) {
        memberCRC = crc ^ 0xffff_ffff
        guard !pending.isEmpty else { return }
        guard write(pending) else { throw .writeFailed }
        pending.removeAll(keepingCapacity: true)
    }
}

/// DEFLATE (RFC 1951): stored, fixed-Huffman and dynamic-Huffman blocks, decoded canonically (as zlib's `puff`).
enum Inflater {
    /// A canonical Huffman code: how many codes of each length, and the symbols in code order.
    struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int]

        /// Builds the code from code lengths; throws when the lengths over-subscribe the code space.
        init(lengths: ArraySlice<Int>) throws(GzipError) {
            self.init(building: lengths)
            var left = 1
            for length in 1..<16 {
                left <<= 1
                left -= counts[length]
                guard left >= 0 else { throw .badBlock("over-subscribed Huffman code") }
            }
        }

        /// Builds the code without checking it (RFC 1951's fixed codes, which are valid).
        init(building lengths: ArraySlice<Int>) {
            symbols = [Int](repeating: 0, count: lengths.count)
            for length in lengths { counts[length] += 1 }
            var offsets = [Int](repeating: 0, count: 16)
            for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
            for (symbol, length) in lengths.enumerated() where length != 0 {
                symbols[offsets[length]] = symbol
                offsets[length] += 1
            }
        }

        func decode(_ input: inout BitReader) throws(GzipError) -> Int {
            var code = 0, first = 0, index = 0
            for length in 1..<16 {
                code |= try input.bits(1)
                let count = counts[length]
                if code - count < first { return symbols[index + (code - first)] }
                index += count
                first += count
                first <<= 1
                code <<= 1
            }
            throw .badBlock("invalid Huffman code")
        }
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                             131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025,
                               1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12,
                                12, 13, 13]
    static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    static func inflate(_ input: inout BitReader, _ output: inout InflateOutput) throws(GzipError) {
        var last = false
        while !last {
            last = try input.bits(1) == 1
            switch try input.bits(2) {
            case 0: try stored(&input, &output)
            case 1: try codes(&input, &output, fixedTables.literals, fixedTables.distances)
            case 2:
                let tables = try dynamicTables(&input)
                try codes(&input, &output, tables.literals, tables.distances)
            default: throw .badBlock("reserved block type")
            }
        }
    }

    private static func stored(_ input: inout BitReader, _ output: inout InflateOutput) throws(GzipError) {
        input.alignToByte()
        let length = Int(try input.readByte()) | Int(try input.readByte()) << 8
        let complement = Int(try input.readByte()) | Int(try input.readByte()) << 8
        guard length == ~complement & 0xffff else { throw .badBlock("stored block length does not match") }
        for _ in 0..<length { try output.append(try input.readByte()) }
    }

    private static func codes(_ input: inout BitReader, _ output: inout InflateOutput, _ literals: Huffman,
                              _ distances: Huffman) throws(GzipError) {
        while true {
            let symbol = try literals.decode(&input)
            if symbol < 256 {
                try output.append(UInt8(symbol))
            } else if symbol == 256 {
                return
            } else {
                let index = symbol - 257
                guard index < lengthBase.count else { throw .badBlock("invalid length symbol") }
                let length = lengthBase[index] + (try input.bits(lengthExtra[index]))
                let distanceSymbol = try distances.decode(&input)
                guard distanceSymbol < distanceBase.count else { throw .badBlock("invalid distance symbol") }
                let distance = distanceBase[distanceSymbol] + (try input.bits(distanceExtra[distanceSymbol]))
                try output.copy(distance: distance, length: length)
            }
        }
    }

    private static let fixedTables: (literals: Huffman, distances: Huffman) = {
        var lengths = [Int](repeating: 8, count: 288)
        for symbol in 144..<256 { lengths[symbol] = 9 }
        for symbol in 256..<280 { lengths[symbol] = 7 }
        return (Huffman(building: lengths[...]), Huffman(building: [Int](repeating: 5, count: 30)[...]))
    }()

    private static func dynamicTables(
        _ input: inout BitReader
    ) throws(GzipError) -> (literals: Huffman, distances: Huffman) {
        let literalCount = try input.bits(5) + 257
        let distanceCount = try input.bits(5) + 1
        let codeLengthCount = try input.bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else { throw .badBlock("too many length codes") }
        var codeLengths = [Int](repeating: 0, count: 19)
        for index in 0..<codeLengthCount { codeLengths[codeLengthOrder[index]] = try input.bits(3) }
        let codeLengthCode = try Huffman(lengths: codeLengths[...])
        var lengths = [Int]()
        lengths.reserveCapacity(literalCount + distanceCount)
        while lengths.count < literalCount + distanceCount {
            let symbol = try codeLengthCode.decode(&input)
            switch symbol {
            case 0..<16:
                lengths.append(symbol)
            case 16:
                guard let previous = lengths.last else { throw .badBlock("repeat with no previous length") }
                lengths.append(contentsOf: repeatElement(previous, count: 3 + (try input.bits(2))))
            case 17:
                lengths.append(contentsOf: repeatElement(0, count: 3 + (try input.bits(3))))
            default:
                lengths.append(contentsOf: repeatElement(0, count: 11 + (try input.bits(7))))
            }
        }
        guard lengths.count == literalCount + distanceCount else { throw .badBlock("too many lengths") }
        guard lengths[256] != 0 else { throw .badBlock("no end-of-block code") }
        return (try Huffman(lengths: lengths[0..<literalCount]),
                try Huffman(lengths: lengths[literalCount...]))
    }
}

/// CRC-32 (IEEE 802.3, reflected), as gzip's trailer carries it.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xedb8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }
}
