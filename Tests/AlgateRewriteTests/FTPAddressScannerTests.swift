@testable import AlgateRewrite
import Testing

/// Runs a scanner or parser on a String's bytes.
func scan<T>(_ text: String, _ body: (UnsafeRawBufferPointer) throws(FTPParseError) -> T) throws(FTPParseError) -> T {
    let bytes = Array(text.utf8)
    let result: Result<T, FTPParseError> = bytes.withUnsafeBytes { raw in
        do throws(FTPParseError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

@Suite struct FTPAddressScannerTests {
    @Test func parsesPORT() throws {
        let endpoint = try scan("192,168,1,2,4,3", FTPAddressScanner.parsePORT)
        #expect(endpoint == Endpoint("192.168.1.2:1027"))
    }

    @Test(arguments: [
        ("192,168,1,2,4", FTPParseError.malformed("expected 6 numbers, found 5")),
        ("192,168,1,2,4,3,1", .malformed("more than 6 numbers")),
        ("192,168,1,256,4,3", .octetOutOfRange(256)),
        ("192,168,1,2,4,3x", .malformed("unexpected byte after the six numbers")),
        ("", .malformed("expected a number")),
        ("192,168,1,2,0,0", .portOutOfRange(0)),
        ("1,2,3,4,5,99999999999999999999999999", .octetOutOfRange(1_000_000)),
    ])
    func refusesBadPORT(argument: String, error: FTPParseError) {
        #expect(throws: error) { try scan(argument, FTPAddressScanner.parsePORT) }
    }

    @Test func portWithNULIsMalformed() {
        #expect(throws: FTPParseError.self) { try scan("192,168,1,2,4\u{0},3", FTPAddressScanner.parsePORT) }
    }

    @Test(arguments: [
        ("|1|132.235.1.2|6275|", "132.235.1.2:6275"),
        ("|2|1080::8:800:200C:417A|5282|", "[1080::8:800:200c:417a]:5282"),
        ("!1!192.0.2.9!40000!", "192.0.2.9:40000"),
        ("#2#::1#2121#", "[::1]:2121"),
    ])
    func parsesEPRTWithAnyDelimiter(argument: String, expected: String) throws {
        #expect(try scan(argument, FTPAddressScanner.parseEPRT) == Endpoint(expected))
    }

    @Test(arguments: [
        ("|3|1.2.3.4|5000|", FTPParseError.unsupportedFamily(3)),
        ("|1|1.2.3.4|70000|", .portOutOfRange(70000)),
        ("|1|::1|5000|", .malformed("bad IPv4 address")),
        ("|2|1.2.3.4|5000|", .malformed("bad IPv6 address")),
        ("|1|1.2.3.4|5000", .malformed("expected |family|address|port|")),
        ("|1|1.2.3.4|5000|x", .malformed("expected |family|address|port|")),
        ("1|1|1.2.3.4|5000|", .malformed("delimiter must be a printable, non-digit character")),
    ])
    func refusesBadEPRT(argument: String, error: FTPParseError) {
        #expect(throws: error) { try scan(argument, FTPAddressScanner.parseEPRT) }
    }

    @Test func parsesLPRTBothFamilies() throws {
        #expect(try scan("4,4,132,235,1,2,2,24,131", FTPAddressScanner.parseLPRT) == Endpoint("132.235.1.2:6275"))
        let v6 = "6,16,32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,1,2,8,0"
        #expect(try scan(v6, FTPAddressScanner.parseLPRT) == Endpoint("[2001:db8::1]:2048"))
        #expect(throws: FTPParseError.unsupportedFamily(5)) { try scan("5,4,1,2,3,4,2,1,1", FTPAddressScanner.parseLPRT) }
        #expect(throws: FTPParseError.self) { try scan("4,16,1,2,3,4,2,1,1", FTPAddressScanner.parseLPRT) }
    }

    /// Every 227 form RFC 1123 4.1.2.6 tells clients to accept, with the span that a rewrite replaces.
    @Test(arguments: [
        ("227 Entering Passive Mode (10,0,0,5,195,80)\r\n", "10,0,0,5,195,80"),
        ("227 Entering Passive Mode (10,0,0,5,195,80).\r\n", "10,0,0,5,195,80"),
        ("227 =10,0,0,5,195,80\r\n", "10,0,0,5,195,80"),
        ("227 Entering Passive Mode 10,0,0,5,195,80\r\n", "10,0,0,5,195,80"),
        ("227 10,0,0,5,195,80 is where to go\r\n", "10,0,0,5,195,80"),
        ("227 Entering Passive Mode (10, 0, 0, 5, 195, 80)\r\n", "10, 0, 0, 5, 195, 80"),
        ("227 Entering Passive Mode 2 (10,0,0,5,195,80)\n", "10,0,0,5,195,80"),
        ("227-Data on 10,0,0,5,195,80\r\n", "10,0,0,5,195,80"),
    ])
    func scans227(line: String, span: String) throws {
        let match = try #require(try scan(line, FTPAddressScanner.scan227))
        #expect(match.endpoint == Endpoint("10.0.0.5:50000"))
        let bytes = Array(line.utf8)
        #expect(String(decoding: bytes[match.range], as: UTF8.self) == span)
    }

    @Test(arguments: ["227 Logout.\r\n", "227\r\n", "227 (1,2,3,4,5)\r\n", "227 (1,2,3,4,5,6,7)\r\n", "22"])
    func finds227NothingInLinesWithoutSixNumbers(line: String) throws {
        #expect(try scan(line, FTPAddressScanner.scan227) == nil)
    }

    @Test func refuses227WithOctetsAbove255() {
        #expect(throws: FTPParseError.octetOutOfRange(300)) {
            try scan("227 Entering Passive Mode (10,0,300,5,195,80)\r\n", FTPAddressScanner.scan227)
        }
    }

    @Test(arguments: [
        ("229 Entering Extended Passive Mode (|||6446|)\r\n", "6446"),
        ("229 Entering Extended Passive Mode (!!!6446!)\r\n", "6446"),
        ("229 Extended Passive mode OK (|||6446|)\r\n", "6446"),
        ("229 |||6446|\n", "6446"),
        ("229-EPSV (###6446#)\r\n", "6446"),
    ])
    func scans229WithAnyDelimiter(line: String, span: String) throws {
        let match = try #require(try scan(line, FTPAddressScanner.scan229))
        #expect(match.endpoint.port == 6446)
        #expect(String(decoding: Array(line.utf8)[match.range], as: UTF8.self) == span)
    }

    @Test func finds229NothingOrRefusesBadPorts() throws {
        #expect(try scan("229 Entering Extended Passive Mode\r\n", FTPAddressScanner.scan229) == nil)
        #expect(try scan("229 (||6446|)\r\n", FTPAddressScanner.scan229) == nil)
        #expect(try scan("229 (|||6446!)\r\n", FTPAddressScanner.scan229) == nil)
        #expect(throws: FTPParseError.portOutOfRange(0)) { try scan("229 (|||0|)\r\n", FTPAddressScanner.scan229) }
        #expect(throws: FTPParseError.malformed("bad port")) { try scan("229 (|||123456|)\r\n", FTPAddressScanner.scan229) }
    }

    @Test func scans228() throws {
        let line = "228 Entering Long Passive Mode (4,4,10,0,0,5,2,195,80)\r\n"
        let match = try #require(try scan(line, FTPAddressScanner.scan228))
        #expect(match.endpoint == Endpoint("10.0.0.5:50000"))
        #expect(try scan("228 Entering Long Passive Mode\r\n", FTPAddressScanner.scan228) == nil)
    }

    @Test func writesEveryForm() throws {
        var out = [UInt8]()
        FTPAddressWriter.appendSix(try #require(Endpoint("203.0.113.7:40001")), to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "203,0,113,7,156,65")
        out = []
        FTPAddressWriter.appendLong(try #require(Endpoint("203.0.113.7:40001")), to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "4,4,203,0,113,7,2,156,65")
        out = []
        FTPAddressWriter.appendExtended(try #require(Endpoint("[2001:db8::7]:40001")), delimiter: UInt8(ascii: "!"), to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "!2!2001:db8::7!40001!")
    }

    @Test func survivesAHundredTwentyEightKilobyteLine() throws {
        let line = "227 " + String(repeating: "1,", count: 64 * 1024) + "\r\n"
        #expect(try scan(line, FTPAddressScanner.scan227) == nil)
        let digits = "227 " + String(repeating: "9", count: 128 * 1024) + "\r\n"
        #expect(try scan(digits, FTPAddressScanner.scan227) == nil)
    }
}
