import CPCRE2
import Synchronization

/// A PCRE2 pattern compiled (and JIT-compiled where the platform has a JIT) once, matched against bytes.
///
/// Every match runs with a match limit and a depth limit, so a hostile message against a pattern that
/// backtracks catastrophically ends in bounded time: it counts as no match, and says so.
public final class PolicyPattern: Sendable {
    /// The outcome of one match.
    public enum Outcome: Hashable, Sendable {
        case match
        case noMatch
        /// The match or depth limit was hit: treated as no match, and worth a log line.
        case limitExceeded
        /// PCRE2 failed otherwise (the code is PCRE2's error number).
        case error(Int32)
    }

    /// The pattern as written.
    public let source: String
    /// Whether the pattern was JIT-compiled.
    public let isJIT: Bool
    private let compiled: Mutex<Compiled>

    /// The compiled code and the match context with its limits; freed with the pattern.
    /// The compiled code, the match context with its limits, and one match data block reused by every match
    /// (the lock around it makes that safe, and saves an allocation per match).
    private struct Compiled: ~Copyable {
        let code: OpaquePointer
        let context: OpaquePointer
        let data: OpaquePointer

        deinit {
            pcre2_match_data_free_8(data)
            pcre2_match_context_free_8(context)
            pcre2_code_free_8(code)
        }
    }

    /// Compiles `pattern`.
    ///
    /// - Parameters:
    ///   - matchLimit: PCRE2's match limit (backtracking steps) per match.
    ///   - depthLimit: PCRE2's depth limit (nested backtracking) per match; the JIT ignores it, the match limit holds.
    /// - Throws: ``PolicyPatternError`` with PCRE2's message and the offset in the pattern.
    public init(_ pattern: String, matchLimit: UInt32 = 100_000, depthLimit: UInt32 = 10_000) throws(PolicyPatternError) {
        source = pattern
        var errorCode: Int32 = 0
        var errorOffset = 0
        let utf8 = Array(pattern.utf8)
        let code = utf8.withUnsafeBufferPointer { bytes in
            pcre2_compile_8(bytes.baseAddress, bytes.count, 0, &errorCode, &errorOffset, nil)
        }
        guard let code else {
            throw PolicyPatternError(pattern: pattern, offset: errorOffset, message: PolicyPattern.message(for: errorCode))
        }
        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(code)
            throw PolicyPatternError(pattern: pattern, offset: 0, message: "out of memory")
        }
        pcre2_set_match_limit_8(context, matchLimit)
        pcre2_set_depth_limit_8(context, depthLimit)
        guard let data = pcre2_match_data_create_from_pattern_8(code, nil) else {
            pcre2_match_context_free_8(context)
            pcre2_code_free_8(code)
            throw PolicyPatternError(pattern: pattern, offset: 0, message: "out of memory")
        }
        isJIT = pcre2_jit_compile_8(code, UInt32(PCRE2_JIT_COMPLETE)) == 0
        compiled = Mutex(Compiled(code: code, context: context, data: data))
    }

    /// Matches the pattern anywhere in `bytes` (no copy; the bytes need not be UTF-8).
    public func match(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard let subject = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            // An empty subject still needs a valid pointer: PCRE2 rejects NULL with a zero length in some versions.
            return [UInt8(0)].withUnsafeBytes { match(UnsafeRawBufferPointer(start: $0.baseAddress, count: 0)) }
        }
        // The subject crosses into the lock as an address: it is only read, and only during this call.
        let address = UInt(bitPattern: subject)
        let length = bytes.count
        let result: Int32 = compiled.withLock { compiled in
            guard let subject = UnsafePointer<UInt8>(bitPattern: address) else { return -48 }
            return pcre2_match_8(compiled.code, subject, length, 0, 0, compiled.data, compiled.context)
        }
        switch result {
        case let count where count >= 0: return .match
        case PCRE2_ERROR_NOMATCH: return .noMatch
        case PCRE2_ERROR_MATCHLIMIT, PCRE2_ERROR_DEPTHLIMIT, PCRE2_ERROR_JIT_STACKLIMIT: return .limitExceeded
        default: return .error(result)
        }
    }

    /// Matches against a string's UTF-8 bytes.
    public func match(_ text: String) -> Outcome {
        var text = text
        return text.withUTF8 { match(UnsafeRawBufferPointer($0)) }
    }

    static func message(for code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        guard length > 0 else { return "PCRE2 error \(code)" }
        return String(decoding: buffer.prefix(Int(length)), as: UTF8.self)
    }
}

/// A pattern that does not compile: PCRE2's message and where in the pattern.
public struct PolicyPatternError: Error, Hashable, Sendable, CustomStringConvertible {
    public var pattern: String
    /// The offset (in bytes) in the pattern where PCRE2 gave up.
    public var offset: Int
    public var message: String

    public var description: String { "pattern \"\(pattern)\" does not compile at offset \(offset): \(message)" }
}
