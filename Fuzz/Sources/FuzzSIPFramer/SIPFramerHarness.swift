import AlgateRewrite
import FuzzSupport

/// libFuzzer's entry point: a count of cuts, the cuts (two bytes each), then the stream.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSIPFramer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    SIPFramerHarness.run(fuzzInput(data, size))
    return 0
}

/// ``SIPStreamFramer`` over a TCP stream delivered in one piece and delivered cut at fuzz-chosen points: the same
/// messages, the same keep-alive bytes, the same refused header sections and the same end (the same error, or the
/// same bytes left waiting), whatever the cuts. Each message is as long as its header section and Content-Length
/// say.
enum SIPFramerHarness {
    static let limits: SIPLimits = {
        // Small limits, so that inputs of a few KiB reach them.
        var limits = SIPLimits()
        limits.maxMessageBytes = 4096
        limits.maxHeaderBytes = 1024
        limits.maxLineBytes = 512
        return limits
    }()

    static func run(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let cutCount = Int(first % 16)
        let header = 1 + 2 * cutCount
        guard input.count >= header else { return }
        let stream = Array(input[header...])
        var cuts: [Int] = []
        for index in 0..<cutCount {
            let raw = Int(input[1 + 2 * index]) << 8 | Int(input[2 + 2 * index])
            cuts.append(stream.isEmpty ? 0 : raw % (stream.count + 1))
        }
        cuts.sort()

        var whole = Splitter()
        whole.append(stream[...])
        var pieces = Splitter()
        var start = 0
        for cut in cuts + [stream.count] where cut >= start {
            pieces.append(stream[start..<cut])
            start = cut
        }
        Invariant.check(whole.items == pieces.items,
                        "cut at \(cuts): \(pieces.items.count) items, whole: \(whole.items.count); first difference "
                        + "\(firstDifference(whole.items, pieces.items))")
        Invariant.check(whole.failure == pieces.failure,
                        "cut at \(cuts): ends with \(String(describing: pieces.failure)), whole: "
                        + "\(String(describing: whole.failure))")
        // After an error the stream is dead: what was still waiting then depends on the cut, and nobody reads it.
        Invariant.check(whole.failure != nil || whole.buffer == pieces.buffer, "cut at \(cuts): \(pieces.buffer.count) bytes left waiting, "
                        + "whole: \(whole.buffer.count)")
    }

    static func firstDifference(_ left: [Item], _ right: [Item]) -> String {
        for (index, (one, other)) in zip(left, right).enumerated() where one != other {
            return "at \(index): \(one) vs \(other)"
        }
        return "at \(min(left.count, right.count))"
    }

    enum Item: Equatable, CustomStringConvertible {
        case keepAlive(Int)
        case message([UInt8])
        case refused([UInt8], SIPParseError)

        var description: String {
            switch self {
            case .keepAlive(let count): return "keep-alive \(count)"
            case .message(let bytes): return "message \(String(decoding: bytes.prefix(80), as: UTF8.self).debugDescription)"
            case .refused(let bytes, let error): return "refused \(bytes.count) bytes: \(error)"
            }
        }
    }

    /// One direction of a stream, framed as the proxy's decoder and the replay's splitter frame it: keep-alives
    /// consumed, a header section whose length is unknown refused and skipped, anything else fatal.
    struct Splitter {
        var buffer: [UInt8] = []
        var items: [Item] = []
        var failure: SIPParseError?
        let framer = SIPStreamFramer(limits: SIPFramerHarness.limits)

        mutating func append(_ bytes: ArraySlice<UInt8>) {
            guard failure == nil else { return }
            buffer += bytes
            while !buffer.isEmpty {
                let framed: Result<SIPStreamFramer.Frame?, SIPParseError> = buffer.withUnsafeBytes { raw in
                    do throws(SIPParseError) {
                        return .success(try framer.nextFrame(raw))
                    } catch {
                        return .failure(error)
                    }
                }
                switch framed {
                case .success(nil):
                    return
                case .success(.keepAlive(let length)?):
                    Invariant.check(length > 0 && length <= buffer.count, "a keep-alive of \(length) bytes")
                    // Consecutive keep-alives are one run of line ends, however they were cut.
                    if case .keepAlive(let before)? = items.last {
                        items[items.count - 1] = .keepAlive(before + length)
                    } else {
                        items.append(.keepAlive(length))
                    }
                    buffer.removeFirst(length)
                case .success(.message(let length)?):
                    Invariant.check(length > 0 && length <= buffer.count && length <= SIPFramerHarness.limits.maxMessageBytes,
                                    "a message of \(length) bytes from \(buffer.count)")
                    items.append(.message(Array(buffer[..<length])))
                    buffer.removeFirst(length)
                case .failure(let error):
                    switch error {
                    case .missingHeader, .badContentLength, .duplicateHeader:
                        guard let length = buffer.withUnsafeBytes({ framer.headerSectionLength($0) }) else {
                            Invariant.fail("\(error) with no complete header section")
                        }
                        Invariant.check(length > 0 && length <= buffer.count, "a header section of \(length) bytes")
                        items.append(.refused(Array(buffer[..<length]), error))
                        buffer.removeFirst(length)
                    default:
                        failure = error
                        return
                    }
                }
            }
        }
    }
}
