/// Why an address-carrying FTP command or reply could not be used.
///
/// Each case maps to the reply a client gets when its command is refused, so that a refusal names its cause.
public enum FTPParseError: Error, Hashable, Sendable {
    /// The argument is not of the command's grammar (wrong count of numbers, stray bytes, bad delimiter).
    case malformed(String)
    /// A number of a PORT/227/LPRT tuple is larger than 255.
    case octetOutOfRange(Int)
    /// A port that is zero, above 65535, or (for commands from the client) privileged.
    case portOutOfRange(Int)
    /// EPRT's net-prt family or LPRT's address family is not one this gateway handles.
    case unsupportedFamily(Int)

    /// A short, single-line explanation, safe to put into an FTP reply and a log line.
    public var explanation: String {
        switch self {
        case .malformed(let what): return "malformed address argument (\(what))"
        case .octetOutOfRange(let value): return "number \(value) is out of range 0-255"
        case .portOutOfRange(let value): return "port \(value) is not allowed"
        case .unsupportedFamily(let family): return "address family \(family) is not supported"
        }
    }
}
