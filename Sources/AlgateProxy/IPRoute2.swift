#if canImport(Glibc)
import Glibc
#endif

/// Runs iproute2's `ip` for the policy routing that TPROXY needs (rules and routes are not nftables, so libnftables
/// cannot install them). The call blocks until `ip` exits: run it on a thread pool, never on an event loop.
enum IPRoute2 {
    /// `ip` failed: its exit status and what it wrote to stderr.
    struct Failure: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var stderr: String
        var description: String {
            "`ip \(command)` failed (\(status))" + (stderr.isEmpty ? "" : ": \(stderr)")
        }
    }

    /// Runs `ip ARGUMENTS` (found on PATH), its stdout discarded and its stderr kept for the error.
    static func run(_ arguments: [String]) throws(Failure) {
        let command = arguments.joined(separator: " ")
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            throw Failure(command: command, status: -1, stderr: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        let argv: [UnsafeMutablePointer<CChar>?] = (["ip"] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, "ip", &actions, nil, argv, environ)
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        guard spawned == 0 else {
            throw Failure(command: command, status: -1, stderr: "cannot run ip: \(String(cString: strerror(spawned)))")
        }
        // ip writes a line or two at most; reading to the end before waiting cannot fill the pipe.
        var errorBytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count > 0 {
                errorBytes += chunk[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        // WIFEXITED/WEXITSTATUS are macros: exited normally when the low 7 bits are 0, the code in bits 8-15.
        let exited = status & 0x7f == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        guard code == 0 else {
            let message = String(decoding: errorBytes, as: UTF8.self)
            throw Failure(command: command, status: code,
                          stderr: message.split(separator: "\n").joined(separator: " / "))
        }
    }
}
