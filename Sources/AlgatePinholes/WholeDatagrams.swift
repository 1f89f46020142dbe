public import NIOCore
public import NIOPosix

/// Receiving whole datagrams: NIO's datagram channels read into 2,048-byte buffers by default, and a longer
/// datagram is cut to that size without a word (the kernel's MSG_TRUNC never reaches the pipeline). A SIP INVITE
/// with a WebRTC offer is 2-5 KB, so every datagram socket of the gateway reads into buffers one byte larger than
/// the largest datagram it accepts: a datagram that fills the buffer is over the limit (and may have been cut), and
/// is refused as such (the SIP parser's size check answers it `513`) rather than parsed.
///
/// Memory: each socket keeps one receive buffer of that size once it has read, but a buffer's untouched pages are
/// never made resident, so a small RTP packet in a 64 KiB buffer costs the pages it touched.
public enum WholeDatagrams {
    /// The largest media datagram a relay carries: the largest UDP payload there is.
    public static let mediaLimit = 65_535

    /// A receive allocator for datagrams of up to `limit` bytes, with one byte to tell a longer one.
    public static func allocator(upTo limit: Int) -> FixedSizeRecvByteBufferAllocator {
        FixedSizeRecvByteBufferAllocator(capacity: limit + 1)
    }
}

extension DatagramBootstrap {
    /// This bootstrap with channels that receive datagrams whole up to `limit` bytes (see ``WholeDatagrams``).
    public func receivingWholeDatagrams(upTo limit: Int) -> DatagramBootstrap {
        channelOption(.recvAllocator, value: WholeDatagrams.allocator(upTo: limit))
    }
}
