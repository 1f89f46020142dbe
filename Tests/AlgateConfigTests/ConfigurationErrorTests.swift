import AlgateConfig
import Testing

@Suite("ConfigurationError")
struct ConfigurationErrorTests {
    @Test func descriptionLeavesOutWhatIsUnknown() {
        let full = ConfigurationError(
            source: "a.toml", line: 3, key: "pinholes.ports", value: "\"2-1\"", message: "range is reversed"
        )
        #expect(full.description == "a.toml:3: pinholes.ports = \"2-1\": range is reversed")
        #expect(ConfigurationError(source: "a.toml", message: "no such file").description == "a.toml: no such file")
        #expect(ConfigurationError(source: "a.toml", line: 7, key: "sip", message: "m").description == "a.toml:7: sip: m")
        #expect(ConfigurationError(source: "<config>", key: "k", value: "1", message: "m").description == "<config>: k = 1: m")
        #expect(ConfigurationError(source: "<config>", line: 2, message: "m").description == "<config>:2: m")
    }

    @Test func defaultSourceIsConfig() throws {
        let error = try #require(parseError("[[ftp]]\nlisten = \"x\"\n"))
        #expect(error.source == "<config>")
        #expect(error.description.hasPrefix("<config>:2: ftp[0].listen = \"x\": "))
    }

    @Test func descriptionIsOneLine() throws {
        let error = try #require(parseError("[pinholes\nports = 1\n"))
        #expect(!error.description.contains("\n"))
        #expect(error.line == 1)
    }

    @Test func valuesAreEscaped() throws {
        let error = try #require(parseError(#"[[ftp]]"# + "\n" + #"listen = "a\"b""# + "\n"))
        #expect(error.value == #""a\"b""#)
    }
}
