/// Why a capture could not be read.
public enum CaptureError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file could not be opened at all (missing, unreadable).
    case cannotOpen(path: String, reason: String)
    /// The file is not a capture libpcap can read (neither pcap nor pcapng, nor gzip of either).
    case notACapture(path: String, reason: String)
    /// The file is gzip-compressed and the compressed data is corrupt.
    case badCompression(path: String, reason: String)
    /// The file ends in the middle of a record; every frame before it was read.
    case truncated(path: String, afterFrame: Int, reason: String)
    /// Standard input held more than the limit its copy may take (the limit in bytes).
    case tooLarge(path: String, limit: Int)

    /// One line for people, naming the file.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "\(path): cannot open: \(reason)"
        case .notACapture(let path, let reason): return "\(path): not a pcap or pcapng capture (\(reason))"
        case .badCompression(let path, let reason): return "\(path): \(reason)"
        case .truncated(let path, let frame, let reason):
            return "\(path): capture is truncated after frame \(frame) (\(reason))"
        case .tooLarge(let path, let limit):
            return "\(path): more than \(limit) bytes, the most a capture read from standard input may hold"
        }
    }
}
