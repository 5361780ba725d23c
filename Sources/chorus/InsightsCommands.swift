import ArgumentParser
import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation

/// `chorus insights ...`: reads what the last `content-insights` job kept on the coordinator.
struct Insights: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What makes content engage, from the last `content-insights` job.",
        discussion: reflow("""
        A `content-insights` job (chorus job submit content-insights --wait) fits a ridge Poisson regression of each
        post's engagements (likes, comments, shares, clicks, conversions) on its attributes, with its views as the
        exposure, so every effect is a ratio of engagement rates (engagements per view) against a reference level,
        with a bootstrap interval over posts. See docs/forecasting.md, "What makes content engage".
        """),
        subcommands: [Content.self])

    struct Content: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the attributes that raise or lower a post's engagement rate, largest first.",
            discussion: reflow("""
            Shows the top --n positive and negative drivers of the last content-insights job: the attributes whose
            interval (95% unless the job's `level` says otherwise) lies wholly above or below no effect, e.g.
            "video posts: +38% engagement rate [+29%, +47%] vs image". Attributes: channel, topic, the most
            frequent hashtags, media type, text length (short under 80 characters, medium 80–139, long 140+),
            hour and day posted (UTC, per channel), the post's sentiment (after a `sentiment` job) and whether the
            author is in the top 10% by PageRank (after an `influence` job). --all lists every effect, also those
            within the uncertainty. --channel C shows the fit on that channel's posts only; --segment S the fit on
            the engagement of that segment's users (after a `segments` job). --json prints the stored result.
            Example: chorus job submit content-insights --wait && chorus insights content --channel tiktok
            """))
        @OptionGroup var client: ClientOptions
        @Option(help: ArgumentHelp("Only this channel's posts (e.g. tiktok).", valueName: "C")) var channel: String?
        @Option(help: ArgumentHelp("The engagement of this segment's users (from the last `segments` job).",
                                   valueName: "S")) var segment: Int?
        @Option(parsing: .unconditional, help: ArgumentHelp("Drivers of each sign (1...100).", valueName: "K")) var n = 5
        @Flag(help: "Every effect, also those whose interval contains no effect.") var all = false

        func validate() throws {
            guard (1...100).contains(n) else { throw ValidationError("--n must be between 1 and 100 (got \(n))") }
            if channel != nil, segment != nil {
                throw ValidationError("give --channel or --segment, not both (a segment's fit covers all its channels)")
            }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let key = ContentInsightsJob.resultKey(channel: channel, segment: segment)
                guard let (bytes, job) = try await c.jobResult(kind: ContentInsightsJob.kind, key: key) else {
                    if channel != nil || segment != nil,
                       let (scopes, job) = try await c.jobResult(kind: ContentInsightsJob.kind, key: "scopes") {
                        let o = (try? JSONSerialization.jsonObject(with: Data(scopes)) as? [String: Any]) ?? [:]
                        let have = (o["scopes"] as? [[String: Any]] ?? []).compactMap { $0["scope"] as? String }
                        let why = (o["skipped"] as? [[String: Any]] ?? []).first { ($0["scope"] as? String) == key }
                        throw ChorusError(.notFound, "\(job) has no fit for \(key)"
                                          + (why.map { ": \($0["reason"] as? String ?? "skipped")" } ?? ""),
                                          hint: "fitted scopes: \(have.joined(separator: ", "))"
                                          + (segment != nil ? "; segments need a `segments` job before content-insights" : ""))
                    }
                    throw ChorusError(.notFound, "no content insights yet",
                                      hint: "run `chorus job submit content-insights --wait` first (after ingesting content and interactions)")
                }
                guard let d = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                    throw ChorusError(.internal, "the stored result \(key) of \(job) is not JSON")
                }
                let drivers = d["drivers"] as? [String: Any] ?? [:]
                let pos = Array((drivers["positive"] as? [[String: Any]] ?? []).prefix(n))
                let neg = Array((drivers["negative"] as? [[String: Any]] ?? []).prefix(n))
                if client.json {
                    var out = d
                    if !all { out["effects"] = nil }
                    out["drivers"] = ["positive": pos, "negative": neg]
                    printJSON(out)
                    return
                }
                func num(_ k: String) -> Double { (d[k] as? NSNumber)?.doubleValue ?? 0 }
                let level = Int((100 * ((d["level"] as? NSNumber)?.doubleValue ?? 0.95)).rounded())
                print("what drives engagement rate (\(key); \(Int(num("posts"))) posts, "
                      + String(format: "%.0f views, %.0f engagements, %.2f%% per view; %@)",
                               num("views"), num("engagements"), 100 * num("engagement_rate"), job))
                print("effects vs the reference level, with \(level)% bootstrap intervals over posts ("
                      + "\(Int(num("bootstrap"))) resamples, ridge λ = \(String(format: "%g", num("lambda"))))")
                for (title, list) in [("raise it:", pos), ("lower it:", neg)] {
                    print(title)
                    if list.isEmpty { print("  nothing beyond the uncertainty") }
                    for e in list { print("  " + (e["words"] as? String ?? "")) }
                }
                if all {
                    print("every effect (group, level, log rate ratio [interval], posts):")
                    for e in d["effects"] as? [[String: Any]] ?? [] {
                        func v(_ k: String) -> String {
                            (e[k] as? NSNumber).map { String(format: "%+.3f", $0.doubleValue) } ?? "?"
                        }
                        let ch = (e["channel"] as? String).map { " (\($0))" } ?? ""
                        print("  \(e["group"] as? String ?? "")\(ch) \(e["level"] as? String ?? "") vs "
                              + "\(e["reference"] as? String ?? ""): \(v("log_effect")) [\(v("low")), \(v("high"))], "
                              + "\((e["posts"] as? NSNumber)?.intValue ?? 0) posts")
                    }
                }
            }
        }
    }
}
