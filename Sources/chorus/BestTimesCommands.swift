import ArgumentParser
import ChorusAnalytics
import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation

/// `chorus best-times`: the week × hour heatmap of expected engagement per post that the last `best-times` job
/// stored, with the recommended slots and their intervals (docs/forecasting.md "Best time to post").
struct BestTimesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "best-times",
        abstract: "The best hours of the week to post, per channel (and segment), from the last `best-times` job.",
        discussion: reflow("""
        A `best-times` job (chorus job submit best-times --wait) scores each of the 168 hours of the week (UTC) by
        the expected engagements (likes, comments, shares, clicks, conversions) per post published in that hour:
        the views per post times the engagements per view of the posts published then, each shrunk toward the
        channel's day + hour profile when the slot has few posts. It is not when the audience is active: it is what
        posts published at that hour received. With a `segments` job run before it, each (channel, segment) gets
        its own week, counting only the engagement of that segment's users, shrunk toward the channel's week.

        The heatmap has a row per day (Mon..Sun) and a column per hour (00..23); the shade of a cell is its score
        against the week's range (legend below it); 1, 2, 3 mark the recommended slots. A slot is recommended only
        when its score beats the median slot's beyond both uncertainties (at the job's level, simultaneous over the
        168 slots); otherwise the command says "no clear best time". Each recommended slot is listed with its
        interval (the job's `level`, default 90%) and its lift over the median slot.

        Without --channel every channel is shown; --segment S shows segment S's week in each channel (or in C).
        Exit 66 when no best-times job has run, the channel is unknown or the segment has no week.
        JSON with --json: {job_id, level, rule, weeks: [{channel, segment?, posts, exposure, median,
        recommended: [...], clear_best, slots: [168 × {slot, day, hour, name, posts, exposure, engagements, score,
        lower, upper, rate, exposure_per_post, raw_per_post?}], tau2, dispersion}]}.

        Examples:
          chorus job submit best-times --wait && chorus best-times
          chorus best-times --channel x
          chorus best-times --channel instagram --segment 2 --json
        """))
    @OptionGroup var client: ClientOptions
    @Option(help: ArgumentHelp("Only this channel (as in the data, e.g. x).", valueName: "C")) var channel: String?
    @Option(help: ArgumentHelp("This segment's week (ids from `chorus segments list`).", valueName: "S")) var segment: Int?
    @Flag(help: "Cells as digits 0–9 (deciles of the week's range) instead of shade blocks.") var digits = false

    func validate() throws {
        if let channel, channel.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--channel must not be empty") }
        if let segment, segment < 0 { throw ValidationError("--segment must be ≥ 0 (got \(segment))") }
    }

    func run() async throws {
        setupLogging(level: .warning)
        try await guarded {
            let c = try client.client()
            defer { c.close() }
            guard let (ib, job) = try await c.jobResult(kind: BestTimesJob.kind, key: "index"),
                  let index = (try? JSONSerialization.jsonObject(with: Data(ib))) as? [String: Any] else {
                throw ChorusError(.notFound, "no best-times job has stored results yet",
                                  hint: "run `chorus job submit best-times --wait` (after ingesting content and interactions; "
                                      + "after `segments` for per-segment weeks)")
            }
            let channels = index["channels"] as? [String] ?? []
            let segs = (index["segments"] as? [String: [Any]] ?? [:]).mapValues { $0.compactMap { ($0 as? NSNumber)?.intValue } }
            var wanted = channels
            if let channel {
                let name = channel.trimmingCharacters(in: .whitespaces)
                guard channels.contains(name) else {
                    throw ChorusError(.notFound, "no best-times week for channel '\(name.prefix(60))' in \(job)",
                                      hint: "channels: " + (channels.isEmpty ? "none" : channels.joined(separator: ", ")))
                }
                wanted = [name]
            }
            var keys: [String] = []
            if let segment {
                guard !segs.isEmpty else {
                    throw ChorusError(.notFound, "\(job) has no segment weeks: no segments existed when it ran",
                                      hint: "run `chorus job submit segments --wait`, then `chorus job submit best-times --wait`")
                }
                wanted = wanted.filter { segs[$0]?.contains(segment) == true }
                guard !wanted.isEmpty else {
                    let have = Set(segs.values.flatMap { $0 }).sorted().map(String.init).joined(separator: ", ")
                    throw ChorusError(.notFound, "no week for segment \(segment)" + (channel.map { " on channel \($0)" } ?? "") + " in \(job)",
                                      hint: "segments with a week: \(have)" + (channel.map { "; on \($0): " + (segs[$0]?.map(String.init).joined(separator: ", ") ?? "none") } ?? ""))
                }
                keys = wanted.map { "segment/\($0)/\(segment)" }
            } else {
                keys = wanted.map { "channel/\($0)" }
            }
            var weeks: [[String: Any]] = []
            for k in keys {
                guard let (b, _) = try await c.jobResult(kind: BestTimesJob.kind, key: k),
                      let w = (try? JSONSerialization.jsonObject(with: Data(b))) as? [String: Any] else {
                    throw ChorusError(.internal, "the stored best-times week '\(k)' of \(job) is missing or not JSON")
                }
                weeks.append(w)
            }
            if client.json {
                printJSON(["job_id": job, "level": index["level"] ?? 0.9, "rule": index["rule"] ?? "", "weeks": weeks])
                return
            }
            var out: [String] = []
            for w in weeks {
                if !out.isEmpty { out.append("") }
                out += Self.render(w, digits: digits)
            }
            out.append("")
            out.append("from \(job); rule: \(index["rule"] as? String ?? "")")
            print(out.joined(separator: "\n"))
        }
    }

    static let shades: [Character] = [" ", "░", "▒", "▓", "█"]

    /// A week as text: title, the 7 × 24 heatmap, the legend, and the recommended slots (or "no clear best time").
    static func render(_ w: [String: Any], digits: Bool) -> [String] {
        func num(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? 0 }
        func f(_ x: Double) -> String { String(format: "%.3g", x) }
        let slots = w["slots"] as? [[String: Any]] ?? []
        let scores = slots.map { num($0["score"]) }
        let lo = scores.min() ?? 0, hi = scores.max() ?? 0
        let rec = w["recommended"] as? [[String: Any]] ?? []
        var rank: [Int: Int] = [:]
        for (i, r) in rec.enumerated() { rank[(r["slot"] as? NSNumber)?.intValue ?? -1] = i + 1 }
        let level = Int((num(w["level"]) * 100).rounded())
        let per = (w["exposure"] as? String) == "posts" ? "engagements per post (the data have no views)" : "expected engagements per post"
        var out = ["\(w["channel"] ?? "?")" + (w["segment"].map { ", segment \($0)" } ?? "")
                   + ": \(per) by hour posted (UTC), \(Int(num(w["posts"]))) posts"]
        out.append("     " + stride(from: 0, to: 24, by: 3).map { String(format: "%02d    ", $0) }.joined())
        for d in 0..<7 {
            var line = BestTimes.dayNames[d] + "  "
            for h in 0..<24 {
                let s = d * 24 + h
                let x = s < scores.count ? scores[s] : 0
                let t = hi > lo ? (x - lo) / (hi - lo) : 0
                let cell: Character = digits ? Character(String(min(9, Int(t * 10)))) : shades[min(4, Int(t * 5))]
                if let r = rank[s] { line += "\(r)\(cell)" } else { line += "\(cell)\(cell)" }
            }
            out.append(line)
        }
        let step = (hi - lo) / (digits ? 10 : 5)
        if digits {
            out.append("legend: digit d = score in [\(f(lo)) + d·\(f(step)), …) ; 1 2 3 in front: recommended")
        } else {
            out.append("legend: " + (0..<5).map { "\(shades[$0] == " " ? "' '" : String(shades[$0])) \(f(lo + Double($0) * step))–\(f(lo + Double($0 + 1) * step))" }
                .joined(separator: "  ") + "   1 2 3: recommended")
        }
        let med = w["median"] as? [String: Any] ?? [:]
        out.append("median slot \(med["name"] ?? "?"): \(f(num(med["score"]))) [\(f(num(med["lower"]))), \(f(num(med["upper"])))]")
        if rec.isEmpty {
            out.append("no clear best time: no slot beats the median slot beyond the uncertainty")
        } else {
            out.append("recommended (\(level)% intervals):")
            for (i, r) in rec.enumerated() {
                out.append("  \(i + 1). \(r["name"] ?? "?")  \(f(num(r["score"]))) [\(f(num(r["lower"]))), \(f(num(r["upper"])))]"
                           + "  ×\(String(format: "%.2f", num(r["lift"]))) the median (at least ×\(String(format: "%.2f", num(r["lift_lower"]))))"
                           + ", \(Int(num(r["posts"]))) posts")
            }
        }
        return out
    }
}
