import Testing

/// End-to-end tests of the FTP gateway against real servers (vsftpd, pyftpdlib) and real clients (curl, lftp,
/// Python's ftplib), on loopback only. Every suite below nests in this one, so the whole set runs one test at a
/// time: each test starts its own servers on its own ports and pinhole pool, in its own temp directory, and
/// stops and removes them whatever the outcome.
///
/// Topology (IPv4): clients -> gateway 127.0.0.1 (public address 127.0.0.1) -> servers on 127.0.0.2, which
/// announce 127.0.0.3 (where nothing listens) in their 227 replies. Run with `--filter FTPIntegration`; set
/// ALGATE_ITEST_LOG=1 to echo the gateway's log, ALGATE_ITEST_KEEP=1 to keep the temp directories.
///
/// No closure goes inside `#expect(...)` in these files; conditions are computed into a `let` first. With Swift
/// 6.3.1 here, after `#expect(a.contains { ... })` inside a closure, a later `b.first(where:)` in the same closure
/// returned nil without ever calling its predicate.
@Suite("FTP integration", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: Peers.available, "needs root and vsftpd, pyftpdlib, curl, lftp, socat installed"))
struct FTPIntegration {}
