import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `algate`: an application-layer gateway for FTP (and, later, SIP).
@main
struct Algate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "algate",
        abstract: "An application-layer gateway for FTP: rewrites the addresses in control connections and opens "
            + "exactly the data-channel pinholes they negotiate.",
        subcommands: [RunCommand.self, CheckConfigCommand.self, RulesCommand.self, RewriteCommand.self,
                      ReplayCommand.self])

    /// Exit codes of DESIGN.md: 0 success, 1 runtime failure, 2 usage or configuration error; errors on stderr in
    /// one line.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as UsageError {
            printError("algate: \(error.message)")
            terminate(2)
        } catch let error as RuntimeError {
            printError("algate: \(error.message)")
            terminate(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)
            }
            // Argument errors print their usage text; keep ArgumentParser's message but our exit code.
            printError(fullMessage(for: error))
            terminate(code == .failure ? 1 : 2)
        }
    }

    static func printError(_ message: String) {
        var stderr = StandardError()
        print(message, to: &stderr)
    }
}

/// A usage or configuration error: exit status 2.
struct UsageError: Error {
    var message: String
}

/// A failure at run time: exit status 1.
struct RuntimeError: Error {
    var message: String
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        let bytes = Array(string.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { rawWrite(2, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// Ends the process with a status (the global `exit`, which ParsableCommand's own `exit` shadows).
func terminate(_ status: Int32) -> Never {
    exit(status)
}

/// The write(2) system call, under a name that `TextOutputStream.write` does not shadow.
func rawWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
