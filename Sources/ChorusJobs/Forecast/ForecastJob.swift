import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// Job kind `forecast` (docs/forecasting.md "Forecasts"): hourly or daily engagement series per channel, topic,
/// hashtag, brand keyword and segment (when the `segments` job has run), each fitted on the workers with the
/// model AICc chooses (Sources/ChorusAnalytics/Forecasting.swift), forecast with 80% and 95% intervals, and
/// checked by a rolling-origin backtest against seasonal naive. Thin series fall back to their parent level
/// (segment → its main channel → all; topic, hashtag, brand → all), scaled by their share of it.
///
/// Stages: "span" (the interactions' time range), "series" (counts per series and bucket), "fit" (the series
/// broadcast; partition p fits the series whose index modulo the partition count is p).
/// Results: "index" (every series: model, backtest, fallback) and "series/<key>" (history and forecast).
public enum ForecastJob: Job {
    public static let kind = "forecast"
    /// Writes only its result on the coordinator: an analyst may run it.
    public static let readOnly = true
    public static let about = "engagement forecasts per channel, topic, hashtag, brand and segment, with 80%/95% intervals and a backtest"
    public static let metrics = ["engagements", "views", "like", "comment", "share", "click", "conversion",
                                 "engagement_per_post"]
    public static let families = ["all", "channel", "topic", "hashtag", "brand", "segment"]
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "end of the history (exclusive); the last bucket the data fill is the end when earlier"),
        .init("interval", .choice(["hour", "day"]), "hour", "bucket of the series: hour (daily and weekly seasons) or day (weekly season)"),
        .init("metric", .choice(metrics), "engagements",
              "what is counted: engagements (every interaction but views), views, one type, or engagement_per_post (engagements of the posts published in the bucket per post)"),
        .init("horizon", .text(maxBytes: 16), "14d", "how far to forecast: Nd (days) or Nh (hours)"),
        .init("history_days", .integer(14...730), "91", "days of history before the end that the models see"),
        .init("levels", .text(maxBytes: 128), "all,channel,topic,hashtag,brand,segment",
              "comma-separated series families to forecast (all, channel, topic, hashtag, brand, segment)"),
        .init("keywords", .text(maxBytes: 4096), "", "brand keywords, comma-separated; each makes a brand:KEYWORD series (as in sentiment)"),
        .init("backtest_weeks", .integer(0...8), "2", "weeks at the end of each series whose days are backtest origins (0: no backtest)"),
        .init("backtest_horizon", .text(maxBytes: 16), "", "horizon of each backtest forecast: Nd or Nh (default 24h hourly, 7d daily)"),
        .init("max_series", .integer(1...5000), "300", "series kept, the largest by total (all and the channels always)"),
        .init("min_mean", .number(0...1e9), "1", "a series whose mean per bucket is below this is thin and falls back to its parent"),
    ]

    public static func tasksPerPartition(_ params: JobParams) -> Int { 3 }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        for key in ["horizon", "backtest_horizon"] {
            if let v = params[key], !v.isEmpty, duration(v) == nil {
                throw ChorusError(.usage, "\(key)=\(v) is not a duration", hint: "write Nd or Nh, for example \(key)=14d or \(key)=48h")
            }
        }
        let bad = levels(params).filter { !families.contains($0) }
        if !bad.isEmpty {
            throw ChorusError(.usage, "levels: unknown series famil\(bad.count == 1 ? "y" : "ies") \(bad.joined(separator: ", "))",
                              hint: "choose among \(families.joined(separator: ", "))")
        }
    }

    /// "14d" → 1,209,600 s; "48h" → 172,800 s; nil when malformed or not positive.
    public static func duration(_ s: String) -> Int64? {
        guard let unit = s.last, let n = Int64(s.dropLast()), n > 0, n <= 100_000 else { return nil }
        switch unit {
        case "d": return n * 86400
        case "h": return n * 3600
        default: return nil
        }
    }

    static func levels(_ p: JobParams) -> [String] {
        p.string("levels", families.joined(separator: ",")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Hour of the week (Monday 00:00 UTC = 0) of a unix time; 1970-01-01 was a Thursday.
    public static func hourOfWeek(_ ts: Int64) -> Int { Int(((ts / 3600) % 168 + 168 + 72) % 168) }

    public static var fuzzSeeds: [FuzzSeed] {
        var plan = Chorus_V1_Jobs_ForecastPlan()
        plan.keys = ["all"]; plan.offsets = [0]; plan.length = 60; plan.values = (0..<60).map { Double($0 % 7) }
        plan.periods = [7]; plan.horizon = 7; plan.origins = [50]; plan.backtestHorizon = 7; plan.partitions = 1
        return [FuzzSeed(stage: "span"), FuzzSeed(stage: "series", params: ["interval": "day"]),
                FuzzSeed(stage: "fit", broadcast: try? plan.serializedData())]
    }

    // MARK: driver

    public static func drive(_ ctx: JobContext) async throws -> String {
        let p = ctx.params
        let step: Int64 = p.string("interval", "hour") == "day" ? 86400 : 3600
        let metric = p.string("metric", "engagements")
        try await ctx.setStage("span")
        var minTs = Int64.max, maxTs = Int64.min, count: UInt64 = 0
        for out in try await ctx.collect("span") {
            let s = try Chorus_V1_Jobs_ForecastSpan(serializedBytes: out.payload)
            guard s.count > 0 else { continue }
            minTs = min(minTs, s.minTs); maxTs = max(maxTs, s.maxTs); count += s.count
        }
        guard count > 0 else {
            throw ctx.failure("no interactions to forecast; ingest interactions first (`chorus ingest`)")
        }
        // The end: as_of, or the end of the last bucket the data fill completely, whichever is earlier.
        let asOf = p.asOf
        let end = (min(asOf, maxTs + 1) / step) * step
        let history = Int64(p.int("history_days", 91)) * 86400
        let start = max(end - history, (minTs / step) * step)
        let length = Int((end - start) / step)
        guard length >= 14 * 86400 / Int(step) || (step == 86400 && length >= 21) else {
            throw ctx.failure("only \(length) \(step == 3600 ? "hours" : "days") of interactions before \(iso(end)); "
                              + "forecasts need at least two weeks (set as_of later or ingest more history)")
        }

        try await ctx.setStage("series")
        var sums: [String: (num: [Double], den: [Double])] = [:]
        var parents: [String: [String: Double]] = [:]
        let stageParams = ["start": String(start), "end": String(end), "step": String(step)]
        for out in try await ctx.collect("series", broadcast: Broadcast(try seriesBroadcast(stageParams))) {
            let part = try Chorus_V1_Jobs_ForecastSeriesPart(serializedBytes: out.payload)
            for s in part.series {
                var acc = sums[s.key] ?? ([Double](repeating: 0, count: length), [Double](repeating: 0, count: length))
                for (i, b) in s.bucket.enumerated() where Int(b) < length {
                    acc.num[Int(b)] += i < s.num.count ? s.num[i] : 0
                    if i < s.den.count { acc.den[Int(b)] += s.den[i] }
                }
                sums[s.key] = acc
            }
            for pc in part.parents { parents[pc.child, default: [:]][pc.parent, default: 0] += pc.count }
        }
        let perPost = metric == "engagement_per_post"
        var series: [String: [Double]] = [:]
        for (k, v) in sums {
            series[k] = perPost ? zip(v.num, v.den).map { $1 > 0 ? $0 / $1 : .nan } : v.num
        }
        func total(_ k: String) -> Double { sums[k].map { perPost ? $0.den.reduce(0, +) : $0.num.reduce(0, +) } ?? 0 }
        // Keep "all" and the channels, then the largest series up to max_series (ties by key).
        let maxSeries = p.int("max_series", 300)
        let always = series.keys.filter { $0 == "all" || $0.hasPrefix("channel:") }.sorted()
        let rest = series.keys.filter { $0 != "all" && !$0.hasPrefix("channel:") }
            .sorted { (total($0), $1) > (total($1), $0) }
        let kept = Array((always + rest).prefix(max(maxSeries, always.count)))
        let dropped = series.count - kept.count

        // Thin series are not fitted: they fall back to a parent.
        let minMean = p.double("min_mean", 1)
        func isThin(_ k: String) -> Bool {
            let v = series[k]!
            let observed = v.filter { !$0.isNaN }
            guard observed.count >= length / 2 else { return true }
            return perPost ? total(k) / Double(length) < minMean : observed.reduce(0, +) / Double(observed.count) < minMean
        }
        let toFit = kept.filter { !isThin($0) }
        let periods: [Int] = step == 3600 ? [24, 168] : [7]
        let phase = step == 3600 ? hourOfWeek(start) : (hourOfWeek(start) / 24)
        let horizonSeconds = duration(p.string("horizon", "14d")) ?? 14 * 86400
        let horizon = max(1, Int((horizonSeconds + step - 1) / step))
        let btSeconds = duration(p.string("backtest_horizon", "")) ?? (step == 3600 ? 86400 : 7 * 86400)
        let btHorizon = max(1, Int((btSeconds + step - 1) / step))
        let btSpan = p.int("backtest_weeks", 2) * 7 * 86400 / Int(step)
        let origins = btSpan > 0 ? Forecasting.origins(n: length, span: btSpan, step: Int(86400 / step), horizon: btHorizon) : []

        try await ctx.setStage("fit: \(toFit.count) series, \(origins.count) backtest origins each")
        var plan = Chorus_V1_Jobs_ForecastPlan()
        plan.keys = toFit
        plan.length = UInt32(length)
        for (i, k) in toFit.enumerated() {
            plan.offsets.append(UInt32(i * length))
            plan.values += series[k]!
        }
        plan.phase = UInt32(phase)
        plan.periods = periods.map(UInt32.init)
        plan.horizon = UInt32(horizon)
        plan.origins = origins.map(UInt32.init)
        plan.backtestHorizon = UInt32(btHorizon)
        plan.partitions = ctx.partitionCount
        var fits: [String: Chorus_V1_Jobs_ForecastFit] = [:]
        var fitSeconds = 0.0
        for out in try await ctx.collect("fit", broadcast: Broadcast(try plan.serializedData())) {
            for f in try Chorus_V1_Jobs_ForecastFits(serializedBytes: out.payload).fits {
                fits[f.key] = f
                fitSeconds += f.seconds
            }
        }

        // Fallbacks: the nearest fitted ancestor's forecast scaled by the series' share of it over the history.
        func parent(_ k: String) -> String? {
            if k == "all" { return nil }
            if k.hasPrefix("segment:"), let chans = parents[k],
               let main = chans.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }).first?.key { return main }
            return "all"
        }
        var results: [(key: String, value: [UInt8])] = []
        var index: [[String: Any]] = []
        var fitted = 0, fellBack = 0, noForecast = 0
        var pooled = Forecasting.Backtest()
        var maseSum = 0.0, naiveSum = 0.0, maseCount = 0
        var models: [String: Int] = [:]
        for k in kept {
            var entry: [String: Any] = ["key": k, "total": total(k)]
            var forecast: Forecasting.Forecast?
            if let f = fits[k], f.fitted {
                fitted += 1
                models[f.model, default: 0] += 1
                forecast = forecastOf(f)
                entry["model"] = f.model; entry["transform"] = f.transform; entry["aicc"] = f.aicc
                entry["parameters"] = Dictionary(uniqueKeysWithValues: zip(f.parameterNames, f.parameterValues))
                let b = f.backtest
                if b.origins > 0 {
                    entry["backtest"] = backtestJSON(b)
                    pooled.points += Int(b.points); pooled.inside80 += Int(b.inside80); pooled.inside95 += Int(b.inside95)
                    pooled.absError += b.absError; pooled.absErrorSeasonalNaive += b.absErrorSeasonalNaive
                    maseSum += b.mase; naiveSum += b.maseSeasonalNaive; maseCount += 1
                }
            } else {
                var a = parent(k)
                while let x = a, !(fits[x]?.fitted ?? false) { a = parent(x) }
                if let a, let pf = fits[a], total(a) > 0 {
                    let share = total(k) / total(a)
                    forecast = perPost ? forecastOf(pf) : forecastOf(pf).scaled(share)
                    entry["fallback"] = ["parent": a, "share": perPost ? 1 : share,
                                         "why": "mean \(String(format: "%.2f", total(k) / Double(length))) per \(step == 3600 ? "hour" : "day") is below min_mean \(minMean)"]
                    fellBack += 1
                } else {
                    entry["fallback"] = ["why": "too little data and no fitted parent"]
                    noForecast += 1
                }
            }
            index.append(entry)
            var detail = entry
            detail["interval"] = step == 3600 ? "hour" : "day"
            detail["metric"] = metric
            detail["start"] = start; detail["step"] = step; detail["end"] = end
            detail["history"] = series[k]!.map { $0.isNaN ? nil : $0 } as [Double?]
            if let f = forecast {
                detail["forecast"] = ["point": f.point, "lo80": f.lo80, "hi80": f.hi80, "lo95": f.lo95, "hi95": f.hi95]
            }
            results.append(("series/\(k)", try JSONSerialization.data(withJSONObject: jsonSafe(detail), options: [.sortedKeys]).bytes))
        }
        let backtest: [String: Any] = maseCount == 0 ? [:] : [
            "series": maseCount, "points": pooled.points, "origins_per_series": origins.count, "horizon_steps": btHorizon,
            "mean_mase": maseSum / Double(maseCount), "mean_mase_seasonal_naive": naiveSum / Double(maseCount),
            "relative_mae": pooled.relativeMAE, "coverage80": pooled.coverage80, "coverage95": pooled.coverage95,
        ]
        // The headline: the next 24 hours (or 7 days) of "all" and every channel, as point sums.
        var headline: [[String: Any]] = []
        let next = step == 3600 ? min(24, horizon) : min(7, horizon)
        for k in always {
            guard let f = fits[k], f.fitted else { continue }
            let fc = forecastOf(f)
            let last = series[k]!.suffix(next).filter { !$0.isNaN }
            headline.append(["key": k, "next_steps": next, "forecast_sum": fc.point.prefix(next).reduce(0, +),
                             "previous_sum": last.reduce(0, +), "model": f.model])
        }
        var summary: [String: Any] = [
            "interval": step == 3600 ? "hour" : "day", "metric": metric, "start": iso(start),
            "end": iso(end), "history_steps": length, "horizon_steps": horizon,
            "series": kept.count, "fitted": fitted, "fallbacks": fellBack, "no_forecast": noForecast,
            "dropped_by_max_series": dropped, "models": models, "backtest": backtest, "headline": headline,
            "fit_seconds": fitSeconds,
        ]
        let indexDoc: [String: Any] = ["job_id": ctx.jobID, "summary": summary, "series": index]
        results.append(("index", try JSONSerialization.data(withJSONObject: jsonSafe(indexDoc), options: [.sortedKeys]).bytes))
        try await ctx.putResults(results)
        summary["results"] = "chorus forecast list; chorus forecast show KEY"
        return String(decoding: try JSONSerialization.data(withJSONObject: jsonSafe(summary), options: [.sortedKeys]), as: UTF8.self)
    }

    static func iso(_ t: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
    }

    static func seriesBroadcast(_ params: [String: String]) throws -> Data {
        try JSONSerialization.data(withJSONObject: params, options: [.sortedKeys])
    }

    static func forecastOf(_ f: Chorus_V1_Jobs_ForecastFit) -> Forecasting.Forecast {
        var o = Forecasting.Forecast()
        o.point = f.point; o.lo80 = f.lo80; o.hi80 = f.hi80; o.lo95 = f.lo95; o.hi95 = f.hi95
        return o
    }

    static func backtestJSON(_ b: Chorus_V1_Jobs_ForecastBacktest) -> [String: Any] {
        let rel = b.absErrorSeasonalNaive > 0 ? b.absError / b.absErrorSeasonalNaive : Double.nan
        return ["origins": b.origins, "points": b.points, "mase": b.mase, "mase_seasonal_naive": b.maseSeasonalNaive,
                "relative_mae": rel,
                "coverage80": b.points > 0 ? Double(b.inside80) / Double(b.points) : Double.nan,
                "coverage95": b.points > 0 ? Double(b.inside95) / Double(b.points) : Double.nan]
    }

    /// NaN and infinities become null (JSON has neither).
    public static func jsonSafe(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let a as [Double]: return a.map { $0.isFinite ? $0 as Any : NSNull() }
        case let a as [Double?]: return a.map { $0.flatMap { $0.isFinite ? $0 : nil } as Any? ?? NSNull() }
        case let a as [Any]: return a.map(jsonSafe)
        case let m as [String: Any]: return m.mapValues(jsonSafe)
        default: return v
        }
    }

    /// The summary for people: the backtest against seasonal naive, the models chosen, the next day per channel.
    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let d = (try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8))) as? [String: Any] else { return nil }
        func f(_ v: Any?, _ digits: Int) -> String {
            guard let x = (v as? NSNumber)?.doubleValue, x.isFinite else { return "-" }
            return String(format: "%.\(digits)f", x)
        }
        func pc(_ v: Any?) -> String {
            guard let x = (v as? NSNumber)?.doubleValue, x.isFinite else { return "-" }
            return String(format: "%.1f%%", 100 * x)
        }
        var out: [String] = []
        out.append("  \(d["series"] ?? 0) series of \(d["metric"] ?? "engagements") per \(d["interval"] ?? "hour") "
                   + "(\(d["fitted"] ?? 0) fitted, \(d["fallbacks"] ?? 0) thin ones fall back to a parent"
                   + ((d["no_forecast"] as? Int ?? 0) > 0 ? ", \(d["no_forecast"]!) without a forecast" : "") + ")")
        if let b = d["backtest"] as? [String: Any], !b.isEmpty {
            out.append("  backtest (\(b["origins_per_series"] ?? 0) origins × \(b["horizon_steps"] ?? 0) steps per series): "
                       + "mean MASE \(f(b["mean_mase"], 3)) vs seasonal naive \(f(b["mean_mase_seasonal_naive"], 3)); "
                       + "error \(f(b["relative_mae"], 3))× seasonal naive's; 80% intervals held \(pc(b["coverage80"])), "
                       + "95% held \(pc(b["coverage95"]))")
        }
        if let m = d["models"] as? [String: Any], !m.isEmpty {
            out.append("  models: " + m.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        for h in d["headline"] as? [[String: Any]] ?? [] {
            out.append("  \(h["key"] ?? ""): next \(h["next_steps"] ?? 0) \(d["interval"] ?? "hour")s \(f(h["forecast_sum"], 0)) "
                       + "(the last \(h["next_steps"] ?? 0): \(f(h["previous_sum"], 0)))")
        }
        return out.joined(separator: "\n")
    }

    // MARK: worker

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { ForecastWorker() }
}

extension Data {
    var bytes: [UInt8] { [UInt8](self) }
}
