import AlgateConfig
import Testing

@Suite("Validation errors name source, line, key and value")
struct ValidationErrorTests {
    // MARK: Syntax

    @Test func syntaxErrorHasLineAndColumn() throws {
        let error = try #require(parseError("""
            [pinholes]
            ports = "40000-40999"
            timeout = = "30s"
            """, source: "bad.toml"))
        #expect(error.source == "bad.toml")
        #expect(error.line == 3)
        #expect(error.key == nil)
        #expect(error.message.hasPrefix("syntax error at column "))
        #expect(error.message.first?.isLowercase == true)
        #expect(error.message.last != ".")
        #expect(error.description.hasPrefix("bad.toml:3: syntax error at column "))
    }

    @Test func duplicateKeyIsASyntaxError() throws {
        let error = try #require(parseError(minimalFTP + "[log]\nlevel = \"info\"\nlevel = \"debug\"\n"))
        #expect(error.line == 6)
        #expect(error.message.hasPrefix("syntax error"))
    }

    // MARK: Unknown and unsupported keys

    @Test func unknownKeyInPinholes() throws {
        let error = try #require(parseError("""
            [pinholes]
            timeout = "30s"
            # a comment
            bogus = 1
            """ + "\n" + minimalFTP, source: "a.toml"))
        #expect(error.key == "pinholes.bogus")
        #expect(error.line == 4)
        #expect(error.value == "1")
        #expect(error.message.hasPrefix("unknown key"))
        #expect(error.description.hasPrefix("a.toml:4: pinholes.bogus = 1: unknown key"))
    }

    @Test func unknownKeySuggestsTheRightSpelling() throws {
        let error = try #require(parseError("[pinholes]\nper_session = 4\n" + minimalFTP))
        #expect(error.key == "pinholes.per_session")
        #expect(error.line == 2)
        #expect(error.value == "4")
        #expect(error.message == "unknown key; did you mean per-session?")
    }

    @Test func unknownKeyInSecondListener() throws {
        let error = try #require(parseError(minimalFTP + """
            [[ftp]]
            listen = "127.0.0.1:2122"
            transports = ["tcp"]
            """))
        #expect(error.key == "ftp[1].transports")
        #expect(error.line == 6)
        #expect(error.value == "[\"tcp\"]")
    }

    @Test func unknownTopLevelKeyAndTable() throws {
        let key = try #require(parseError("verbose = true\n" + minimalFTP))
        #expect(key.key == "verbose")
        #expect(key.line == 1)
        #expect(key.value == "true")
        #expect(key.message.hasPrefix("unknown key"))

        let table = try #require(parseError(minimalFTP + "\n[metrics]\nport = 9100\n"))
        #expect(table.key == "metrics")
        #expect(table.line == 5)
        #expect(table.value == nil)
        #expect(table.message.hasPrefix("unknown key"))
    }

    @Test func topLevelKeyInsideATable() throws {
        let error = try #require(parseError(minimalFTP + "shutdown-grace = \"5s\"\n"))
        #expect(error.key == "ftp[0].shutdown-grace")
        #expect(error.line == 4)
        #expect(error.message == "unknown key in [[ftp]]: shutdown-grace is a top-level key, write it before the first [table]")
    }

    @Test func unknownKeysAreReportedInFileOrder() throws {
        let error = try #require(parseError(minimalFTP + "[log]\nzzz = 1\naaa = 2\n"))
        #expect(error.key == "log.zzz")
        #expect(error.line == 5)
    }

    @Test func quotedUnknownKey() throws {
        let error = try #require(parseError(minimalFTP + "[log]\n\"odd key\" = 1\n"))
        #expect(error.key == "log.\"odd key\"")
        #expect(error.line == 5)
    }

    @Test func sipListenersParseWithTheirDefaults() throws {
        let configuration = try AlgateConfiguration.parse(minimalFTP + """

            [[sip]]
            listen = "127.0.0.1:5070"
            upstream = "127.0.0.3:5060"
            transports = ["udp"]
            media-timeout = "10s"
            """)
        #expect(configuration.sip.count == 1)
        #expect(configuration.sip[0].transports == [.udp])
        #expect(configuration.sip[0].mode == .reverse)
        #expect(configuration.sip[0].mediaTimeout == .seconds(10))
        #expect(configuration.sip[0].keepAliveInterval == .seconds(25))
        #expect(configuration.sip[0].line == 5)
    }

    @Test func sipListenerErrorsNameKeyAndLine() throws {
        let transports = try #require(parseError(minimalFTP + """

            [[sip]]
            listen = "127.0.0.1:5070"
            upstream = "127.0.0.3:5060"
            transports = ["sctp"]
            """, source: "algate.toml"))
        #expect(transports.key == "sip[0].transports")
        #expect(transports.line == 8)
        let wildcard = try #require(parseError(minimalFTP + """

            [[sip]]
            listen = "0.0.0.0:5070"
            upstream = "127.0.0.3:5060"
            """))
        #expect(wildcard.key == "sip[0].listen")
        #expect(wildcard.message.contains("public-address"))
        let clash = try #require(parseError(minimalFTP + """

            [[sip]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.3:5060"
            """))
        #expect(clash.key == "sip[0].listen")
        #expect(clash.message == "another listener already uses this endpoint")
    }

    @Test func policyRulesAreCompiledInFileOrderAcrossActions() throws {
        let configuration = try AlgateConfiguration.parse(minimalFTP + """
            [[policy.deny]]
            protocol = "sip"
            header = "User-Agent"
            pattern = "(?i)friendly-scanner"
            response = "drop"

            [[policy.allow]]
            protocol = "ftp"
            field = "user"
            pattern = "^anonymous$"
            sources = ["127.0.0.0/8", "::1"]

            [[policy.deny]]
            protocol = "ftp"
            field = "verb"
            pattern = "(?i)^site$"
            """)
        let rules = configuration.policy.rules
        #expect(rules.map(\.action) == [.deny, .allow, .deny])
        #expect(rules[0].field == .sipHeader("user-agent"))
        #expect(rules[0].response == .drop)
        #expect(rules[1].sources.count == 2)
        #expect(rules[2].response == .reply(550))
        #expect(rules[0].name == "policy.deny[0] (line 4)")
    }

    @Test func aPatternThatDoesNotCompileNamesRuleLineAndOffset() throws {
        let error = try #require(parseError(minimalFTP + """
            [[policy.deny]]
            protocol = "sip"
            field = "method"
            pattern = "INV(ITE"
            """, source: "algate.toml"))
        #expect(error.key == "policy.deny[0].pattern")
        #expect(error.line == 7)
        #expect(error.value == "\"INV(ITE\"")
        #expect(error.message.hasPrefix("does not compile at offset 7: missing closing parenthesis"))
    }

    @Test func policyRuleErrors() throws {
        let noField = try #require(parseError(minimalFTP + "[[policy.deny]]\nprotocol = \"ftp\"\npattern = \"x\"\n"))
        #expect(noField.key == "policy.deny[0].field")
        let badProtocol = try #require(parseError(minimalFTP + "[[policy.log]]\nprotocol = \"http\"\nfield = \"verb\"\npattern = \"x\"\n"))
        #expect(badProtocol.key == "policy.log[0].protocol")
        let badSource = try #require(parseError(minimalFTP
            + "[[policy.deny]]\nprotocol = \"sip\"\nfield = \"method\"\npattern = \"x\"\nsources = [\"10.0.0.0/40\"]\n"))
        #expect(badSource.key == "policy.deny[0].sources")
        let ftpDrop = try #require(parseError(minimalFTP
            + "[[policy.deny]]\nprotocol = \"ftp\"\nfield = \"verb\"\npattern = \"x\"\nresponse = \"drop\"\n"))
        #expect(ftpDrop.key == "policy.deny[0].response")
        let unknown = try #require(parseError(minimalFTP + "[policy]\nmatch-limt = 5\n"))
        #expect(unknown.key == "policy.match-limt")
    }

    // MARK: Types

    @Test func wrongTypes() throws {
        let perSession = try #require(parseError("[pinholes]\nper-session = \"16\"\n" + minimalFTP))
        #expect(perSession.key == "pinholes.per-session")
        #expect(perSession.line == 2)
        #expect(perSession.value == "\"16\"")
        #expect(perSession.message == "expected an integer, not a string")

        let listen = try #require(parseError("[[ftp]]\nlisten = 2121\n"))
        #expect(listen.key == "ftp[0].listen")
        #expect(listen.line == 2)
        #expect(listen.value == "2121")
        #expect(listen.message == "expected a string, not an integer")

        let allow = try #require(parseError(minimalFTP + "allow-privileged-ports = \"yes\"\n"))
        #expect(allow.key == "ftp[0].allow-privileged-ports")
        #expect(allow.line == 4)
        #expect(allow.message == "expected true or false, not a string")

        let float = try #require(parseError(minimalFTP + "max-sessions = 1.5\n"))
        #expect(float.key == "ftp[0].max-sessions")
        #expect(float.value == "1.5")
        #expect(float.message == "expected an integer, not a floating-point number")
    }

    @Test func tablesOfTheWrongShape() throws {
        let pinholes = try #require(parseError("pinholes = \"40000-40999\"\n" + minimalFTP))
        #expect(pinholes.key == "pinholes")
        #expect(pinholes.line == 1)
        #expect(pinholes.message == "expected a table ([pinholes]), not a string")

        let ftpTable = try #require(parseError("[ftp]\nlisten = \"127.0.0.1:21\"\n"))
        #expect(ftpTable.key == "ftp")
        #expect(ftpTable.line == 1)
        #expect(ftpTable.message == "expected [[ftp]] (an array of tables), not [ftp]")
    }

    // MARK: Addresses

    @Test func badListenAddresses() throws {
        let name = try #require(parseError("[[ftp]]\nlisten = \"localhost:21\"\n"))
        #expect(name.key == "ftp[0].listen")
        #expect(name.line == 2)
        #expect(name.value == "\"localhost:21\"")
        #expect(name.message.hasPrefix("expected ADDRESS:PORT"))

        let noPort = try #require(parseError("[[ftp]]\nlisten = \"127.0.0.1\"\n"))
        #expect(noPort.message.hasPrefix("missing port"))

        let unbracketed = try #require(parseError("[[ftp]]\n\nlisten = \"::1:2121\"\n"))
        #expect(unbracketed.line == 3)
        #expect(unbracketed.message.hasPrefix("missing port"))

        let octet = try #require(parseError("[[ftp]]\nlisten = \"192.0.2.256:21\"\n"))
        #expect(octet.key == "ftp[0].listen")
        #expect(octet.message.hasPrefix("expected ADDRESS:PORT"))

        let portZero = try #require(parseError("[[ftp]]\nlisten = \"127.0.0.1:0\"\n"))
        #expect(portZero.message == "port 0 is not allowed")
    }

    @Test func badUpstream() throws {
        let error = try #require(parseError("[[ftp]]\nlisten = \"127.0.0.1:21\"\nupstream = \"ftp.example:21\"\n"))
        #expect(error.key == "ftp[0].upstream")
        #expect(error.line == 3)
        #expect(error.value == "\"ftp.example:21\"")

        let unspecified = try #require(parseError("[[ftp]]\nlisten = \"127.0.0.1:21\"\nupstream = \"0.0.0.0:21\"\n"))
        #expect(unspecified.key == "ftp[0].upstream")
        #expect(unspecified.message == "the unspecified address cannot be an upstream")
    }

    @Test func publicAddressMustBeAnAddressWithoutPort() throws {
        let withPort = try #require(parseError(minimalFTP + "public-address = \"203.0.113.7:21\"\n"))
        #expect(withPort.key == "ftp[0].public-address")
        #expect(withPort.line == 4)
        #expect(withPort.value == "\"203.0.113.7:21\"")
        #expect(withPort.message == "expected an address without a port, e.g. \"203.0.113.7\"")

        let name = try #require(parseError(minimalFTP + "public-address = \"gw.example\"\n"))
        #expect(name.message == "not an IP address (host names are not resolved)")

        let unspecified = try #require(parseError(minimalFTP + "public-address = \"0.0.0.0\"\n"))
        #expect(unspecified.message == "the unspecified address cannot be announced to clients")
    }

    @Test func badDataAddress() throws {
        let error = try #require(parseError(minimalFTP + "data-address = \"[::1]:20\"\n"))
        #expect(error.key == "ftp[0].data-address")
        #expect(error.line == 4)
        #expect(error.message == "expected an address without a port, e.g. \"203.0.113.7\"")
    }

    // MARK: Port ranges

    @Test(arguments: [
        ("\"45000-44999\"", "range is reversed (45000 is above 44999)"),
        ("\"0-100\"", "port 0 is not allowed"),
        ("\"40000-0\"", "port 0 is not allowed"),
        ("\"0\"", "port 0 is not allowed"),
        ("\"40000-70000\"", "port 70000 is out of range (1-65535)"),
        ("\"40000-\"", "expected a port range such as \"40000-44999\", or a single port"),
        ("\"-40000\"", "expected a port range such as \"40000-44999\", or a single port"),
        ("\"40000..44999\"", "expected a port range such as \"40000-44999\", or a single port"),
        ("\"40000-41000-42000\"", "expected a port range such as \"40000-44999\", or a single port"),
        ("\"\"", "expected a port range such as \"40000-44999\", or a single port"),
        ("[40000, 44999]", "expected a port range string such as \"40000-44999\", not an array"),
    ])
    func badPortRanges(value: String, message: String) throws {
        let error = try #require(parseError("[pinholes]\n\nports = \(value)\n" + minimalFTP, source: "p.toml"))
        #expect(error.key == "pinholes.ports")
        #expect(error.line == 3)
        #expect(error.value == value)
        #expect(error.message == message)
    }

    @Test func listenPortInsidePinholeRange() throws {
        let error = try #require(parseError("""
            [pinholes]
            ports = "2000-3000"

            [[ftp]]
            listen = "127.0.0.1:2121"
            intercept-interface = "lan0"
            """, source: "o.toml"))
        #expect(error.key == "ftp[0].listen")
        #expect(error.line == 5)
        #expect(error.value == "\"127.0.0.1:2121\"")
        #expect(error.message == "overlaps pinholes.ports (2000-3000)")
        #expect(error.description == "o.toml:5: ftp[0].listen = \"127.0.0.1:2121\": overlaps pinholes.ports (2000-3000)")
    }

    @Test func listenOnTheRangeBoundaries() throws {
        let low = try #require(parseError("[pinholes]\nports = \"2121-2200\"\n[[ftp]]\nlisten = \"[::1]:2121\"\nintercept-interface = \"lo\"\n"))
        #expect(low.message.hasPrefix("overlaps pinholes.ports"))
        let high = try #require(parseError("[pinholes]\nports = \"2000-2121\"\n[[ftp]]\nlisten = \"[::1]:2121\"\nintercept-interface = \"lo\"\n"))
        #expect(high.message.hasPrefix("overlaps pinholes.ports"))
        #expect(high.value == "\"[::1]:2121\"")
        // One port beside the range is fine.
        let beside = try AlgateConfiguration.parse("[pinholes]\nports = \"2122-2200\"\n[[ftp]]\nlisten = \"[::1]:2121\"\nintercept-interface = \"lo\"\n")
        #expect(beside.ftp[0].listen.port == 2121)
    }

    // MARK: Listeners

    @Test func duplicateListenEndpoint() throws {
        let error = try #require(parseError("""
            [[ftp]]
            listen = "127.0.0.1:2121"
            intercept-interface = "lan0"
            [[ftp]]
            listen = "127.0.0.1:2122"
            intercept-interface = "lan0"
            [[ftp]]
            upstream = "127.0.0.2:21"
            listen = "127.0.0.1:2121"
            """))
        #expect(error.key == "ftp[2].listen")
        #expect(error.line == 9)
        #expect(error.value == "\"127.0.0.1:2121\"")
        #expect(error.message == "same listen endpoint as ftp[0] (line 1)")
    }

    @Test func sameEndpointWrittenDifferently() throws {
        let error = try #require(parseError("""
            [[ftp]]
            listen = "[::1]:2121"
            intercept-interface = "lo"
            [[ftp]]
            listen = "[0:0::1]:2121"
            intercept-interface = "lo"
            """))
        #expect(error.key == "ftp[1].listen")
        #expect(error.line == 5)
        #expect(error.message == "same listen endpoint as ftp[0] (line 1)")
    }

    @Test func missingListen() throws {
        let error = try #require(parseError(minimalFTP + "\n[[ftp]]\nupstream = \"127.0.0.2:21\"\n"))
        #expect(error.key == "ftp[1].listen")
        #expect(error.line == 5)  // the [[ftp]] header
        #expect(error.value == nil)
        #expect(error.message == "required key is missing")
    }

    @Test func reverseModeWithoutUpstream() throws {
        let error = try #require(parseError("[[ftp]]\nlisten = \"127.0.0.1:21\"\nmode = \"reverse\"\n"))
        #expect(error.key == "ftp[0].mode")
        #expect(error.line == 3)
        #expect(error.value == "\"reverse\"")
        #expect(error.message.hasPrefix("reverse mode needs an upstream"))
    }

    @Test func transparentModeWithUpstream() throws {
        let error = try #require(parseError("""
            [[ftp]]
            mode = "transparent"
            listen = "127.0.0.1:21"
            upstream = "127.0.0.2:21"
            """))
        #expect(error.key == "ftp[0].upstream")
        #expect(error.line == 4)
        #expect(error.value == "\"127.0.0.2:21\"")
        #expect(error.message.hasPrefix("transparent mode takes no upstream"))
    }

    @Test func unknownMode() throws {
        let error = try #require(parseError(minimalFTP + "mode = \"proxy\"\n"))
        #expect(error.key == "ftp[0].mode")
        #expect(error.line == 4)
        #expect(error.message == "expected \"reverse\" or \"transparent\"")
    }

    @Test func noListener() throws {
        for text in ["", "[pinholes]\ntimeout = \"5s\"\n", "ftp = []\n"] {
            let error = try #require(parseError(text, source: "empty.toml"))
            #expect(error.message == "nothing to do: no [[ftp]] or [[sip]] listener")
            #expect(error.source == "empty.toml")
            #expect(error.key == nil)
            #expect(error.description == "empty.toml: nothing to do: no [[ftp]] or [[sip]] listener")
        }
    }

    // MARK: Numbers and durations

    @Test(arguments: [
        ("[pinholes]\nper-session = 0\n", "pinholes.per-session", "0", "must be at least 1"),
        ("[pinholes]\nmax = -5\n", "pinholes.max", "-5", "must be at least 1"),
        ("[pinholes]\ntimeout = \"0s\"\n", "pinholes.timeout", "\"0s\"", "must be greater than zero"),
        ("[pinholes]\ntimeout = 30\n", "pinholes.timeout", "30",
         "a duration needs a unit, e.g. \"30s\" (units: ms, s, m, h)"),
        ("[pinholes]\ntimeout = \"30\"\n", "pinholes.timeout", "\"30\"",
         "a duration needs a unit, e.g. \"30s\" (units: ms, s, m, h)"),
        ("[pinholes]\ntimeout = \"soon\"\n", "pinholes.timeout", "\"soon\"",
         "expected a duration such as \"250ms\", \"30s\", \"5m\", \"1h\" or \"1m30s\""),
        ("[pinholes]\nbackend = \"iptables\"\n", "pinholes.backend", "\"iptables\"",
         "expected \"userspace\" or \"nftables\""),
        ("[log]\nlevel = \"verbose\"\n", "log.level", "\"verbose\"",
         "expected one of trace, debug, info, notice, warning, error, critical"),
    ])
    func badValuesBeforeTheListener(text: String, key: String, value: String, message: String) throws {
        let error = try #require(parseError(text + minimalFTP, source: "n.toml"))
        #expect(error.key == key)
        #expect(error.line == 2)
        #expect(error.value == value)
        #expect(error.message == message)
        #expect(error.description == "n.toml:2: \(key) = \(value): \(message)")
    }

    @Test(arguments: [
        ("max-sessions = 0", "ftp[0].max-sessions", "must be at least 1"),
        ("max-line-length = 511", "ftp[0].max-line-length", "must be between 512 and 1048576"),
        ("max-line-length = 1048577", "ftp[0].max-line-length", "must be between 512 and 1048576"),
        ("idle-timeout = \"0ms\"", "ftp[0].idle-timeout", "must be greater than zero"),
        ("idle-timeout = 300", "ftp[0].idle-timeout", "a duration needs a unit, e.g. \"30s\" (units: ms, s, m, h)"),
    ])
    func badListenerValues(line: String, key: String, message: String) throws {
        let error = try #require(parseError(minimalFTP + line + "\n"))
        #expect(error.key == key)
        #expect(error.line == 4)
        #expect(error.message == message)
    }

    @Test func listenerLimitsAtTheirBounds() throws {
        let low = try AlgateConfiguration.parse(minimalFTP + "max-line-length = 512\nmax-sessions = 1\n")
        #expect(low.ftp[0].maxLineLength == 512)
        #expect(low.ftp[0].maxSessions == 1)
        let high = try AlgateConfiguration.parse(minimalFTP + "max-line-length = 1048576\n")
        #expect(high.ftp[0].maxLineLength == 1_048_576)
    }

    @Test func shutdownGrace() throws {
        let zero = try AlgateConfiguration.parse("shutdown-grace = \"0s\"\n" + minimalFTP)
        #expect(zero.shutdownGrace == .zero)
        let bare = try #require(parseError("shutdown-grace = 5\n" + minimalFTP))
        #expect(bare.key == "shutdown-grace")
        #expect(bare.line == 1)
        #expect(bare.message == "a duration needs a unit, e.g. \"30s\" (units: ms, s, m, h)")
    }

    // MARK: Files

    @Test func missingFile() throws {
        let path = "/nonexistent-algate-test/algate.toml"
        do {
            _ = try AlgateConfiguration.load(path: path)
            Issue.record("a missing file loaded")
        } catch {
            #expect(error.source == path)
            #expect(error.line == nil)
            #expect(error.message == "no such file")
            #expect(error.description == "\(path): no such file")
        }
    }

    @Test func directoryIsNotAFile() throws {
        do {
            _ = try AlgateConfiguration.load(path: "/")
            Issue.record("a directory loaded")
        } catch {
            #expect(error.source == "/")
            #expect(error.message == "is a directory, not a configuration file")
        }
    }
}
