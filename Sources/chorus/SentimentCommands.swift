import ArgumentParser
import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Options of the `sentiment` job shared by `chorus sentiment run` and `chorus alerts --watch`.
struct SentimentJobOptions: ParsableArguments {
    @Option(help: "Model name stored on the coordinator (`chorus model list`).") var model = "sentiment-default"
    @Option(help: "Brand keywords (comma-separated); texts containing one count under brand:<keyword>.") var keywords: String?
    @Option(help: "Alert sensitivity: how many standard deviations above the rolling baseline (lower = more alerts).")
    var sensitivity = 4.0
    @Option(help: "Hours an alert of one kind stays silent for its key after it fired.") var cooldownHours = 6
    @Option(help: "Hours of rolling baseline before each hour.") var windowHours = 24
    @Option(help: "Texts an hour needs before it can alert.") var minCount = 20

    var params: [String: String] {
        var p = ["model": model, "sensitivity": String(sensitivity), "cooldown_hours": String(cooldownHours),
                 "alert_window_hours": String(windowHours), "min_count": String(minCount)]
        if let keywords { p["keywords"] = keywords }
        return p
    }
}

func jsonObject(_ text: String) -> Any { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) ?? [:] }

/// Prints the sentiment job's summary: the mix per channel and the alerts.
func printSentimentSummary(_ summary: [String: Any]) {
    let labels = summary["labels"] as? [String: Int] ?? [:]
    print("sentiment: \(summary["texts"] ?? 0) texts (\(summary["comments"] ?? 0) comments, \(summary["posts"] ?? 0) posts) "
          + "with \(summary["model"] ?? "?") v\(summary["model_version"] ?? "?"): "
          + "negative \(labels["negative"] ?? 0), neutral \(labels["neutral"] ?? 0), positive \(labels["positive"] ?? 0)")
    let channels = summary["channels"] as? [String: [String: Any]] ?? [:]
    for c in channels.keys.sorted() {
        let m = channels[c]!
        func pct(_ k: String) -> String { String(format: "%.0f%%", 100 * (m[k] as? Double ?? 0)) }
        let texts = m["texts"] as? Int ?? 0
        let neutral = texts == 0 ? 0 : Double(m["neutral"] as? Int ?? 0) / Double(texts)
        print("  \(c.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(format: "%7d", texts)) texts: "
              + "positive \(pct("positive_share")), neutral \(String(format: "%.0f%%", 100 * neutral)), negative \(pct("negative_share"))")
    }
    let alerts = summary["alerts"] as? [[String: Any]] ?? []
    let incidents = summary["incidents"] as? [[String: Any]] ?? []
    print("alerts: \(summary["alerts_new"] ?? 0) new (\(summary["alerts_detected"] ?? 0) detected in the series)"
          + (incidents.isEmpty ? "" : " in \(incidents.count) incident\(incidents.count == 1 ? "" : "s")"))
    if incidents.isEmpty {
        for a in alerts.prefix(10) {
            print("  \(a["at"] ?? "") \(a["kind"] ?? "") \(a["key"] ?? "") (\(a["count"] ?? 0) texts) why: "
                  + ((a["why"] as? [String]) ?? []).joined(separator: ", "))
        }
        return
    }
    // One line per incident (a burst seen through several keys), its keys, why terms and examples once.
    for inc in incidents.prefix(10) {
        let keys = inc["keys"] as? [String] ?? []
        let kinds = (inc["kinds"] as? [String] ?? []).joined(separator: ", ")
        print("  \(inc["at"] ?? "") \(kinds) on \(keys.joined(separator: ", "))")
        print("    why: " + ((inc["why"] as? [String]) ?? []).joined(separator: ", "))
        for e in (inc["examples"] as? [String] ?? []).prefix(2) { print("    e.g. \"\(e.prefix(100))\"") }
    }
}

