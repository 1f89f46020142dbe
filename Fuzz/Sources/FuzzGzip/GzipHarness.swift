import AlgateReplay
import FuzzSupport

/// libFuzzer's entry point: one input, a gzip stream (the seeds are real ones).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    GzipHarness.run(fuzzInput(data, size))
    return 0
}

/// ``GzipDecoder`` on any bytes, read in chunks whose size the input picks, with a limit the input picks: it never
/// hands on more than its limit, what it returns is what it wrote, and it
/// does not hang (libFuzzer's -timeout).
enum GzipHarness {
    final class Sink {
        var written = 0
        var writes = 0
    }

    final class Source {
        let bytes: [UInt8]
        let chunk: Int
        var offset = 0

        init(_ bytes: [UInt8], chunk: Int) {
            self.bytes = bytes
            self.chunk = chunk
        }

        func read() -> [UInt8] {
            guard offset < bytes.count else {
                return []
            }
            let end = min(bytes.count, offset + chunk)
            defer { offset = end }
            return Array(bytes[offset..<end])
        }
    }

    static func run(_ input: [UInt8]) {
        let hash = FuzzHash(input)
        let limit = 1 + hash.bits(0, 18)  // Up to 256 KiB.
        let source = Source(input, chunk: 1 + hash.bits(18, 12))
        let sink = Sink()
        let result: Result<Int, GzipError>
        do {
            result = .success(try GzipDecoder(maxOutputBytes: limit).decode(read: source.read) { chunk in
                sink.written += chunk.count
                sink.writes += 1
                return true
            })
        } catch {
            result = .failure(error)
        }
        Invariant.check(sink.written <= limit, "\(sink.written) bytes written past the limit of \(limit) (\(result))")
        if case .success(let count) = result {
            Invariant.check(count == sink.written, "decode returned \(count), wrote \(sink.written)")
        }
    }
}
