@testable import AlgateConfig
import AlgateRewrite
import Testing

/// `[[sip]] ice`: what happens to ICE candidates of relayed streams.
@Suite struct SIPICESettingTests {
    static func sip(_ line: String) -> String {
        "[[sip]]\nlisten = \"127.0.0.1:5060\"\nupstream = \"127.0.0.2:5060\"\n\(line)\n"
    }

    @Test func defaultsToReplace() throws {
        let configuration = try AlgateConfiguration.parse(Self.sip(""), source: "a.toml")
        #expect(configuration.sip.first?.ice == .replace)
    }

    @Test("each mode is read", arguments: SDPRewrite.ICEMode.allCases)
    func eachMode(_ mode: SDPRewrite.ICEMode) throws {
        let configuration = try AlgateConfiguration.parse(Self.sip("ice = \"\(mode.rawValue)\""), source: "a.toml")
        #expect(configuration.sip.first?.ice == mode)
    }

    @Test func anotherValueIsAnErrorNamingTheKey() throws {
        let error = try #require(parseError(Self.sip("ice = \"relay\""), source: "a.toml"))
        #expect(error.key == "sip[0].ice" || error.key == "sip.ice", "\(error)")
        #expect(error.line == 4)
        #expect(error.message == "expected \"replace\", \"strip\" or \"pass\"")
    }
}
