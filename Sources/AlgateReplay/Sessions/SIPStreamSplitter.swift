import AlgateRewrite

/// Cuts one direction of a SIP TCP stream into messages as the proxy's `SIPStreamDecoder` does: by Content-Length
/// from byte 0, keep-alive line ends consumed, a message with a missing or bad Content-Length refused (its header
/// section answered with 400) and the stream followed after it, anything else fatal for the connection. Once the
/// stream is at a message boundary, nothing is ever searched for further on in it.
///
/// A stream the capture shows from the middle (no SYN) need not start at a message boundary: with
/// `resynchronizes`, bytes are skipped (and counted in ``skippedBytes``) up to the first line that starts a SIP
/// message (``ProtocolDetector/sipResynchronization(_:atLineStart:maxHeaderBytes:)``), and the stream is cut from
/// there on as above. Only that first boundary is searched for.
struct SIPStreamSplitter {
    enum Item {
        case message([UInt8])
        case keepAlive
        /// A header section whose length cannot be known: the proxy answers it 400 and goes on after it.
        case refused(header: [UInt8], SIPParseError)
    }

    private let framer: SIPStreamFramer
    private var buffer: [UInt8] = []
    private(set) var failed = false
    /// Whether the buffer starts at a message boundary (always, unless the stream is resynchronised).
    private(set) var synchronized: Bool
    /// Bytes skipped before the first SIP message of a resynchronised stream.
    private(set) var skippedBytes = 0
    /// While resynchronising: whether the buffer starts at the beginning of a line.
    private var atLineStart = true

    init(limits: SIPLimits, resynchronizes: Bool = false) {
        framer = SIPStreamFramer(limits: limits)
        synchronized = !resynchronizes
    }

    /// Bytes buffered that do not make a message yet.
    var pendingBytes: Int { buffer.count }

    /// Adds bytes; returns the items they complete, and the error that ends the stream, if one does.
    mutating func append(_ bytes: [UInt8]) -> (items: [Item], failure: SIPParseError?) {
        guard !failed else { return ([], nil) }
        buffer.append(contentsOf: bytes)
        if !synchronized, !resynchronize() { return ([], nil) }
        var items: [Item] = []
        var consumed = 0
        defer { buffer.removeFirst(consumed) }
        while consumed < buffer.count {
            let framed: Result<SIPStreamFramer.Frame?, SIPParseError> = buffer[consumed...].withUnsafeBytes { raw in
                do throws(SIPParseError) {
                    return .success(try framer.nextFrame(raw))
                } catch {
                    return .failure(error)
                }
            }
            switch framed {
            case .success(nil):
                return (items, nil)
            case .success(.keepAlive(let length)?):
                consumed += length
                items.append(.keepAlive)
            case .success(.message(let length)?):
                items.append(.message(Array(buffer[consumed..<(consumed + length)])))
                consumed += length
            case .failure(let error):
                switch error {
                case .missingHeader, .badContentLength, .duplicateHeader:
                    let length = buffer[consumed...].withUnsafeBytes { framer.headerSectionLength($0) }
                    guard let length else {
                        failed = true
                        return (items, error)
                    }
                    items.append(.refused(header: Array(buffer[consumed..<(consumed + length)]), error))
                    consumed += length
                default:
                    failed = true
                    consumed = buffer.count
                    return (items, error)
                }
            }
        }
        return (items, nil)
    }

    /// Drops the bytes before the first line that starts a SIP message; returns whether it was found. What is
    /// kept waiting (an unfinished line, a start line whose header section is still coming) is dropped too once it
    /// is longer than a header section may be: what follows it starts mid-line.
    private mutating func resynchronize() -> Bool {
        let (found, scanned) = ProtocolDetector.sipResynchronization(
            buffer[...], atLineStart: atLineStart, maxHeaderBytes: framer.limits.maxHeaderBytes)
        let dropped = found ?? scanned
        if dropped > 0 {
            atLineStart = found != nil || buffer[dropped - 1] == 0x0a
            buffer.removeFirst(dropped)
            skippedBytes += dropped
        }
        if found != nil {
            synchronized = true
            return true
        }
        if buffer.count > framer.limits.maxHeaderBytes {
            skippedBytes += buffer.count
            buffer.removeAll()
            atLineStart = false
        }
        return false
    }
}
