import AlgateConfig
import AlgateProxy
import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `algate run`: the gateway itself.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the gateway until SIGTERM or SIGINT.")

    @Option(name: .shortAndLong, help: "The configuration file (default: ./algate.toml, then /etc/algate/algate.toml).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key, as KEY=VALUE (repeatable), e.g. "
        + "--set pinholes.timeout=10s --set ftp.0.listen=127.0.0.1:2121.", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Log level, overriding [log] level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    func run() async throws {
        let path = try ConfigLocator.locate(config)
        let configuration: AlgateConfiguration
        do {
            configuration = try AlgateConfiguration.load(path: path, overrides: overrides)
        } catch {
            throw UsageError(message: error.description)
        }
        let levelName = logLevel ?? configuration.log.level
        guard let level = Logger.Level(rawValue: levelName) else {
            throw UsageError(message: "--log-level \(levelName): not one of "
                + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "algate")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let gateway: Gateway
        do {
            let overrides = self.overrides
            gateway = try Gateway(configuration: configuration, group: group, logger: logger, reload: {
                try AlgateConfiguration.load(path: path, overrides: overrides)
            })
        } catch {
            try? await group.shutdownGracefully()
            throw UsageError(message: "\(path): \(error)")
        }
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: gateway)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await services.run()
        } catch {
            try? await group.shutdownGracefully()
            throw RuntimeError(message: "\(error)")
        }
        try? await group.shutdownGracefully()
    }
}

/// Finds the configuration file `algate run` uses when none is named.
enum ConfigLocator {
    static let candidates = ["algate.toml", "/etc/algate/algate.toml"]

    static func locate(_ explicit: String?) throws -> String {
        if let explicit { return explicit }
        for candidate in candidates where access(candidate, R_OK) == 0 { return candidate }
        throw UsageError(message: "no configuration file: tried \(candidates.joined(separator: ", ")); "
            + "name one with --config FILE")
    }
}
