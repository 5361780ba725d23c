import ChorusModel

/// A deterministic weekly history of business-as-usual spend and outcomes per channel, with planted response
/// curves (`chorus generate --spend-history`): the data a budget model is checked on.
///
/// Algorithm, per channel c (the generator's channels, each with its own `Curve`), over `weeks` weekly periods
/// t = 0…T−1 in date order:
/// 1. **Spend.** Flights alternate: on for 4–9 weeks, then off for 1–4 weeks (the channel's `offShare` of its
///    level is still spent in off weeks, 0 for most channels). An on week spends
///    `level × ramp(t) × exp(0.35·z)`, times 2.2 in a burst week (8% of on weeks); `ramp` goes linearly from
///    `rampStart` to `rampEnd` over the history. Amounts are rounded to cents; the rounded spend is the one used
///    below.
/// 2. **Adstock** (geometric, not normalised): `A_t = spend_t + α·A_{t−1}`, with `A_{−1} = 0` (nothing spent
///    before the history).
/// 3. **Hill saturation**: `h_t = A_t^n / (A_t^n + K^n)` (0 when `A_t` is 0).
/// 4. **Outcomes**: for impressions, clicks and conversions, `round(β_o · h_t · exp(σ·z_o − σ²/2))`, with an
///    independent standard normal `z_o` per outcome and week (mean-one lognormal noise); revenue is
///    `conversions × value per conversion`, rounded to cents.
///
/// Every random draw comes from `SplitMix64` seeded by (seed, channel index), and the elementary functions are
/// `PortableMath` (no libm): the same seed and weeks give the same bytes on every platform. The truth is written
/// to `truth/spend_curves.csv` (`truthCSV`, documented in docs/data-format.md).
public struct SpendHistory: Sendable {
    /// One channel's planted response curve and spend pattern.
    public struct Curve: Sendable, Equatable {
        public let channel: String
        /// Geometric adstock decay α (share of last period's adstock carried over).
        public let alpha: Double
        /// Hill half-saturation point K, in adstocked spend (currency units).
        public let k: Double
        /// Hill shape n (n > 1: S-shaped).
        public let n: Double
        /// The outcomes at full saturation (h = 1), per period.
        public let betaImpressions: Double
        public let betaClicks: Double
        public let betaConversions: Double
        public let valuePerConversion: Double
        /// Standard deviation of the log of the multiplicative noise.
        public let noiseSD: Double
        /// Typical spend of an on week, and the ramp of that level from the first week to the last.
        public let level: Double
        public let rampStart: Double
        public let rampEnd: Double
        /// Share of the level still spent in an off week (0: dark).
        public let offShare: Double

        /// The expected outcome at adstock `a` for a saturation level `beta`: β · a^n / (a^n + K^n).
        public func response(adstock a: Double, beta: Double) -> Double {
            guard a > 0 else { return 0 }
            let an = PortableMath.exp(n * PortableMath.log(a)), kn = PortableMath.exp(n * PortableMath.log(k))
            return beta * an / (an + kn)
        }
    }

