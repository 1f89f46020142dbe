import CNftables
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs nft scripts through libnftables, in this process: no `nft` child process, no shell.
///
/// One libnftables context serves every caller, one script at a time. A script is all-or-nothing: libnftables
/// sends it to the kernel as one netlink batch, so a failing command leaves nothing of the script behind.
/// Calls block while the kernel works: never call ``run(_:)`` on an event loop (``NftablesExecutor`` moves the
/// calls to a thread of its own).
public final class NftablesRunner: Sendable {
    /// The context pointer lives inside the mutex: it is only ever touched by the thread holding the lock.
    private struct Context: ~Copyable {
        let handle: OpaquePointer

        deinit { nft_ctx_free(handle) }
    }

    private let context: Mutex<Context>

    /// Makes a libnftables context whose output and errors are buffered for the caller.
    ///
    /// - Throws: ``NftablesError`` when libnftables cannot make a context.
    public init() throws(NftablesError) {
        guard let handle = nft_ctx_new(0) else {
            throw NftablesError(script: "", message: "libnftables could not make a context (nft_ctx_new)")
        }
        nft_ctx_buffer_output(handle)
        nft_ctx_buffer_error(handle)
        context = Mutex(Context(handle: handle))
    }

    /// Whether this process holds CAP_NET_ADMIN in its effective set (Linux `/proc/self/status`), or nil when
    /// that cannot be read. Asking first keeps libnftables from printing its own complaint to stderr.
    public static var processHasNetAdmin: Bool? {
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("CapEff:") else { continue }
            let hex = text.dropFirst("CapEff:".count).filter { $0.isHexDigit }
            guard let mask = UInt64(hex, radix: 16) else { return nil }
            let capNetAdmin: UInt64 = 12
            return mask & (1 << capNetAdmin) != 0
        }
        return nil
    }

    /// Runs `script` (what `nft -f` reads) and returns what nft printed.
    ///
    /// - Throws: ``NftablesError`` with nft's own message when any command of the script fails; then none of
    ///   the script's changes are applied.
    @discardableResult
    public func run(_ script: String) throws(NftablesError) -> String {
        let outcome: (status: Int32, output: String, error: String) = context.withLock { context in
            let status = nft_run_cmd_from_buffer(context.handle, script)
            let output = nft_ctx_get_output_buffer(context.handle).map { String(cString: $0) } ?? ""
            let error = nft_ctx_get_error_buffer(context.handle).map { String(cString: $0) } ?? ""
            return (status, output, error)
        }
        guard outcome.status == 0 else {
            throw NftablesError(script: script, message: outcome.error)
        }
        return outcome.output
    }
}

/// A script that libnftables refused, with nft's message.
public struct NftablesError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The script that failed.
    public var script: String
    /// nft's error output, as it printed it (several lines: the message, the command, a caret line).
    public var message: String

    public init(script: String, message: String) {
        self.script = script
        self.message = message
    }

    /// True when the kernel refused for lack of privilege: the process needs CAP_NET_ADMIN.
    public var isPermissionDenied: Bool {
        message.contains("Operation not permitted") || message.contains("Permission denied")
    }

    /// The first line of nft's message, or a note that it said nothing.
    public var summary: String {
        let first = message.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init)
        return first ?? "libnftables refused the script without a message"
    }

    public var description: String {
        if isPermissionDenied {
            return "nftables needs CAP_NET_ADMIN, which this process lacks: run algate as root or grant it the "
                + "capability (setcap cap_net_admin+ep, or AmbientCapabilities=CAP_NET_ADMIN in a systemd unit)"
        }
        return "nftables: \(summary)"
    }
}
