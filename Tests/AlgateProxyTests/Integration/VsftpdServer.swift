import AlgateRewrite
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// vsftpd in the foreground with its own config, anonymous only.
///
/// Layout (see /tmp/peers-recipes.md): the anonymous root must be root-owned and not writable (vsftpd refuses a
/// writable chroot), uploads go to an `upload/` owned by `ftp`. `port_promiscuous` and `pasv_promiscuous` stay NO:
/// vsftpd refuses a PORT naming another host than its control peer and a passive data connection from another
/// host, which is exactly what makes a gateway that does not translate fail.
enum VsftpdServer {
    static func start(on address: String, announcing announce: String?, in scratch: URL,
                      passivePorts: ClosedRange<UInt16>) throws -> FTPServerUnderTest {
        let base = scratch.appendingPathComponent("vsftpd")
        let root = base.appendingPathComponent("root")
        let pub = root.appendingPathComponent("pub")
        let upload = root.appendingPathComponent("upload")
        let empty = base.appendingPathComponent("empty")
        for dir in [base, root, pub, upload, empty] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            chmod(dir.path, 0o755)
        }
        try Peers.chownToFTPUser(upload)

        let isV6 = address.contains(":")
        let port = try LoopbackPorts.free(on: address)
        let protocolLog = base.appendingPathComponent("vsftpd.log")
        var lines = [
            isV6 ? "listen=NO" : "listen=YES",
            isV6 ? "listen_ipv6=YES" : "listen_ipv6=NO",
            isV6 ? "listen_address6=\(address)" : "listen_address=\(address)",
            "listen_port=\(port)",
            "background=NO",
            "anonymous_enable=YES",
            "no_anon_password=NO",
            "anon_root=\(root.path)",
            "local_enable=NO",
            "write_enable=YES",
            "anon_upload_enable=YES",
            "anon_mkdir_write_enable=YES",
            "anon_other_write_enable=YES",
            "anon_umask=022",
            "ftp_username=ftp",
            "pasv_enable=YES",
            "pasv_min_port=\(passivePorts.lowerBound)",
            "pasv_max_port=\(passivePorts.upperBound)",
            "port_enable=YES",
            "connect_from_port_20=NO",
            "port_promiscuous=NO",
            "pasv_promiscuous=NO",
            "secure_chroot_dir=\(empty.path)",
            "seccomp_sandbox=NO",
            "pam_service_name=vsftpd",
            "xferlog_enable=YES",
            "vsftpd_log_file=\(protocolLog.path)",
            "log_ftp_protocol=YES",
            "dual_log_enable=YES",
            "hide_ids=YES",
            "max_clients=0",
            "max_per_ip=0",
        ]
        if let announce, !isV6 { lines.append("pasv_address=\(announce)") }
        let config = base.appendingPathComponent("vsftpd.conf")
        try (lines.joined(separator: "\n") + "\n").write(to: config, atomically: true, encoding: .utf8)
        chmod(config.path, 0o600)

        // vsftpd prints its startup errors ("500 OOPS: ...") on fd 0, so fd 0 goes to the log as well.
        let process = try PeerProcess(name: "vsftpd", executable: "/usr/sbin/vsftpd", arguments: [config.path],
                                      logFile: base.appendingPathComponent("stdio.log"), stdinToLog: true)
        guard let ip = IPAddress(address) else { throw PeerError("bad address \(address)") }
        return FTPServerUnderTest(kind: .vsftpd, endpoint: Endpoint(address: ip, port: port),
                                  passivePorts: passivePorts, downloadDirectory: pub, uploadDirectory: upload,
                                  process: process, protocolLog: protocolLog)
    }
}