/// A readable `sentiment content`: what the item is, how its comments split, and the most negative ones.
func contentSentimentText(_ d: [String: Any]) -> String {
    func num(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? 0 }
    let comments = Int(num(d["comments"]))
    var out = "content \(d["content_id"] ?? "?")"
    if let ch = d["channel"] as? String, !ch.isEmpty { out += " on \(ch)" }
    let topics = d["topics"] as? [String] ?? [], tags = (d["hashtags"] as? [String] ?? []).map(hashtag)
    if !(topics + tags).isEmpty { out += "  (" + (topics + tags).joined(separator: ", ") + ")" }
    if let post = d["post"] as? [String: Any] {
        out += String(format: "\n  the post itself: %@ (score %+.2f)", post["label"] as? String ?? "?", num(post["score"]))
    }
    let dist = d["distribution"] as? [String: Any] ?? [:]
    func share(_ k: String) -> String {
        let n = Int(num(dist[k]))
        return comments > 0 ? "\(k) \(n) (\(Int((100 * Double(n) / Double(comments)).rounded()))%)" : "\(k) \(n)"
    }
    out += "\n  \(comments) comment\(comments == 1 ? "" : "s"): " + ["negative", "neutral", "positive"].map(share).joined(separator: ", ")
    if comments > 0 { out += String(format: "\n  mean score %+.2f (-1 most negative … +1 most positive)", num(d["mean_score"])) }
    let worst = d["most_negative"] as? [[String: Any]] ?? []
    if !worst.isEmpty {
        out += "\n  most negative comments:"
        for c in worst {
            var text = (c["text"] as? String ?? "").replacingOccurrences(of: "\n", with: " ")
            if text.count > 100 { text = String(text.prefix(99)) + "…" }
            out += String(format: "\n    %+.2f  %@: ", num(c["score"]), c["user_id"] as? String ?? "?") + "\"\(text)\""
        }
    }
    return out
}

