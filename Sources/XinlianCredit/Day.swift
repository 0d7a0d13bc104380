/// A calendar day `YYYY-MM-DD` (proleptic Gregorian, years 1900–9999), parsed without Foundation.
///
/// Ledger times are milliseconds since the Unix epoch; they map to days in China Standard Time
/// (UTC+08:00, no daylight saving), the time zone of the dates reporters state.
public struct Day: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// China Standard Time offset used to turn ledger times into days.
    public static let utcOffsetMs: Int64 = 8 * 3_600_000
    static let msPerDay: Int64 = 86_400_000

    /// A validated day; `nil` for a date that does not exist or lies outside 1900–9999.
    public init?(year: Int, month: Int, day: Int) {
        guard (1900...9999).contains(year), (1...12).contains(month),
              (1...Self.daysIn(month: month, year: year)).contains(day) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses exactly `YYYY-MM-DD`; `nil` for any other shape or an impossible date.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              let year = Self.number(bytes[0..<4]), let month = Self.number(bytes[5..<7]),
              let day = Self.number(bytes[8..<10]) else { return nil }
        self.init(year: year, month: month, day: day)
    }

    /// The China Standard Time day of a ledger time.
    public init(ms: UInt64) {
        // Saturating: a claimed time near the top of the range must not trap.
        let (sum, overflow) = Int64(clamping: ms).addingReportingOverflow(Self.utcOffsetMs)
        let local = overflow ? Int64.max : sum
        self.init(daysSinceEpoch: local / Self.msPerDay)
    }

    /// The day `days` after 1970-01-01 (civil-from-days, H. Hinnant).
    public init(daysSinceEpoch days: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        year = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
        month = Int(m)
        day = Int(d)
    }

    /// Days since 1970-01-01 (days-from-civil, H. Hinnant).
    public var daysSinceEpoch: Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64(month > 2 ? month - 3 : month + 9)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Ledger time (ms) at which this day begins in China Standard Time.
    public var startMs: Int64 { daysSinceEpoch * Self.msPerDay - Self.utcOffsetMs }

    public func adding(days: Int) -> Day { Day(daysSinceEpoch: daysSinceEpoch + Int64(days)) }

    /// The same month and day `years` later; 29 February becomes 28 February in a common year.
    public func adding(years: Int) -> Day {
        let target = year + years
        let clamped = min(day, Self.daysIn(month: month, year: target))
        return Day(year: target, month: month, day: clamped) ?? Day(daysSinceEpoch: daysSinceEpoch + Int64(years) * 365)
    }

    public static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    public var description: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    public static func < (lhs: Day, rhs: Day) -> Bool { lhs.daysSinceEpoch < rhs.daysSinceEpoch }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard let value = Day(try container.decode(String.self)) else {
            throw Swift.DecodingError.dataCorruptedError(
                in: container, debugDescription: "must be a calendar date YYYY-MM-DD between 1900 and 9999")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
