import AlgateConfig
import AlgateRewrite
import Testing

/// `intercept-interface` and `intercept-ports`: the steering rules of transparent-mode listeners.
@Suite("Intercept keys of transparent listeners")
struct InterceptSettingsTests {
    @Test func namesAndPortsAsScalarsOrLists() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[ftp]]
            listen = "0.0.0.0:2100"
            intercept-interface = ["lan0", "wg*"]
            intercept-ports = [21, 2121]

            [[sip]]
            listen = "10.0.0.1:5070"
            intercept-interface = "lan0"
            intercept-ports = 5080
            """)
        #expect(configuration.ftp[0].interceptInterfaces == ["lan0", "wg*"])
        #expect(configuration.ftp[0].interceptPorts == [21, 2121])
        #expect(configuration.sip[0].mode == .transparent)
        #expect(configuration.sip[0].interceptInterfaces == ["lan0"])
        #expect(configuration.sip[0].interceptPorts == [5080])
    }

    @Test func sipDefaultsToPort5060() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[sip]]
            listen = "10.0.0.1:5070"
            intercept-interface = "lan0"
            """)
        #expect(configuration.sip[0].interceptPorts == [5060])
    }

    @Test func transparentModeNeedsAnInterface() throws {
        let error = try #require(parseError("""
            [[ftp]]
            listen = "0.0.0.0:2100"
            """, source: "t.toml"))
        #expect(error.key == "ftp[0].intercept-interface")
        #expect(error.line == 1)
        #expect(error.message.hasPrefix("required in transparent mode"))
        #expect(error.description.hasPrefix("t.toml:1: ftp[0].intercept-interface: required in transparent mode"))
    }

    @Test func reverseModeRefusesInterceptKeys() throws {
        let error = try #require(parseError("""
            [[ftp]]
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:21"
            intercept-ports = [21]
            """, source: "r.toml"))
        #expect(error.description == "r.toml:4: ftp[0].intercept-ports = [21]: only for transparent mode "
            + "(a reverse-mode listener intercepts nothing)")
    }

    @Test(arguments: [
        ("\"\"", "\"\" is not an interface name"),
        ("\"eth0; flush ruleset\"", "is not an interface name"),
        ("\"averyveryverylongname\"", "is not an interface name"),
        ("[]", "expected at least one interface name"),
        ("[1]", "expected interface names as strings"),
        ("3", "expected an interface name or a list of them, not an integer"),
    ])
    func badInterfaceNames(value: String, message: String) throws {
        let error = try #require(parseError("""
            [[ftp]]
            listen = "0.0.0.0:2100"
            intercept-interface = \(value)
            """, source: "i.toml"))
        #expect(error.key == "ftp[0].intercept-interface")
        #expect(error.line == 3)
        #expect(error.value == value)
        #expect(error.message.contains(message), "\(error)")
    }

    @Test(arguments: [
        ("0", "port 0 is out of range (1-65535)"),
        ("[21, 70000]", "port 70000 is out of range (1-65535)"),
        ("[21, 21]", "port 21 is listed twice"),
        ("\"21\"", "expected a port or a list of ports such as [21, 2121], not a string"),
        ("[]", "expected at least one port"),
    ])
    func badPorts(value: String, message: String) throws {
        let error = try #require(parseError("""
            [[sip]]
            listen = "10.0.0.1:5070"
            intercept-interface = "lan0"
            intercept-ports = \(value)
            """, source: "p.toml"))
        #expect(error.description == "p.toml:4: sip[0].intercept-ports = \(value): \(message)")
    }
}
