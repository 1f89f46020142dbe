import AlgateRewrite
import Foundation
import NIOCore
import Testing

/// No reply reaches the client with an address of the inside network: not in a passive reply nobody asked for,
/// not on another line of a multi-line reply, not spelled out in a banner or a STAT; and no rewrite makes a line
/// longer than max-line-length. The session is FTPSessionDriver's: client 198.51.100.20, server 10.0.0.5, public
/// address 203.0.113.7, inside address 10.0.0.1.
@Suite struct FTPReplyMaskingTests {
    func greeted(_ configuration: FTPSessionStateMachine.Configuration = .init()) -> FTPSessionDriver {
        var driver = FTPSessionDriver(configuration: configuration)
        driver.server("220 Welcome\r\n")
        return driver
    }

    func maskedEvents(_ d: FTPSessionDriver) -> [String] {
        d.events.compactMap { if case .masked(_, let masked, _) = $0 { String(buffer: masked) } else { nil } }
    }

    @Test func anUnsolicitedPassiveReplyIsMaskedAndOpensNothing() {
        var d = greeted()
        d.client("NOOP\r\n")
        d.server("200 NOOP ok\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.opened.isEmpty)
        #expect(d.toClient.last == "227 Entering Passive Mode (203,0,113,7,0,0)\r\n")
        #expect(maskedEvents(d) == ["227 Entering Passive Mode (203,0,113,7,0,0)\r\n"])
        #expect(d.events.contains { if case .unsolicitedReply(227) = $0 { true } else { false } })
    }

    @Test func aSecondPassiveReplyToOnePASVIsMasked() {
        var d = greeted()
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,81)\r\n")
        d.server("229 Entering Extended Passive Mode (|||50001|)\r\n")
        d.server("228 Entering Long Passive Mode (4,4,10,0,0,5,2,195,82)\r\n")
        #expect(d.opened.count == 1)
        #expect(d.toClient.suffix(4) == [
            "227 Entering Passive Mode (203,0,113,7,156,64)\r\n",
            "227 Entering Passive Mode (203,0,113,7,0,0)\r\n",
            "229 Entering Extended Passive Mode (|||0|)\r\n",
            "228 Entering Long Passive Mode (4,4,203,0,113,7,2,0,0)\r\n",
        ])
    }

    @Test func everyOtherLineOfAMultilinePassiveReplyIsMasked() {
        var d = greeted()
        d.client("PASV\r\n")
        d.server("227-Entering Passive Mode (10,0,0,5,195,80)\r\n")
        d.server(" or try 10,0,0,5,195,81 (10.0.0.5)\r\n")
        d.server("227 OK (10,0,0,5,195,82)\r\n")
        #expect(d.opened.count == 1)
        #expect(d.toClient.suffix(3) == [
            "227-Entering Passive Mode (203,0,113,7,156,64)\r\n",
            " or try 203,0,113,7,0,0 (203.0.113.7)\r\n",
            "227 OK (203,0,113,7,0,0)\r\n",
        ])
    }

    @Test func theRestOfTheRewrittenLineIsMaskedToo() {
        var d = greeted()
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80) from 10.0.0.5\r\n")
        #expect(d.toClient.last == "227 Entering Passive Mode (203,0,113,7,156,64) from 203.0.113.7\r\n")
    }

    @Test func aPassiveReplyAfterARefusedPORTIsMasked() {
        var d = greeted()
        // Refused by the gateway (a third host): nothing is pending when the 227 comes.
        d.client("PORT 192,0,2,99,200,10\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        // Refused by the server: the 227 comes after the 500 that answered the PORT.
        d.client("PORT 198,51,100,20,200,10\r\n")
        d.server("500 Illegal PORT command.\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,81)\r\n")
        #expect(d.opened.map(\.purpose) == [.active])
        #expect(d.closedPinholes == [1])
        #expect(d.toClient == [
            "220 Welcome\r\n",
            "500 Illegal PORT command: the address must be your own.\r\n",
            "227 Entering Passive Mode (203,0,113,7,0,0)\r\n",
            "500 Illegal PORT command.\r\n",
            "227 Entering Passive Mode (203,0,113,7,0,0)\r\n",
        ])
    }

    @Test func addressesOfTheInsideSpelledOutAreMaskedOthersAreNot() {
        var d = greeted()
        d.client("STAT\r\n")
        d.server("211-FTP server status:\r\n")
        d.server("     Connected to 10.0.0.1\r\n")             // the gateway's own inside address
        d.server("     Server 10.0.0.5:21, vsFTPd 3.0.3\r\n")  // the server's, with a port; a version number
        d.server("     Client 198.51.100.20, 192.0.2.1\r\n")   // the client's own, a stranger's: not the inside's
        d.server("211 End of status (10.0.0.5.)\r\n")
        #expect(d.toClient.suffix(5) == [
            "211-FTP server status:\r\n",
            "     Connected to 203.0.113.7\r\n",
            "     Server 203.0.113.7:21, vsFTPd 3.0.3\r\n",
            "     Client 198.51.100.20, 192.0.2.1\r\n",
            "211 End of status (203.0.113.7.)\r\n",
        ])
        #expect(d.events.count { if case .masked = $0 { true } else { false } } == 3)
    }

    @Test func anAddressTheServerAnnouncedIsMaskedFromThenOn() {
        var d = greeted()
        d.client("SYST\r\n")
        d.server("215 UNIX at 10.0.0.9\r\n")
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,9,195,80)\r\n")
        d.client("NOOP\r\n")
        d.server("200 NOOP ok, 10.0.0.9 here\r\n")
        // Unknown before the server announced it; masked after.
        #expect(d.toClient[1] == "215 UNIX at 10.0.0.9\r\n")
        #expect(d.toClient.last == "200 NOOP ok, 203.0.113.7 here\r\n")
    }

    @Test func ipv6InsideAddressesAreMasked() {
        var d = FTPSessionDriver(context: FTPSessionContext(
            client: Endpoint("[2001:db8::20]:50000")!, server: Endpoint("[fd00::5]:21")!,
            publicAddress: IPAddress("2001:db8::7")!, insideAddress: IPAddress("fd00::1")!))
        d.server("220 ftp.example.org [fd00:0:0::5] ready.\r\n")
        d.client("STAT\r\n")
        d.server("211 Connected to fd00::1: ok (10,0,0,5,195,80)\r\n")
        #expect(d.toClient == ["220 ftp.example.org [2001:db8::7] ready.\r\n",
                               "211 Connected to 2001:db8::7: ok (0,0,0,0,0,0)\r\n"])
    }

    @Test func theGatewaysOtherInsideAddressesAreMasked() {
        var context = FTPSessionDriver.context
        context.alsoInside = [IPAddress("10.0.0.2")!]
        var d = FTPSessionDriver(context: context)
        d.server("220 Hello 10.0.0.2, I am 10.0.0.5\r\n")
        #expect(d.toClient == ["220 Hello 203.0.113.7, I am 203.0.113.7\r\n"])
    }

    @Test func aLineThatIsNotAReplyIsMaskedToo() {
        var d = greeted()
        d.client("NOOP\r\n")
        d.server("oops 10,0,0,5,195,80\r\n")
        #expect(d.toClient.last == "oops 203,0,113,7,0,0\r\n")
    }

    @Test func anIPv6PublicAddressMasksSixNumbersToTheUnspecifiedAddress() {
        var d = FTPSessionDriver(context: FTPSessionContext(
            client: Endpoint("[2001:db8::20]:50000")!, server: Endpoint("10.0.0.5:21")!,
            publicAddress: IPAddress("2001:db8::7")!, insideAddress: IPAddress("10.0.0.1")!))
        d.server("220 hi\r\n")
        d.client("PASV\r\n")
        d.server("227-Entering Passive Mode\r\n")
        d.server(" (10,0,0,5,195,80)\r\n")
        d.server("227 OK\r\n")
        // Already under way, the reply cannot become a 425: its address line goes on masked.
        #expect(d.opened.isEmpty)
        #expect(d.toClient.suffix(3) == ["227-Entering Passive Mode\r\n", " (0,0,0,0,0,0)\r\n", "227 OK\r\n"])
        #expect(d.events.contains { if case .pinholeUnavailable = $0 { true } else { false } })
    }

    // MARK: max-line-length

    /// A 227 of exactly the limit that grows by three bytes when rewritten (10,0,0,5 -> 203,0,113,7).
    func longPassiveReply(limit: Int, tail: String) -> String {
        let head = "227 Entering Passive Mode (10,0,0,5,195,80)"
        return head + String(repeating: "x", count: limit - head.utf8.count - tail.utf8.count - 2) + tail + "\r\n"
    }

    @Test func aRewrittenReplyNeverGrowsPastTheLimit() throws {
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.maxLineLength = 512
        var d = greeted(configuration)
        d.client("PASV\r\n")
        let line = longPassiveReply(limit: 512, tail: " tail words here")
        #expect(line.utf8.count == 512)
        d.server(line)
        let sent = try #require(d.toClient.last)
        #expect(sent.utf8.count <= 512)
        // The free text lost its last (cut) word; the address and the terminator are whole.
        #expect(sent.hasPrefix("227 Entering Passive Mode (203,0,113,7,156,64)xxx"))
        #expect(sent.hasSuffix(" tail words \r\n"))
        #expect(d.opened.count == 1)
        #expect(d.events.contains { if case .shortened(_, 4, 512) = $0 { true } else { false } })
    }

    @Test func withoutTextAfterTheAddressTheTextBeforeItIsShortened() throws {
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.maxLineLength = 512
        var d = greeted(configuration)
        d.client("PASV\r\n")
        let address = "10,0,0,5,195,80"
        let line = "227 " + String(repeating: "y", count: 512 - 4 - address.utf8.count - 2) + address + "\r\n"
        d.server(line)
        let sent = try #require(d.toClient.last)
        // Three bytes of the run of y go (a run that long is no word to keep whole), the code and address stay.
        #expect(sent.utf8.count == 512)
        #expect(sent == "227 " + String(repeating: "y", count: 488) + "203,0,113,7,156,64\r\n")
        #expect(sent.hasSuffix("203,0,113,7,156,64\r\n"))
    }

    @Test func aMaskedReplyNeverGrowsPastTheLimit() throws {
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.maxLineLength = 512
        var d = greeted(configuration)
        d.client("NOOP\r\n")
        let text = "200 from 10.0.0.5 "
        let line = text + String(repeating: "z", count: 512 - text.utf8.count - 14) + " 10.0.0.5 ok\r\n"
        #expect(line.utf8.count == 512)
        d.server(line)
        let sent = try #require(d.toClient.last)
        // Masking added six bytes; the cut fell inside the last address, which went whole.
        #expect(sent == text.replacingOccurrences(of: "10.0.0.5", with: "203.0.113.7")
                    + String(repeating: "z", count: 480) + " \r\n")
        #expect(d.events.contains { if case .shortened(_, 14, 512) = $0 { true } else { false } })
    }

    // MARK: Privileged server ports

    @Test(arguments: [
        ("PASV\r\n", "227 Entering Passive Mode (10,0,0,5,0,21)\r\n", 21),
        ("EPSV\r\n", "229 Entering Extended Passive Mode (|||22|)\r\n", 22),
        ("LPSV\r\n", "228 Entering Long Passive Mode (4,4,10,0,0,5,2,3,255)\r\n", 1023),
    ])
    func aPassiveReplyNamingAPrivilegedPortIsRefused(command: String, reply: String, port: Int) {
        var d = greeted()
        d.client(command)
        d.server(reply)
        #expect(d.opened.isEmpty)
        #expect(d.toClient.last == "425 Can't open passive connection: the server named port \(port), below 1024.\r\n")
        #expect(d.events.contains {
            if case .passiveReplyRefused(_, .privilegedPort(UInt16(port))) = $0 { true } else { false }
        })
        // The command is answered: the next reply belongs to the next command.
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.opened.count == 1)
    }

    @Test func privilegedServerPortsCanBeAllowed() {
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.allowPrivilegedPorts = true
        var d = greeted(configuration)
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,0,21)\r\n")
        #expect(d.opened.map(\.target) == [Endpoint("10.0.0.5:21")!])
        #expect(d.toClient.last == "227 Entering Passive Mode (203,0,113,7,156,64)\r\n")
    }

    @Test func aMultilineReplyRefusedOnItsFirstLineIsReplacedWhole() {
        var d = greeted()
        d.client("PASV\r\n")
        d.client("NOOP\r\n")
        d.server("227-Entering Passive Mode (10,0,0,5,0,21)\r\n")
        d.server(" more text 10.0.0.5\r\n")
        d.server("227 OK\r\n")
        d.server("200 NOOP ok\r\n")
        #expect(d.opened.isEmpty)
        #expect(d.toClient.suffix(2) == ["425 Can't open passive connection: the server named port 21, below 1024.\r\n",
                                         "200 NOOP ok\r\n"])
    }

    @Test func aPrivilegedPortLaterInAMultilineReplyIsMasked() {
        var d = greeted()
        d.client("PASV\r\n")
        d.server("227-Entering Passive Mode\r\n")
        d.server(" (10,0,0,5,0,21)\r\n")
        d.server("227 OK\r\n")
        #expect(d.opened.isEmpty)
        #expect(d.toClient.suffix(3) == ["227-Entering Passive Mode\r\n", " (203,0,113,7,0,0)\r\n", "227 OK\r\n"])
        #expect(d.events.contains { if case .passiveReplyRefused(_, .privilegedPort(21)) = $0 { true } else { false } })
    }

    @Test func aFailedPinholeForAMultilineReplyReplacesItWhole() {
        var d = FTPSessionDriver(ports: [])
        d.server("220 hi\r\n")
        d.client("PASV\r\n")
        d.client("NOOP\r\n")
        d.server("227-Entering Passive Mode (10,0,0,5,195,80)\r\n")
        d.server("227 OK\r\n")
        d.server("200 NOOP ok\r\n")
        #expect(d.toClient == ["220 hi\r\n", "425 Can't open passive connection: port pool exhausted.\r\n",
                               "200 NOOP ok\r\n"])
    }

    // MARK: Transcripts that start later

    @Test func withoutAGreetingTheFirstReplyAnswersTheFirstCommand() {
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.expectsGreeting = false
        var d = FTPSessionDriver(configuration: configuration)
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.opened.count == 1)
        #expect(d.toClient == ["227 Entering Passive Mode (203,0,113,7,156,64)\r\n"])
    }
}

