/// Cuts one direction of an FTP control stream into lines the way the proxy's `FTPLineDecoder` does: each line
/// ends in LF (terminator included), a line longer than the limit without its LF is an error, and a last line
/// without a terminator is handed out when the stream ends.
struct FTPLineFramer {
    /// A complete line, and the frame and time of the bytes that completed it.
    struct Line {
        var bytes: [UInt8]
        var frame: Int
        var time: Double
    }

    enum Failure: Error {
        case tooLong(limit: Int)
    }

    let maxLineLength: Int
    private var buffer: [UInt8] = []
    private var searched = 0

    init(maxLineLength: Int) {
        self.maxLineLength = maxLineLength
    }

    /// Bytes buffered without a line end yet.
    var pendingBytes: Int { buffer.count }

    /// Adds bytes; returns the lines they complete.
    mutating func append(_ bytes: [UInt8], frame: Int, time: Double) throws(Failure) -> [Line] {
        buffer.append(contentsOf: bytes)
        var lines: [Line] = []
        while let lf = buffer[searched...].firstIndex(of: 0x0a) {
            let length = lf + 1
            guard length <= maxLineLength else { throw .tooLong(limit: maxLineLength) }
            lines.append(Line(bytes: Array(buffer[..<length]), frame: frame, time: time))
            buffer.removeFirst(length)
            searched = 0
        }
        searched = buffer.count
        if buffer.count > maxLineLength { throw .tooLong(limit: maxLineLength) }
        return lines
    }

    /// The stream ended: the unterminated rest, if any.
    mutating func finish(frame: Int, time: Double) -> Line? {
        defer { buffer.removeAll() }
        return buffer.isEmpty ? nil : Line(bytes: buffer, frame: frame, time: time)
    }
}
