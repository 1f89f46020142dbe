import AlgateConfig
import AlgateRewrite
import Testing

@Suite("Parsing keys and defaults")
struct ParsingTests {
    @Test func defaultsWhenOnlyAListenerIsGiven() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[ftp]]
            listen = "0.0.0.0:21"
            intercept-interface = "eth1"
            """)
        #expect(configuration.pinholes == PinholeSettings())
        #expect(configuration.pinholes.backend == .userspace)
        #expect(configuration.pinholes.ports == 40000...44999)
        #expect(configuration.pinholes.timeout == .seconds(30))
        #expect(configuration.pinholes.perSession == 16)
        #expect(configuration.pinholes.maxTotal == 10_000)
        #expect(configuration.log.level == "info")
        #expect(configuration.shutdownGrace == .seconds(10))

        let ftp = try #require(configuration.ftp.first)
        #expect(ftp.listen == Endpoint("0.0.0.0:21"))
        #expect(ftp.upstream == nil)
        #expect(ftp.mode == .transparent)
        #expect(ftp.publicAddress == nil)
        #expect(ftp.dataAddress == nil)
        #expect(ftp.maxLineLength == 4096)
        #expect(ftp.idleTimeout == .seconds(300))
        #expect(ftp.maxSessions == 1000)
        #expect(ftp.allowPrivilegedPorts == false)
        #expect(ftp.interceptInterfaces == ["eth1"])
        #expect(ftp.interceptPorts == [21])
        #expect(ftp.line == 1)
    }

    @Test func everyKeySet() throws {
        let configuration = try AlgateConfiguration.parse("""
            shutdown-grace = "2m"

            [pinholes]
            backend = "nftables"
            ports = "50000-50010"
            timeout = "1m30s"
            per-session = 4
            max = 200

            [[ftp]]
            listen = "192.0.2.1:21"
            upstream = "10.0.0.5:21"
            mode = "reverse"
            public-address = "203.0.113.7"
            data-address = "10.0.0.1"
            max-line-length = 512
            idle-timeout = "250ms"
            max-sessions = 3
            allow-privileged-ports = true

            [log]
            level = "debug"
            """, source: "test.toml")
        #expect(configuration.shutdownGrace == .seconds(120))
        #expect(configuration.pinholes.backend == .nftables)
        #expect(configuration.pinholes.ports == 50000...50010)
        #expect(configuration.pinholes.timeout == .seconds(90))
        #expect(configuration.pinholes.perSession == 4)
        #expect(configuration.pinholes.maxTotal == 200)
        let ftp = try #require(configuration.ftp.first)
        #expect(ftp.listen == Endpoint(address: .v4(0xC000_0201), port: 21))
        #expect(ftp.upstream == Endpoint("10.0.0.5:21"))
        #expect(ftp.mode == .reverse)
        #expect(ftp.publicAddress == IPAddress("203.0.113.7"))
        #expect(ftp.dataAddress == IPAddress("10.0.0.1"))
        #expect(ftp.maxLineLength == 512)
        #expect(ftp.idleTimeout == .milliseconds(250))
        #expect(ftp.maxSessions == 3)
        #expect(ftp.allowPrivilegedPorts == true)
        #expect(ftp.line == 10)
        #expect(configuration.log.level == "debug")
    }

    @Test func modeDefaultsToReverseWithAnUpstream() throws {
        let configuration = try AlgateConfiguration.parse(minimalFTP)
        #expect(configuration.ftp[0].mode == .reverse)
        #expect(configuration.ftp[0].upstream == Endpoint("127.0.0.2:21"))
    }

    @Test func explicitTransparentMode() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[ftp]]
            listen = "0.0.0.0:2100"
            mode = "transparent"
            intercept-interface = "eth1"
            """)
        #expect(configuration.ftp[0].mode == .transparent)
        #expect(configuration.ftp[0].upstream == nil)
    }

    @Test func singlePort() throws {
        let text = minimalFTP + "[pinholes]\nports = \"40000\"\n"
        #expect(try AlgateConfiguration.parse(text).pinholes.ports == 40000...40000)
        let integer = minimalFTP + "[pinholes]\nports = 40001\n"
        #expect(try AlgateConfiguration.parse(integer).pinholes.ports == 40001...40001)
    }

    @Test func fullPortRange() throws {
        let text = """
            [pinholes]
            ports = "1024-65535"
            [[ftp]]
            listen = "127.0.0.1:21"
            intercept-interface = "lan0"
            """
        #expect(try AlgateConfiguration.parse(text).pinholes.ports == 1024...65535)
    }

    @Test(arguments: ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    func everyLogLevel(_ level: String) throws {
        let configuration = try AlgateConfiguration.parse(minimalFTP + "[log]\nlevel = \"\(level)\"\n")
        #expect(configuration.log.level == level)
    }

    @Test func logLevelIsCaseInsensitive() throws {
        let configuration = try AlgateConfiguration.parse(minimalFTP + "[log]\nlevel = \"Warning\"\n")
        #expect(configuration.log.level == "warning")
    }

    @Test func ipv6Listeners() throws {
        let configuration = try AlgateConfiguration.parse("""
            [[ftp]]
            listen = "[::1]:2121"
            upstream = "[2001:db8::5]:21"
            public-address = "2001:db8::7"
            data-address = "[2001:db8::1]"

            [[ftp]]
            listen = "[::]:2121"
            intercept-interface = "lan0"
            """)
        #expect(configuration.ftp.count == 2)
        #expect(configuration.ftp[0].listen == Endpoint(address: .v6(high: 0, low: 1), port: 2121))
        #expect(configuration.ftp[0].listen.description == "[::1]:2121")
        #expect(configuration.ftp[0].upstream == Endpoint("[2001:db8::5]:21"))
        #expect(configuration.ftp[0].publicAddress == IPAddress("2001:db8::7"))
        #expect(configuration.ftp[0].dataAddress == IPAddress("2001:db8::1"))
        #expect(configuration.ftp[0].mode == .reverse)
        #expect(configuration.ftp[1].listen == Endpoint(address: .v6(high: 0, low: 0), port: 2121))
        #expect(configuration.ftp[1].line == 7)
    }

    @Test func severalListenersKeepTheirOrderAndLines() throws {
        let configuration = try AlgateConfiguration.parse("""
            # comment
            [[ftp]]
            listen = "127.0.0.1:21"
            intercept-interface = "eth1"

            [[ftp]] # trailing comment
            listen = "127.0.0.1:2121"
            upstream = "127.0.0.2:21"

              [[ ftp ]]
            listen = "127.0.0.1:2122"
            intercept-interface = "eth1"
            """)
        #expect(configuration.ftp.map(\.listen.port) == [21, 2121, 2122])
        #expect(configuration.ftp.map(\.line) == [2, 6, 10])
        #expect(configuration.ftp.map(\.mode) == [.transparent, .reverse, .transparent])
    }

    @Test func inlineArrayOfTablesIsAccepted() throws {
        let configuration = try AlgateConfiguration.parse("""
            ftp = [
              { listen = "127.0.0.1:21", intercept-interface = "eth1" },
              { listen = "127.0.0.1:22", upstream = "127.0.0.2:22" },
            ]
            """)
        #expect(configuration.ftp.count == 2)
        #expect(configuration.ftp[1].upstream == Endpoint("127.0.0.2:22"))
        #expect(configuration.ftp[1].line == 3)
    }

    @Test func memberwiseInitAndDefaults() {
        let listen = Endpoint(address: .v4(0x7F00_0001), port: 21)
        let listener = FTPListenerSettings(listen: listen)
        #expect(listener.line == 0)
        #expect(listener.mode == .transparent)
        let configuration = AlgateConfiguration(
            pinholes: PinholeSettings(), ftp: [listener], log: LogSettings(), shutdownGrace: .seconds(1)
        )
        #expect(configuration.ftp == [listener])
        #expect(configuration.shutdownGrace == .seconds(1))
    }
}
