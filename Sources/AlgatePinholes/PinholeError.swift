/// Why a pinhole could not be opened.
public enum PinholeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every port of the configured range is in use (or could not be bound).
    case poolExhausted
    /// The control session already holds its configured number of pinholes.
    case sessionLimit(Int)
    /// The process already holds its configured number of pinholes.
    case totalLimit(Int)
    /// The listening socket could not be set up.
    case bindFailed(String)
    /// The backend is shutting down.
    case shuttingDown
    /// The backend cannot make this pinhole at all (say, between IPv4 and IPv6 in the kernel).
    case unsupported(String)
    /// The kernel refused the pinhole's nftables elements.
    case kernelRefused(String)

    public var description: String {
        switch self {
        case .poolExhausted: return "port pool exhausted"
        case .sessionLimit(let limit): return "session already holds \(limit) pinholes"
        case .totalLimit(let limit): return "gateway already holds \(limit) pinholes"
        case .bindFailed(let why): return "cannot bind: \(why)"
        case .shuttingDown: return "gateway is shutting down"
        case .unsupported(let why): return "unsupported: \(why)"
        case .kernelRefused(let why): return "kernel refused the pinhole: \(why)"
        }
    }
}