    /// The planted curves, one per generator channel (weibo, wechat, x, instagram, tiktok): concave (n ≤ 1) and
    /// S-shaped (n > 1) channels, short and strong carry-over (wechat's α = 0.75 keeps a quarter of its effect
    /// after 5 weeks). K sits within the range of each channel's adstock, so both the rise and the saturation show.
    public static let curves: [Curve] = [
        Curve(channel: "weibo", alpha: 0.25, k: 7_000, n: 1.0, betaImpressions: 1_800_000, betaClicks: 16_000,
              betaConversions: 450, valuePerConversion: 55, noiseSD: 0.08, level: 6_000, rampStart: 1.0,
              rampEnd: 1.0, offShare: 0.2),
        Curve(channel: "wechat", alpha: 0.75, k: 12_000, n: 1.4, betaImpressions: 1_200_000, betaClicks: 15_000,
              betaConversions: 600, valuePerConversion: 80, noiseSD: 0.10, level: 4_000, rampStart: 0.6,
              rampEnd: 1.4, offShare: 0),
        Curve(channel: "x", alpha: 0.10, k: 4_000, n: 0.8, betaImpressions: 900_000, betaClicks: 7_000,
              betaConversions: 150, valuePerConversion: 40, noiseSD: 0.12, level: 3_000, rampStart: 1.3,
              rampEnd: 0.7, offShare: 0),
        Curve(channel: "instagram", alpha: 0.45, k: 13_000, n: 2.5, betaImpressions: 2_500_000, betaClicks: 30_000,
              betaConversions: 700, valuePerConversion: 65, noiseSD: 0.08, level: 8_000, rampStart: 0.7,
              rampEnd: 1.3, offShare: 0),
        Curve(channel: "tiktok", alpha: 0.35, k: 16_000, n: 3.2, betaImpressions: 4_000_000, betaClicks: 45_000,
              betaConversions: 900, valuePerConversion: 35, noiseSD: 0.10, level: 10_000, rampStart: 0.5,
              rampEnd: 1.5, offShare: 0),
    ]

    public static let defaultWeeks = 104
    public static let weeksRange = 8...520
    public static let currency = "USD"

    public let seed: UInt64
    public let weeks: Int
    /// Day number (days since 1970-01-01) of the first week's Monday.
    public let firstDay: Int64

    /// `weeks` weekly periods whose last one ends on `endDay` (exclusive; a day number).
    public init(seed: UInt64, weeks: Int = defaultWeeks, endDay: Int64) {
        self.seed = seed
        self.weeks = min(max(weeks, Self.weeksRange.lowerBound), Self.weeksRange.upperBound)
        self.firstDay = endDay - 7 * Int64(self.weeks)
    }

    /// The history of `network`: weekly periods (Mondays) ending where the network's last full week of
    /// interactions ends, so the last `days / 7` weeks overlap the interaction history.
    public init(network: SyntheticNetwork, weeks: Int = defaultWeeks) {
        let start = network.startTime / 86_400
        self.init(seed: network.seed, weeks: weeks, endDay: start + Int64(network.days / 7) * 7)
    }

    /// One channel's generated series: the records in date order, with the adstock and the noiseless expected
    /// conversions behind each.
    public struct Series: Sendable {
        public var curve: Curve
        public var records: [SpendRecord] = []
        public var adstock: [Double] = []
        public var expectedConversions: [Double] = []
    }

