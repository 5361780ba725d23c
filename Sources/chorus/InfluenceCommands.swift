import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation

/// `chorus influencers`: the top list the latest `influence` job stored, with what makes each user rank.
struct Influencers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the most influential users from the latest `influence` job, and why each ranks.",
        discussion: reflow("""
        Reads the top list that the last `influence` job stored (run it first: chorus job submit influence --wait;
        topic lists need the `features` job before it). Users are ranked by PageRank on the follower graph: a follow
        is a vote for the followed user, weighted by the follower's own rank, so a user ranks high when influential
        users follow them, not only many. With --topic T the ranking is topic-sensitive PageRank: the random jumps
        go to users interested in T (their profile's top topics), so the list favours users that T's audience
        follows.

        Columns: RANK (1 = most influential; by topic score with --topic), USER, PAGERANK (the score; all scores
        add up to 1), PCTL (percentile by PageRank among users with a follow edge), FOLLOWERS and FOLLOWING (follow
        edges), ENG.RATE (engagements per view of the user's own content), SHARES (of that content) and ENG.INFL
        (engagement influence = followers × engagement rate × (1 + shares/views); "-" when the content has no
        views). A user high by PageRank but with few followers is followed by influential users; one with many
        followers but a low rank is followed mostly by users nobody follows. docs/audience.md ("Influence") has
        the method.

        Examples:
          chorus influencers --n 10
          chorus influencers --topic tech --json
          chorus job submit influence --param topic_list=tech,sports --wait   # rank chosen topics
        """))
    @OptionGroup var client: ClientOptions
    @Option(help: ArgumentHelp("Rank by topic-sensitive PageRank for this topic (one the job ranked).", valueName: "T"))
    var topic: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("How many users (1...1000; the job keeps top_n, default 100).",
                                                        valueName: "N"))
    var n = 20

    func validate() throws {
        guard (1...1000).contains(n) else { throw ValidationError("--n must be between 1 and 1000 (got \(n))") }
        if let topic, topic.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--topic must not be empty") }
    }

    func run() async throws {
        setupLogging(level: .warning)
        try await guarded {
            let c = try client.client()
            defer { c.close() }
            let key = topic.map { "top-topic/" + $0.trimmingCharacters(in: .whitespaces) } ?? "top"
            guard let (bytes, jobID) = try await c.jobResult(kind: "influence", key: key) else {
                guard let topic else {
                    throw ChorusError(.notFound, "no influence job has stored results yet",
                                      hint: "ingest follows, then run `chorus job submit influence --wait`")
                }
                let ranked = try await c.jobResult(kind: "influence", key: "topics")
                    .flatMap { try? JSONSerialization.jsonObject(with: Data($0.value)) as? [String] } ?? []
                throw ChorusError(.notFound, "the last influence job did not rank topic '\(topic.prefix(60))'",
                                  hint: (ranked.isEmpty ? "it ranked no topics (run `features` before it)"
                                         : "it ranked: " + ranked.joined(separator: ", "))
                                  + "; rank this one with `chorus job submit influence --param topic_list=\(topic.prefix(60)) --wait`")
            }
            guard let list = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw ChorusError(.internal, "the stored influence list '\(key)' is not JSON")
            }
            let users = (list["users"] as? [[String: Any]] ?? []).prefix(n)
            if client.json {
                var out = list
                out["users"] = Array(users)
                out["job_id"] = jobID
                printJSON(out)
                return
            }
            print(Self.table(list: list, users: Array(users), jobID: jobID, topic: topic, asked: n).joined(separator: "\n"))
        }
    }

    static func table(list: [String: Any], users: [[String: Any]], jobID: String, topic: String?, asked: Int) -> [String] {
        func num(_ k: String, _ d: [String: Any]) -> Double? { (d[k] as? NSNumber)?.doubleValue }
        let ranked = Int(num("ranked_users", list) ?? 0)
        var out = [topic.map { "influencers for topic \($0) by topic-sensitive PageRank" } ?? "influencers by PageRank on the follower graph"]
        out[0] += " (job \(jobID), \(ranked) ranked users, damping \(String(format: "%.2f", num("damping", list) ?? 0.85)))"
        if users.isEmpty {
            out.append("no ranked users: the graph has no follow edges")
            return out
        }
        var header = ["RANK", "USER"]
        if topic != nil { header += ["TOPIC SCORE", "PR RANK"] }
        header += ["PAGERANK", "PCTL", "FOLLOWERS", "FOLLOWING", "ENG.RATE", "SHARES", "ENG.INFL"]
        var rows = [header]
        for u in users {
            var r = [String(Int(num("rank", u) ?? 0)), u["user_id"] as? String ?? "?"]
            if topic != nil { r += [String(format: "%.4g", num("score", u) ?? 0), String(Int(num("pagerank_rank", u) ?? 0))] }
            r += [String(format: "%.4g", num("pagerank", u) ?? 0), String(format: "%.1f", num("percentile", u) ?? 0),
                  String(Int(num("followers", u) ?? 0)), String(Int(num("following", u) ?? 0)),
                  num("engagement_rate", u).map { String(format: "%.3f", $0) } ?? "-",
                  String(Int(num("shares", u) ?? 0)),
                  num("engagement_influence", u).map { String(format: "%.1f", $0) } ?? "-"]
            rows.append(r)
        }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for r in rows {
            out.append(r.enumerated().map { i, c in
                i == 1 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                       : String(repeating: " ", count: widths[i] - c.count) + c
            }.joined(separator: "  "))
        }
        if users.count < asked, users.count < ranked { out.append("(\(users.count) stored; raise the job's top_n for more)") }
        return out
    }
}
