/// Byte constants and small helpers for the ASCII grammars of FTP and SIP.
///
/// The rewriters work on bytes, never on decoded Strings, so these are the only character classes they need.
public import NIOCore

/// Where the writers put ASCII bytes: a byte array, or straight into a ByteBuffer (no intermediate array).
public protocol ASCIISink {
    mutating func appendByte(_ byte: UInt8)
}

extension Array: ASCIISink where Element == UInt8 {
    @inlinable
    public mutating func appendByte(_ byte: UInt8) { append(byte) }
}

extension ByteBuffer: ASCIISink {
    @inlinable
    public mutating func appendByte(_ byte: UInt8) { writeInteger(byte) }
}

extension ASCIISink {
    /// Appends every byte of a sequence.
    @inlinable
    public mutating func appendBytes(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { appendByte(byte) }
    }
}

public enum ASCII {
    public static let cr: UInt8 = 0x0D
    public static let lf: UInt8 = 0x0A
    public static let space: UInt8 = 0x20
    public static let tab: UInt8 = 0x09
    public static let comma: UInt8 = 0x2C
    public static let dot: UInt8 = 0x2E
    public static let colon: UInt8 = 0x3A
    public static let zero: UInt8 = 0x30
    public static let nine: UInt8 = 0x39
    public static let openParen: UInt8 = 0x28
    public static let closeParen: UInt8 = 0x29
    public static let hyphen: UInt8 = 0x2D
    public static let equals: UInt8 = 0x3D
    public static let openBracket: UInt8 = 0x5B
    public static let closeBracket: UInt8 = 0x5D
    /// Telnet's Interpret As Command byte, which may precede ABOR and friends on an FTP control connection.
    public static let telnetIAC: UInt8 = 0xFF

    @inline(__always)
    public static func isDigit(_ byte: UInt8) -> Bool { byte >= zero && byte <= nine }

    @inline(__always)
    public static func isHexDigit(_ byte: UInt8) -> Bool { isDigit(byte) || ((byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66) }

    @inline(__always)
    public static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A }

    @inline(__always)
    public static func upper(_ byte: UInt8) -> UInt8 { (byte >= 0x61 && byte <= 0x7A) ? byte - 0x20 : byte }

    @inline(__always)
    public static func lower(_ byte: UInt8) -> UInt8 { (byte >= 0x41 && byte <= 0x5A) ? byte + 0x20 : byte }

    /// The value of a hexadecimal digit, either case; nil for any other byte.
    @inline(__always)
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    /// Appends a non-negative integer in decimal.
    public static func appendDecimal(_ value: Int, to out: inout some ASCIISink) {
        precondition(value >= 0, "appendDecimal takes non-negative values")
        if value < 10 {
            out.appendByte(zero + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[count] = zero + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            while count > 0 {
                count -= 1
                out.appendByte(raw[count])
            }
        }
    }

    /// Appends a non-negative integer in lower-case hexadecimal without leading zeros.
    public static func appendHex(_ value: Int, to out: inout some ASCIISink) {
        var shift = 60
        while shift > 0, (value >> shift) & 0xF == 0 { shift -= 4 }
        while shift >= 0 {
            let nibble = UInt8((value >> shift) & 0xF)
            out.appendByte(nibble < 10 ? zero + nibble : 0x61 + nibble - 10)
            shift -= 4
        }
    }
}
