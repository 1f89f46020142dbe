import AlgatePolicy
import Testing

@Suite struct PolicyPatternTests {
    @Test func matchesAnywhereCaseInsensitiveWhenAsked() throws {
        let pattern = try PolicyPattern("(?i)friendly-scanner|sipvicious|sipcli")
        #expect(pattern.match("User-Agent: Friendly-Scanner 1.8") == .match)
        #expect(pattern.match("SIPcli/v1.8") == .match)
        #expect(pattern.match("Linphone/5.0") == .noMatch)
        #expect(pattern.match("") == .noMatch)
    }

    @Test func matchesBytesThatAreNotUTF8() throws {
        let pattern = try PolicyPattern("^SITE\\b")
        let bytes: [UInt8] = Array("SITE CHMOD 777 \u{0}".utf8) + [0xFF, 0xFE]
        #expect(bytes.withUnsafeBytes { pattern.match($0) } == .match)
    }

    @Test func aPatternThatDoesNotCompileSaysWhereAndWhy() {
        #expect {
            _ = try PolicyPattern("abc(def")
        } throws: { error in
            guard let error = error as? PolicyPatternError else { return false }
            return error.offset == 7 && error.message.contains("missing closing parenthesis")
        }
    }

    /// A catastrophic pattern against a long header returns in bounded time, as a limit, not a match.
    @Test func catastrophicBacktrackingStopsAtTheLimit() throws {
        let pattern = try PolicyPattern("^(a+)+$", matchLimit: 10_000, depthLimit: 1_000)
        let hostile = String(repeating: "a", count: 5_000) + "!"
        let clock = ContinuousClock()
        let started = clock.now
        #expect(pattern.match(hostile) == .limitExceeded)
        // Not a timing assertion of the gateway's speed: without the limit this match would run for years.
        #expect(clock.now - started < .seconds(5))
    }
}
