import AlgateRewrite
import Foundation
import Testing

/// How the data connection is set up.
enum DataMode: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case pasv, epsv, port, eprt

    /// The command the client must send (and the only data-channel command it may send: curl silently falls
    /// back from EPSV to PASV and from EPRT to PORT, which would hide a failure of the mode under test).
    var verb: String { rawValue.uppercased() }
    var isPassive: Bool { self == .pasv || self == .epsv }
    /// The purpose the gateway logs for the pinhole of this mode.
    var pinholePurpose: String { isPassive ? "passive" : "active" }
    var testDescription: String { verb }
}

enum Direction: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case download, upload
    var testDescription: String { rawValue }
}

/// The FTP clients under test (nobody here wrote them), driven as command lines.
enum ClientKind: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case curl, lftp, ftplib
    var testDescription: String { rawValue }

    /// The modes this client can be made to use.
    ///
    /// lftp always replaces a 227 address in 127/8 other than 127.0.0.1 with its control peer, so PASV through
    /// lftp proves nothing about rewriting; on IPv4 it sends PORT, never EPRT. On IPv6 its EPRT names the
    /// unspecified address (`EPRT |2|::|port|`), which has a test of its own
    /// (``FTPIntegration/FTPIPv6TransferTests/lftpActiveModeOverIPv6()``).
    func modes(ipv6: Bool) -> [DataMode] {
        switch (self, ipv6) {
        case (.lftp, false): return [.epsv, .port]
        case (.lftp, true): return [.epsv]
        case (_, false): return [.pasv, .epsv, .port, .eprt]
        // On IPv6 the choice is EPSV or EPRT (curl and ftplib ignore --disable-* / PASV there).
        case (_, true): return [.epsv, .eprt]
        }
    }
}

/// One client transfer to run.
struct ClientTransfer: Sendable {
    var client: ClientKind
    var mode: DataMode
    var direction: Direction
    /// The gateway (or relay, or server) the client talks to.
    var target: Endpoint
    /// `pub/NAME` to download, `upload/NAME` to upload.
    var remotePath: String
    /// Where a download lands, or what an upload sends.
    var localFile: URL
    var scratch: URL
    /// The local address the client binds its sockets to (curl --interface); nil for the default.
    var interface: String?
    /// curl's -P address for PORT/EPRT; default: the address of the control connection.
    var activeAddress: String?
    var curlRateLimit: String?
    var timeout: Duration = .seconds(90)
}

/// What the client did, read from its own debug output.
struct ClientTranscript: Sendable, CustomStringConvertible {
    var result: CommandResult
    /// Control commands the client sent, in order.
    var commands: [String]
    /// Control replies the client received, in order (one entry per line).
    var replies: [String]

    /// The data-channel commands among `commands` (PASV, EPSV, PORT, EPRT, LPSV, LPRT).
    var dataVerbs: [String] {
        commands.compactMap { command in
            let verb = command.prefix { $0 != " " }.uppercased()
            return ["PASV", "EPSV", "LPSV", "PORT", "EPRT", "LPRT"].contains(verb) ? verb : nil
        }
    }

    /// The first reply line with `code`.
    func reply(_ code: Int) -> String? {
        replies.first { $0.hasPrefix("\(code)") }
    }

    /// The passive endpoint or port the client was told: the address (227 only) and the port.
    var announcedDataPort: (address: String?, port: UInt16)? {
        if let line = reply(227), let endpoint = FTPReply(code: 227, lines: [line]).passiveEndpoint {
            return ("\(endpoint.address)", endpoint.port)
        }
        if let line = reply(229), let port = FTPReply(code: 229, lines: [line]).extendedPassivePort {
            return (nil, port)
        }
        return nil
    }

    var description: String { "\(result)" }
}

extension ClientKind {
    /// Runs the transfer and parses the client's control transcript.
    func run(_ transfer: ClientTransfer) async throws -> ClientTranscript {
        switch self {
        case .curl: return try await Curl.run(transfer)
        case .lftp: return try await Lftp.run(transfer)
        case .ftplib: return try await Ftplib.run(transfer)
        }
    }
}

private func urlHost(_ endpoint: Endpoint) -> String { "\(endpoint)" }

/// curl 7.88: `-v` shows `> COMMAND` and `< REPLY` lines.
enum Curl {
    static func arguments(_ t: ClientTransfer) -> [String] {
        var args = ["-sS", "-v", "-g", "--max-time", "60", "--connect-timeout", "10", "--no-ftp-skip-pasv-ip"]
        let isV6 = t.target.address.description.contains(":")
        let active = t.activeAddress ?? (isV6 ? "-" : (t.interface ?? "127.0.0.1"))
        switch t.mode {
        case .pasv: args += ["--disable-epsv"]
        case .epsv: args += []
        case .port: args += ["-P", active, "--disable-eprt"]
        case .eprt: args += ["-P", active]
        }
        if let interface = t.interface { args += ["--interface", interface] }
        if let rate = t.curlRateLimit { args += ["--limit-rate", rate] }
        let url = "ftp://\(urlHost(t.target))/\(t.remotePath)"
        switch t.direction {
        case .download: args += ["-o", t.localFile.path, url]
        case .upload: args += ["-T", t.localFile.path, url]
        }
        return args
    }

