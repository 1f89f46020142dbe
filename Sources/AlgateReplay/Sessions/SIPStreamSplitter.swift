import AlgateRewrite

/// Cuts one direction of a SIP TCP stream into messages as the proxy's `SIPStreamDecoder` does: by Content-Length
/// from byte 0, keep-alive line ends consumed, a message with a missing or bad Content-Length refused (its header
/// section answered with 400) and the stream followed after it, anything else fatal for the connection. Nothing is
/// ever searched for further on in the stream.
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

    init(limits: SIPLimits) {
        framer = SIPStreamFramer(limits: limits)
    }

    /// Bytes buffered that do not make a message yet.
    var pendingBytes: Int { buffer.count }

    /// Adds bytes; returns the items they complete, and the error that ends the stream, if one does.
    mutating func append(_ bytes: [UInt8]) -> (items: [Item], failure: SIPParseError?) {
        guard !failed else { return ([], nil) }
        buffer.append(contentsOf: bytes)
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
}
