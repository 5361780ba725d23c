import ArgumentParser
import ChorusAnalytics
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation

// `chorus forecast list|show|eval` (docs/forecasting.md "Forecasts").

struct ForecastCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Engagement forecasts with 80% and 95% intervals, from the last `forecast` job.",
        discussion: reflow("""
        A `forecast` job builds hourly (or daily) engagement series per channel, topic, hashtag, brand
        keyword and segment, fits each on the workers with the model AICc chooses (seasonal regression
        with AR(1) errors, or exponential smoothing with a daily season, each under no, square-root or
        log transform), forecasts the horizon with 80% and 95% prediction intervals, and backtests every
        series over its last weeks against seasonal naive (the same hour last week).

        Run one with `chorus job submit forecast --wait` (`--help` there lists its parameters), then
        `chorus forecast list` and `chorus forecast show all`. `chorus forecast eval` runs the same models
        and backtest on series from a CSV file, without a cluster.
        Models, selection rule, backtest protocol and limits: docs/forecasting.md.
        """),
        subcommands: [List.self, Show.self, Eval.self])

    static func load(_ c: ChorusClient, _ key: String) async throws -> (doc: [String: Any], job: String) {
        guard let r = try await c.jobResult(kind: ForecastJob.kind, key: key),
              let d = (try? JSONSerialization.jsonObject(with: Data(r.value))) as? [String: Any] else {
            if key != "index", try await c.jobResult(kind: ForecastJob.kind, key: "index") != nil {
                let name = key.hasPrefix("series/") ? String(key.dropFirst(7)) : key
                throw ChorusError(.notFound, "no forecast for series '\(name)'",
                                  hint: "`chorus forecast list` shows the series of the last forecast job")
            }
            throw ChorusError(.notFound, "no forecasts yet", hint: "run `chorus job submit forecast --wait` first")
        }
        return (d, r.jobID)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every series of the last forecast job: model, backtest MASE and interval coverage.",
            discussion: reflow("""
            MASE: the backtest's mean absolute error over that of seasonal naive in the training data (below 1:
            better than repeating last week); "vs naive": the error relative to seasonal naive's on the same
            values. Thin series show the parent they fall back to. JSON with --json: {job_id, summary, series}.
            """))
        @OptionGroup var client: ClientOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let (d, job) = try await ForecastCommand.load(c, "index")
                if client.json { printJSON(d); return }
                let s = d["summary"] as? [String: Any] ?? [:]
                print("\(s["series"] ?? 0) \(s["metric"] ?? "") series (\(s["interval"] ?? "hour")ly, \(s["start"] ?? "") to \(s["end"] ?? "")) from \(job)")
                if let text = ForecastJob.summaryText(String(decoding: try JSONSerialization.data(withJSONObject: s), as: UTF8.self)) {
                    print(text)
                }
                print("")
                print(pad("series", 34) + pad("model", 22) + pad("MASE", 7) + pad("vs naive", 9) + pad("cov80", 7) + "cov95")
                for e in d["series"] as? [[String: Any]] ?? [] {
                    let key = e["key"] as? String ?? ""
                    if let fb = e["fallback"] as? [String: Any] {
                        let parent = fb["parent"] as? String
                        print(pad(key, 34) + (parent.map { "falls back to \($0) (share \(fmt(fb["share"], 3)))" } ?? "no forecast: \(fb["why"] ?? "")"))
                        continue
                    }
                    let b = e["backtest"] as? [String: Any] ?? [:]
                    let model = "\(e["model"] ?? "")/\(e["transform"] ?? "")"
                    print(pad(key, 34) + pad(model, 22) + pad(fmt(b["mase"], 2), 7) + pad(fmt(b["relative_mae"], 2), 9)
                          + pad(pct(b["coverage80"]), 7) + pct(b["coverage95"]))
                }
                print("`chorus forecast show KEY` gives one series' forecast, intervals and sparkline.")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One series' forecast: a sparkline of the last week and the forecast, and a table with intervals.",
            discussion: reflow("""
            KEY is a series of `chorus forecast list`: all, channel:NAME, topic:NAME, hashtag:NAME (without #,
            lowercased), brand:KEYWORD or segment:ID. The table lists the first --rows steps; --json gives the
            whole forecast, the history and the model: {key, model, transform, parameters, backtest, start,
            step, history, forecast: {point, lo80, hi80, lo95, hi95}, fallback}.

            Example: chorus forecast show channel:tiktok --horizon 3d
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The series, e.g. all or channel:tiktok.") var key: String
        @Option(help: ArgumentHelp("How much of the forecast to show: Nd or Nh (at most the job's horizon).", valueName: "DURATION"))
        var horizon: String = "14d"
        @Option(help: "Rows of the table (steps from the start of the forecast).") var rows = 24

        func validate() throws {
            if ForecastJob.duration(horizon) == nil { throw ValidationError("--horizon must be Nd or Nh, e.g. 14d or 48h") }
            if rows < 0 { throw ValidationError("--rows must be ≥ 0") }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                var (d, job) = try await ForecastCommand.load(c, "series/" + key)
                let step = (d["step"] as? NSNumber)?.int64Value ?? 3600
                let steps = Int((ForecastJob.duration(horizon)! + step - 1) / step)
                if var f = d["forecast"] as? [String: [Any]] {
                    for (k, v) in f { f[k] = Array(v.prefix(steps)) }
                    d["forecast"] = f
                }
                if client.json { d["job_id"] = job; printJSON(d); return }
                print(ForecastCommand.showText(d, job: job, rows: rows))
            }
        }
    }

    static func showText(_ d: [String: Any], job: String, rows: Int) -> String {
        let key = d["key"] as? String ?? ""
        let step = (d["step"] as? NSNumber)?.int64Value ?? 3600
        let end = (d["end"] as? NSNumber)?.int64Value ?? 0
        let unit = step == 3600 ? "hour" : "day"
        func nums(_ a: Any?) -> [Double] { (a as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
        var out: [String] = []
        out.append("\(key): \(d["metric"] ?? "engagements") per \(unit), from \(job)")
        if let fb = d["fallback"] as? [String: Any] {
            if let p = fb["parent"] as? String {
                out.append("thin series (\(fb["why"] ?? "")): \(p)'s forecast × its share \(fmt(fb["share"], 3))")
            } else {
                out.append("no forecast: \(fb["why"] ?? "")")
            }
        } else {
            out.append("model \(d["model"] ?? "")/\(d["transform"] ?? "") (lowest AICc, \(fmt(d["aicc"], 1)))")
            if let b = d["backtest"] as? [String: Any] {
                out.append("backtest: \(b["origins"] ?? 0) origins, MASE \(fmt(b["mase"], 2)) (seasonal naive \(fmt(b["mase_seasonal_naive"], 2))), "
                           + "80% interval held \(pct(b["coverage80"])), 95% held \(pct(b["coverage95"]))")
            }
        }
        let history = nums(d["history"])
        guard let f = d["forecast"] as? [String: Any] else { return out.joined(separator: "\n") }
        let point = nums(f["point"]), lo80 = nums(f["lo80"]), hi80 = nums(f["hi80"]), lo95 = nums(f["lo95"]), hi95 = nums(f["hi95"])
        let week = step == 3600 ? 168 : 28
        let past = Array(history.suffix(week))
        let all = (past + point + hi80).filter { $0.isFinite }
        let top = all.max() ?? 1
        out.append("")
        out.append("last \(step == 3600 ? "7 days" : "4 weeks") │ next \(point.count) \(unit)s (▁…█ from 0 to \(fmt(top, 1)))")
        out.append(sparkline(past, top: top) + "│" + sparkline(point, top: top))
        out.append("")
        out.append(pad("time (UTC)", 22) + pad("forecast", 10) + pad("80% interval", 20) + "95% interval")
        for i in 0..<min(rows, point.count) {
            let t = Timestamp.iso(end + Int64(i) * step)
            out.append(pad(step == 3600 ? String(t.prefix(16)) : String(t.prefix(10)), 22) + pad(fmt(point[i], 1), 10)
                       + pad("[\(fmt(lo80[i], 1)), \(fmt(hi80[i], 1))]", 20) + "[\(fmt(lo95[i], 1)), \(fmt(hi95[i], 1))]")
        }
        if point.count > rows { out.append("… \(point.count - rows) more \(unit)s (--rows, --json)") }
        return out.joined(separator: "\n")
    }

    static func sparkline(_ v: [Double], top: Double) -> String {
        let bars = Array("▁▂▃▄▅▆▇█")
        return String(v.map { x -> Character in
            guard x.isFinite, top > 0 else { return " " }
            return bars[min(7, max(0, Int((x / top * 7).rounded())))]
        })
    }

    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Backtests the forecast models on series from a CSV file (no cluster needed).",
            discussion: reflow("""
            The file has the header key,ts,value: one row per series and time (ISO 8601 date or time, or unix
            seconds), equally spaced by --interval; an empty value is missing. For each series the models are
            fitted at --windows origins, one step apart, ending --horizon steps before the end, each forecast
            --horizon steps and scored like the job's backtest: MASE (scaled by the training data's seasonal
            naive error), the error relative to seasonal naive, and the 80% and 95% interval coverage.
            --out writes every forecast as CSV (key,cutoff,h,ts,point,lo80,hi80,lo95,hi95,model) for scoring
            elsewhere; bench/forecast.sh compares it with statsforecast on the same series and origins.

            Example: chorus forecast eval --series election.csv --interval day --horizon 7 --windows 28
            """))
        @Option(help: ArgumentHelp("The series CSV (key,ts,value).", valueName: "FILE")) var series: String
        @Option(help: "Spacing of the series: hour or day.") var interval: String = "day"
        @Option(help: "Steps per forecast.") var horizon = 7
        @Option(help: "Forecast origins per series (one step apart, the last one horizon steps before the end).") var windows = 28
        @Option(help: ArgumentHelp("Write every forecast to this CSV file.", valueName: "FILE")) var out: String?
        @Flag(help: "Print the figures as JSON.") var json = false

        func validate() throws {
            if !["hour", "day"].contains(interval) { throw ValidationError("--interval must be hour or day") }
            if horizon < 1 || horizon > 10_000 { throw ValidationError("--horizon must be 1–10000 steps") }
            if windows < 1 || windows > 10_000 { throw ValidationError("--windows must be 1–10000") }
        }

        func run() async throws {
            try await guarded {
                let step: Int64 = interval == "day" ? 86400 : 3600
                let table = try SeriesFile.read(series, step: step)
                var rows: [String] = ["key,cutoff,h,ts,point,lo80,hi80,lo95,hi95,model"]
                var perSeries: [[String: Any]] = []
                var maseSum = 0.0, naiveSum = 0.0, pooled = Forecasting.Backtest(), seconds = 0.0
                for s in table {
                    let calendar = step == 3600 ? Forecasting.Calendar.hourly(phase: ForecastJob.hourOfWeek(s.start))
                        : Forecasting.Calendar.daily(phase: ForecastJob.hourOfWeek(s.start) / 24)
                    let origins = Forecasting.origins(n: s.values.count, span: windows + horizon - 1, step: 1, horizon: horizon)
                    let started = ContinuousClock.now
                    let b = Forecasting.backtest(s.values, calendar, origins: origins, horizon: horizon) { o, fit, f in
                        guard out != nil else { return }
                        let cutoff = Timestamp.iso(s.start + Int64(o - 1) * step)
                        for k in 0..<f.point.count {
                            rows.append("\(s.key),\(cutoff),\(k + 1),\(Timestamp.iso(s.start + Int64(o + k) * step)),"
                                        + "\(f.point[k]),\(f.lo80[k]),\(f.hi80[k]),\(f.lo95[k]),\(f.hi95[k]),\(fit.model)/\(fit.transform.rawValue)")
                        }
                    }
                    let d = ContinuousClock.now - started
                    let secs = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                    seconds += secs
                    maseSum += b.mase; naiveSum += b.maseSeasonalNaive
                    pooled.points += b.points; pooled.inside80 += b.inside80; pooled.inside95 += b.inside95
                    pooled.absError += b.absError; pooled.absErrorSeasonalNaive += b.absErrorSeasonalNaive
                    perSeries.append(["key": s.key, "values": s.values.count, "origins": b.origins, "mase": b.mase,
                                      "mase_seasonal_naive": b.maseSeasonalNaive, "relative_mae": b.relativeMAE,
                                      "coverage80": b.coverage80, "coverage95": b.coverage95, "seconds": secs])
                }
                if let out {
                    guard FileManager.default.createFile(atPath: out, contents: Data((rows.joined(separator: "\n") + "\n").utf8)) else {
                        throw ChorusError(.storage, "cannot write \(out)", hint: "check that its directory exists and is writable")
                    }
                }
                let n = Double(max(table.count, 1))
                let result: [String: Any] = [
                    "series": perSeries, "mean_mase": maseSum / n, "mean_mase_seasonal_naive": naiveSum / n,
                    "relative_mae": pooled.relativeMAE, "coverage80": pooled.coverage80, "coverage95": pooled.coverage95,
                    "seconds": seconds, "seconds_per_series": seconds / n, "horizon": horizon, "windows": windows,
                ]
                if json { printJSON(ForecastJob.jsonSafe(result)); return }
                print(pad("series", 36) + pad("MASE", 7) + pad("naive", 7) + pad("vs naive", 9) + pad("cov80", 7) + pad("cov95", 7) + "seconds")
                for e in perSeries {
                    print(pad(e["key"] as? String ?? "", 36) + pad(fmt(e["mase"], 3), 7) + pad(fmt(e["mase_seasonal_naive"], 3), 7)
                          + pad(fmt(e["relative_mae"], 3), 9) + pad(pct(e["coverage80"]), 7) + pad(pct(e["coverage95"]), 7)
                          + fmt(e["seconds"], 3))
                }
                print("mean MASE \(fmt(result["mean_mase"], 3)) (seasonal naive \(fmt(result["mean_mase_seasonal_naive"], 3))), "
                      + "error vs seasonal naive \(fmt(result["relative_mae"], 3)), coverage 80% \(pct(result["coverage80"])), "
                      + "95% \(pct(result["coverage95"])); \(fmt(result["seconds_per_series"], 4)) s per series")
            }
        }
    }
}

/// Series read from a key,ts,value CSV file.
enum SeriesFile {
    struct Series { var key: String; var start: Int64; var values: [Double] }

    static func read(_ path: String, step: Int64) throws -> [Series] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ChorusError(.notFound, "cannot read \(path)", hint: "give a CSV file with the header key,ts,value")
        }
        var points: [String: [Int64: Double]] = [:]
        var order: [String] = []
        for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let l = line.hasSuffix("\r") ? line.dropLast() : line
            if n == 0 {
                guard l == "key,ts,value" else {
                    throw ChorusError(.usage, "\(path):1: the header must be key,ts,value, not '\(l.prefix(60))'")
                }
                continue
            }
            if l.isEmpty { continue }
            let cols = l.split(separator: ",", omittingEmptySubsequences: false)
            guard cols.count == 3 else { throw ChorusError(.usage, "\(path):\(n + 1): expected 3 columns key,ts,value, got \(cols.count)") }
            let tsText = cols[1].count == 10 ? cols[1] + "T00:00:00Z" : cols[1]
            guard let ts = Timestamp.parse(String(tsText)) else {
                throw ChorusError(.usage, "\(path):\(n + 1): '\(cols[1].prefix(40))' is not a time (ISO 8601 or unix seconds)")
            }
            guard ts % step == 0 else {
                throw ChorusError(.usage, "\(path):\(n + 1): \(cols[1]) is not on a \(step == 3600 ? "whole hour" : "day boundary (UTC)")")
            }
            let v: Double
            if cols[2].isEmpty { v = .nan } else {
                guard let x = Double(cols[2]), x.isFinite else { throw ChorusError(.usage, "\(path):\(n + 1): value '\(cols[2].prefix(40))' is not a number") }
                v = x
            }
            let key = String(cols[0])
            if points[key] == nil { order.append(key) }
            points[key, default: [:]][ts] = v
        }
        return order.map { key in
            let p = points[key]!
            let start = p.keys.min()!, end = p.keys.max()!
            return Series(key: key, start: start, values: stride(from: start, through: end, by: Int(step)).map { p[$0] ?? .nan })
        }
    }
}

func fmt(_ v: Any?, _ digits: Int) -> String {
    guard let d = (v as? NSNumber)?.doubleValue ?? (v as? Double), d.isFinite else { return "-" }
    return String(format: "%.\(digits)f", d)
}

func pct(_ v: Any?) -> String {
    guard let d = (v as? NSNumber)?.doubleValue ?? (v as? Double), d.isFinite else { return "-" }
    return String(format: "%.1f%%", d * 100)
}
