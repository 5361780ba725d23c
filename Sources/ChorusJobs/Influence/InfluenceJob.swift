import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// Job kind `influence`: PageRank on the follower graph (a follow u → v is a vote of u for v), topic-sensitive
/// PageRank for the audience's main topics, and a plain engagement influence per author. docs/audience.md
/// "Influence" has the method, the convergence rule and the check against networkx.
///
/// Stages:
/// - `influence-nodes`: each partition's nodes (users with a record or a follow edge), their follow counts and
///   their topic interests (the `features` profile's top_topics).
/// - `influence-graph` (broadcast: the index of every node): each partition builds the in-edge lists of its nodes
///   from followIn (local to the followee) with global source indices, and keeps them in the job's worker state.
/// - `influence-step-N`, one per iteration (broadcast: x[u]/outdeg(u) of every node for each vector still
///   iterating): each partition sums the inflow of its own nodes over their cached in-edges, so the contributions
///   are aggregated where they arrive and one value per node crosses the network each way, never one per edge.
///   The coordinator keeps the vectors, adds damping, dangling mass and teleport, and checks convergence.
/// - `influence-authors`: engagement with each author's content (content and its interactions are local to the
///   content's partition).
/// - `influence-write` (broadcast: final scores, ranks and author totals): the profile section `influence`.
///
/// The in-edge lists are rebuilt from the store when a partition's are missing (a worker restart, a moved
/// partition); the index is sent again to a new worker incarnation. Sums are taken in a fixed order (in-edges in
/// key order, vectors elementwise on the coordinator), so 1 and N workers give identical scores.
public enum InfluenceJob: Job {
    public static let kind = "influence"
    public static let about = "PageRank on the follower graph, topic PageRank and engagement influence per user"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; influence does not use it"),
        .init("damping", .number(0.01...0.99), "0.85", "PageRank damping α (the chance to follow an edge)"),
        .init("tolerance", .number(1e-15...0.01), "1e-6",
              "stop when the L1 change of the whole vector is below nodes × tolerance (networkx's rule)"),
        .init("max_iterations", .integer(1...1000), "100", "iterations at most (per vector)"),
        .init("topics", .integer(0...20), "3",
              "topic PageRank for this many main topics (largest total top_topics weight; needs `features`)"),
        .init("topic_list", .text(maxBytes: 2048), "",
              "comma-separated topics to rank instead of the main ones (e.g. tech,sports)"),
        .init("top_n", .integer(1...1000), "100", "users kept in each stored top list (`chorus influencers`)"),
    ]

    public static let role: UInt8 = 0x61
    static let profileRole = ShardKeys.Derived.profile.rawValue

    public static func tasksPerPartition(_ params: JobParams) -> Int { 4 + params.int("max_iterations", 100) }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        let list = topicList(params)
        if list.count > 20 {
            throw ChorusError(.usage, "influence: topic_list names \(list.count) topics; at most 20",
                              hint: "rank fewer topics per job, or use topics=N for the main ones")
        }
        if let bad = list.first(where: { $0.isEmpty }) {
            throw ChorusError(.usage, "influence: topic_list has an empty topic ('\(bad)')",
                              hint: "write topics separated by commas: topic_list=tech,sports")
        }
    }

    static func topicList(_ params: JobParams) -> [String] {
        let raw = params.string("topic_list", "").trimmingCharacters(in: .whitespaces)
        guard !raw.isEmpty else { return [] }
        return raw.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    public static var profileSections: [ProfileSection] {
        [ProfileSection("influence", role: role,
                        csvFields: ["state", "pagerank", "rank", "percentile", "followers", "engagement_influence"],
                        describe: describe)]
    }

    @Sendable static func describe(_ o: [String: Any]) -> [String] {
        func num(_ k: String) -> Double? { (o[k] as? NSNumber)?.doubleValue }
        var out = ["influence (PageRank on the follower graph):"]
        let followers = Int(num("followers") ?? 0), following = Int(num("following") ?? 0)
        if (o["state"] as? String) == "no_edges" {
            out.append("  no follow edges: not ranked (PageRank \(String(format: "%.3g", num("pagerank") ?? 0)) is teleport only)")
        } else {
            let rank = Int(num("rank") ?? 0), of = Int(num("ranked_users") ?? 0)
            out.append(String(format: "  rank %d of %d (percentile %.1f), PageRank %.4g", rank, of,
                              num("percentile") ?? 0, num("pagerank") ?? 0))
        }
        out.append("  followers \(followers), following \(following)")
        if let e = num("engagement_influence") {
            out.append(String(format: "  engagement influence %.2f (engagement rate %.3f, %d shares of %d posts)", e,
                              num("engagement_rate") ?? 0, Int(num("shares") ?? 0), Int(num("posts") ?? 0)))
        } else {
            out.append("  engagement influence: no views of own content")
        }
        for t in o["topic_ranks"] as? [[String: Any]] ?? [] {
            let r = (t["rank"] as? NSNumber)?.intValue ?? 0
            out.append("  topic \(t["topic"] as? String ?? "?"): " + (r > 0 ? "rank \(r)" : "not ranked")
                       + String(format: " (score %.4g)", (t["score"] as? NSNumber)?.doubleValue ?? 0))
        }
        return out
    }

    public static var fuzzSeeds: [FuzzSeed] {
        var index = Chorus_V1_Jobs_InfluenceIndex()
        index.counts = [2]; index.ids = ["u1", "u2"]
        var step = Chorus_V1_Jobs_InfluenceStep()
        step.step = 1; step.index = index
        var s = Chorus_V1_Jobs_InfluenceShare(); s.vector = 0; s.share = [0.5, 0]
        step.vectors = [s]
        var fin = Chorus_V1_Jobs_InfluenceFinal()
        fin.index = index
        var sc = Chorus_V1_Jobs_InfluenceScores(); sc.vector = 0; sc.score = [0.4, 0.6]; sc.rank = [2, 1]
        fin.vectors = [sc]; fin.ranked = 2
        return [FuzzSeed(stage: "influence-nodes"),
                FuzzSeed(stage: "influence-graph", broadcast: try? index.serializedData()),
                FuzzSeed(stage: "influence-step-1", broadcast: try? step.serializedData()),
                FuzzSeed(stage: "influence-authors"),
                FuzzSeed(stage: "influence-write", broadcast: try? fin.serializedData())]
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { InfluenceWorker() }

    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8)) as? [String: Any] else { return nil }
        func n(_ k: String, _ d: [String: Any] = o) -> Double { (d[k] as? NSNumber)?.doubleValue ?? 0 }
        let converged = o["converged"] as? Bool ?? false
        var out = [String(format: "%d users, %d follows; %d ranked, %d dangling", Int(n("nodes")), Int(n("edges")),
                          Int(n("ranked")), Int(n("dangling"))),
                   "PageRank: \(Int(n("iterations"))) iterations, final L1 change "
                   + String(format: "%.3g", n("final_l1_delta"))
                   + (converged ? " (converged, below" : " (NOT converged, not below")
                   + String(format: " nodes × %.3g), %.4f s per iteration", n("tolerance"), n("seconds_per_iteration"))]
        for t in o["topics"] as? [[String: Any]] ?? [] {
            out.append("topic \(t["topic"] as? String ?? "?"): \(Int(n("iterations", t))) iterations, "
                       + ((t["converged"] as? Bool ?? false) ? "converged" : "not converged")
                       + ", \(Int(n("users", t))) users with the interest")
        }
        if let note = o["topics_note"] as? String { out.append(note) }
        out.append("top users:")
        for u in o["top"] as? [[String: Any]] ?? [] {
            out.append(String(format: "  %3d. ", Int(n("rank", u))) + (u["user_id"] as? String ?? "?")
                       + String(format: "  PageRank %.4g, %d followers", n("pagerank", u), Int(n("followers", u))))
        }
        return out.joined(separator: "\n")
    }
}
