import AlgatePinholes
import AlgateRewrite
import Foundation
import Testing

/// The nftables table's script text, checked by the kernel itself: each test makes a network namespace of its
/// own (root only), loads the script with `nft -f`, and reads back what the kernel holds.
@Suite(.serialized, .enabled("needs root and nft") { KernelNamespace.available })
struct NftablesPinholeTableTests {
    let table = NftablesPinholeTable(name: "algate_pinholes_test")
    let client = IPAddress("203.0.113.2")!
    let publicAddress = IPAddress("203.0.113.1")!
    let server = Endpoint("10.77.0.2:2121")!

    @Test func installsOverAStaleTableAndRemovesItself() throws {
        let namespace = try KernelNamespace()
        defer { namespace.remove() }
        // A stale table from a crashed run, with an element in it: the install replaces it whole.
        try namespace.nft(table.installScript)
        try namespace.nft(table.addScript(table.dnat(peer: client, local: Endpoint(address: publicAddress, port: 40000),
                                                     transport: .tcp, target: server), timeout: .seconds(30)))
        #expect(try namespace.nft("list map inet \(table.name) dnat4").contains("40000"))
        try namespace.nft(table.installScript)
        #expect(!(try namespace.nft("list map inet \(table.name) dnat4").contains("40000")))
        try namespace.nft(table.removeTableScript)
        #expect(!(try namespace.nft("list tables").contains(table.name)))
        // Removing what is not there is not an error: shutdown after a failed start must not fail.
        try namespace.nft(table.removeTableScript)
    }

    @Test func aTCPPinholeIsADNATElementAndAOneUseElementForTheExpectedPeerOnly() throws {
        let namespace = try KernelNamespace()
        defer { namespace.remove() }
        try namespace.nft(table.installScript)
        let elements = table.dnat(peer: client, local: Endpoint(address: publicAddress, port: 40001), transport: .tcp,
                                  target: server)
        #expect(elements.map(\.set) == ["dnat4", "once4"])
        try namespace.nft(table.addScript(elements, timeout: .seconds(30)))
        let map = try namespace.nft("list map inet \(table.name) dnat4")
        #expect(map.contains("203.0.113.2 . 203.0.113.1 . tcp . 40001"), "\(map)")
        #expect(map.contains("10.77.0.2 . 2121"), "\(map)")
        // Consuming the one-use element works once: the second time the kernel says it is gone.
        try namespace.nft(table.consumeScript(elements[1]))
        #expect(throws: KernelNamespace.Failure.self) { try namespace.nft(table.consumeScript(elements[1])) }
        // Removal is idempotent: it works whether the elements are there or were consumed or expired.
        try namespace.nft(table.removeScript(elements))
        try namespace.nft(table.removeScript(elements))
        #expect(!(try namespace.nft("list map inet \(table.name) dnat4").contains("40001")))
    }

    @Test func mediaElementsForAnyPeerAndSNATWithAPortAndIPv6() throws {
        let namespace = try KernelNamespace()
        defer { namespace.remove() }
        try namespace.nft(table.installScript)
        let phone = Endpoint("10.77.0.2:6000")!
        var elements = table.dnat(peer: nil, local: Endpoint(address: publicAddress, port: 40010), transport: .udp,
                                  target: phone)
        elements.append(table.snat(target: phone, transport: .udp, source: IPAddress("10.77.0.1")!, port: 40012))
        let v6 = table.dnat(peer: IPAddress("2001:db8:77::2")!, local: Endpoint("[2001:db8:77::1]:40014")!,
                            transport: .udp, target: Endpoint("[fd00:77::2]:6000")!)
        #expect(elements.map(\.set) == ["dnat4any", "snat4"])
        #expect(v6.map(\.set) == ["dnat6"])
        try namespace.nft(table.addScript(elements + v6, timeout: .seconds(60)))
        #expect(try namespace.nft("list map inet \(table.name) snat4").contains("10.77.0.1 . 40012"))
        #expect(try namespace.nft("list map inet \(table.name) dnat6").contains("fd00:77::2 . 6000"))
        try namespace.nft(table.removeScript(elements + v6))
        #expect(!(try namespace.nft("list map inet \(table.name) dnat4any").contains("40010")))
    }

    @Test func removalNeedsTheValueThatWasAdded() throws {
        // The kernel refuses to "add" a key it holds with another value: that is why the backend keeps each
        // element's value until it removes it, and why it removes the old value before taking a key over.
        let namespace = try KernelNamespace()
        defer { namespace.remove() }
        try namespace.nft(table.installScript)
        let first = table.snat(target: server, transport: .tcp, source: IPAddress("10.77.0.1")!, port: nil)
        let other = table.snat(target: server, transport: .tcp, source: IPAddress("10.77.0.9")!, port: nil)
        try namespace.nft(table.addScript([first], timeout: .seconds(30)))
        #expect(throws: KernelNamespace.Failure.self) { try namespace.nft(table.removeScript([other])) }
        try namespace.nft(table.removeScript([first]) + table.addScript([other], timeout: .seconds(30)))
        #expect(try namespace.nft("list map inet \(table.name) snataddr4").contains("10.77.0.9"))
    }
}

/// A network namespace for one test, deleted by `remove()`.
struct KernelNamespace {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let available: Bool = {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") else {
            print("NftablesPinholeTableTests skipped: they need root and /usr/sbin/nft")
            return false
        }
        return true
    }()

    let name = "algtpin\(UInt32.random(in: 0..<0xFFFF_FFFF) & 0xFFFFFF)"

    init() throws {
        try Self.run("/usr/sbin/ip", ["netns", "add", name])
    }

    func remove() {
        _ = try? Self.run("/usr/sbin/ip", ["netns", "delete", name])
    }

    /// Runs an nft script in the namespace; returns what nft printed, throws with nft's message.
    @discardableResult
    func nft(_ script: String) throws -> String {
        try Self.run("/usr/sbin/ip", ["netns", "exec", name, "nft", "-f", "-"], input: script)
    }

    @discardableResult
    static func run(_ path: String, _ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data((input ?? "").utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")): \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }
}