struct Sentiment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the sentiment job and read its results: per content, per key over time, complaint themes.",
        discussion: reflow("""
        Keys are "topic:<topic>", "hashtag:<tag>" (lowercase, no #) and "brand:<keyword>". Each user's attitude
        toward the keys they comment on is part of `chorus profile get`. Details: docs/sentiment.md.
        """),
        subcommands: [Run.self, Content.self, Keys.self, Series.self, Themes.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Submit a sentiment job, wait, and print the mix per channel and the alerts.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var job: SentimentJobOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let j = try await watchJob(c, try await c.submit(kind: SentimentJob.kind, params: job.params).id, json: client.json)
                guard j.state == .succeeded else {
                    throw ChorusError(.jobFailed, "sentiment job \(j.id) \(j.state == .cancelled ? "was cancelled" : "failed"): \(j.error)")
                }
                if client.json { printJob(j, json: true) } else { printSentimentSummary(jsonObject(j.summaryJson) as? [String: Any] ?? [:]) }
            }
        }
    }

    struct Content: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One content item's sentiment: distribution, mean score, most negative comments.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Content id.") var contentId: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                guard let s = try await c.contentSentiment(contentId) else {
                    throw ChorusError(.notFound, "no sentiment for content '\(contentId)'", hint: "run `chorus sentiment run` first")
                }
                let d = jsonObject(s) as? [String: Any] ?? [:]
                if client.json { printJSON(d) } else { print(contentSentimentText(d)) }
            }
        }
    }

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Topics, hashtags and brands by volume, with mean score and negative share.")
        @OptionGroup var client: ClientOptions
        @Option(help: "How many.") var limit = 30
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let keys = (jsonObject(try await c.sentimentQuery("keys")) as? [[String: Any]] ?? []).prefix(limit)
                if client.json { printJSON(Array(keys)); return }
                for k in keys {
                    print("\((k["key"] as? String ?? "").padding(toLength: 30, withPad: " ", startingAt: 0)) "
                          + String(format: "%8d texts  mean %+.3f  negative %.1f%%", k["texts"] as? Int ?? 0,
                                   k["mean_score"] as? Double ?? 0, 100 * (k["negative_share"] as? Double ?? 0)))
                }
            }
        }
    }

    struct Series: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A key's series: texts, negative/neutral/positive and mean score per hour (or --daily).",
            discussion: "JSON with --json: {key, job, hours|days, buckets: [[texts, negative, neutral, positive, score sum]]}.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Key, e.g. topic:tech.") var key: String
        @Flag(help: "Daily buckets.") var daily = false
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let obj = jsonObject(try await c.sentimentQuery("series", key: key, daily: daily)) as? [String: Any] ?? [:]
                if client.json { printJSON(obj); return }
                let times = (obj[daily ? "days" : "hours"] as? [Int]) ?? []
                let buckets = obj["buckets"] as? [[Double]] ?? []
                print("\(key) (\(daily ? "daily" : "hourly"), job \(obj["job"] ?? "")):")
                for (t, b) in zip(times, buckets) where b.count == 5 {
                    let at = Date(timeIntervalSince1970: TimeInterval(t * (daily ? 86400 : 3600)))
                    print("  \(ISO8601DateFormatter().string(from: at))  " + String(format: "%6.0f texts  neg %5.0f  neu %5.0f  pos %5.0f  mean %+.3f",
                                                                                     b[0], b[1], b[2], b[3], b[0] > 0 ? b[4] / b[0] : 0))
                }
            }
        }
    }

    struct Themes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Group the negative comments about a key into recurring complaint themes (size, terms, examples).",
            discussion: "Example: chorus sentiment themes brand:acme --k 5")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Key, e.g. topic:tech or brand:acme.") var key: String
        @Option(help: "How many themes.") var k = 5
        @Option(help: "Model name.") var model = "sentiment-default"
        @Option(help: "Brand keywords (needed for brand: keys).") var keywords: String?
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                var p = ["key": key, "k": String(k), "model": model]
                if let keywords { p["keywords"] = keywords }
                else if key.hasPrefix("brand:") { p["keywords"] = String(key.dropFirst(6)) }
                let j = try await watchJob(c, try await c.submit(kind: ThemesJob.kind, params: p).id, json: client.json)
                guard j.state == .succeeded else { throw ChorusError(.jobFailed, "themes job \(j.id) failed: \(j.error)") }
                let s = jsonObject(j.summaryJson) as? [String: Any] ?? [:]
                if client.json { printJSON(s); return }
                print("\(key): \(s["negative_comments"] ?? 0) negative of \(s["comments_matched"] ?? 0) comments")
                for (i, t) in (s["themes"] as? [[String: Any]] ?? []).enumerated() {
                    print(String(format: "%d. ", i + 1) + ((t["terms"] as? [String]) ?? []).joined(separator: ", ")
                          + String(format: "  (%d comments, %.0f%%)", t["size"] as? Int ?? 0, 100 * (t["share"] as? Double ?? 0)))
                    for e in (t["examples"] as? [String] ?? []) { print("     \"\(e)\"") }
                }
            }
        }
    }
}

