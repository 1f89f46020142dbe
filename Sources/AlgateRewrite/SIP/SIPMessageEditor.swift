public import NIOCore

/// Builds a new message from a parsed one by replacing, inserting and removing byte ranges, leaving every byte
/// outside the edits exactly as it was.
///
/// Edits name offsets of the original message (``SIPMessage/bytes``), may be given in any order, and must not
/// overlap; an insertion may sit at the boundary of a replaced range (it goes before it). An edit that overlaps an
/// earlier one, that falls outside the message, or that touches the Content-Length field or the empty line after
/// the headers (both the editor's business) is not applied: the call returns false and the range is listed in
/// ``conflicts``, so a mistake shows in tests and logs instead of taking the gateway down.
///
/// Content-Length follows the body: whenever the body's length changes, by ``setBody(_:)`` or by edits inside
/// ``SIPMessage/body``, ``build()`` writes the new length into the existing field's value (so `l: 150` stays an
/// `l:` field), or adds `Content-Length: N` before the empty line when the message had none.
///
/// Line ends: the header section goes out with CRLF everywhere (RFC 3261 7: CRLF ends every line). A message that
/// arrived with bare LFs (tolerated on input, as most stacks do) has each LF of its start line, header lines, folds
/// and empty line written as CRLF, and so has an edit's bytes; the body is left as it is, so Content-Length does
/// not change.
public struct SIPMessageEditor: Sendable {
    private struct Edit {
        var range: Range<Int>
        var bytes: [UInt8]
        var sequence: Int
    }

    public let message: SIPMessage
    private var edits: [Edit] = []
    private var newBody: ByteBuffer? = nil
    private var forceContentLength = false
    private var sequence = 0
    /// Edits that were refused (overlapping, out of bounds, on the Content-Length field or the empty line, or into a
    /// body replaced by ``setBody(_:)``), in call order.
    public private(set) var conflicts: [Range<Int>] = []

    /// The header section has an LF without its CR.
    private let hasBareLineFeeds: Bool

    public init(_ message: SIPMessage) {
        self.message = message
        self.hasBareLineFeeds = message.bytes.withUnsafeReadableBytes { raw in
            (0..<min(message.body.lowerBound, raw.count)).contains { raw[$0] == ASCII.lf && ($0 == 0 || raw[$0 - 1] != ASCII.cr) }
        }
    }

    /// Whether anything would change.
    public var hasChanges: Bool {
        !edits.isEmpty || newBody != nil || needsAddedContentLength || hasBareLineFeeds
    }

    /// Replaces the bytes of `range` with `bytes`.
    @discardableResult
    public mutating func replace(_ range: Range<Int>, with bytes: [UInt8]) -> Bool {
        add(range, bytes)
    }

    /// Inserts a whole header line (`Name: value\r\n`) at `offset`, which should be the start of a line: the
    /// `lineRange.lowerBound` of a field (a new top Via goes before the first Via field), or ``SIPMessage/headerEnd``
    /// to append after the last field. Several insertions at one offset keep their call order.
    @discardableResult
    public mutating func insertHeaderLine(_ line: [UInt8], before offset: Int) -> Bool {
        add(offset..<offset, line)
    }

    /// Inserts bytes at `offset` (a parameter after a Via's last one, an SDP line, ...).
    @discardableResult
    public mutating func insert(_ bytes: [UInt8], at offset: Int) -> Bool {
        add(offset..<offset, bytes)
    }

    /// Removes the bytes of `range`: a field's `lineRange`, or ``SIPMessage/removalRange(ofValue:)`` for one value
    /// of a comma-separated field.
    @discardableResult
    public mutating func removeRange(_ range: Range<Int>) -> Bool {
        add(range, [])
    }

    /// Replaces the whole body; Content-Length is recomputed. Edits inside the old body conflict with this.
    @discardableResult
    public mutating func setBody(_ body: ByteBuffer) -> Bool {
        if edits.contains(where: { touchesBody($0.range) }) {
            conflicts.append(message.body)
            return false
        }
        newBody = body
        return true
    }

    /// Makes ``build()`` add a Content-Length when the message has none, even with the body unchanged: a message
    /// that came by UDP without one and leaves by TCP, where it is mandatory.
    public mutating func ensureContentLength() {
        forceContentLength = true
    }

