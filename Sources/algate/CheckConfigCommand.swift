import AlgateConfig
import ArgumentParser

/// `algate check-config FILE`: parses and validates a configuration without starting anything.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file: exit 0 when it is valid, 2 with the key, value and line otherwise.")

    @Argument(help: "The configuration file (TOML).")
    var file: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key, as KEY=VALUE (repeatable).",
                                                          valueName: "key=value"))
    var overrides: [String] = []

    func run() throws {
        let configuration: AlgateConfiguration
        do {
            configuration = try AlgateConfiguration.load(path: file, overrides: overrides)
        } catch {
            throw UsageError(message: error.description)
        }
        let ports = configuration.pinholes.ports
        print("\(file): ok: \(configuration.ftp.count) FTP listener(s), \(configuration.sip.count) SIP listener(s); "
            + "pinholes \(configuration.pinholes.backend.rawValue) "
            + "on ports \(ports.lowerBound)-\(ports.upperBound), timeout \(configuration.pinholes.timeout)")
        for listener in configuration.ftp {
            let upstream = listener.upstream.map { "-> \($0)" }
                ?? Self.transparent(listener.interceptInterfaces, listener.interceptPorts)
            print("  ftp \(listener.listen) \(upstream)")
        }
        for listener in configuration.sip {
            let upstream = listener.upstream.map { "-> \($0)" }
                ?? Self.transparent(listener.interceptInterfaces, listener.interceptPorts)
            let transports = listener.transports.map(\.rawValue).sorted().joined(separator: "+")
            print("  sip \(listener.listen) \(transports) \(upstream)")
        }
    }

    /// `(transparent: ports 21 on lan0, wg*)`.
    static func transparent(_ interfaces: [String], _ ports: [UInt16]) -> String {
        let portList = ports.map(String.init).joined(separator: ", ")
        return "(transparent: ports \(portList) on \(interfaces.joined(separator: ", ")))"
    }
}
