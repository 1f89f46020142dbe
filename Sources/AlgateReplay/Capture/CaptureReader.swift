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
/// The path ``standardInput`` (`-`) reads the capture from standard input. A pipe cannot be rewound after its
/// first bytes were looked at (gzip or not), so it is first copied into an anonymous temporary file, up to
/// `maxStandardInputBytes` (8 GiB by default; more is ``CaptureError/tooLarge(path:limit:)``), and read from there
/// like a file: disk, not memory, holds it.
///
/// This is the only part of the replay that does I/O; everything after it takes ``CapturedFrame`` values. Not
/// thread-safe: one reader, one thread.
public final class CaptureReader {
    /// The path that means standard input.
    public static let standardInput = "-"
    /// The file being read (``standardInput`` for standard input).
    public let path: String
    /// The path for people: the path, or `standard input`.
    public let displayName: String
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

    /// Opens `path` (``standardInput``: reads standard input to its end first); throws ``CaptureError`` when it
    /// cannot be opened, is not a capture, its gzip is corrupt, or standard input holds more than
    /// `maxStandardInputBytes`.
    public init(path: String, maxDecompressedBytes: Int = 8 << 30,
                maxStandardInputBytes: Int = 8 << 30) throws(CaptureError) {
        self.path = path
        let name = path == Self.standardInput ? "standard input" : path
        displayName = name
        var file: UnsafeMutablePointer<FILE>
        if path == Self.standardInput {
            // A FILE of its own on a duplicate of descriptor 0 (the C `stdin` global is shared mutable state).
            guard let input = fdopen(dup(STDIN_FILENO), "rb") else {
                throw .cannotOpen(path: name, reason: String(cString: strerror(errno)))
            }
            defer { fclose(input) }
            file = try Self.spool(input, name: name, limit: maxStandardInputBytes)
        } else {
            guard let opened = fopen(path, "rb") else {
                throw .cannotOpen(path: name, reason: String(cString: strerror(errno)))
            }
            file = opened
        }
        var magic = [UInt8](repeating: 0, count: 2)
        let got = fread(&magic, 1, 2, file)
        rewind(file)
        var compressed = false
        var problem: String? = nil
        if got == 2, GzipDecoder.isGzip(magic) {
            compressed = true
            (file, problem) = try Self.decompress(file, path: name, limit: maxDecompressedBytes)
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let opened = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO),
                                                                    &errorBuffer) else {
            fclose(file)
            let reason = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .notACapture(path: name, reason: reason.isEmpty ? "unknown format" : reason)
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
            throw .truncated(path: displayName, afterFrame: framesRead,
                             reason: String(cString: pcap_geterr(handle)))
        }
    }

    /// Copies a stream (standard input) to its end into an anonymous temporary file, positioned at its start.
    private static func spool(_ input: UnsafeMutablePointer<FILE>, name: String,
                              limit: Int) throws(CaptureError) -> UnsafeMutablePointer<FILE> {
        guard let temporary = tmpfile() else {
            let reason = String(cString: strerror(errno))
            throw .cannotOpen(path: name, reason: "no temporary file to hold it: \(reason)")
        }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var total = 0
        while true {
            let count = fread(&chunk, 1, chunk.count, input)
            if count == 0 {
                guard ferror(input) == 0 else {
                    let reason = String(cString: strerror(errno))
                    fclose(temporary)
                    throw .cannotOpen(path: name, reason: "read failed: \(reason)")
                }
                break
            }
            total += count
            guard total <= limit else {
                fclose(temporary)
                throw .tooLarge(path: name, limit: limit)
            }
            guard fwrite(chunk, 1, count, temporary) == count else {
                let reason = String(cString: strerror(errno))
                fclose(temporary)
                throw .cannotOpen(path: name, reason: "cannot write the temporary file: \(reason)")
            }
        }
        rewind(temporary)
        return temporary
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
