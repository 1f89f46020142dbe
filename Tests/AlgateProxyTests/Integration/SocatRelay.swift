import AlgateRewrite
import Foundation

/// A plain TCP relay (socat) in front of a server: what a gateway without an ALG does. It forwards the control
/// connection byte for byte, so the server's 227 address and the client's PORT address go through untouched.
enum SocatRelay {
    /// Starts `socat TCP-LISTEN:PORT,bind=ADDRESS,fork,reuseaddr TCP:UPSTREAM`, waits for the server's banner
    /// through it, runs `body`, and always stops it.
    @discardableResult
    static func with<T>(listen address: String = "127.0.0.1", upstream: Endpoint, in scratch: URL,
                        _ body: (Endpoint) async throws -> T) async throws -> T {
        let port = try LoopbackPorts.free(on: address)
        let target = upstream.address.isIPv4 ? "TCP4:\(upstream)" : "TCP6:\(upstream)"
        let process = try PeerProcess(
            name: "socat", executable: "/usr/bin/socat",
            arguments: ["TCP-LISTEN:\(port),bind=\(address),fork,reuseaddr", target],
            logFile: scratch.appendingPathComponent("socat-\(port).log"))
        guard let ip = IPAddress(address) else { throw PeerError("bad address \(address)") }
        let endpoint = Endpoint(address: ip, port: port)
        return try await withCleanup {
            try await RawFTPConnection.waitForBanner(endpoint, alive: { process.isRunning })
            return try await body(endpoint)
        } cleanup: {
            await process.stop()
        }
    }
}
