import AlgatePinholes
import Logging
import NIOPosix

/// Puts ``InterceptRules`` into the kernel at start and takes them out at exit, through libnftables.
///
/// libnftables blocks while the kernel works, so every call runs on a thread of NIO's shared thread pool, never on
/// an event loop.
struct InterceptInstaller: Sendable {
    let rules: InterceptRules
    private let runner: NftablesRunner
    private let logger: Logger

    init(rules: InterceptRules, logger: Logger) throws(GatewayError) {
        self.rules = rules
        self.logger = logger
        do {
            runner = try NftablesRunner()
        } catch {
            throw GatewayError("cannot install the intercept rules: \(error)")
        }
    }

    /// Replaces a table left by a crashed run with the rules, in one transaction.
    func install() async throws(GatewayError) {
        do {
            try await run(rules.installScript)
        } catch {
            // NftablesError's description says when the process lacks CAP_NET_ADMIN.
            throw GatewayError("cannot install the intercept rules (table inet \(InterceptRules.tableName)): \(error)")
        }
        logger.info("intercept rules installed", metadata: [
            "table": "inet \(InterceptRules.tableName)", "rules": "\(rules.rules.count)",
        ])
    }

    /// Deletes the table; a failure is logged (the next start replaces the table anyway).
    func remove() async {
        do {
            try await run(InterceptRules.removeScript)
            logger.info("intercept rules removed", metadata: ["table": "inet \(InterceptRules.tableName)"])
        } catch {
            logger.error("cannot remove the intercept rules", metadata: [
                "table": "inet \(InterceptRules.tableName)", "error": "\(error)",
            ])
        }
    }

    private func run(_ script: String) async throws {
        let runner = self.runner
        _ = try await NIOThreadPool.singleton.runIfActive {
            try runner.run(script)
        }
    }
}
