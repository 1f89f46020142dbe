/// The line on which each key, table header and array element of a TOML document is written.
///
/// TOMLKit gives no positions for keys, so the text is scanned once more: table headers (`[a.b]`) and headers of
/// arrays of tables (`[[ftp]]`, counted per occurrence so the second one is `ftp[1]`), dotted and quoted keys,
/// inline tables and arrays (whose elements get their own index), strings of every kind (so that a `=` or `[`
/// inside one is not mistaken for syntax) and comments. The scan runs only on text TOMLKit has accepted, so it
/// can be forgiving: anything it does not expect is skipped to the end of the line.
struct TOMLLineIndex {
    /// The 1-based line of every path that appears in the text; a path mentioned more than once keeps its first.
    private(set) var lines: [ConfigPath: Int] = [:]

    init(scanning text: String) {
        var scanner = Scanner(bytes: Array(text.utf8))
        scanner.scanDocument()
        lines = scanner.lines
    }

    /// The line of `path`, or of the nearest enclosing table that is written down.
    func line(of path: ConfigPath) -> Int? {
        var path = path
        while true {
            if let line = lines[path] { return line }
            if path.isRoot { return nil }
            path = path.parent
        }
    }
}

private struct Scanner {
    let bytes: [UInt8]
    var index = 0
    var line = 1
    var lines: [ConfigPath: Int] = [:]
    /// How many elements each array of tables has had so far, by resolved path.
    var arrayTableCounts: [ConfigPath: Int] = [:]
    /// The table that key/value lines currently belong to.
    var current = ConfigPath.root

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    var atEnd: Bool { index >= bytes.count }
    var byte: UInt8 { bytes[index] }

    func peek(_ offset: Int) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    mutating func record(_ path: ConfigPath, line: Int) {
        if lines[path] == nil { lines[path] = line }
    }

    /// Records `path` and every enclosing path not yet seen, all at `line`.
    mutating func recordWithParents(_ path: ConfigPath, line: Int) {
        var path = path
        while !path.isRoot {
            record(path, line: line)
            path = path.parent
        }
    }

    // MARK: Document

