import TOMLKit

/// A parsed TOML value as a plain Swift value tree.
///
/// TOMLKit's tables are reference types over a C++ document; the configuration is read once, so it is copied into
/// this tree right after parsing. Overrides are applied to the tree, and validation reads nothing else.
indirect enum TOMLNode: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    /// A date, time or date-time, kept as written: no key of the configuration takes one.
    case dateTime(String)
    case array([TOMLNode])
    case table([String: TOMLNode])

    /// Parses a whole TOML document; a syntax error becomes a ``ConfigurationError`` with TOMLKit's line and column.
    static func parseDocument(_ text: String, source: String) throws(ConfigurationError) -> [String: TOMLNode] {
        do {
            return convert(try TOMLTable(string: text))
        } catch let error as TOMLParseError {
            let position = error.source.begin
            throw ConfigurationError(
                source: source,
                line: position.line > 0 ? position.line : nil,
                message: "syntax error at column \(position.column): \(ConfigurationError.sentence(error.description))"
            )
        } catch {
            throw ConfigurationError(source: source, message: "syntax error: \(error)")
        }
    }

    private static func convert(_ table: TOMLTable) -> [String: TOMLNode] {
        var out: [String: TOMLNode] = [:]
        for key in table.keys {
            if let value = table[key] {
                out[key] = convert(value)
            }
        }
        return out
    }

    private static func convert(_ value: any TOMLValueConvertible) -> TOMLNode {
        switch value.type {
        case .string: return .string(value.string ?? "")
        case .int: return .integer(value.int ?? 0)
        case .double: return .float(value.double ?? 0)
        case .bool: return .boolean(value.bool ?? false)
        case .date, .time, .dateTime: return .dateTime(value.tomlValue.debugDescription)
        case .array: return .array(value.array.map { $0.map(convert) } ?? [])
        case .table: return .table(value.table.map(convert) ?? [:])
        }
    }

    /// The type as a message names it: "a string", "an integer", ...
    var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a floating-point number"
        case .boolean: return "a boolean"
        case .dateTime: return "a date or time"
        case .array: return "an array"
        case .table: return "a table"
        }
    }

    /// The value in TOML syntax, for messages: `"30s"`, `16`, `true`, `["udp", "tcp"]`.
    var rendered: String {
        switch self {
        case .string(let text): return "\"\(TOMLNode.escaped(text))\""
        case .integer(let value): return String(value)
        case .float(let value):
            if value.isNaN { return "nan" }
            if value.isInfinite { return value < 0 ? "-inf" : "inf" }
            return String(value)
        case .boolean(let value): return String(value)
        case .dateTime(let text): return text
        case .array(let items): return "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case .table(let table):
            let pairs = table.keys.sorted().map { key in
                let name = ConfigPath.isBareKey(key) ? key : "\"\(TOMLNode.escaped(key))\""
                return "\(name) = \(table[key]?.rendered ?? "")"
            }
            return pairs.isEmpty ? "{}" : "{ " + pairs.joined(separator: ", ") + " }"
        }
    }

    /// `text` escaped for a TOML basic string (without the quotes).
    static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
