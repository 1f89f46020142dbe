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
            `nft delete table inet \(InterceptRules.tableName)` removes it. `algate run` does both by itself. \
            Transparent SIP over UDP (TPROXY) also needs policy routing (an `ip rule` for algate's mark and a \
            local route in its table), printed as comments after the script: iproute2 commands, not nftables.
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
            rules = InterceptRules(configuration: try AlgateConfiguration.load(path: path, overrides: overrides))
        } catch {
            throw UsageError(message: error.description)
        }
        if rules.isEmpty {
            print("# \(path): no transparent listener, nothing to steer")
            return
        }
        print("# algate intercept rules for \(path); apply with: nft -f FILE")
        print(rules.installScript, terminator: "")
        if !rules.policyRoutingInstall.isEmpty {
            // Comments, so the output stays a script nft reads; the commands are iproute2's, not nftables.
            print("# TPROXY (transparent SIP over UDP) also needs this policy routing, which is not nftables;")
            print("# algate run installs it with iproute2 and removes it at exit. By hand:")
            for command in rules.policyRoutingInstall { print("#   ip " + command.joined(separator: " ")) }
            print("# and to remove it:")
            for command in rules.policyRoutingRemove { print("#   ip " + command.joined(separator: " ")) }
        }
    }
}