struct Alerts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List brand-monitoring alerts (volume spikes, sentiment dips); --watch keeps checking.",
        discussion: reflow("""
        Alerts come from the `sentiment` job: for every topic, hashtag and brand keyword, each hour is compared with a
        rolling baseline of the hours before it (--window-hours). A volume spike is a count above mean + sensitivity × sd;
        a sentiment dip is a negative share above the baseline's by sensitivity × sd. A key stays quiet for
        --cooldown-hours after an alert. Each alert says why: its top terms against the baseline and example comments.
        --watch submits a sentiment job every --every seconds and prints the alerts that are new (stop with Ctrl-C).
        """))
    @OptionGroup var client: ClientOptions
    @OptionGroup var job: SentimentJobOptions
    @Flag(help: "Keep checking: run the sentiment job every --every seconds and print new alerts.") var watch = false
    @Option(help: "Seconds between checks with --watch.") var every = 60.0

    func validate() throws {
        guard every.isFinite, every >= 0, every <= 86_400 else {
            throw ValidationError("--every must be 0...86400 seconds")
        }
    }
    @Option(help: "How many alerts to list (newest first).") var limit = 50
    @Option(help: "With --watch: stop after this many checks (0 = never).") var checks = 0

    /// Alerts grouped by incident: one block per burst, with each key's alert on a line, then the why terms and
    /// distinct example comments once. JSON: one alert object per line, as stored.
    func printAlerts(_ list: [[String: Any]]) {
        if client.json {
            for a in list {
                if let d = try? JSONSerialization.data(withJSONObject: a, options: [.sortedKeys]) { print(String(decoding: d, as: UTF8.self)) }
            }
            return
        }
        var order: [String] = [], groups: [String: [[String: Any]]] = [:]
        for a in list {
            let id = a["incident"] as? String ?? a["id"] as? String ?? ""
            if groups[id] == nil { order.append(id) }
            groups[id, default: []].append(a)
        }
        for id in order {
            let g = groups[id]!
            let keys = Array(Set(g.compactMap { $0["key"] as? String })).sorted()
            let kinds = Array(Set(g.compactMap { $0["kind"] as? String })).sorted()
            print("\(g[0]["at"] ?? "")  " + (g.count == 1 ? "\(kinds.joined())  \(keys.joined())"
                : "incident: \(kinds.joined(separator: ", ")) on \(keys.count) keys (\(keys.joined(separator: ", ")))"))
            let width = min(28, g.compactMap { ($0["key"] as? String)?.count }.max() ?? 0)
            for a in g {
                let kind = a["kind"] as? String ?? ""
                let value = kind == "sentiment_dip"
                    ? String(format: "negative share %.0f%% vs %.0f%% baseline", 100 * (a["value"] as? Double ?? 0),
                             100 * (a["baseline"] as? Double ?? 0))
                    : String(format: "%.0f texts vs %.1f baseline", a["value"] as? Double ?? 0, a["baseline"] as? Double ?? 0)
                let key = a["key"] as? String ?? ""
                if g.count == 1 { print("    \(value)") } else {
                    print("    " + key.padding(toLength: max(width, key.count), withPad: " ", startingAt: 0) + "  \(kind.padding(toLength: 13, withPad: " ", startingAt: 0))  \(value)")
                }
            }
            var why: [String] = []
            for a in g { for t in a["why"] as? [String] ?? [] where !why.contains(t) { why.append(t) } }
            print("    why: " + why.prefix(6).joined(separator: ", "))
            var seen = Set<String>()
            let examples = g.flatMap { $0["examples"] as? [String] ?? [] }.filter { seen.insert($0.lowercased()).inserted }
            for e in examples.prefix(3) { print("    e.g. \"\(e)\"") }
        }
    }

    func run() async throws {
        setupLogging(level: .warning)
        try await guarded {
            let c = try client.client()
            defer { c.close() }
            var seen = Set<String>()
            let existing = jsonObject(try await c.sentimentQuery("alerts", limit: limit)) as? [[String: Any]] ?? []
            if !watch {
                if existing.isEmpty && !client.json { print("no alerts stored; run `chorus sentiment run` (or `chorus alerts --watch`)") }
                if client.json { printJSON(existing) } else { printAlerts(existing) }
                return
            }
            for a in existing { seen.insert(a["id"] as? String ?? "") }
            var n = 0
            while checks == 0 || n < checks {
                n += 1
                let j = try await c.watch(try await c.submit(kind: SentimentJob.kind, params: job.params).id) { _ in }
                if j.state != .succeeded { eprint("sentiment job \(j.id) failed: \(j.error)") }
                let all = jsonObject(try await c.sentimentQuery("alerts", limit: 1000)) as? [[String: Any]] ?? []
                let fresh = all.filter { !seen.contains($0["id"] as? String ?? "") }.reversed()
                for a in fresh { seen.insert(a["id"] as? String ?? "") }
                printAlerts(Array(fresh))
                fflush(nil)
                if checks != 0 && n >= checks { break }
                try await Task.sleep(for: .milliseconds(Int(every * 1000)))
            }
        }
    }
}
