import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

extension InfluenceJob {
    /// One entry of a stored top list (`chorus influencers`): why the user ranks.
    struct TopEntry: Codable, Sendable {
        var userId: String
        var rank: Int
        var score: Double
        var pagerank: Double
        var pagerankRank: Int
        var percentile: Double
        var followers: Int
        var following: Int
        var engagementRate: Double?
        var shares: Int
        var posts: Int
        var engagementInfluence: Double?
        enum CodingKeys: String, CodingKey {
            case userId = "user_id", rank, score, pagerank, pagerankRank = "pagerank_rank", percentile, followers
            case following, engagementRate = "engagement_rate", shares, posts
            case engagementInfluence = "engagement_influence"
        }
    }

    /// A stored top list: key "top" (plain PageRank) or "top-topic/<topic>".
    struct TopList: Codable, Sendable {
        var topic: String?
        var damping: Double
        var rankedUsers: Int
        var users: [TopEntry]
        enum CodingKeys: String, CodingKey { case topic, damping, rankedUsers = "ranked_users", users }
    }

    static func topKey(topic: String?) -> String { topic.map { "top-topic/" + $0 } ?? "top" }

    public static func drive(_ ctx: JobContext) async throws -> String {
        let started = ContinuousClock.now
        let p = ctx.params
        let options = PageRank.Options(damping: p.double("damping", 0.85), tolerance: p.double("tolerance", 1e-6),
                                       maxIterations: p.int("max_iterations", 100))
        let partitions = Int(ctx.partitionCount)

        // 1. Nodes.
        try await ctx.setStage("influence: reading the follower graph")
        var index = Chorus_V1_Jobs_InfluenceIndex()
        var outDegree: [Int32] = [], inDegree: [Int32] = []
        var topicWeights: [String: [(Int, Double)]] = [:]
        var profiles = 0
        for out in try await ctx.collect("influence-nodes") {
            let m = try Chorus_V1_Jobs_InfluenceNodes(serializedBytes: out.payload)
            guard m.outDegree.count == m.ids.count, m.inDegree.count == m.ids.count,
                  m.topicNode.count == m.topicIndex.count, m.topicWeight.count == m.topicIndex.count,
                  m.topicNode.allSatisfy({ Int($0) < m.ids.count }), m.topicIndex.allSatisfy({ Int($0) < m.topics.count }) else {
                throw ChorusError(.internal, "partition \(out.partition): malformed influence-nodes result")
            }
            let base = index.ids.count
            index.counts.append(UInt32(m.ids.count))
            index.ids.append(contentsOf: m.ids)
            outDegree.append(contentsOf: m.outDegree.map { Int32(clamping: $0) })
            inDegree.append(contentsOf: m.inDegree.map { Int32(clamping: $0) })
            for i in m.topicNode.indices {
                topicWeights[m.topics[Int(m.topicIndex[i])], default: []].append((base + Int(m.topicNode[i]), m.topicWeight[i]))
            }
            profiles += Int(m.profiles)
        }
        let n = index.ids.count
        guard n > 0 else {
            throw ctx.failure("no users and no follows to rank: ingest users and follows (follows*.jsonl) first")
        }
        if Set(index.ids).count != n { throw ctx.failure("influence-nodes: a user id came from two partitions") }
        let edges = outDegree.reduce(0) { $0 + Int($1) }
        let eligible = (0..<n).map { outDegree[$0] + inDegree[$0] > 0 }
        let rankedCount = eligible.filter { $0 }.count

        // Topics: the list asked for, or the main ones (largest total weight of the profiles' top_topics).
        var topics: [String] = []
        var topicNotes: [String] = []
        let asked = topicList(p)
        let wanted = p.int("topics", 3)
        if !asked.isEmpty || wanted > 0 {
            if profiles == 0 {
                topicNotes.append("topic ranks skipped: no features profiles (run `chorus job submit features` first)")
            } else if !asked.isEmpty {
                for t in asked {
                    if topicWeights[t] == nil { topicNotes.append("topic '\(t)': no user has it among their top topics") }
                    else if !topics.contains(t) { topics.append(t) }
                }
            } else {
                let totals = topicWeights.mapValues { $0.reduce(0) { $0 + $1.1 } }
                topics = totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(wanted).map(\.key)
            }
        }
        var vectors = [PageRank.Vector(n: n)]
        var topicUsers: [Int] = []
        for t in topics {
            var w = [Double](repeating: 0, count: n)
            for (node, x) in topicWeights[t] ?? [] { w[node] += x }
            topicUsers.append(w.filter { $0 > 0 }.count)
            vectors.append(PageRank.Vector(n: n, personalization: PageRank.Vector.distribution(w)))
        }

        // 2. Graph (the index goes to each worker incarnation once).
        try await ctx.setStage("influence: building the in-edge lists")
        let delivered = DeliveredParts()
        let indexMessage = index
        var cachedEdges = 0
        try await ctx.runStage("influence-graph", broadcast: Broadcast(perRecipient: { r in
            delivered.stage(r.key, [r.key])
            return try indexMessage.serializedData()
        }, delivered: { r, ok in delivered.settle(r.key, ok) })) { out in
            cachedEdges += Int(try Chorus_V1_Jobs_InfluenceGraphLoaded(serializedBytes: out.payload).inEdges)
        }
        /// A broadcast with the index added for an incarnation that has not received it, or that asks for this
        /// stage's broadcast again (a task found the index missing: its job state was dropped and made anew).
        func withIndex(_ build: @escaping @Sendable (Chorus_V1_Jobs_InfluenceIndex?) throws -> Data) -> Broadcast {
            let built = BuiltFor()
            return Broadcast(perRecipient: { r in
                let has = delivered.has(r.key) && built.first(r.key)
                delivered.stage(r.key, [r.key])
                return try build(has ? nil : indexMessage)
            }, delivered: { r, ok in delivered.settle(r.key, ok) })
        }

        // 3. Iterations: every vector still iterating moves one step per stage.
        var step: UInt32 = 0
        var stepSeconds: [Double] = []
        let offsets = (0...partitions).map { i in index.counts.prefix(i).reduce(0) { $0 + Int($1) } }
        while true {
            let active = vectors.indices.filter { !vectors[$0].converged && vectors[$0].iterations < options.maxIterations }
            if active.isEmpty { break }
            try await ctx.checkCancelled()
            step += 1
            let t0 = ContinuousClock.now
            var shares: [Int: (share: [Double], dangling: Double)] = [:]
            var msg = Chorus_V1_Jobs_InfluenceStep()
            msg.step = step
            for v in active {
                let s = vectors[v].share(outDegree: outDegree)
                shares[v] = s
                var m = Chorus_V1_Jobs_InfluenceShare()
                m.vector = UInt32(v)
                m.share = s.share
                msg.vectors.append(m)
            }
            let base = msg
            var inflow = [Int: [Double]]()
            for v in active { inflow[v] = [Double](repeating: 0, count: n) }
            try await ctx.runStage("influence-step-\(step)", broadcast: withIndex { idx in
                var b = base
                if let idx { b.index = idx }
                return try b.serializedData()
            }) { out in
                let m = try Chorus_V1_Jobs_InfluenceInflow(serializedBytes: out.payload)
                let p = Int(out.partition)
                guard p < partitions, m.vectors.count == active.count,
                      zip(m.vectors, active).allSatisfy({ Int($0.vector) == $1 && $0.share.count == offsets[p + 1] - offsets[p] })
                else {
                    throw ChorusError(.internal, "partition \(p): malformed influence-step result")
                }
                for block in m.vectors {
                    inflow[Int(block.vector)]!.replaceSubrange(offsets[p]..<offsets[p + 1], with: block.share)
                }
            }
            for v in active {
                vectors[v].advance(inflow: inflow[v]!, dangling: shares[v]!.dangling, options: options)
            }
            stepSeconds.append((ContinuousClock.now - t0).seconds)
            try await ctx.setStage(String(format: "influence: iteration %d, L1 change %.3g (stop below %.3g)", step,
                                          vectors[0].delta, Double(n) * options.tolerance))
            try await ctx.setTasksDone(partitions * (2 + Int(step)))
        }

        // 4. Authors' engagement.
        try await ctx.setStage("influence: engagement with each author's content")
        var authors: [String: EngagementInfluence] = [:]
        for out in try await ctx.collect("influence-authors") {
            let m = try Chorus_V1_Jobs_InfluenceAuthors(serializedBytes: out.payload)
            guard m.posts.count == m.authors.count, m.views.count == m.authors.count,
                  m.engagements.count == m.authors.count, m.shares.count == m.authors.count else {
                throw ChorusError(.internal, "partition \(out.partition): malformed influence-authors result")
            }
            for i in m.authors.indices {
                var t = authors[m.authors[i]] ?? .init()
                t.posts += Int(clamping: m.posts[i]); t.views += Int(clamping: m.views[i])
                t.engagements += Int(clamping: m.engagements[i]); t.shares += Int(clamping: m.shares[i])
                authors[m.authors[i]] = t
            }
        }
        // Only the nodes' authors travel to the workers.
        let nodeSet = Set(index.ids)
        var authorMsg = Chorus_V1_Jobs_InfluenceAuthors()
        for a in authors.keys.filter({ nodeSet.contains($0) }).sorted() {
            let t = authors[a]!
            authorMsg.authors.append(a)
            authorMsg.posts.append(UInt64(t.posts)); authorMsg.views.append(UInt64(t.views))
            authorMsg.engagements.append(UInt64(t.engagements)); authorMsg.shares.append(UInt64(t.shares))
        }

        // 5. Ranks, the profile sections, the top lists.
        let ranks = vectors.map { PageRank.ranks($0.x, ids: index.ids, eligible: eligible) }
        var fin = Chorus_V1_Jobs_InfluenceFinal()
        fin.topics = topics
        fin.ranked = UInt64(rankedCount)
        fin.authors = authorMsg
        for (v, vec) in vectors.enumerated() {
            var s = Chorus_V1_Jobs_InfluenceScores()
            s.vector = UInt32(v)
            s.score = vec.x
            s.rank = ranks[v].map { UInt32($0) }
            fin.vectors.append(s)
        }
        try await ctx.setStage("influence: writing the profiles")
        let finMsg = fin
        var written = 0
        try await ctx.runStage("influence-write", broadcast: withIndex { idx in
            var b = finMsg
            if let idx { b.index = idx }
            return try b.serializedData()
        }) { out in
            written += Int(try Chorus_V1_Jobs_InfluenceWritten(serializedBytes: out.payload).users)
        }

        let topN = p.int("top_n", 100)
        let pr = vectors[0].x, prRank = ranks[0]
        func entries(_ v: Int) -> [TopEntry] {
            let order = (0..<n).filter { ranks[v][$0] > 0 }.sorted { ranks[v][$0] < ranks[v][$1] }.prefix(topN)
            return order.map { i in
                let e = authors[index.ids[i]] ?? .init()
                let followers = Int(inDegree[i])
                return TopEntry(userId: index.ids[i], rank: ranks[v][i], score: vectors[v].x[i], pagerank: pr[i],
                                pagerankRank: prRank[i], percentile: PageRank.percentile(rank: prRank[i], of: rankedCount),
                                followers: followers, following: Int(outDegree[i]), engagementRate: e.engagementRate,
                                shares: e.shares, posts: e.posts, engagementInfluence: e.influence(followers: followers))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var results: [(key: String, value: [UInt8])] = []
        results.append((topKey(topic: nil), Array(try encoder.encode(
            TopList(topic: nil, damping: options.damping, rankedUsers: rankedCount, users: entries(0))))))
        for (t, topic) in topics.enumerated() {
            results.append((topKey(topic: topic), Array(try encoder.encode(
                TopList(topic: topic, damping: options.damping, rankedUsers: rankedCount, users: entries(t + 1))))))
        }
        results.append(("topics", Array(try encoder.encode(topics))))
        try await ctx.putResults(results)
        try await ctx.setTasksDone(nil)

        let main = vectors[0]
        var report: [String: Any] = [
            "nodes": n, "edges": edges, "in_edges_cached": cachedEdges, "ranked": rankedCount,
            "dangling": outDegree.filter { $0 == 0 }.count, "users_written": written, "profiles_read": profiles,
            "damping": options.damping, "tolerance": options.tolerance, "max_iterations": options.maxIterations,
            "convergence_rule": "L1 change of the whole vector < nodes × tolerance",
            "iterations": main.iterations, "final_l1_delta": main.delta, "converged": main.converged,
            "steps": Int(step),
            "seconds_per_iteration": stepSeconds.isEmpty ? 0 : stepSeconds.reduce(0, +) / Double(stepSeconds.count),
            "seconds": (ContinuousClock.now - started).seconds, "partitions": partitions,
            "workers": await ctx.activeWorkerCount(),
            "top": entries(0).prefix(10).map { ["user_id": $0.userId, "rank": $0.rank, "pagerank": $0.pagerank,
                                                "followers": $0.followers] as [String: Any] },
            "topics": topics.enumerated().map { t, topic -> [String: Any] in
                let v = vectors[t + 1]
                return ["topic": topic, "iterations": v.iterations, "converged": v.converged,
                        "final_l1_delta": v.delta, "users": topicUsers[t]]
            },
        ]
        if !topicNotes.isEmpty { report["topics_note"] = topicNotes.joined(separator: "; ") }
        return String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)
    }
}

/// The recipients a broadcast was built for (a second build for one means the first did not serve).
final class BuiltFor: Sendable {
    private let seen = Mutex<Set<String>>([])
    /// True the first time `key` is seen.
    func first(_ key: String) -> Bool { seen.withLock { $0.insert(key).inserted } }
}
