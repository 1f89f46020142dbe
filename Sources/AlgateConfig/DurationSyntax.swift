/// The text form of a duration in the configuration: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, or a combination from the
/// largest unit down, `"1h30m"`, `"1m30s"`, `"2s500ms"`.
enum DurationSyntax {
    /// Why a text is not a duration, in the style of ``ConfigurationError/message``.
    struct Problem: Error, Equatable {
        var message: String
    }

    static let expected = "expected a duration such as \"250ms\", \"30s\", \"5m\", \"1h\" or \"1m30s\""
    static let needsUnit = "a duration needs a unit, e.g. \"30s\" (units: ms, s, m, h)"

    private enum Unit: Int, Comparable {
        case millisecond, second, minute, hour

        var milliseconds: Int64 {
            switch self {
            case .millisecond: return 1
            case .second: return 1000
            case .minute: return 60_000
            case .hour: return 3_600_000
            }
        }

        static func < (lhs: Unit, rhs: Unit) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// Parses a duration; surrounding blanks are ignored.
    static func parse(_ text: String) throws(Problem) -> Duration {
        let bytes = Array(text.utf8.drop(while: isBlank).reversed().drop(while: isBlank).reversed())
        guard !bytes.isEmpty else { throw Problem(message: expected) }
        if bytes.allSatisfy(isDigit) { throw Problem(message: needsUnit) }

        var total: Int64 = 0
        var previous: Unit? = nil
        var index = 0
        while index < bytes.count {
            var number: Int64 = 0
            let start = index
            while index < bytes.count, isDigit(bytes[index]) {
                let (times10, overflow1) = number.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(Int64(bytes[index] - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { throw Problem(message: "duration is too long") }
                number = sum
                index += 1
            }
            guard index > start else { throw Problem(message: expected) }
            let unitStart = index
            while index < bytes.count, !isDigit(bytes[index]) { index += 1 }
            let unit: Unit
            switch String(decoding: bytes[unitStart..<index], as: UTF8.self) {
            case "ms": unit = .millisecond
            case "s": unit = .second
            case "m": unit = .minute
            case "h": unit = .hour
            case "": throw Problem(message: needsUnit)
            default: throw Problem(message: expected)
            }
            // Each unit once, largest first: "1m30s", not "30s1m" or "1s1s".
            if let previous, unit >= previous { throw Problem(message: expected) }
            previous = unit
            let (part, overflow1) = number.multipliedReportingOverflow(by: unit.milliseconds)
            let (sum, overflow2) = total.addingReportingOverflow(part)
            guard !overflow1, !overflow2 else { throw Problem(message: "duration is too long") }
            total = sum
        }
        return .milliseconds(total)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }
}
