/// Where a value sits in the configuration tree: `pinholes.ports`, `ftp[1].upstream`.
///
/// Table keys and array indices are kept apart, so `ftp[0]` (the first `[[ftp]]` table) never collides with a
/// key literally named `0`. The ``description`` is the form error messages use.
struct ConfigPath: Hashable, Sendable, CustomStringConvertible {
    enum Component: Hashable, Sendable {
        case key(String)
        case index(Int)
    }

    var components: [Component]

    init(_ components: [Component] = []) {
        self.components = components
    }

    /// A path made of table keys only.
    init(keys: [String]) {
        self.components = keys.map { .key($0) }
    }

    static let root = ConfigPath()

    var isRoot: Bool { components.isEmpty }

    /// The path one level up; the root stays the root.
    var parent: ConfigPath {
        ConfigPath(Array(components.dropLast()))
    }

    /// The last table key on the path, if the path ends in one.
    var lastKey: String? {
        if case .key(let key)? = components.last { return key }
        return nil
    }

    func appending(_ key: String) -> ConfigPath {
        ConfigPath(components + [.key(key)])
    }

    func appending(index: Int) -> ConfigPath {
        ConfigPath(components + [.index(index)])
    }

    func appending(_ other: ConfigPath) -> ConfigPath {
        ConfigPath(components + other.components)
    }

    /// Whether `self` equals `prefix` or lies below it.
    func hasPrefix(_ prefix: ConfigPath) -> Bool {
        components.starts(with: prefix.components)
    }

    /// `ftp[0].listen`; a key that is not a bare TOML key is written quoted.
    var description: String {
        var out = ""
        for component in components {
            switch component {
            case .key(let key):
                if !out.isEmpty { out += "." }
                out += ConfigPath.isBareKey(key) ? key : "\"\(TOMLNode.escaped(key))\""
            case .index(let index):
                out += "[\(index)]"
            }
        }
        return out
    }

    /// Whether TOML can write `key` without quotes (`A-Za-z0-9_-`, at least one character).
    static func isBareKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy(isBareKeyByte)
    }

    static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
