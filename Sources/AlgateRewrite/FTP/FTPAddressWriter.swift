/// Writes the address forms of PORT/227, LPRT/228 and EPRT/229 as ASCII bytes.
public enum FTPAddressWriter {
    /// `h1,h2,h3,h4,p1,p2`; the address must be IPv4.
    public static func appendSix(_ endpoint: Endpoint, to out: inout some ASCIISink) {
        guard case .v4(let value) = endpoint.address.unmapped else {
            preconditionFailure("a PORT/227 tuple carries only IPv4 addresses")
        }
        for shift in [24, 16, 8, 0] {
            ASCII.appendDecimal(Int(UInt8(truncatingIfNeeded: value >> UInt32(shift))), to: &out)
            out.appendByte(ASCII.comma)
        }
        appendPortPair(endpoint.port, to: &out)
    }

    /// `af,hal,h...,2,p1,p2` (RFC 1639): family 4 with 4 address bytes, or 6 with 16.
    public static func appendLong(_ endpoint: Endpoint, to out: inout some ASCIISink) {
        let address = endpoint.address.unmapped
        let bytes = address.bytes
        ASCII.appendDecimal(address.isIPv4 ? 4 : 6, to: &out)
        out.appendByte(ASCII.comma)
        ASCII.appendDecimal(bytes.count, to: &out)
        for byte in bytes {
            out.appendByte(ASCII.comma)
            ASCII.appendDecimal(Int(byte), to: &out)
        }
        out.appendBytes([ASCII.comma, ASCII.zero + 2, ASCII.comma])
        appendPortPair(endpoint.port, to: &out)
    }

    /// `<d>1<d>addr<d>port<d>` or `<d>2<d>addr<d>port<d>` (RFC 2428), with the family chosen by the address.
    public static func appendExtended(_ endpoint: Endpoint, delimiter: UInt8, to out: inout some ASCIISink) {
        let address = endpoint.address.unmapped
        out.appendByte(delimiter)
        out.appendByte(ASCII.zero + (address.isIPv4 ? 1 : 2))
        out.appendByte(delimiter)
        address.appendASCII(to: &out)
        out.appendByte(delimiter)
        ASCII.appendDecimal(Int(endpoint.port), to: &out)
        out.appendByte(delimiter)
    }

    static func appendPortPair(_ port: UInt16, to out: inout some ASCIISink) {
        ASCII.appendDecimal(Int(port >> 8), to: &out)
        out.appendByte(ASCII.comma)
        ASCII.appendDecimal(Int(port & 0xFF), to: &out)
    }
}
