/// One FTP command line split into its verb and argument, as byte ranges of the line.
///
/// Leading Telnet IAC sequences (clients send `IAC IP IAC DM` before ABOR) are skipped; the verb is matched
/// case-insensitively (RFC 959 5.3); the argument runs from after the single space to before CR LF or LF.
public struct FTPCommandLine: Sendable {
    /// The verbs whose arguments or replies the gateway reads.
    public enum Verb: Hashable, Sendable {
        case port, eprt, lprt, pasv, epsv, lpsv, auth, user, other
    }

    public var verb: Verb
    /// The offsets of the argument in the line, without the line terminator; empty when there is none.
    public var argument: Range<Int>
    /// The offsets of the line terminator (CR LF, LF, or nothing when the line was cut).
    public var terminator: Range<Int>

    public init(_ line: UnsafeRawBufferPointer) {
        var end = line.count
        if end > 0, line[end - 1] == ASCII.lf { end -= 1 }
        if end > 0, line[end - 1] == ASCII.cr { end -= 1 }
        terminator = end..<line.count

        var start = 0
        while start + 1 < end, line[start] == ASCII.telnetIAC { start += 2 }
        var verbEnd = start
        while verbEnd < end, ASCII.isLetter(line[verbEnd]) { verbEnd += 1 }
        verb = verbEnd - start == 4 && (verbEnd == end || line[verbEnd] == ASCII.space)
            ? FTPCommandLine.classify(line, start) : .other
        argument = verbEnd < end ? (verbEnd + 1)..<end : end..<end
    }

    private static func classify(_ line: UnsafeRawBufferPointer, _ start: Int) -> Verb {
        let word = UInt32(ASCII.upper(line[start])) << 24 | UInt32(ASCII.upper(line[start + 1])) << 16
            | UInt32(ASCII.upper(line[start + 2])) << 8 | UInt32(ASCII.upper(line[start + 3]))
        switch word {
        case fourCC("PORT"): return .port
        case fourCC("EPRT"): return .eprt
        case fourCC("LPRT"): return .lprt
        case fourCC("PASV"): return .pasv
        case fourCC("EPSV"): return .epsv
        case fourCC("LPSV"): return .lpsv
        case fourCC("AUTH"): return .auth
        case fourCC("USER"): return .user
        default: return .other
        }
    }

    private static func fourCC(_ text: StaticString) -> UInt32 {
        text.withUTF8Buffer { $0.reduce(0) { $0 << 8 | UInt32($1) } }
    }
}
