/// One record of a capture: a link-layer frame, as libpcap hands it out.
public struct CapturedFrame: Sendable {
    /// 1 for the first frame of the file, as Wireshark counts.
    public var number: Int
    /// Seconds since the epoch, nanosecond resolution where the file has it.
    public var timestamp: Double
    /// The link type (a DLT/LINKTYPE value) of the interface the frame was captured on.
    public var linkType: LinkType
    /// The captured bytes (possibly fewer than ``originalLength`` when the capture had a snap length).
    public var bytes: [UInt8]
    /// The frame's length on the wire.
    public var originalLength: Int

    /// A frame; `originalLength` defaults to the captured length.
    public init(number: Int, timestamp: Double, linkType: LinkType, bytes: [UInt8], originalLength: Int? = nil) {
        self.number = number
        self.timestamp = timestamp
        self.linkType = linkType
        self.bytes = bytes
        self.originalLength = originalLength ?? bytes.count
    }
}
