@testable import AlgateConfig
import Testing

@Suite("Durations")
struct DurationSyntaxTests {
    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("1m30s", .seconds(90)),
        ("1h2m3s4ms", .milliseconds(3_723_004)),
        ("2s500ms", .milliseconds(2500)),
        ("0s", .zero),
        (" 10s ", .seconds(10)),
        ("90m", .seconds(5400)),
    ])
    func valid(text: String, expected: Duration) throws {
        #expect(try DurationSyntax.parse(text) == expected)
    }

    @Test(arguments: ["30", "0", " 7 "])
    func bareNumberNeedsAUnit(text: String) {
        #expect(throws: DurationSyntax.Problem(message: DurationSyntax.needsUnit)) {
            try DurationSyntax.parse(text)
        }
    }

    @Test(arguments: ["", "s", "30x", "-5s", "1.5s", "30s1m", "1s1s", "1 s", "10S", "ms", "1d", "99999999999999999999s"])
    func invalid(text: String) {
        #expect(throws: DurationSyntax.Problem.self) {
            try DurationSyntax.parse(text)
        }
    }

    @Test func overflowIsReported() {
        #expect(throws: DurationSyntax.Problem(message: "duration is too long")) {
            try DurationSyntax.parse("9223372036854775807h")
        }
    }

    @Test func durationsInTheFile() throws {
        let configuration = try AlgateConfiguration.parse(minimalFTP + """
            idle-timeout = "1h30m"
            [pinholes]
            timeout = "1500ms"
            """)
        #expect(configuration.ftp[0].idleTimeout == .seconds(5400))
        #expect(configuration.pinholes.timeout == .milliseconds(1500))
    }
}
