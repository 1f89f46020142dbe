import AlgateConfig
import AlgateRewrite
import Testing

@Suite("Overrides")
struct OverrideTests {
    static let base = """
        [pinholes]
        timeout = "30s"

        [[ftp]]
        listen = "127.0.0.1:2121"
        upstream = "127.0.0.2:21"
        """

    @Test func quotedAndBareDurations() throws {
        let quoted = try AlgateConfiguration.parse(Self.base, overrides: ["pinholes.timeout=\"10s\""])
        #expect(quoted.pinholes.timeout == .seconds(10))
        let bare = try AlgateConfiguration.parse(Self.base, overrides: ["pinholes.timeout=10s"])
        #expect(bare.pinholes.timeout == .seconds(10))
        let spaced = try AlgateConfiguration.parse(Self.base, overrides: ["pinholes.timeout = 2m"])
        #expect(spaced.pinholes.timeout == .seconds(120))
    }

    @Test func listenerByIndex() throws {
        let dotted = try AlgateConfiguration.parse(Self.base, overrides: ["ftp.0.listen=127.0.0.1:2200"])
        #expect(dotted.ftp[0].listen == Endpoint("127.0.0.1:2200"))
        #expect(dotted.ftp[0].upstream == Endpoint("127.0.0.2:21"))
        #expect(dotted.ftp[0].line == 4)
        let bracketed = try AlgateConfiguration.parse(Self.base, overrides: ["ftp[0].listen=\"[::1]:2200\""])
        #expect(bracketed.ftp[0].listen == Endpoint("[::1]:2200"))
    }

    @Test func typedValues() throws {
        let configuration = try AlgateConfiguration.parse(Self.base, overrides: [
            "pinholes.per-session=4",
            "pinholes.max=100",
            "pinholes.ports=41000-41010",
            "pinholes.backend=nftables",
            "ftp.0.allow-privileged-ports=true",
            "ftp.0.max-line-length=1024",
            "ftp.0.public-address=203.0.113.9",
            "log.level=debug",
            "shutdown-grace=1s",
        ])
        #expect(configuration.pinholes.perSession == 4)
        #expect(configuration.pinholes.maxTotal == 100)
        #expect(configuration.pinholes.ports == 41000...41010)
        #expect(configuration.pinholes.backend == .nftables)
        #expect(configuration.ftp[0].allowPrivilegedPorts)
        #expect(configuration.ftp[0].maxLineLength == 1024)
        #expect(configuration.ftp[0].publicAddress == IPAddress("203.0.113.9"))
        #expect(configuration.log.level == "debug")  // [log] did not exist: the override created it
        #expect(configuration.shutdownGrace == .seconds(1))
    }

    @Test func singlePortWithoutQuotesIsAString() throws {
        let configuration = try AlgateConfiguration.parse(Self.base, overrides: ["pinholes.ports=45000"])
        #expect(configuration.pinholes.ports == 45000...45000)
    }

    @Test func laterOverrideWins() throws {
        let configuration = try AlgateConfiguration.parse(
            Self.base, overrides: ["pinholes.timeout=5s", "pinholes.timeout=7s"]
        )
        #expect(configuration.pinholes.timeout == .seconds(7))
    }

    @Test func addingAListener() throws {
        let configuration = try AlgateConfiguration.parse(Self.base, overrides: [
            "ftp.1.listen=127.0.0.1:2300", "ftp.1.intercept-interface=eth1",
        ])
        #expect(configuration.ftp.count == 2)
        #expect(configuration.ftp[1].listen == Endpoint("127.0.0.1:2300"))
        #expect(configuration.ftp[1].mode == .transparent)
        #expect(configuration.ftp[1].line == 0)
    }

    @Test func listenerFromNothing() throws {
        let configuration = try AlgateConfiguration.parse("", overrides: [
            "ftp.0.listen=127.0.0.1:2121", "ftp.0.upstream=127.0.0.2:21",
        ])
        #expect(configuration.ftp.count == 1)
        #expect(configuration.ftp[0].mode == .reverse)
        #expect(configuration.ftp[0].line == 0)
    }

    @Test func badOverriddenValueNamesTheOverride() throws {
        let error = try #require(parseError(Self.base, source: "f.toml", overrides: ["pinholes.timeout=0s"]))
        #expect(error.source == "<override>")
        #expect(error.line == nil)
        #expect(error.key == "pinholes.timeout")
        #expect(error.value == "\"0s\"")
        #expect(error.message == "must be greater than zero")
        #expect(error.description == "<override>: pinholes.timeout = \"0s\": must be greater than zero")
    }

    @Test func fileErrorsKeepTheirLinesBesideOverrides() throws {
        let error = try #require(parseError(
            Self.base + "\nmode = \"transparent\"\n", source: "f.toml", overrides: ["pinholes.timeout=1s"]
        ))
        #expect(error.source == "f.toml")
        #expect(error.key == "ftp[0].upstream")
        #expect(error.line == 6)
    }

    @Test func overrideIntoACreatedListenerNamesTheOverride() throws {
        let error = try #require(parseError(Self.base, overrides: ["ftp.1.upstream=127.0.0.2:22"]))
        #expect(error.source == "<override>")
        #expect(error.key == "ftp[1].listen")
        #expect(error.message == "required key is missing")
    }

    @Test func overrideCausingAnOverlap() throws {
        let error = try #require(parseError(Self.base, overrides: ["ftp.0.listen=127.0.0.1:40001"]))
        #expect(error.source == "<override>")
        #expect(error.key == "ftp[0].listen")
        #expect(error.message == "overlaps pinholes.ports (40000-44999)")
    }

    @Test func unknownKeyByOverride() throws {
        let error = try #require(parseError(Self.base, overrides: ["pinholes.tiemout=5s"]))
        #expect(error.source == "<override>")
        #expect(error.key == "pinholes.tiemout")
        #expect(error.value == "\"5s\"")
        #expect(error.message.hasPrefix("unknown key"))
    }

    @Test func wrongTypeByOverride() throws {
        let error = try #require(parseError(Self.base, overrides: ["pinholes.per-session=many"]))
        #expect(error.key == "pinholes.per-session")
        #expect(error.value == "\"many\"")
        #expect(error.message == "expected an integer, not a string")
    }

    @Test(arguments: [
        ("pinholes.timeout", "expected key=value, e.g. \"pinholes.timeout=10s\""),
        ("=5s", "expected a dotted key before \"=\", e.g. \"ftp.0.listen\""),
        ("pinholes..timeout=5s", "expected a dotted key before \"=\", e.g. \"ftp.0.listen\""),
        ("pinholes.per-session=\"4", "not a valid TOML value"),
        ("ftp.3.listen=127.0.0.1:21", "index 3 is out of range: ftp has 1 element(s), the next one is 1"),
        ("pinholes.timeout.x=1", "cannot set \"x\" inside pinholes.timeout: it is a string"),
    ])
    func malformedOverrides(override: String, message: String) throws {
        let error = try #require(parseError(Self.base, overrides: [override]))
        #expect(error.source == "<override>")
        #expect(error.line == nil)
        #expect(error.message == message)
    }
}