    mutating func scanDocument() {
        while !atEnd {
            skipBlanks()
            guard !atEnd else { break }
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                index += 1
            case UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "#"):
                skipToEndOfLine()
            case UInt8(ascii: "["):
                scanHeader()
                skipToEndOfLine()
            default:
                scanKeyValue(in: current)
                skipToEndOfLine()
            }
        }
    }

    mutating func scanHeader() {
        let headerLine = line
        let isArray = peek(1) == UInt8(ascii: "[")
        index += isArray ? 2 : 1
        let keys = scanKey()
        // Resolve each step: a step through an array of tables means its latest element ("[ftp.x]" after
        // "[[ftp]]" is a sub-table of that last [[ftp]]).
        var path = ConfigPath.root
        for (position, key) in keys.enumerated() {
            path = path.appending(key)
            if position < keys.count - 1, let count = arrayTableCounts[path], count > 0 {
                path = path.appending(index: count - 1)
            }
        }
        if isArray {
            let count = arrayTableCounts[path, default: 0]
            arrayTableCounts[path] = count + 1
            recordWithParents(path, line: headerLine)
            path = path.appending(index: count)
        }
        recordWithParents(path, line: headerLine)
        current = path
    }

    mutating func scanKeyValue(in table: ConfigPath) {
        let keyLine = line
        let keys = scanKey()
        guard !keys.isEmpty else { return }
        skipBlanks()
        guard !atEnd, byte == UInt8(ascii: "=") else { return }
        index += 1
        let path = table.appending(ConfigPath(keys: keys))
        recordWithParents(path, line: keyLine)
        scanValue(at: path)
    }

    // MARK: Keys

    /// Reads `a`, `a.b`, `"quoted key".c`, `'literal'`, with blanks around the dots.
    mutating func scanKey() -> [String] {
        var keys: [String] = []
        while true {
            skipBlanks()
            guard !atEnd else { return keys }
            if byte == UInt8(ascii: "\"") {
                keys.append(scanSingleLineString(quote: byte, escapes: true))
            } else if byte == UInt8(ascii: "'") {
                keys.append(scanSingleLineString(quote: byte, escapes: false))
            } else {
                let start = index
                while !atEnd, ConfigPath.isBareKeyByte(byte) { index += 1 }
                guard index > start else { return keys }
                keys.append(String(decoding: bytes[start..<index], as: UTF8.self))
            }
            skipBlanks()
            guard !atEnd, byte == UInt8(ascii: ".") else { return keys }
            index += 1
        }
    }

    // MARK: Values

    mutating func scanValue(at path: ConfigPath) {
        skipBlanks()
        guard !atEnd else { return }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            if peek(1) == byte, peek(2) == byte {
                scanMultiLineString(quote: byte)
            } else {
                _ = scanSingleLineString(quote: byte, escapes: byte == UInt8(ascii: "\""))
            }
        case UInt8(ascii: "["):
            scanArray(at: path)
        case UInt8(ascii: "{"):
            scanInlineTable(at: path)
        default:
            // Number, boolean, date: up to the next delimiter.
            while !atEnd, !isDelimiter(byte) { index += 1 }
        }
    }

    mutating func scanArray(at path: ConfigPath) {
        index += 1  // "["
        var element = 0
        while true {
            skipBlanksNewlinesAndComments()
            guard !atEnd else { return }
            if byte == UInt8(ascii: "]") {
                index += 1
                return
            }
            if byte == UInt8(ascii: ",") {
                index += 1
                continue
            }
            let start = index
            let elementPath = path.appending(index: element)
            record(elementPath, line: line)
            scanValue(at: elementPath)
            element += 1
            if index == start { index += 1 }  // never stall on something unexpected
        }
    }

    mutating func scanInlineTable(at path: ConfigPath) {
        index += 1  // "{"
        while true {
            skipBlanksNewlinesAndComments()
            guard !atEnd else { return }
            if byte == UInt8(ascii: "}") {
                index += 1
                return
            }
            if byte == UInt8(ascii: ",") {
                index += 1
                continue
            }
            let start = index
            scanKeyValue(in: path)
            if index == start { index += 1 }
        }
    }

    /// Reads `"..."` or `'...'` starting at the opening quote and returns the contents (escapes decoded for the
    /// common cases, which is all a key needs).
    mutating func scanSingleLineString(quote: UInt8, escapes: Bool) -> String {
        index += 1
        var out: [UInt8] = []
        while !atEnd, byte != quote, byte != UInt8(ascii: "\n") {
            if escapes, byte == UInt8(ascii: "\\"), let next = peek(1) {
                switch next {
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "t"): out.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                default: out.append(next)
                }
                index += 2
                continue
            }
            out.append(byte)
            index += 1
        }
        if !atEnd, byte == quote { index += 1 }
        return String(decoding: out, as: UTF8.self)
    }

    /// Skips `"""..."""` or `'''...'''`, counting the lines inside; up to two quotes may end the contents.
    mutating func scanMultiLineString(quote: UInt8) {
        index += 3
        while !atEnd {
            if byte == UInt8(ascii: "\n") {
                line += 1
                index += 1
            } else if quote == UInt8(ascii: "\""), byte == UInt8(ascii: "\\") {
                index += 1
                if !atEnd {
                    if byte == UInt8(ascii: "\n") { line += 1 }
                    index += 1
                }
            } else if byte == quote, peek(1) == quote, peek(2) == quote {
                index += 3
                var extra = 0
                while extra < 2, !atEnd, byte == quote {
                    index += 1
                    extra += 1
                }
                return
            } else {
                index += 1
            }
        }
    }

    // MARK: Blanks

    func isDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "#"),
             UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: " "), UInt8(ascii: "\t"):
            return true
        default:
            return false
        }
    }

    mutating func skipBlanks() {
        while !atEnd, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { index += 1 }
    }

    mutating func skipBlanksNewlinesAndComments() {
        while !atEnd {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "\n"):
                line += 1
                index += 1
            case UInt8(ascii: "#"):
                while !atEnd, byte != UInt8(ascii: "\n") { index += 1 }
            default:
                return
            }
        }
    }

    /// Skips the rest of the line (a trailing comment, or whatever was not understood), leaving the newline.
    mutating func skipToEndOfLine() {
        while !atEnd, byte != UInt8(ascii: "\n") { index += 1 }
    }
}
