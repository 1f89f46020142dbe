/// Turns captured bytes into one printable line for reports: control bytes escaped (`\x00`), line ends dropped,
/// invalid UTF-8 replaced, and at most `limit` bytes shown.
enum ReplayText {
    static func line(_ bytes: some Collection<UInt8>, limit: Int = 300) -> String {
        var body = Array(bytes)
        while let last = body.last, last == 0x0a || last == 0x0d { body.removeLast() }
        let shown = body.prefix(limit)
        var out = ""
        var run: [UInt8] = []
        func flush() {
            if !run.isEmpty { out += String(decoding: run, as: UTF8.self) }
            run.removeAll()
        }
        for byte in shown {
            if byte < 0x20 && byte != 0x09 || byte == 0x7f {
                flush()
                out += "\\x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
            } else {
                run.append(byte)
            }
        }
        flush()
        if body.count > limit { out += "... (\(body.count) bytes)" }
        return out
    }

    /// The lines of a message (split at LF, CR dropped), each made printable.
    static func lines(_ bytes: some Collection<UInt8>) -> [String] {
        Array(bytes).split(separator: 0x0a, omittingEmptySubsequences: false).map { line($0) }
    }

    /// A time rounded to the microsecond (capture timestamps hold no more as Doubles since the epoch).
    static func rounded(_ seconds: Double) -> Double {
        (seconds * 1e6).rounded() / 1e6
    }
}
