/// A TCP segment's header fields and payload.
struct TCPSegment {
    var sourcePort: UInt16
    var destinationPort: UInt16
    var sequence: UInt32
    var acknowledgment: UInt32
    var flags: UInt8
    var payload: ArraySlice<UInt8>
    /// Payload bytes the capture does not hold (snap length).
    var missingBytes: Int

    var isSYN: Bool { flags & 0x02 != 0 }
    var isFIN: Bool { flags & 0x01 != 0 }
    var isRST: Bool { flags & 0x04 != 0 }
    var hasACK: Bool { flags & 0x10 != 0 }

    /// Decodes a TCP header; nil when the bytes are too short for it.
    static func decode(_ bytes: ArraySlice<UInt8>, missing: Int) -> TCPSegment? {
        guard let sourcePort = bytes.uint16(at: 0), let destinationPort = bytes.uint16(at: 2),
              let sequence = bytes.uint32(at: 4), let acknowledgment = bytes.uint32(at: 8),
              let offsetByte = bytes.byte(at: 12), let flags = bytes.byte(at: 13) else { return nil }
        let headerLength = Int(offsetByte >> 4) * 4
        guard headerLength >= 20, bytes.count >= headerLength else { return nil }
        return TCPSegment(sourcePort: sourcePort, destinationPort: destinationPort, sequence: sequence,
                          acknowledgment: acknowledgment, flags: flags, payload: bytes.suffix(from: headerLength),
                          missingBytes: missing)
    }
}

/// A UDP datagram's ports and payload.
struct UDPDatagram {
    var sourcePort: UInt16
    var destinationPort: UInt16
    var payload: ArraySlice<UInt8>
    var missingBytes: Int

    static func decode(_ bytes: ArraySlice<UInt8>, missing: Int) -> UDPDatagram? {
        guard let sourcePort = bytes.uint16(at: 0), let destinationPort = bytes.uint16(at: 2),
              let length = bytes.uint16(at: 4), bytes.count >= 8 else { return nil }
        // Length 0 is a jumbogram's (RFC 2675) or offload's: take what there is.
        let announced = length == 0 ? bytes.count + missing : Int(length)
        guard announced >= 8 else { return nil }
        let payload = bytes.slice(at: 8, length: announced - 8)
        return UDPDatagram(sourcePort: sourcePort, destinationPort: destinationPort, payload: payload,
                           missingBytes: max(0, announced - 8 - payload.count))
    }
}
