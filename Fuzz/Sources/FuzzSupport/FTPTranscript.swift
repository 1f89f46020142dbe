public import AlgateRewrite

/// The input of the FTP engine harness: one record per line (LF included), its first byte saying what it is.
///
/// - `C` and `S`: the rest are bytes from the client or the server, as they arrive on that control connection.
/// - `P`: the next pinhole the engine asks for opens, on the decimal port that follows (a default without one).
/// - `X`: the next pinhole fails.
/// - `6`: the session runs over IPv6 (only as the first record).
///
/// Other records are ignored. Seeds are written with ``line(_:_:)`` from captures.
public enum FTPTranscript {
    public enum Record: Equatable, Sendable {
        case bytes(FTPSide, [UInt8])
        case pinholeOpens(port: UInt16?)
        case pinholeFails
        case ipv6
        case ignored
    }

    public static func records(_ input: [UInt8]) -> [Record] {
        var records: [Record] = []
        var start = 0
        while start < input.count {
            let end = input[start...].firstIndex(of: 0x0A).map { $0 + 1 } ?? input.count
            records.append(record(input[start..<end], first: records.isEmpty))
            start = end
        }
        return records
    }

    private static func record(_ bytes: ArraySlice<UInt8>, first: Bool) -> Record {
        let rest = Array(bytes.dropFirst())
        switch bytes.first {
        case UInt8(ascii: "C"): return .bytes(.client, rest)
        case UInt8(ascii: "S"): return .bytes(.server, rest)
        case UInt8(ascii: "P"):
            let digits = rest.prefix { (0x30...0x39).contains($0) }
            return .pinholeOpens(port: digits.isEmpty ? nil : UInt16(String(decoding: digits, as: UTF8.self)))
        case UInt8(ascii: "X"): return .pinholeFails
        case UInt8(ascii: "6") where first: return .ipv6
        default: return .ignored
        }
    }

    /// One record: a line from `side` (its terminator included in `line`).
    public static func line(_ side: FTPSide, _ line: [UInt8]) -> [UInt8] {
        [side == .client ? UInt8(ascii: "C") : UInt8(ascii: "S")] + line
    }
}
