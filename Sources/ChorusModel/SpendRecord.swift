/// The length of a spend record's period.
public enum SpendPeriod: String, Sendable, CaseIterable, Codable, Comparable {
    case day, week

    /// Days in the period: 1 or 7.
    public var days: Int { self == .day ? 1 : 7 }

    public static func < (a: Self, b: Self) -> Bool { a.days < b.days }
}

/// Spend and outcomes of one channel over one period (a day, or the seven days from `date`), from a `spend*` ingest
/// file (docs/data-format.md). Business-as-usual history has an empty `campaign`; a campaign's measurement can
/// split its records by `arm` (`treatment`, `holdout`) and `segment`.
///
/// Identity: (channel, date, period, campaign, arm, segment). Two records with the same identity are two versions
/// of one record (the last ingested wins); `identityKey` is that identity as the bytes of the stored key id, and
/// its FNV-1a 64 places the record (`Placement.partition(of:)`).
public struct SpendRecord: Sendable, Equatable, Codable {
    public var channel: String
    /// The period's first day, `YYYY-MM-DD` (UTC).
    public var date: String
    public var period: SpendPeriod
    /// Money spent in the period, ≥ 0, in `currency`.
    public var spend: Double
    /// ISO 4217 code, 3 capital letters.
    public var currency: String
    public var impressions: Double
    public var clicks: Double
    public var conversions: Double
    /// Revenue of the period's conversions, in `currency`.
    public var revenue: Double
    /// The campaign's id; "" for business as usual.
    public var campaign: String
    /// "", `treatment` or `holdout`.
    public var arm: String
    /// The audience segment the figures are for; "" for all.
    public var segment: String

    public init(channel: String, date: String, period: SpendPeriod = .day, spend: Double, currency: String = "USD",
                impressions: Double = 0, clicks: Double = 0, conversions: Double = 0, revenue: Double = 0,
                campaign: String = "", arm: String = "", segment: String = "") {
        self.channel = channel; self.date = date; self.period = period; self.spend = spend; self.currency = currency
        self.impressions = impressions; self.clicks = clicks; self.conversions = conversions; self.revenue = revenue
        self.campaign = campaign; self.arm = arm; self.segment = segment
    }

    /// The arms a campaign record can name.
    public static let arms = ["treatment", "holdout"]

    /// The identity joined by 0x00: channel, date, period, campaign, arm, segment. It is the stored key id and
    /// the placement key.
    public var identityKey: String {
        [channel, date, period.rawValue, campaign, arm, segment].joined(separator: "\u{0}")
    }

    /// Unix seconds of the period's start (00:00 UTC of `date`); nil when `date` is not a valid `YYYY-MM-DD`.
    public var startTime: Int64? { Self.day(of: date).map { $0 * 86_400 } }

    /// Days since 1970-01-01 of a `YYYY-MM-DD` date in 1990-01-01 ..< 2100-01-01, or nil when the text is not exactly
    /// such a date (ten characters, a real calendar day). Pure integer arithmetic (Howard Hinnant's days_from_civil).
    public static func day(of text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return nil }
        func num(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard let y = num(0..<4), let m = num(5..<7), let d = num(8..<10), (1990...2099).contains(y),
              (1...12).contains(m), d >= 1 else { return nil }
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard d <= monthDays[m - 1] else { return nil }
        let yy = m <= 2 ? y - 1 : y
        let era = yy / 400  // years ≥ 1990: never negative
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return Int64(era * 146_097 + doe - 719_468)
    }

    /// The `YYYY-MM-DD` text of a day number (days since 1970-01-01); the inverse of `day(of:)`.
    public static func date(ofDay z0: Int64) -> String {
        let z = Int(z0) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))"
    }
}
