/// The start line and header fields of a message, found line by line up to the empty line that ends them.
///
/// Shared by ``SIPMessage/parse(_:limits:)`` (one datagram or one framed message) and ``SIPStreamFramer`` (the
/// front of a stream, where "not yet" is an answer). Lines end in CRLF or, tolerated, a bare LF; a CR anywhere else
/// is refused, so a CR can never hide a line end from one parser and show it to another.
struct SIPHeaderSection {
    /// The first line, without its terminator.
    var startLine: Range<Int>
    var fields: [SIPHeaderField]
    /// The offset of the empty line.
    var headerEnd: Int
    /// The offset just after the empty line: where the body starts.
    var bodyStart: Int

    enum Scan {
        case complete(SIPHeaderSection)
        /// No empty line yet; the start line, when a whole one is there.
        case incomplete(startLine: Range<Int>?)
    }

    /// Scans from offset 0, which must be the first byte of the start line. The start line is checked (not its
    /// URI) as soon as it is complete.
    static func scan(_ bytes: UnsafeRawBufferPointer, limits: SIPLimits) throws(SIPParseError) -> Scan {
        let count = bytes.count
        var startLine: Range<Int>? = nil
        var fields: [SIPHeaderField] = []
        // The field being read: it may continue on folded lines.
        var pending: (nameRange: Range<Int>, valueStart: Int, contentEnd: Int, lineStart: Int, lineEnd: Int)? = nil
        var lineStart = 0
        var lineNumber = 1

        func finish() {
            guard let field = pending else { return }
            fields.append(SIPHeaderField(
                name: SIPHeaderName.classify(bytes, field.nameRange), nameRange: field.nameRange,
                valueRange: SIPGrammar.trimLWS(bytes, field.valueStart..<field.contentEnd),
                lineRange: field.lineStart..<field.lineEnd))
            pending = nil
        }

        while true {
            var index = lineStart
            var contentEnd = -1
            while index < count {
                let byte = bytes[index]
                if byte == ASCII.lf {
                    contentEnd = index > lineStart && bytes[index - 1] == ASCII.cr ? index - 1 : index
                    break
                }
                if byte == ASCII.cr, index + 1 < count, bytes[index + 1] != ASCII.lf {
                    throw lineNumber == 1 ? .badStartLine : .badHeader(line: lineNumber)
                }
                index += 1
                if index - lineStart > limits.maxLineBytes { throw .tooLarge("header line") }
            }
            guard contentEnd >= 0 else {
                if count > limits.maxHeaderBytes { throw .tooLarge("header section") }
                return .incomplete(startLine: startLine)
            }
            let lineEnd = index + 1
            if lineEnd - lineStart > limits.maxLineBytes { throw .tooLarge("header line") }
            if lineEnd > limits.maxHeaderBytes { throw .tooLarge("header section") }

            if startLine == nil {
                // Judge the start line as soon as it is whole: junk is refused before anything after it is read.
                _ = try SIPStartLineParser.parse(bytes, lineStart..<contentEnd)
                startLine = lineStart..<contentEnd
            } else if contentEnd == lineStart {
                finish()
                return .complete(SIPHeaderSection(startLine: startLine ?? 0..<0, fields: fields,
                                                  headerEnd: lineStart, bodyStart: lineEnd))
            } else if SIPGrammar.isBlank(bytes[lineStart]) {
                // A continuation line (RFC 3261 7.3.1); there must be a field to continue.
                guard pending != nil else { throw .badHeader(line: lineNumber) }
                pending?.contentEnd = contentEnd
                pending?.lineEnd = lineEnd
            } else {
                finish()
                var cursor = lineStart
                while cursor < contentEnd, SIPGrammar.isTokenChar(bytes[cursor]) { cursor += 1 }
                let nameRange = lineStart..<cursor
                while cursor < contentEnd, SIPGrammar.isBlank(bytes[cursor]) { cursor += 1 }
                guard !nameRange.isEmpty, cursor < contentEnd, bytes[cursor] == ASCII.colon else {
                    throw .badHeader(line: lineNumber)
                }
                guard fields.count < limits.maxHeaders else { throw .tooLarge("header count") }
                pending = (nameRange, cursor + 1, contentEnd, lineStart, lineEnd)
            }
            lineStart = lineEnd
            lineNumber += 1
        }
    }