@Suite struct FTPReplyMaskerTests {
    let masker = FTPReplyMasker(publicAddress: IPAddress("203.0.113.7")!,
                                inside: [IPAddress("10.0.0.5")!, IPAddress("fd00::5")!, IPAddress("203.0.113.7")!])

    func masked(_ text: String) -> String {
        var out = ByteBuffer()
        Array(text.utf8).withUnsafeBytes { _ = masker.append($0, to: &out) }
        return String(buffer: out)
    }

    @Test(arguments: [
        ("10,0,0,5,195,80", "203,0,113,7,0,0"),                   // at the start of a continuation line
        ("at 1,2,3,4,5,6.", "at 203,0,113,7,0,0."),               // any six numbers of 0-255
        ("(10, 0, 0, 5, 195, 80)", "(203,0,113,7,0,0)"),          // spaces after the commas
        ("(6,16,253,0,0,0,0,0,0,0,0,0,0,0,0,0,0,5,2,1,2)", "(4,4,203,0,113,7,2,0,0)"),
        ("(!!!50000!)", "(!!!0!)"),
        ("[fd00::5]:21 fd00:0::5.", "[203.0.113.7]:21 203.0.113.7."),
        ("::ffff:10.0.0.5", "203.0.113.7"),
        ("10.0.0.5:2121", "203.0.113.7:2121"),
        // A longer list whose first six numbers name the inside: ftplib and curl read those six as the address.
        ("227-x 10,0,0,5,0,5,9", "227-x 203,0,113,7,0,0,9"),
        ("(10, 0, 0, 5, 195, 80, 7, 7)", "(203,0,113,7,0,0, 7, 7)"),
    ])
    func masksAddressForms(_ line: String, _ expected: String) {
        #expect(masked(line) == expected)
    }

