import CPcap
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the frames of a capture file through libpcap: pcap (microsecond or nanosecond) and pcapng, plain or
/// gzip-compressed.
///
/// libpcap cannot read gzip, so a file that starts with gzip's magic number is decompressed by ``GzipDecoder``
/// (pure Swift, no zlib, no `gzip` process) into an anonymous temporary file (`tmpfile(3)`, gone when closed) that
/// libpcap then reads with `pcap_fopen_offline_with_tstamp_precision`. Memory stays bounded whatever the size.
///
/// This is the only part of the replay that does I/O; everything after it takes ``CapturedFrame`` values. Not
/// thread-safe: one reader, one thread.
public final class CaptureReader {
    /// The file being read.
    public let path: String
    /// The link type of the capture's (first) interface.
    public let linkType: LinkType
    /// Whether the file was gzip-compressed.
    public let wasCompressed: Bool
    /// What went wrong decompressing, when the gzip data is cut short or damaged after some output: the frames
    /// decoded before it are read, and the capture counts as truncated.
    public let decompressionProblem: String?
    /// Frames handed out so far.
    public private(set) var framesRead = 0

    private let handle: OpaquePointer

    /// Opens `path`; throws ``CaptureError`` when it cannot be opened, is not a capture, or its gzip is corrupt.
    public init(path: String, maxDecompressedBytes: Int = 8 << 30) throws(CaptureError) {
        self.path = path
        guard var file = fopen(path, "rb") else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        var magic = [UInt8](repeating: 0, count: 2)
        let got = fread(&magic, 1, 2, file)
        rewind(file)
        var compressed = false
        var problem: String? = nil
        if got == 2, GzipDecoder.isGzip(magic) {
            compressed = true
            (file, problem) = try Self.decompress(file, path: path, limit: maxDecompressedBytes)
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let opened = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO),
                                                                    &errorBuffer) else {
            fclose(file)
            let reason = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .notACapture(path: path, reason: reason.isEmpty ? "unknown format" : reason)
        }
        // From here libpcap owns the FILE and closes it in pcap_close.
        handle = opened
        wasCompressed = compressed
        decompressionProblem = problem
        linkType = LinkType(rawValue: pcap_datalink(opened))
    }

    deinit {
        pcap_close(handle)
    }

    /// The next frame, or nil at the end of the file. Throws ``CaptureError/truncated(path:afterFrame:reason:)``
    /// when the file ends inside a record or a record is damaged; the frames before it were all handed out.
    public func next() throws(CaptureError) -> CapturedFrame? {
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        let status = pcap_next_ex(handle, &header, &data)
        switch status {
        case 1:
            guard let header, let data else { return nil }
            let length = Int(header.pointee.caplen)
            framesRead += 1
            // Nanosecond precision was asked for, so tv_usec holds nanoseconds.
            let seconds = Double(header.pointee.ts.tv_sec) + Double(header.pointee.ts.tv_usec) / 1e9
            return CapturedFrame(number: framesRead, timestamp: seconds, linkType: linkType,
                                 bytes: Array(UnsafeBufferPointer(start: data, count: length)),
                                 originalLength: Int(header.pointee.len))
        case -2, 0:
            return nil
        default:
            throw .truncated(path: path, afterFrame: framesRead, reason: String(cString: pcap_geterr(handle)))
        }
    }

    /// Decompresses a gzip file into an anonymous temporary file, positioned at its start. When the data breaks
    /// off after some output, that output is kept and the problem returned; with no output at all it is an error.
    private static func decompress(_ file: UnsafeMutablePointer<FILE>, path: String,
                                   limit: Int) throws(CaptureError) -> (UnsafeMutablePointer<FILE>, String?) {
        defer { fclose(file) }
        guard let temporary = tmpfile() else {
            let reason = String(cString: strerror(errno))
            throw .cannotOpen(path: path, reason: "no temporary file for decompression: \(reason)")
        }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var written = 0
        var problem: String? = nil
        do {
            try GzipDecoder(maxOutputBytes: limit).decode(
                read: {
                    let count = fread(&chunk, 1, chunk.count, file)
                    return Array(chunk[0..<count])
                },
                write: { bytes in
                    written += bytes.count
                    return bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, temporary) } == bytes.count
                })
        } catch {
            guard written > 0, error != .writeFailed else {
                fclose(temporary)
                throw .badCompression(path: path, reason: "gzip: \(error.explanation)")
            }
            problem = "\(path): gzip: \(error.explanation) after \(written) decompressed bytes"
        }
        rewind(temporary)
        return (temporary, problem)
    }
}
