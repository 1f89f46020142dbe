import AlgateConfig
import AlgateProxy
import ArgumentParser

/// `algate rules --config FILE`: prints the nftables rules that `algate run` installs for its transparent
/// listeners, for admins who manage nftables themselves.
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Print the nftables script that steers control traffic to the transparent listeners.",
        discussion: """
            The script replaces the table inet \(InterceptRules.tableName) (and only that table) in one \
            transaction: `algate rules --config FILE | nft -f -` installs it, \
            `nft delete table inet \(InterceptRules.tableName)` removes it. `algate run` does both by itself.
            """)

    @Option(name: .shortAndLong, help: "The configuration file (default: ./algate.toml, then /etc/algate/algate.toml).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key, as KEY=VALUE (repeatable).",
                                                          valueName: "key=value"))
    var overrides: [String] = []

    func run() throws {
        let path = try ConfigLocator.locate(config)
        let rules: InterceptRules
        do {
            rules = try InterceptRules(configuration: AlgateConfiguration.load(path: path, overrides: overrides))
        } catch let error as ConfigurationError {
            throw UsageError(message: error.description)
        } catch {
            throw UsageError(message: "\(path): \(error)")
        }
        if rules.isEmpty {
            print("# \(path): no transparent listener, nothing to steer")
            return
        }
        print("# algate intercept rules for \(path); apply with: nft -f FILE")
        print(rules.installScript, terminator: "")
    }
}