    /// The edited message; the original bytes when nothing changed.
    public func build() -> ByteBuffer {
        guard hasChanges else { return message.bytes }
        var all = edits
        let body = message.body
        let bodyLength = newBody?.readableBytes ?? (body.count + edits.reduce(0) { total, edit in
            inBody(edit.range) ? total + edit.bytes.count - edit.range.count : total
        })
        let lengthBytes = Self.decimal(bodyLength)
        if let field = message.field(.contentLength) {
            if bodyLength != message.contentLength {
                all.append(Edit(range: field.valueRange, bytes: lengthBytes, sequence: Int.max))
            }
        } else if bodyLength != body.count || newBody != nil || forceContentLength {
            let line = Array("Content-Length: ".utf8) + lengthBytes + [ASCII.cr, ASCII.lf]
            all.append(Edit(range: message.headerEnd..<message.headerEnd, bytes: line, sequence: Int.max))
        }
        all.sort { left, right in
            if left.range.lowerBound != right.range.lowerBound { return left.range.lowerBound < right.range.lowerBound }
            if left.range.isEmpty != right.range.isEmpty { return left.range.isEmpty }
            return left.sequence < right.sequence
        }

        let original = message.bytes
        var out = ByteBuffer()
        out.reserveCapacity(original.readableBytes + all.reduce(0) { $0 + $1.bytes.count }
                            + (newBody?.readableBytes ?? 0))
        // Every LF of the header section leaves as CRLF, whether it came so or an edit brought it.
        let repair = true
        original.withUnsafeReadableBytes { raw in
            let headEnd = newBody == nil ? raw.count : body.lowerBound
            var writer = LineEndWriter(repairing: repair, bodyStart: body.lowerBound)
            var cursor = 0
            for edit in all {
                // Accepted edits never overlap (add() sees to it); this guard only keeps a bug from trapping.
                guard edit.range.lowerBound >= cursor, edit.range.upperBound <= headEnd else { continue }
                writer.write(UnsafeRawBufferPointer(rebasing: raw[cursor..<edit.range.lowerBound]), at: cursor, to: &out)
                edit.bytes.withUnsafeBytes { writer.write($0, at: edit.range.lowerBound, isEdit: true, to: &out) }
                cursor = edit.range.upperBound
            }
            writer.write(UnsafeRawBufferPointer(rebasing: raw[cursor..<headEnd]), at: cursor, to: &out)
        }
        if var replacement = newBody {
            out.writeBuffer(&replacement)
        }
        return out
    }

    // MARK: Bookkeeping

    private var needsAddedContentLength: Bool {
        forceContentLength && message.contentLength == nil
    }

    private func inBody(_ range: Range<Int>) -> Bool {
        range.lowerBound >= message.body.lowerBound
    }

    private mutating func add(_ range: Range<Int>, _ bytes: [UInt8]) -> Bool {
        guard range.lowerBound >= 0, range.upperBound <= message.bytes.readableBytes,
              !conflictsWithExisting(range), !touchesContentLength(range), !touchesEmptyLine(range),
              !conflictsWithNewBody(range) else {
            conflicts.append(range)
            return false
        }
        sequence += 1
        edits.append(Edit(range: range, bytes: bytes, sequence: sequence))
        return true
    }

    private func conflictsWithExisting(_ range: Range<Int>) -> Bool {
        edits.contains { edit in
            if range.isEmpty && edit.range.isEmpty { return false }
            if range.isEmpty {
                return edit.range.lowerBound < range.lowerBound && range.lowerBound < edit.range.upperBound
            }
            if edit.range.isEmpty {
                return range.lowerBound < edit.range.lowerBound && edit.range.lowerBound < range.upperBound
            }
            return range.overlaps(edit.range)
        }
    }

    private func touchesContentLength(_ range: Range<Int>) -> Bool {
        message.headers.contains { field in
            guard field.name == .contentLength else { return false }
            if range.isEmpty {
                return field.lineRange.lowerBound < range.lowerBound && range.lowerBound < field.lineRange.upperBound
            }
            return range.overlaps(field.lineRange)
        }
    }

    /// The empty line that ends the headers is structure, not content: an edit may insert before it, not
    /// change it.
    private func touchesEmptyLine(_ range: Range<Int>) -> Bool {
        let emptyLine = message.headerEnd..<message.body.lowerBound
        if range.isEmpty { return emptyLine.lowerBound < range.lowerBound && range.lowerBound < emptyLine.upperBound }
        return range.overlaps(emptyLine)
    }

    private func conflictsWithNewBody(_ range: Range<Int>) -> Bool {
        newBody != nil && touchesBody(range)
    }

    /// Whether an edit changes or inserts into the body.
    private func touchesBody(_ range: Range<Int>) -> Bool {
        range.upperBound > message.body.lowerBound || range.lowerBound >= message.body.lowerBound
    }

    private static func decimal(_ value: Int) -> [UInt8] {
        var out: [UInt8] = []
        ASCII.appendDecimal(value, to: &out)
        return out
    }
}

/// Writes the pieces of an edited message, turning each bare LF of the header section into CRLF when asked to.
private struct LineEndWriter {
    let repairing: Bool
    /// Original offsets from here on are body.
    let bodyStart: Int
    private var last: UInt8 = 0

    init(repairing: Bool, bodyStart: Int) {
        self.repairing = repairing
        self.bodyStart = bodyStart
    }

    /// `bytes` stand at original offset `offset`: original bytes from there on, or an edit's replacement of a
    /// range that starts there (wholly header when it starts before the body).
    mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: Int, isEdit: Bool = false, to out: inout ByteBuffer) {
        guard !bytes.isEmpty else { return }
        defer { last = bytes[bytes.count - 1] }
        guard repairing, offset < bodyStart else {
            out.writeBytes(bytes)
            return
        }
        let headerCount = isEdit || offset + bytes.count <= bodyStart ? bytes.count : bodyStart - offset
        var previous = last
        var start = 0
        for index in 0..<headerCount {
            let byte = bytes[index]
            if byte == ASCII.lf, previous != ASCII.cr {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
                out.writeBytes([ASCII.cr, ASCII.lf])
                start = index + 1
            }
            previous = byte
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }
}
