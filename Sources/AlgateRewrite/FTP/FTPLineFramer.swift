/// Where the next FTP control line ends: the one rule that the proxy's decoder and the replay both frame by.
///
/// A line ends at LF (CR LF, or a bare LF from sloppy peers), terminator included, so a line that is not rewritten
/// is forwarded byte for byte. A line longer than ``maxLineLength`` without its LF is an error: nothing in FTP
/// needs such a line, and buffering it is how a peer would exhaust the gateway's memory. NUL and other control
/// bytes are not special. The framer keeps only how far it has searched, so each byte is looked at once however
/// the stream is cut.
public struct FTPLineFramer: Sendable {
    /// The longest line accepted, terminator included.
    public let maxLineLength: Int
    /// Bytes at the front of the unread input already searched for LF.
    private var searched = 0

    public init(maxLineLength: Int) {
        precondition(maxLineLength > 0, "a line must be allowed at least one byte")
        self.maxLineLength = maxLineLength
    }

    /// The length of the complete line at the start of `unread` (terminator included), or nil when its LF has not
    /// arrived yet. Consume exactly that many bytes before the next call.
    ///
    /// - Throws: ``FTPLineTooLongError`` when the line is, or can only become, longer than ``maxLineLength``.
    public mutating func nextLine(in unread: some BidirectionalCollection<UInt8>) throws(FTPLineTooLongError) -> Int? {
        let count = unread.count
        let from = unread.index(unread.startIndex, offsetBy: min(searched, count))
        guard let lf = unread[from...].firstIndex(of: 0x0A) else {
            searched = count
            if count > maxLineLength { throw FTPLineTooLongError(limit: maxLineLength) }
            return nil
        }
        let length = unread.distance(from: unread.startIndex, to: lf) + 1
        searched = 0
        if length > maxLineLength { throw FTPLineTooLongError(limit: maxLineLength) }
        return length
    }

    /// The stream ended, or the caller took an unterminated rest: searching starts over.
    public mutating func reset() {
        searched = 0
    }
}

/// A control line exceeded the configured length.
public struct FTPLineTooLongError: Error, Hashable, Sendable, CustomStringConvertible {
    public var limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    public var description: String { "line longer than \(limit) bytes" }
}
