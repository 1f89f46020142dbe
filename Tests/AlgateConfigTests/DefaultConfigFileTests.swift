import AlgateConfig
import AlgateRewrite
import Foundation
import Testing

@Suite("Config/algate.toml")
struct DefaultConfigFileTests {
    /// Config/algate.toml, found from this file: Tests/AlgateConfigTests/ -> repository root.
    static let path: String = {
        var components = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)
        return components.joined(separator: "/") + "/Config/algate.toml"
    }()

    @Test func loadsWithTheDemoValues() throws {
        let configuration = try AlgateConfiguration.load(path: Self.path)
        #expect(configuration.pinholes.backend == .userspace)
        #expect(configuration.pinholes.ports == 40000...40999)
        #expect(configuration.pinholes.timeout == .seconds(30))
        #expect(configuration.pinholes.perSession == 16)
        #expect(configuration.pinholes.maxTotal == 10_000)
        #expect(configuration.ftp.count == 1)
        let ftp = try #require(configuration.ftp.first)
        #expect(ftp.listen == Endpoint("127.0.0.1:2121"))
        #expect(ftp.upstream == Endpoint("127.0.0.2:2121"))
        #expect(ftp.mode == .reverse)
        #expect(ftp.publicAddress == IPAddress("127.0.0.1"))
        #expect(ftp.dataAddress == nil)
        #expect(ftp.maxLineLength == 4096)
        #expect(ftp.idleTimeout == .seconds(300))
        #expect(ftp.line > 1)
        #expect(configuration.log.level == "info")
        #expect(configuration.shutdownGrace == .seconds(10))
    }

    @Test func listenerLineIsTheFtpHeader() throws {
        let configuration = try AlgateConfiguration.load(path: Self.path)
        let lines = try Self.lines()
        let ftp = try #require(configuration.ftp.first)
        #expect(lines[ftp.line - 1] == "[[ftp]]")
    }

    /// The commented-out examples work as documented once uncommented: the IPv6 and transparent listeners parse,
    /// the [[sip]] examples (reverse and transparent) parse, and so do the [[policy.deny]] rules against SIP scanners.
    @Test func commentedExamplesBehaveAsDocumented() throws {
        let lines = try Self.lines()
        let withListeners = Self.uncommentingBlocks(startingWith: "[[ftp]]", in: lines)
        let configuration = try AlgateConfiguration.parse(withListeners)
        #expect(configuration.ftp.count == 3)
        #expect(configuration.ftp[1].listen == Endpoint("[::1]:2121"))
        #expect(configuration.ftp[1].upstream == Endpoint("127.0.0.2:2121"))
        #expect(configuration.ftp[1].publicAddress == IPAddress("::1"))
        #expect(configuration.ftp[2].listen == Endpoint("0.0.0.0:2100"))
        #expect(configuration.ftp[2].mode == .transparent)
        #expect(configuration.ftp[2].upstream == nil)
        #expect(configuration.ftp[2].publicAddress == nil)
        #expect(configuration.ftp[2].interceptInterfaces == ["eth1"])
        #expect(configuration.ftp[2].interceptPorts == [21])

        let sip = try AlgateConfiguration.parse(Self.uncommentingBlocks(startingWith: "[[sip]]", in: lines))
        #expect(sip.sip.count == 2)
        #expect(sip.sip[0].listen == Endpoint("0.0.0.0:5060"))
        #expect(sip.sip[0].upstream == Endpoint("10.0.0.6:5060"))
        #expect(sip.sip[0].transports == [.udp, .tcp])
        #expect(sip.sip[0].publicAddress == IPAddress("203.0.113.7"))
        #expect(sip.sip[0].insideAddress == IPAddress("10.0.0.1"))
        // The transparent example: no upstream, steered from eth1.
        #expect(sip.sip[1].listen == Endpoint("0.0.0.0:5070"))
        #expect(sip.sip[1].mode == .transparent && sip.sip[1].upstream == nil)
        #expect(sip.sip[1].interceptInterfaces == ["eth1"] && sip.sip[1].interceptPorts == [5060])
        #expect(sip.sip[1].publicAddress == IPAddress("203.0.113.7"))
        #expect(sip.sip[1].insideAddress == IPAddress("10.0.0.1"))

        let policy = try AlgateConfiguration.parse(Self.uncommentingBlocks(startingWith: "[[policy.deny]]", in: lines))
        #expect(policy.policy.rules.count >= 1)
        #expect(policy.policy.rules.allSatisfy { $0.action == .deny && $0.application == .sip })
    }

    static func lines() throws -> [Substring] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    /// Removes "# " from each block of lines that starts with "# <header>" and runs to a line that is "#" or empty.
    static func uncommentingBlocks(startingWith header: String, in lines: [Substring]) -> String {
        var out: [Substring] = []
        var inside = false
        for line in lines {
            if line.hasPrefix("# " + header) { inside = true }
            if inside, !line.hasPrefix("# ") { inside = false }
            out.append(inside ? line.dropFirst(2) : line)
        }
        return out.joined(separator: "\n")
    }
}
