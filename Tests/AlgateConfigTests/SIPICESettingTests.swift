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

/// `[[sip]] inside-networks`: CIDR networks no SDP may name on its way through.
@Suite struct SIPInsideNetworksSettingTests {
    @Test func readsNetworksAndDefaultsToNone() throws {
        let none = try AlgateConfiguration.parse(SIPICESettingTests.sip(""), source: "a.toml")
        #expect(none.sip.first?.insideNetworks == [])
        let some = try AlgateConfiguration.parse(
            SIPICESettingTests.sip("inside-networks = [\"10.0.0.0/8\", \"fd00::/8\"]"), source: "a.toml")
        #expect(some.sip.first?.insideNetworks == [CIDR("10.0.0.0/8")!, CIDR("fd00::/8")!])
    }

    @Test func aMalformedNetworkIsAnErrorNamingTheKey() throws {
        let error = try #require(parseError(SIPICESettingTests.sip("inside-networks = [\"10.0.0.0/33\"]"), source: "a.toml"))
        #expect(error.line == 4)
        #expect(error.message == "expected networks in CIDR notation such as \"10.0.0.0/8\"")
    }
}
