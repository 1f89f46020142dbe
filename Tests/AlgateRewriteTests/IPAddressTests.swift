import AlgateRewrite
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
        ("::ffff:192.0.2.1", "::ffff:c000:201"),
        ("fe80::1:2:3:4", "fe80::1:2:3:4"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
    ])
    func parsesAndWritesCanonicalText(input: String, canonical: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "1..2.3", "a.b.c.d",
        ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "1:2:3:4:5:6:7:", "::1.2.3.4.5", "g::1",
        "1:2:3:4:5:6:7:8::",
    ])
    func rejectsMalformedText(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func mappedAddressesMatchTheirIPv4Form() throws {
        let mapped = try #require(IPAddress("::ffff:192.0.2.1"))
        let plain = try #require(IPAddress("192.0.2.1"))
        #expect(mapped != plain)
        #expect(mapped.isSameHost(as: plain))
        #expect(!plain.isSameHost(as: try #require(IPAddress("192.0.2.2"))))
    }

    @Test func bytesRoundTrip() throws {
        for text in ["198.51.100.7", "2001:db8:1:2:3:4:5:6"] {
            let address = try #require(IPAddress(text))
            #expect(IPAddress(bytes: address.bytes) == address)
        }
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func endpointText() throws {
        #expect(Endpoint("192.0.2.1:21")?.description == "192.0.2.1:21")
        #expect(Endpoint("[2001:db8::1]:2121")?.description == "[2001:db8::1]:2121")
        #expect(Endpoint("192.0.2.1") == nil)
        #expect(Endpoint("2001:db8::1:21") == nil)
        #expect(Endpoint("192.0.2.1:65536") == nil)
        #expect(Endpoint("[::1]") == nil)
        #expect(Endpoint("192.0.2.1:+21") == nil)
    }
}