    @Test(arguments: [
        "226 Transfer complete (1,234,567 bytes in 0.5 seconds, 2,469.13 KB/s).",
        "213 20240102100000",
        "211 10:00:00 and 1:2:3",
        "215 UNIX Type: L8 vsFTPd 3.0.3 10.0.0.50 110.0.0.5 10.0.0.5.1",
        "200 1,2,3,4,5,256 and 1,2,3,4,5,6,7",
        "257 \"/pub/a...5.\" wait...10.",
        "229 (aaa123a) and (|||123456|)",
        "211 203.0.113.7 is the public address",
    ])
    func leavesOtherTextAlone(_ line: String) {
        #expect(masked(line) == line)
        #expect(Array(line.utf8).withUnsafeBytes { masker.firstFinding(in: $0) } == nil)
    }

    @Test func learnsAnnouncedAddressesUpToItsCapacity() {
        var masker = self.masker
        masker.learn(IPAddress("10.0.0.9")!)
        #expect(masker.isInside(IPAddress("10.0.0.9")!))
        for last in 1...FTPReplyMasker.learnedCapacity { masker.learn(.v4(0x0A01_0000 + UInt32(last))) }
        // The oldest learned address made room; the fixed ones stay.
        #expect(!masker.isInside(IPAddress("10.0.0.9")!))
        #expect(masker.isInside(IPAddress("10.0.0.5")!))
        #expect(masker.isInside(IPAddress("10.1.0.16")!))
        // The public address is never an inside one.
        #expect(!masker.isInside(IPAddress("203.0.113.7")!))
    }
}
