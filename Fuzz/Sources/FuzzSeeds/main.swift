import AlgateReplay
import AlgateRewrite
import FuzzSupport
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// fuzz-seeds OUTPUT FILE...: writes each harness's seed corpus under OUTPUT/<harness>/ from captures (*.pcap, replayed
// offline to get their FTP lines and SIP messages) and raw SIP messages (*.dat). Scripts/fuzz runs it on Fixtures/
// and ../shared/corpus; nothing it reads is copied into the repository.
let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    print("usage: fuzz-seeds OUTPUT FILE...")
    exit(2)
}
var seeds = SeedWriter(root: output)
for path in arguments.dropFirst() {
    if path.hasSuffix(".dat") {
        guard let bytes = SeedWriter.read(path) else { continue }
        seeds.addSIPMessage(bytes, name: path)
        seeds.add("sip-gateway", SIPTranscript.encode([.init(flags: [], message: bytes)]), name: path)
        seeds.add("sip-framer", [0] + bytes, name: path)
    } else {
        seeds.addCapture(path)
    }
}
seeds.finish()
