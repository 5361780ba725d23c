import ChorusData
import Foundation
import Testing

/// The `forecast` job on real processes (docs/forecasting.md "Forecasts"): the generator's daily and weekly
/// seasonality is in the forecasts, they beat seasonal naive in the backtest and their intervals hold their
/// coverage; thin series fall back to a parent; segment series; 1 and 3 workers give identical forecasts; the
/// CLI's table, sparkline and errors; and the election tweets against seasonal naive (skipped offline).
@Suite(.serialized) struct ForecastJobTests {
    static let asOf = "2025-09-29T00:00:00Z"

    static func submit(_ a: String, _ kind: String, _ params: [String] = []) throws -> [String: Any] {
        let r = try chorus(["job", "submit", kind, "--wait", "--json", "--coordinator", a] + params.flatMap { ["--param", $0] },
                           timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json["state"] as? String == "succeeded", "\(r.stdout)")
        return r.json["summary"] as? [String: Any] ?? [:]
    }

    static func ingest(_ a: String, _ dir: String) throws {
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { dir + "/" + $0 }
        let r = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
    }

    static func tempDir(_ name: String) throws -> String {
        let d = NSTemporaryDirectory() + "chorus-\(name)-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func numbers(_ v: Any?) -> [Double] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }

    @Test func forecastsCarryThePlantedSeasonalityBeatSeasonalNaiveAndMatchOnOneAndThreeWorkers() throws {
        let dir = try Self.tempDir("forecast-gen")
        let g = try chorus(["generate", "--users", "3000", "--seed", "5", "--out", dir], timeout: 300)
        #expect(g.status == 0, "\(g.stderr)")
        let params = ["as_of=\(Self.asOf)", "levels=all,channel,topic", "backtest_weeks=1", "horizon=7d"]
        var stored: [[String: Any]] = []
        for workers in [3, 1] {
            let cluster = try TestCluster(workers: workers, partitions: 8)
            defer { cluster.shutdown() }
            let a = cluster.address
            if workers == 3 {
                let none = try chorus(["forecast", "show", "all", "--coordinator", a])
                #expect(none.status == 66 && none.stderr.contains("chorus job submit forecast"), "\(none.stderr)")
            }
            try Self.ingest(a, dir)
            let s = try Self.submit(a, "forecast", params)
            let show = try chorus(["forecast", "show", "all", "--json", "--coordinator", a])
            #expect(show.status == 0, "\(show.stderr)")
            stored.append(show.json)
            guard workers == 3 else { continue }

            // The backtest: better than seasonal naive, intervals within 5 points of their level.
            let b = s["backtest"] as? [String: Any] ?? [:]
            let mase = (b["mean_mase"] as? NSNumber)?.doubleValue ?? 9
            let naive = (b["mean_mase_seasonal_naive"] as? NSNumber)?.doubleValue ?? 0
            let c80 = (b["coverage80"] as? NSNumber)?.doubleValue ?? 0, c95 = (b["coverage95"] as? NSNumber)?.doubleValue ?? 0
            #expect(mase < 1 && mase < naive, "\(b)")
            #expect(abs(c80 - 0.8) <= 0.05 && abs(c95 - 0.95) <= 0.05, "\(b)")
            #expect((s["series"] as? Int ?? 0) >= 20 && (s["fitted"] as? Int ?? 0) >= 6, "\(s)")

            // The planted seasonality: the week's forecast of all engagement, summed per hour of the day, follows
            // the generator's hour weights, and Saturday and Sunday are busier than the weekdays.
            let point = Self.numbers((show.json["forecast"] as? [String: Any])?["point"])
            #expect(point.count == 168)
            var byHour = [Double](repeating: 0, count: 24), byDay = [Double](repeating: 0, count: 7)
            for (i, v) in point.enumerated() { byHour[i % 24] += v; byDay[i / 24] += v }  // as_of is a Monday 00:00
            #expect(correlation(byHour, SyntheticNetwork.globalHourWeights) > 0.9, "\(byHour)")
            #expect(min(byDay[5], byDay[6]) > byDay[0...4].max()!, "\(byDay)")
            let f = show.json["forecast"] as? [String: Any] ?? [:]
            let lo95 = Self.numbers(f["lo95"]), lo80 = Self.numbers(f["lo80"]), hi80 = Self.numbers(f["hi80"]), hi95 = Self.numbers(f["hi95"])
            #expect((0..<168).allSatisfy { lo95[$0] <= lo80[$0] && lo80[$0] <= point[$0] && point[$0] <= hi80[$0] && hi80[$0] <= hi95[$0] })

            // Thin series (a few topics) fall back to "all", scaled by their share.
            let list = try chorus(["forecast", "list", "--json", "--coordinator", a])
            #expect(list.status == 0, "\(list.stderr)")
            let entries = list.json["series"] as? [[String: Any]] ?? []
            #expect(entries.contains { $0["key"] as? String == "channel:tiktok" && $0["model"] != nil })
            for e in entries where e["fallback"] != nil {
                #expect((e["fallback"] as? [String: Any])?["parent"] as? String == "all", "\(e)")
            }
            // The terminal views.
            let text = try chorus(["forecast", "show", "channel:x", "--rows", "3", "--horizon", "2d", "--coordinator", a])
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("backtest:") && text.stdout.contains("80% interval") && text.stdout.contains("│"), "\(text.stdout)")
            #expect(text.stdout.contains("2025-09-29T00:00") && text.stdout.contains("… 45 more hours"), "\(text.stdout)")
            let table = try chorus(["forecast", "list", "--coordinator", a])
            #expect(table.status == 0 && table.stdout.contains("mean MASE") && table.stdout.contains("channel:wechat"), "\(table.stdout)")
            let unknown = try chorus(["forecast", "show", "channel:myspace", "--coordinator", a])
            #expect(unknown.status == 66 && unknown.stderr.contains("chorus forecast list"), "\(unknown.stderr)")
            let bad = try chorus(["job", "submit", "forecast", "--param", "horizon=2w", "--coordinator", a])
            #expect(bad.status == 64 && bad.stderr.contains("Nd or Nh"), "\(bad.stderr)")

        }
        // 1 and 3 workers: the same forecast, bit for bit.
        #expect(stored.count == 2)
        let a = stored[0]["forecast"] as? [String: Any] ?? [:], b = stored[1]["forecast"] as? [String: Any] ?? [:]
        for k in ["point", "lo80", "hi80", "lo95", "hi95"] { #expect(Self.numbers(a[k]) == Self.numbers(b[k]), "\(k)") }
        #expect(stored[0]["model"] as? String == stored[1]["model"] as? String)
    }

    /// With segments: after features and segments each segment gets its series, and a thin one falls back to the
    /// channel where most of its interactions are.
    @Test func segmentSeriesAndTheirFallback() throws {
        let cluster = try TestCluster(workers: 1, partitions: 4)
        defer { cluster.shutdown() }
        let a = cluster.address
        let dir = try Self.tempDir("forecast-seg")
        let g = try chorus(["generate", "--users", "2000", "--seed", "8", "--out", dir, "--segments", "4"], timeout: 300)
        #expect(g.status == 0, "\(g.stderr)")
        try Self.ingest(a, dir)
        _ = try Self.submit(a, "features", ["as_of=\(Self.asOf)"])
        _ = try Self.submit(a, "segments", ["k=4"])
        // min_mean 3 makes the smaller segments thin.
        let s = try Self.submit(a, "forecast", ["as_of=\(Self.asOf)", "levels=channel,segment", "backtest_weeks=0",
                                                 "horizon=1d", "min_mean=3"])
        let list = try chorus(["forecast", "list", "--json", "--coordinator", a])
        let entries = list.json["series"] as? [[String: Any]] ?? []
        let segments = entries.filter { ($0["key"] as? String ?? "").hasPrefix("segment:") }
        #expect(segments.count == 4, "\(entries) \(s)")
        for e in segments {
            if let fb = e["fallback"] as? [String: Any] {
                #expect((fb["parent"] as? String ?? "").hasPrefix("channel:"), "\(e)")
            }
        }
        let shown = try chorus(["forecast", "show", segments.first?["key"] as? String ?? "segment:0", "--json", "--coordinator", a])
        #expect(shown.status == 0 && Self.numbers((shown.json["forecast"] as? [String: Any])?["point"]).count == 24, "\(shown.stdout.prefix(300))")
    }

    /// The 2016 election tweets (scripts/fetch-real-data.sh): daily retweets and favourites of each account, and
    /// the same per post, backtested at 28 origins 7 days ahead: mean MASE below 1 and below seasonal naive's.
    @Test(.enabled(if: RealData.hasElection, "election tweets not fetched: run scripts/fetch-real-data.sh"))
    func electionTweetsBeatSeasonalNaive() throws {
        let dir = try Self.tempDir("forecast-election")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Binary.root + "/bench/election_series.py", RealData.dir + "/election/election-tweets-2016.tab",
                       dir + "/series.csv"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let r = try chorus(["forecast", "eval", "--series", dir + "/series.csv", "--interval", "day", "--horizon", "7",
                            "--windows", "28", "--json"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let series = r.json["series"] as? [[String: Any]] ?? []
        #expect(series.count == 8)
        let mase = (r.json["mean_mase"] as? NSNumber)?.doubleValue ?? 9
        let naive = (r.json["mean_mase_seasonal_naive"] as? NSNumber)?.doubleValue ?? 0
        #expect(mase < 1 && mase < naive, "\(r.stdout)")
        let c95 = (r.json["coverage95"] as? NSNumber)?.doubleValue ?? 0
        #expect(abs(c95 - 0.95) <= 0.05, "\(r.stdout)")
    }
}

func correlation(_ a: [Double], _ b: [Double]) -> Double {
    let n = Double(a.count), ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for i in 0..<a.count { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb) }
    return sab / (saa * sbb).squareRoot()
}
