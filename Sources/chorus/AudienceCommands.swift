import ArgumentParser
import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation

// `chorus segments list|show`: the segment table the last `segments` job stored (docs/audience.md).

struct Segments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The audience segments of the last `segments` job, explained.",
        discussion: reflow("""
        A `segments` job clusters the users by their profile (engagement, activity by type, channel mix,
        active hours, interests, and the ALS embedding and topic attitudes when present) and stores a
        table: each segment's size and share, a name and a description naming the features that most
        distinguish it from the whole audience (with effect sizes), its top topics and hashtags, its
        channel mix and a few representative users. Ids stay the same across re-runs on similar data.

        Run one with `chorus job submit segments --wait` (after `features`; `chorus job submit segments
        --help` lists its parameters). Each user's segment is in `chorus profile get USER`.
        Method and limits: docs/audience.md.
        """),
        subcommands: [List.self, Show.self])

    /// The stored table, or a not-found error that says what to run.
    static func table(_ c: ChorusClient) async throws -> (table: [String: Any], job: String) {
        guard let r = try await c.jobResult(kind: SegmentsJob.kind, key: "table"),
              let t = (try? JSONSerialization.jsonObject(with: Data(r.value))) as? [String: Any] else {
            throw ChorusError(.notFound, "no segments yet",
                              hint: "run `chorus job submit features --wait`, then `chorus job submit segments --wait`")
        }
        return (t, r.jobID)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every segment: id, size, share, name and description.",
            discussion: "JSON with --json: the whole table {job_id, users, insufficient_data, features, segments: [...]}.")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let (t, job) = try await Segments.table(c)
                if client.json { printJSON(t); return }
                let segs = t["segments"] as? [[String: Any]] ?? []
                let few = t["insufficient_data"] as? Int ?? 0
                print("\(segs.count) segments of \(t["users"] ?? 0) users from \(job)"
                      + (few == 1 ? "; 1 user has too little data" : few > 1 ? "; \(few) users have too little data" : ""))
                print("   id  share   name")
                for line in SegmentsJob.segmentLines(segs) { print(line) }
                print("`chorus segments show ID` gives one segment's features, topics, channels and users.")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One segment: what distinguishes it (with effect sizes), topics, hashtags, channels, users.",
            discussion: reflow("""
            Effect size: (segment mean − audience mean) / audience standard deviation, per feature; the
            largest five are shown. JSON with --json: the segment's entry of the table.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The segment id (`chorus segments list`).") var id: Int
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let (t, job) = try await Segments.table(c)
                let segs = t["segments"] as? [[String: Any]] ?? []
                guard let s = segs.first(where: { ($0["id"] as? Int) == id }) else {
                    throw ChorusError(.notFound, "no segment \(id) in \(job)",
                                      hint: "ids: " + segs.compactMap { ($0["id"] as? Int).map(String.init) }.joined(separator: ", "))
                }
                if client.json { printJSON(s); return }
                print(segmentText(s, job: job))
            }
        }
    }

    static func segmentText(_ s: [String: Any], job: String) -> String {
        func num(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? 0 }
        var out = ["segment \(s["id"] ?? "?"): \(s["name"] ?? "")  (\(s["users"] ?? 0) users, "
                   + String(format: "%.1f%%", 100 * num(s["share"])) + " of the audience; \(job))", ""]
        out.append("what distinguishes it (effect size = difference from the audience in audience standard deviations)")
        for t in s["traits"] as? [[String: Any]] ?? [] {
            out.append(String(format: "  %+5.2f  ", num(t["effect_size"])) + "\(t["text"] ?? "")")
        }
        func terms(_ k: String) -> String {
            (s[k] as? [[String: Any]] ?? []).map { "\($0["name"] ?? "") " + String(format: "%.0f%%", 100 * num($0["share"])) }
                .joined(separator: ", ")
        }
        out.append("")
        out.append("top topics     " + terms("top_topics"))
        out.append("top hashtags   " + terms("top_hashtags"))
        let mix = (s["channel_mix"] as? [String: Any] ?? [:]).sorted { num($0.value) > num($1.value) }
            .map { "\($0.key) " + String(format: "%.0f%%", 100 * num($0.value)) }.joined(separator: ", ")
        out.append("channels       " + mix)
        out.append("representative " + ((s["representative_users"] as? [String] ?? []).joined(separator: ", "))
                   + "  (closest to the centre; `chorus profile get USER`)")
        return out.joined(separator: "\n")
    }
}
