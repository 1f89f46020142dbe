/// The input of the SIP gateway harness: records separated by a NUL byte, each a flags byte then one message. The
/// flags byte is written with its top bit set so that it is never NUL; reading ignores that bit.
///
/// The flags say where the message comes from and give the harness a hand where a blind fuzzer would hardly ever
/// get on its own: a response from upstream must carry the gateway's own Via (its branch is a hash), and a request
/// to a phone must name one of the gateway's contact tokens. A record with no message says that its flow's TCP
/// connection closed.
public enum SIPTranscript {
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// From upstream (the PBX); otherwise from a phone outside.
        public static let inside = Flags(rawValue: 1)
        /// Over TCP; otherwise UDP.
        public static let tcp = Flags(rawValue: 2)
        /// From the second outside phone (or the second upstream connection).
        public static let secondPeer = Flags(rawValue: 4)
        /// Replace the message's Via lines with those of the last request the gateway sent to this side (so a
        /// response follows the real path back).
        public static let echoVias = Flags(rawValue: 8)
        /// Replace a request's Request-URI with the last Contact the gateway sent to this side (one of its
        /// contact mappings).
        public static let retarget = Flags(rawValue: 16)
        /// The media relays this message asks for fail.
        public static let mediaFails = Flags(rawValue: 32)
        /// The clock jumps an hour before this message, and expired registrations go.
        public static let laterHour = Flags(rawValue: 64)
    }

    public struct Record: Equatable, Sendable {
        public var flags: Flags
        public var message: [UInt8]

        public init(flags: Flags, message: [UInt8]) {
            self.flags = flags
            self.message = message
        }
    }

    public static func records(_ input: [UInt8]) -> [Record] {
        input.split(separator: 0, omittingEmptySubsequences: true).map { part in
            Record(flags: Flags(rawValue: part[part.startIndex] & 0x7f), message: Array(part.dropFirst()))
        }
    }

    public static func encode(_ records: [Record]) -> [UInt8] {
        var out: [UInt8] = []
        for record in records {
            if !out.isEmpty { out.append(0) }
            out.append(0x80 | record.flags.rawValue)
            out += record.message
        }
        return out
    }
}