    /// The history, one series per channel (in `curves` order).
    public func series() -> [Series] {
        Self.curves.enumerated().map { ci, c in
            var g = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ 0x5350_454E_4400_0000 ^ UInt64(ci))
            _ = g.next()
            var s = Series(curve: c)
            var on = true
            var left = 4 + g.below(6)
            var a = 0.0
            for t in 0..<weeks {
                if left == 0 {
                    on.toggle()
                    left = on ? 4 + g.below(6) : 1 + g.below(4)
                }
                left -= 1
                let ramp = c.rampStart + (c.rampEnd - c.rampStart) * Double(t) / Double(max(weeks - 1, 1))
                let z = g.gaussian(), burst = g.unit() < 0.08
                var x = on ? c.level * ramp * PortableMath.exp(0.35 * z) * (burst ? 2.2 : 1) : c.level * ramp * c.offShare
                x = Self.cents(x)
                a = x + c.alpha * a
                func noisy(_ beta: Double) -> Double {
                    let mean = c.response(adstock: a, beta: beta)
                    let e = PortableMath.exp(c.noiseSD * g.gaussian() - c.noiseSD * c.noiseSD / 2)
                    return (mean * e).rounded()
                }
                let impressions = noisy(c.betaImpressions), clicks = noisy(c.betaClicks)
                let conversions = noisy(c.betaConversions)
                s.records.append(SpendRecord(channel: c.channel, date: SpendRecord.date(ofDay: firstDay + 7 * Int64(t)),
                                             period: .week, spend: x, currency: Self.currency, impressions: impressions,
                                             clicks: clicks, conversions: conversions,
                                             revenue: Self.cents(conversions * c.valuePerConversion)))
                s.adstock.append(a)
                s.expectedConversions.append(c.response(adstock: a, beta: c.betaConversions))
            }
            return s
        }
    }

    static func cents(_ x: Double) -> Double { (x * 100).rounded() / 100 }

    /// `x` with exactly two decimals, without Foundation's locale-dependent formatting.
    static func money(_ x: Double) -> String {
        let c = Int((x * 100).rounded())
        return "\(c / 100).\(SyntheticNetwork.pad(c % 100, 2))"
    }

    /// One JSON line of `spend.jsonl`.
    public static func jsonLine(_ r: SpendRecord) -> String {
        "{\"channel\":\"\(r.channel)\",\"date\":\"\(r.date)\",\"period\":\"\(r.period.rawValue)\","
            + "\"spend\":\(money(r.spend)),\"currency\":\"\(r.currency)\",\"impressions\":\(Int(r.impressions)),"
            + "\"clicks\":\(Int(r.clicks)),\"conversions\":\(Int(r.conversions)),\"revenue\":\(money(r.revenue))}"
    }

    /// The header of `truth/spend_curves.csv`.
    public static let truthHeader = "channel,period,alpha,hill_k,hill_n,beta_impressions,beta_clicks,"
        + "beta_conversions,value_per_conversion,noise_sd,currency,first_date,weeks"

    /// `truth/spend_curves.csv`: the header and one row per channel.
    public func truthCSV() -> String {
        var out = Self.truthHeader + "\n"
        for c in Self.curves {
            out += [c.channel, "week", "\(c.alpha)", "\(c.k)", "\(c.n)", "\(c.betaImpressions)", "\(c.betaClicks)",
                    "\(c.betaConversions)", "\(c.valuePerConversion)", "\(c.noiseSD)", Self.currency,
                    SpendRecord.date(ofDay: firstDay), "\(weeks)"].joined(separator: ",") + "\n"
        }
        return out
    }

    /// Writes `spend.jsonl` (by date, then channel in `curves` order) and `truth/spend_curves.csv` through `sink`;
    /// returns the number of spend records.
    @discardableResult
    public func write(_ sink: (GeneratedFile, [UInt8]) throws -> Void) throws -> Int {
        let all = series()
        var lines: [UInt8] = []
        for t in 0..<weeks {
            for s in all {
                lines.append(contentsOf: Self.jsonLine(s.records[t]).utf8)
                lines.append(0x0A)
            }
        }
        try sink(.spend, lines)
        try sink(.spendCurves, Array(truthCSV().utf8))
        return weeks * all.count
    }

    /// Parses `truth/spend_curves.csv` back into its curves (the spend-pattern fields, which are not in the file,
    /// are 0), with the history's first date and length. Nil when the header or a row does not match.
    public static func parseTruth(_ text: String) -> (curves: [Curve], firstDate: String, weeks: Int)? {
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard lines.first == truthHeader else { return nil }
        var curves: [Curve] = []
        var first = "", weeks = 0
        for line in lines.dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 13, f[1] == "week", let w = Int(f[12]) else { return nil }
            let d = f[2...9].compactMap(Double.init)
            guard d.count == 8 else { return nil }
            curves.append(Curve(channel: f[0], alpha: d[0], k: d[1], n: d[2], betaImpressions: d[3], betaClicks: d[4],
                                betaConversions: d[5], valuePerConversion: d[6], noiseSD: d[7], level: 0,
                                rampStart: 0, rampEnd: 0, offShare: 0))
            first = f[11]
            weeks = w
        }
        return (curves, first, weeks)
    }
}
