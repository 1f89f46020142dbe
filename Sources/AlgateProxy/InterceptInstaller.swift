import AlgatePinholes
import Logging
import NIOPosix

/// Puts ``InterceptRules`` into the kernel at start and takes them out at exit: the table through libnftables, the
/// policy routing that TPROXY needs (transparent SIP over UDP) through iproute2's `ip`.
///
/// libnftables and `ip` block while the kernel works, so every call runs on a thread of NIO's shared thread pool,
/// never on an event loop.
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

    /// Replaces a table left by a crashed run with the rules, in one transaction; then the policy routing, after
    /// taking out what a crashed run left of it.
    func install() async throws(GatewayError) {
        do {
            try await run(rules.installScript)
        } catch {
            // NftablesError's description says when the process lacks CAP_NET_ADMIN.
            throw GatewayError("cannot install the intercept rules (table inet \(InterceptRules.tableName)): \(error)")
        }
        if !rules.policyRoutingInstall.isEmpty {
            await removePolicyRouting(quiet: true)
            do {
                for command in rules.policyRoutingInstall { try await ip(command) }
            } catch {
                await removePolicyRouting(quiet: true)
                try? await run(InterceptRules.removeScript)
                throw GatewayError("cannot install the policy routing for TPROXY: \(error)")
            }
        }
        logger.info("intercept rules installed", metadata: [
            "table": "inet \(InterceptRules.tableName)", "rules": "\(rules.rules.count)",
            "policy-routing": "\(rules.policyRoutingInstall.isEmpty ? "none" : "fwmark \(InterceptRules.markText) table \(InterceptRules.routingTable)")",
        ])
    }

    /// Deletes the table and the policy routing; a failure is logged (the next start replaces both anyway).
    func remove() async {
        do {
            try await run(InterceptRules.removeScript)
            logger.info("intercept rules removed", metadata: ["table": "inet \(InterceptRules.tableName)"])
        } catch {
            logger.error("cannot remove the intercept rules", metadata: [
                "table": "inet \(InterceptRules.tableName)", "error": "\(error)",
            ])
        }
        await removePolicyRouting(quiet: false)
    }

    /// Deletes every policy rule with algate's mark and table (there is one unless a crashed run left more) and
    /// flushes the table. `quiet`: nothing to delete is expected (before installing), so failures are not logged.
    private func removePolicyRouting(quiet: Bool) async {
        for command in rules.policyRoutingRemove {
            // `ip rule del` deletes one rule a call; stop at the first failure (none left).
            let attempts = command.contains("rule") ? 16 : 1
            for attempt in 0..<attempts {
                do {
                    try await ip(command)
                } catch {
                    if !quiet && attempt == 0 {
                        logger.error("cannot remove the policy routing", metadata: ["error": "\(error)"])
                    }
                    break
                }
            }
        }
    }

    private func ip(_ arguments: [String]) async throws {
        _ = try await NIOThreadPool.singleton.runIfActive {
            try IPRoute2.run(arguments)
        }
    }

    private func run(_ script: String) async throws {
        let runner = self.runner
        _ = try await NIOThreadPool.singleton.runIfActive {
            try runner.run(script)
        }
    }
}
