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
/// Identity: (channel, date, period, campaign, arm, segment, version). Two records with the same identity are two versions
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
    /// The campaign plan's version the figures are for (≥ 1 on a campaign's records); 0 for business as usual.
    public var version: UInt32

    public init(channel: String, date: String, period: SpendPeriod = .day, spend: Double, currency: String = "USD",
                impressions: Double = 0, clicks: Double = 0, conversions: Double = 0, revenue: Double = 0,
                campaign: String = "", arm: String = "", segment: String = "", version: UInt32 = 0) {
        self.channel = channel; self.date = date; self.period = period; self.spend = spend; self.currency = currency
        self.impressions = impressions; self.clicks = clicks; self.conversions = conversions; self.revenue = revenue
        self.campaign = campaign; self.arm = arm; self.segment = segment; self.version = version
    }

    /// The arms a campaign record can name.
    public static let arms = ["treatment", "holdout"]

    /// The identity joined by 0x00: channel, date, period, campaign, arm, segment, and the version when it is not 0
    /// (so business-as-usual keys are the ones they were before versions existed). It is the stored key id and the
    /// placement key.
    public var identityKey: String {
        var parts = [channel, date, period.rawValue, campaign, arm, segment]
        if version != 0 { parts.append(String(version)) }
        return parts.joined(separator: "\u{0}")
    }

    /// Unix seconds of the period's start (00:00 UTC of `date`); nil when `date` is not a valid `YYYY-MM-DD`.
    public var startTime: Int64? { Self.day(of: date).map { $0 * 86_400 } }

    /// Days since 1970-01-01 of a `YYYY-MM-DD` date in 1990-01-01 ..< 2100-01-01, or nil when the text is not exactly
    /// such a date (ten characters, a real calendar day). Pure integer arithmetic (Howard Hinnant's days_from_civil).
    public static func day(of text: String) -> Int64? { CivilDate.parse(text, years: 1990...2099).map(Int64.init) }

    /// The `YYYY-MM-DD` text of a day number (days since 1970-01-01); the inverse of `day(of:)`.
    public static func date(ofDay z0: Int64) -> String { CivilDate.iso(days: Int(z0)) }
}
