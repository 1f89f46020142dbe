import AlgateRewrite
import NIOCore
import Testing

@Suite struct FTPSessionStateMachineTests {
    func greeted() -> FTPSessionDriver {
        var driver = FTPSessionDriver()
        driver.server("220 Welcome\r\n")
        return driver
    }

    @Test func passiveReplyIsRewrittenAfterThePinholeOpens() {
        var d = greeted()
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80).\r\n")
        #expect(d.toServer == ["PASV\r\n"])
        #expect(d.toClient == ["220 Welcome\r\n", "227 Entering Passive Mode (203,0,113,7,156,64).\r\n"])
        #expect(d.opened == [FTPPinholeRequest(id: 1, purpose: .passive, allowedPeer: IPAddress("198.51.100.20")!,
                                                target: Endpoint("10.0.0.5:50000")!)])
    }

    @Test func nothingIsForwardedWhileAPinholeOpens() {
        var d = greeted()
        d.answerImmediately = false
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        d.server("150 early\r\n")
        d.client("NOOP\r\n")
        #expect(d.toClient == ["220 Welcome\r\n"])
        #expect(d.toServer == ["PASV\r\n"])
        d.answerPinhole()
        #expect(d.toClient == ["220 Welcome\r\n", "227 Entering Passive Mode (203,0,113,7,156,64)\r\n", "150 early\r\n"])
        #expect(d.toServer == ["PASV\r\n", "NOOP\r\n"])
    }

    @Test func extendedPassiveKeepsItsDelimiterAndText() {
        var d = greeted()
        d.client("EPSV\r\n")
        d.server("229 Extended Passive mode OK (!!!50000!)\r\n")
        #expect(d.toClient.last == "229 Extended Passive mode OK (!!!40000!)\r\n")
        #expect(d.opened.first?.target == Endpoint("10.0.0.5:50000"))
    }

    @Test func longPassiveIsRewritten() {
        var d = greeted()
        d.client("LPSV\r\n")
        d.server("228 Entering Long Passive Mode (4,4,10,0,0,5,2,195,80)\r\n")
        #expect(d.toClient.last == "228 Entering Long Passive Mode (4,4,203,0,113,7,2,156,64)\r\n")
    }

    @Test func unsolicitedPassiveReplyOpensNothing() {
        var d = greeted()
        d.client("NOOP\r\n")
        d.server("227 Logout.\r\n")
        d.client("NOOP\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.opened.isEmpty)
        // Passed on, but with nothing of the inside in it (FTPReplyMaskingTests).
        #expect(d.toClient.last == "227 Entering Passive Mode (203,0,113,7,0,0)\r\n")
        #expect(d.events.contains { if case .unsolicitedReply(227) = $0 { true } else { false } })
    }

    @Test func passiveReplyToAnotherCommandOpensNothing() {
        var d = greeted()
        d.client("EPSV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.opened.isEmpty)
    }

    @Test func multilinePassiveReplyIsRewrittenOnTheLineThatCarriesTheAddress() {
        var d = greeted()
        d.client("PASV\r\n")
        d.server("227-Entering Passive Mode\r\n")
        d.server(" data at 10,0,0,5,195,80\r\n")
        d.server("227 OK 1,2,3,4,5,6\r\n")
        #expect(d.toClient.suffix(3) == ["227-Entering Passive Mode\r\n", " data at 203,0,113,7,156,64\r\n",
                                         "227 OK 203,0,113,7,0,0\r\n"])
        #expect(d.opened.count == 1)
        // The reply is over: the next 227 is unsolicited.
        d.server("227 (10,0,0,5,195,81)\r\n")
        #expect(d.opened.count == 1)
    }

    @Test func malformedPassiveReplyBecomesA425AndOpensNothing() {
        var d = greeted()
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,300,5,195,80)\r\n")
        #expect(d.opened.isEmpty)
        #expect(d.toClient.last?.hasPrefix("425 ") == true)
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode\r\n")
        #expect(d.opened.isEmpty)
        #expect(d.toClient.last?.hasPrefix("425 ") == true)
    }

    @Test func poolExhaustionAnswers425() {
        var d = FTPSessionDriver(ports: [])
        d.server("220 hi\r\n")
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.toClient.last == "425 Can't open passive connection: port pool exhausted.\r\n")
        d.client("PORT 198,51,100,20,200,10\r\n")
        #expect(d.toClient.last == "425 Can't open data connection: port pool exhausted.\r\n")
        #expect(d.toServer == ["PASV\r\n"])
    }

    @Test func portIsRewrittenToTheInsideAddress() {
        var d = greeted()
        d.client("PORT 198,51,100,20,200,10\r\n")
        #expect(d.toServer == ["PORT 10,0,0,1,156,64\r\n"])
        #expect(d.opened == [FTPPinholeRequest(id: 1, purpose: .active, allowedPeer: IPAddress("10.0.0.5")!,
                                                target: Endpoint("198.51.100.20:51210")!)])
        d.server("200 PORT command successful\r\n")
        #expect(d.closedPinholes.isEmpty)
    }

    @Test func lowerCaseVerbsAndBareLineFeedsAreUnderstood() {
        var d = greeted()
        d.client("port 198,51,100,20,200,10\n")
        #expect(d.toServer == ["PORT 10,0,0,1,156,64\n"])
    }

    @Test func eprtKeepsItsDelimiterAndFollowsTheInsideFamily() {
        var d = greeted()
        d.client("EPRT !1!198.51.100.20!51210!\r\n")
        #expect(d.toServer == ["EPRT !1!10.0.0.1!40000!\r\n"])
        var v6 = FTPSessionDriver(context: FTPSessionContext(
            client: Endpoint("[2001:db8::20]:50000")!, server: Endpoint("[fd00::5]:21")!,
            publicAddress: IPAddress("2001:db8::7")!, insideAddress: IPAddress("fd00::1")!))
        v6.client("EPRT |2|2001:db8::20|51210|\r\n")
        v6.client("PORT 1,2,3,4,200,10\r\n")
        #expect(v6.toServer == ["EPRT |2|fd00::1|40000|\r\n"])
        #expect(v6.toClient.last?.hasPrefix("500 ") == true)
    }

    /// lftp over IPv6 sends `EPRT |2|::|port|`: the unspecified address means the client itself.
    @Test func theUnspecifiedAddressMeansTheClientItself() {
        var d = FTPSessionDriver(context: FTPSessionContext(
            client: Endpoint("[2001:db8::20]:50000")!, server: Endpoint("[fd00::5]:21")!,
            publicAddress: IPAddress("2001:db8::7")!, insideAddress: IPAddress("fd00::1")!))
        d.client("EPRT |2|::|51210|\r\n")
        #expect(d.toServer == ["EPRT |2|fd00::1|40000|\r\n"])
        #expect(d.opened.first?.target == Endpoint("[2001:db8::20]:51210"))
    }

    @Test func portTowardsAnIPv6ServerBecomesEPRT() {
        var d = FTPSessionDriver(context: FTPSessionContext(
            client: Endpoint("198.51.100.20:50000")!, server: Endpoint("[fd00::5]:21")!,
            publicAddress: IPAddress("203.0.113.7")!, insideAddress: IPAddress("fd00::1")!))
        d.client("PORT 198,51,100,20,200,10\r\n")
        #expect(d.toServer == ["EPRT |2|fd00::1|40000|\r\n"])
    }

    @Test func lprtIsRewritten() {
        var d = greeted()
        d.client("LPRT 4,4,198,51,100,20,2,200,10\r\n")
        #expect(d.toServer == ["LPRT 4,4,10,0,0,1,2,156,64\r\n"])
    }

    @Test(arguments: [
        ("PORT 192,0,2,99,200,10\r\n", "500 "),               // a third host: the bounce attack
        ("EPRT |1|192.0.2.99|51210|\r\n", "500 "),
        ("EPRT |2|2001:db8::99|51210|\r\n", "500 "),
        ("PORT 198,51,100,20,0,21\r\n", "504 "),              // port 21
        ("EPRT |1|198.51.100.20|1023|\r\n", "504 "),
        ("PORT 198,51,100,300,200,10\r\n", "501 "),           // octet > 255
        ("PORT 198,51,100,20,200\r\n", "501 "),
        ("PORT 198,51,100,20,200,1\u{0}0\r\n", "501 "),      // NUL inside the argument
        ("EPRT |7|198.51.100.20|51210|\r\n", "522 "),
        ("LPRT 4,4,192,0,2,99,2,200,10\r\n", "500 "),
    ])
    func hostileActiveCommandsAreRefusedAndOpenNothing(command: String, replyPrefix: String) {
        var d = greeted()
        d.client(command)
        #expect(d.opened.isEmpty)
        #expect(d.toServer.isEmpty)
        #expect(d.toClient.last?.hasPrefix(replyPrefix) == true, "\(d.toClient)")
        #expect(d.events.contains { if case .refused = $0 { true } else { false } })
        // The session goes on.
        d.client("NOOP\r\n")
        #expect(d.toServer == ["NOOP\r\n"])
    }

    @Test func privilegedPortsCanBeAllowed() {
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.allowPrivilegedPorts = true
        var d = FTPSessionDriver(configuration: configuration)
        d.client("PORT 198,51,100,20,0,20\r\n")
        #expect(d.toServer == ["PORT 10,0,0,1,156,64\r\n"])
    }

    @Test func aRefusedPortClosesItsPinhole() {
        var d = greeted()
        d.client("PORT 198,51,100,20,200,10\r\n")
        d.server("500 Illegal PORT command.\r\n")
        #expect(d.closedPinholes == [1])
    }

    @Test func pipelinedCommandsAreMatchedToTheirOwnReplies() {
        var d = greeted()
        d.client("TYPE I\r\n")
        d.client("PASV\r\n")
        d.client("RETR f\r\n")
        // The 227 that answers TYPE would be unsolicited; the second answers PASV.
        d.server("200 Switching to Binary mode (1,2,3,4,5,6).\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        d.server("150 Opening\r\n")
        d.server("226 Done\r\n")
        #expect(d.opened.count == 1)
        #expect(d.toClient[2] == "227 Entering Passive Mode (203,0,113,7,156,64)\r\n")
    }

    @Test func preliminaryRepliesDoNotAnswerTheCommand() {
        var d = FTPSessionDriver()
        d.server("120 wait\r\n")
        d.server("220 ready\r\n")
        d.client("PASV\r\n")
        d.server("227 (10,0,0,5,195,80)\r\n")
        #expect(d.opened.count == 1)
    }

    @Test func authTLSSwitchesToPassthrough() {
        var d = greeted()
        d.client("AUTH TLS\r\n")
        d.server("234 AUTH TLS OK.\r\n")
        #expect(d.passthrough)
        #expect(d.machine.isPassthrough)
        #expect(d.toClient.last == "234 AUTH TLS OK.\r\n")
        d.client("\u{16}\u{03}\u{01}binary PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.opened.isEmpty)
        #expect(d.toServer.last == "\u{16}\u{03}\u{01}binary PASV\r\n")
        #expect(d.toClient.last == "227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
    }

    @Test func refusedAuthKeepsTranslating() {
        var d = greeted()
        d.client("AUTH TLS\r\n")
        d.server("502 Not implemented\r\n")
        d.client("PASV\r\n")
        d.server("227 (10,0,0,5,195,80)\r\n")
        #expect(!d.passthrough)
        #expect(d.opened.count == 1)
    }

    @Test func garbageFromTheServerIsPassedOnUntouched() {
        var d = greeted()
        d.client("NOOP\r\n")
        d.server("hello there\r\n")
        d.server("2\r\n")
        #expect(d.toClient.suffix(2) == ["hello there\r\n", "2\r\n"])
    }

    @Test func tooManyPipelinedCommandsCloseTheSession() {
        var configuration = FTPSessionStateMachine.Configuration()
        configuration.maxPipelinedCommands = 4
        var d = FTPSessionDriver(configuration: configuration)
        for _ in 0..<5 { d.client("NOOP\r\n") }
        #expect(d.closeReason != nil)
        #expect(d.toClient.last?.hasPrefix("421 ") == true)
    }

    @Test func ipv6PublicAddressCannotAnswerPASV() {
        var d = FTPSessionDriver(context: FTPSessionContext(
            client: Endpoint("[2001:db8::20]:50000")!, server: Endpoint("10.0.0.5:21")!,
            publicAddress: IPAddress("2001:db8::7")!, insideAddress: IPAddress("10.0.0.1")!))
        d.server("220 hi\r\n")
        d.client("PASV\r\n")
        d.server("227 (10,0,0,5,195,80)\r\n")
        #expect(d.opened.isEmpty)
        #expect(d.toClient.last?.hasPrefix("425 ") == true)
        d.client("EPSV\r\n")
        d.server("229 (|||50000|)\r\n")
        #expect(d.toClient.last == "229 (|||40000|)\r\n")
    }
}

@Suite struct FTPSessionResynchronisationTests {
    /// zeek-ftp-invalid-reply-code: one line that is not a reply must not shift every later reply onto the
    /// command before its own.
    @Test func aLineThatIsNotAReplyStillAnswersItsCommand() {
        var d = FTPSessionDriver()
        d.server("220 hi\r\n")
        d.client("PASV\r\n")
        d.server("99 PASV invalid\r\n")
        d.client("NOOP\r\n")
        d.server("200 NOOP ok\r\n")
        d.client("PASV\r\n")
        d.server("227 Entering Passive Mode (10,0,0,5,195,80)\r\n")
        #expect(d.opened.count == 1)
        #expect(d.toClient.last == "227 Entering Passive Mode (203,0,113,7,156,64)\r\n")
    }
}

@Suite struct FTPCommandAdmissionTests {
    @Test func aRefusedCommandIsAnsweredAndNeverForwarded() {
        var d = FTPSessionDriver()
        d.machine.commandAdmission = { line, user in
            let text = String(buffer: line)
            if text.hasPrefix("SITE") { return .refuse(reply: "550 Refused by policy.") }
            if let user, String(buffer: user) == "root" { return .refuse(reply: "530 Not logged in.") }
            return .admit
        }
        d.server("220 hi\r\n")
        d.client("SITE CHMOD 777 x\r\n")
        d.client("USER root\r\n")
        d.client("USER anonymous\r\n")
        d.server("331 pw\r\n")
        d.client("PASV\r\n")
        d.server("227 (10,0,0,5,195,80)\r\n")
        #expect(d.toServer == ["USER anonymous\r\n", "PASV\r\n"])
        #expect(d.toClient.prefix(3) == ["220 hi\r\n", "550 Refused by policy.\r\n", "530 Not logged in.\r\n"])
        #expect(d.machine.user.map { String(buffer: $0) } == "anonymous")
        // A refused USER does not become the session's name: later commands are judged as before.
        d.client("USER root\r\n")
        d.client("PWD\r\n")
        #expect(d.machine.user.map { String(buffer: $0) } == "anonymous")
        #expect(d.toServer.last == "PWD\r\n")
        // Replies still match their commands: the refused ones never reached the server.
        #expect(d.opened.count == 1)
    }
}
