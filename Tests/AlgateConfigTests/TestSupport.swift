@testable import AlgateConfig
import Testing

/// Parses `text` and returns the error it must produce; records a failure (and returns nil) when it parses.
func parseError(
    _ text: String, source: String = "<config>", overrides: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigurationError? {
    do {
        let configuration = try AlgateConfiguration.parse(text, source: source, overrides: overrides)
        Issue.record("expected an error, got \(configuration)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// A listener that makes a configuration valid, for tests about other tables.
let minimalFTP = """
    [[ftp]]
    listen = "127.0.0.1:2121"
    upstream = "127.0.0.2:21"

    """
