import AlgateRewrite
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// pyftpdlib's command-line server (Debian's python3-pyftpdlib, for /usr/bin/python3), anonymous with write
/// permission. `-n` makes it announce another address in 227; `-r` fixes its passive ports.
///
/// Its defaults refuse a PORT/EPRT to a foreign address and a passive data connection from a foreign address
/// (permit_foreign_addresses=False), like vsftpd's.
enum PyftpdlibServer {
    static func start(on address: String, announcing announce: String?, in scratch: URL,
                      passivePorts: ClosedRange<UInt16>) throws -> FTPServerUnderTest {
        let base = scratch.appendingPathComponent("pyftpdlib")
        let root = base.appendingPathComponent("root")
        let pub = root.appendingPathComponent("pub")
        let upload = root.appendingPathComponent("upload")
        for dir in [base, root, pub, upload] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            chmod(dir.path, 0o777)
        }
        let isV6 = address.contains(":")
        let port = try LoopbackPorts.free(on: address)
        var arguments = ["-m", "pyftpdlib", "-i", address, "-p", "\(port)", "-w", "-d", root.path,
                         "-r", "\(passivePorts.lowerBound)-\(passivePorts.upperBound)"]
        if let announce, !isV6 { arguments += ["-n", announce] }
        let process = try PeerProcess(name: "pyftpdlib", executable: "/usr/bin/python3", arguments: arguments,
                                      logFile: base.appendingPathComponent("pyftpdlib.log"))
        guard let ip = IPAddress(address) else { throw PeerError("bad address \(address)") }
        return FTPServerUnderTest(kind: .pyftpdlib, endpoint: Endpoint(address: ip, port: port),
                                  passivePorts: passivePorts, downloadDirectory: pub, uploadDirectory: upload,
                                  process: process, protocolLog: nil)
    }
}