    static func run(_ t: ClientTransfer) async throws -> ClientTranscript {
        let result = try await Command.run("/usr/bin/curl", arguments(t), in: t.scratch, timeout: t.timeout)
        var commands: [String] = [], replies: [String] = []
        for raw in result.stderr.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.hasPrefix("> ") { commands.append(String(line.dropFirst(2))) }
            if line.hasPrefix("< ") { replies.append(String(line.dropFirst(2))) }
        }
        return ClientTranscript(result: result, commands: commands, replies: replies)
    }
}

/// lftp 4.9 non-interactive, with the fail-fast settings of the recipes: no silent PASV->PORT switch, one try,
/// short timeouts. `-d` shows `---> COMMAND` and `<--- REPLY` lines.
enum Lftp {
    static let failFast = [
        "set ftp:ssl-allow no", "set ftp:auto-passive-mode no", "set net:max-retries 1", "set net:timeout 10",
        "set net:reconnect-interval-base 1", "set cmd:fail-exit yes", "set xfer:clobber on",
        "set ftp:use-site-utime no", "set ftp:use-site-utime2 no",
    ]

    static func script(_ t: ClientTransfer) -> String {
        var lines = failFast
        switch t.mode {
        case .pasv: lines += ["set ftp:passive-mode on", "set ftp:prefer-epsv no"]
        case .epsv: lines += ["set ftp:passive-mode on", "set ftp:prefer-epsv yes"]
        case .port, .eprt: lines += ["set ftp:passive-mode off"]
        }
        if let interface = t.interface {
            lines += [interface.contains(":") ? "set net:socket-bind-ipv6 \(interface)"
                                                : "set net:socket-bind-ipv4 \(interface)"]
        }
        lines += ["open ftp://\(urlHost(t.target))"]
        switch t.direction {
        case .download: lines += ["get \(t.remotePath) -o \(t.localFile.path)"]
        case .upload: lines += ["put \(t.localFile.path) -o \(t.remotePath)"]
        }
        return lines.joined(separator: "; ")
    }

    static func run(_ t: ClientTransfer) async throws -> ClientTranscript {
        let result = try await Command.run("/usr/bin/lftp", ["--norc", "-d", "-c", script(t)], in: t.scratch,
                                           timeout: t.timeout)
        var commands: [String] = [], replies: [String] = []
        for raw in result.stderr.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if let range = line.range(of: "---> ") { commands.append(String(line[range.upperBound...])) }
            if let range = line.range(of: "<--- ") { replies.append(String(line[range.upperBound...])) }
        }
        return ClientTranscript(result: result, commands: commands, replies: replies)
    }
}

/// Python's ftplib (/usr/bin/python3), from a script written to the test's scratch directory. The script trusts
/// the address in 227 (ftplib ignores it by default), forces EPSV and EPRT on IPv4 the way the recipes verified,
/// and prints ftplib's own debug lines (`*cmd* '...'`, `*resp* '...'`).
enum Ftplib {
    static let script = """
        import ftplib, socket, sys
        host, port, mode, direction, remote, local = sys.argv[1:7]

        class F(ftplib.FTP):
            def makepasv(self):
                if mode == 'epsv' and self.af == socket.AF_INET:
                    return ftplib.parse229(self.sendcmd('EPSV'), self.sock.getpeername())
                return super().makepasv()
            def makeport(self):
                if mode == 'eprt' and self.af == socket.AF_INET:
                    h = self.sock.getsockname()[0]
                    s = socket.create_server((h, 0), backlog=1)
                    self.voidcmd('EPRT |1|%s|%d|' % (h, s.getsockname()[1]))
                    s.settimeout(self.timeout)
                    return s
                return super().makeport()

        f = F(timeout=30)
        f.set_debuglevel(1)
        f.connect(host, int(port))
        f.login()
        f.set_pasv(mode in ('pasv', 'epsv'))
        f.trust_server_pasv_ipv4_address = True
        if direction == 'download':
            with open(local, 'wb') as fh:
                f.retrbinary('RETR ' + remote, fh.write)
        else:
            with open(local, 'rb') as fh:
                f.storbinary('STOR ' + remote, fh)
        f.quit()
        print('RESULT ok')

        """

    static func run(_ t: ClientTransfer) async throws -> ClientTranscript {
        let scriptFile = t.scratch.appendingPathComponent("ftplib_client.py")
        if !FileManager.default.fileExists(atPath: scriptFile.path) {
            try script.write(to: scriptFile, atomically: true, encoding: .utf8)
        }
        let result = try await Command.run(
            "/usr/bin/python3",
            [scriptFile.path, "\(t.target.address)", "\(t.target.port)", t.mode.rawValue, t.direction.rawValue,
             t.remotePath, t.localFile.path],
            in: t.scratch, timeout: t.timeout)
        var commands: [String] = [], replies: [String] = []
        for raw in result.stdout.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            for (prefix, into) in [("*cmd* ", 0), ("*resp* ", 1)] where line.hasPrefix(prefix) {
                var text = String(line.dropFirst(prefix.count))
                if text.count >= 2, let first = text.first, first == "'" || first == "\"" {
                    text = String(text.dropFirst().dropLast())
                }
                // A multi-line reply is printed as one repr with \n inside.
                let parts = text.components(separatedBy: "\\n")
                if into == 0 { commands += parts } else { replies += parts }
            }
        }
        return ClientTranscript(result: result, commands: commands, replies: replies)
    }
}