    /// The leading line ends before a start line (RFC 3261 7.5 tells stream receivers to ignore them; RFC 5626 uses
    /// them as keep-alives). A CR not yet followed by its LF is not counted.
    static func leadingLineEnds(_ bytes: UnsafeRawBufferPointer) -> Int {
        var index = 0
        while index < bytes.count {
            if bytes[index] == ASCII.lf {
                index += 1
            } else if bytes[index] == ASCII.cr, index + 1 < bytes.count, bytes[index + 1] == ASCII.lf {
                index += 2
            } else {
                break
            }
        }
        return index
    }
}

/// The first line of a message, read by RFC 3261 7.1 and 7.2 to the letter: single spaces between the parts, no
/// trailing whitespace (RFC 4475 3.1.2.8 to 3.1.2.10 are refused, as the RFC says is reasonable).
enum SIPStartLineParser {
    enum Parsed {
        case request(method: Range<Int>, uri: Range<Int>)
        case response(code: Int, reason: Range<Int>)
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) throws(SIPParseError) -> Parsed {
        let start = line.lowerBound
        let end = line.upperBound
        for index in line where bytes[index] < 0x20 && bytes[index] != ASCII.tab || bytes[index] == 0x7F {
            // Control bytes have no place in a start line; a response's reason phrase is UTF-8 text.
            throw .badStartLine
        }
        if end - start >= 4, SIPGrammar.equalsIgnoringCase(bytes, start..<(start + 4), "SIP/") {
            var space = start
            while space < end, bytes[space] != ASCII.space { space += 1 }
            try checkVersion(bytes, start..<space)
            guard space < end else { throw .badStartLine }
            let codeStart = space + 1
            var codeEnd = codeStart
            while codeEnd < end, ASCII.isDigit(bytes[codeEnd]) { codeEnd += 1 }
            guard codeEnd > codeStart else { throw .badStartLine }
            guard codeEnd - codeStart == 3, codeEnd == end || bytes[codeEnd] == ASCII.space else {
                throw ASCII.isDigit(bytes[codeStart]) && (codeEnd == end || bytes[codeEnd] == ASCII.space)
                    ? .badStatusCode : .badStartLine
            }
            let code = (SIPGrammar.decimal(bytes, codeStart..<codeEnd, maxDigits: 3)) ?? 0
            guard (100...699).contains(code) else { throw .badStatusCode }
            let reason = codeEnd < end ? (codeEnd + 1)..<end : end..<end
            return .response(code: code, reason: reason)
        }

        var firstSpace = start
        while firstSpace < end, bytes[firstSpace] != ASCII.space { firstSpace += 1 }
        guard firstSpace < end else { throw .badStartLine }
        let method = start..<firstSpace
        guard !method.isEmpty else { throw .badStartLine }
        for index in method where !SIPGrammar.isTokenChar(bytes[index]) { throw .badMethod }
        var secondSpace = firstSpace + 1
        while secondSpace < end, bytes[secondSpace] != ASCII.space { secondSpace += 1 }
        guard secondSpace < end, secondSpace > firstSpace + 1 else { throw .badStartLine }
        let version = (secondSpace + 1)..<end
        for index in version where bytes[index] == ASCII.space || bytes[index] == ASCII.tab { throw .badStartLine }
        try checkVersion(bytes, version)
        return .request(method: method, uri: (firstSpace + 1)..<secondSpace)
    }

    /// `SIP/2.0`, case-insensitively (RFC 3261 7.1); another `SIP/x.y` is a version we do not speak.
    static func checkVersion(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) throws(SIPParseError) {
        if SIPGrammar.equalsIgnoringCase(bytes, range, "SIP/2.0") { return }
        guard range.count >= 7, SIPGrammar.equalsIgnoringCase(bytes, range.lowerBound..<(range.lowerBound + 4), "SIP/")
        else { throw .badStartLine }
        var index = range.lowerBound + 4
        let majorStart = index
        while index < range.upperBound, ASCII.isDigit(bytes[index]) { index += 1 }
        guard index > majorStart, index < range.upperBound, bytes[index] == ASCII.dot else { throw .badStartLine }
        index += 1
        let minorStart = index
        while index < range.upperBound, ASCII.isDigit(bytes[index]) { index += 1 }
        guard index > minorStart, index == range.upperBound else { throw .badStartLine }
        throw .badVersion
    }
}
