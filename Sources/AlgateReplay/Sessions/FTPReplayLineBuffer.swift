import AlgateRewrite

/// Cuts one direction of a captured FTP control stream into lines by the proxy's own rule (AlgateRewrite's
/// ``FTPLineFramer``), keeping the frame and time of the bytes that completed each line; a last line without a
/// terminator is handed out when the stream ends.
struct FTPReplayLineBuffer {
    /// A complete line, and the frame and time of the bytes that completed it.
    struct Line {
        var bytes: [UInt8]
        var frame: Int
        var time: Double
    }

    private var framer: FTPLineFramer
    private var buffer: [UInt8] = []

    init(maxLineLength: Int) {
        framer = FTPLineFramer(maxLineLength: maxLineLength)
    }

    /// Bytes buffered without a line end yet.
    var pendingBytes: Int { buffer.count }

    /// Adds bytes; returns the lines they complete.
    mutating func append(_ bytes: [UInt8], frame: Int, time: Double) throws(FTPLineTooLongError) -> [Line] {
        buffer.append(contentsOf: bytes)
        var lines: [Line] = []
        var consumed = 0
        defer { buffer.removeFirst(consumed) }
        while let length = try framer.nextLine(in: buffer[consumed...]) {
            lines.append(Line(bytes: Array(buffer[consumed..<(consumed + length)]), frame: frame, time: time))
            consumed += length
        }
        return lines
    }

    /// The stream ended: the unterminated rest, if any.
    mutating func finish(frame: Int, time: Double) -> Line? {
        defer {
            buffer.removeAll()
            framer.reset()
        }
        return buffer.isEmpty ? nil : Line(bytes: buffer, frame: frame, time: time)
    }
}
