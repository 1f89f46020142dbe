/// The start of an FTP reply line: its three-digit code and whether it opens a multi-line reply.
///
/// RFC 959 4.2: a reply is `ddd<SP>text` or, for a multi-line reply, `ddd-text` then any lines up to one that
/// starts with the same code and a space. Continuation lines in between may start with anything, digits included.
public struct FTPReplyLine: Hashable, Sendable {
    public var code: Int
    /// True for `ddd-`: more lines follow up to `ddd<SP>`.
    public var opensMultiline: Bool

    /// Reads the code of a line that starts a reply; nil when the line does not start with `ddd`, `ddd ` or `ddd-`.
    public init?(_ line: UnsafeRawBufferPointer) {
        guard line.count >= 3, ASCII.isDigit(line[0]), ASCII.isDigit(line[1]), ASCII.isDigit(line[2]),
              (1...5).contains(line[0] - ASCII.zero) else { return nil }
        code = Int(line[0] - ASCII.zero) * 100 + Int(line[1] - ASCII.zero) * 10 + Int(line[2] - ASCII.zero)
        if line.count == 3 {
            opensMultiline = false
            return
        }
        switch line[3] {
        case ASCII.hyphen: opensMultiline = true
        case ASCII.space, ASCII.cr, ASCII.lf: opensMultiline = false
        default: return nil
        }
    }

    /// Whether this line closes a multi-line reply that opened with `code`.
    public static func closes(_ line: UnsafeRawBufferPointer, code: Int) -> Bool {
        guard let reply = FTPReplyLine(line) else { return false }
        return reply.code == code && !reply.opensMultiline
    }

    /// 1xx: a preliminary reply; the command still waits for its final one.
    public var isPreliminary: Bool { code < 200 }
}
