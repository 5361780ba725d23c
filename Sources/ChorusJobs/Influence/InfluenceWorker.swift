import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// Every node of the graph with its global index (the order of the `InfluenceIndex` broadcast: partition after
/// partition, each partition's ids sorted by their bytes).
struct InfluenceIndex: Sendable {
    let counts: [Int]
    let offsets: [Int]
    let ids: [String]
    let lookup: [String: Int32]

    init(_ m: Chorus_V1_Jobs_InfluenceIndex, field: String) throws {
        let counts = m.counts.map(Int.init)
        guard counts.reduce(0, +) == m.ids.count else {
            throw TaskContext.invalid(field, "\(m.ids.count) ids but the partition counts add up to \(counts.reduce(0, +))")
        }
        guard m.ids.count < Int(Int32.max) else { throw TaskContext.invalid(field, "\(m.ids.count) nodes, too many") }
        var offsets = [0]
        for c in counts { offsets.append(offsets.last! + c) }
        var lookup = [String: Int32](minimumCapacity: m.ids.count)
        for (i, id) in m.ids.enumerated() {
            if lookup.updateValue(Int32(i), forKey: id) != nil {
                throw TaskContext.invalid(field, "node '\(id.prefix(60))' appears twice")
            }
        }
        self.counts = counts; self.offsets = offsets; self.ids = m.ids; self.lookup = lookup
    }

    var n: Int { ids.count }

    /// The global index range of a partition's nodes (empty for a partition the index does not know).
    func range(of partition: UInt32) -> Range<Int> {
        let p = Int(partition)
        return p < counts.count ? offsets[p]..<offsets[p + 1] : 0..<0
    }
}

/// A partition's in-edges, with global source indices, cached for the iterations.
struct InfluencePartitionGraph: Sendable {
    let offsets: [Int]
    let sources: [Int32]
}

/// The `influence` job on one worker: the node index (broadcast once per incarnation), each partition's in-edges
/// (built once, rebuilt when missing), the share vectors of the current step, and the final broadcast.
final class InfluenceWorker: JobWorker {
    /// The index as received, and built (its lookup table is built on the compute threads, not in `receive`).
    let indexMessage = Mutex<Chorus_V1_Jobs_InfluenceIndex?>(nil)
    let index = Mutex<InfluenceIndex?>(nil)
    let graphs = Mutex<[UInt32: InfluencePartitionGraph]>([:])
    let current = Mutex<(step: UInt32, vectors: [(UInt32, [Double])])?>(nil)
    let results = Mutex<(Chorus_V1_Jobs_InfluenceFinal, [String: EngagementInfluence])?>(nil)

    func receive(_ broadcast: JobBroadcast) throws {
        let field = "job_broadcast.payload"
        func setIndex(_ m: Chorus_V1_Jobs_InfluenceIndex) throws {
            let total = m.counts.reduce(0) { $0 + Int($1) }
            guard total == m.ids.count else {
                throw TaskContext.invalid(field + ".index", "\(m.ids.count) ids but the partition counts add up to \(total)")
            }
            if indexMessage.withLock({ $0 == m }) { return }  // the same index again (a resent broadcast)
            indexMessage.withLock { $0 = m }
            index.withLock { $0 = nil }
            graphs.withLock { $0 = [:] }  // built against another index
        }
        switch broadcast.stage {
        case "influence-graph":
            let m: Chorus_V1_Jobs_InfluenceIndex
            do { m = try Chorus_V1_Jobs_InfluenceIndex(serializedBytes: broadcast.payload) } catch {
                throw TaskContext.invalid(field, "not an influence index: \(error)")
            }
            try setIndex(m)
        case let s where s.hasPrefix("influence-step-"):
            let m: Chorus_V1_Jobs_InfluenceStep
            do { m = try Chorus_V1_Jobs_InfluenceStep(serializedBytes: broadcast.payload) } catch {
                throw TaskContext.invalid(field, "not an influence step: \(error)")
            }
            if m.hasIndex { try setIndex(m.index) }
            let n = indexMessage.withLock { $0?.ids.count }
            for v in m.vectors {
                if let n, v.share.count != n {
                    throw TaskContext.invalid(field + ".vectors", "vector \(v.vector) has \(v.share.count) values for \(n) nodes")
                }
                if v.share.contains(where: { !$0.isFinite || $0 < 0 }) {
                    throw TaskContext.invalid(field + ".vectors", "vector \(v.vector) has a negative or non-finite share")
                }
            }
            current.withLock { $0 = (m.step, m.vectors.map { ($0.vector, $0.share) }) }
        case "influence-write":
            let m: Chorus_V1_Jobs_InfluenceFinal
            do { m = try Chorus_V1_Jobs_InfluenceFinal(serializedBytes: broadcast.payload) } catch {
                throw TaskContext.invalid(field, "not the influence results: \(error)")
            }
            if m.hasIndex { try setIndex(m.index) }
            let a = m.authors
            guard a.posts.count == a.authors.count, a.views.count == a.authors.count,
                  a.engagements.count == a.authors.count, a.shares.count == a.authors.count else {
                throw TaskContext.invalid(field + ".authors", "parallel lists of different lengths")
            }
            var authors: [String: EngagementInfluence] = [:]
            for i in a.authors.indices {
                authors[a.authors[i]] = EngagementInfluence(posts: Int(clamping: a.posts[i]), views: Int(clamping: a.views[i]),
                                                            engagements: Int(clamping: a.engagements[i]),
                                                            shares: Int(clamping: a.shares[i]))
            }
            var trimmed = m
            trimmed.clearAuthors()
            trimmed.clearIndex()
            results.withLock { $0 = (trimmed, authors) }
        default:
            throw TaskContext.invalid("job_broadcast.stage", "influence has no broadcast for stage '\(broadcast.stage.prefix(40))'")
        }
    }

    func release() {
        indexMessage.withLock { $0 = nil }
        index.withLock { $0 = nil }
        graphs.withLock { $0 = [:] }
        current.withLock { $0 = nil }
        results.withLock { $0 = nil }
    }

    func run(_ task: TaskContext) async throws -> TaskOutput {
        let data = task.data
        switch task.stage {
        case "influence-nodes":
            let topics = !InfluenceJob.topicList(task.params).isEmpty || task.params.int("topics", 3) > 0
            let (m, read) = try await task.compute { try InfluenceJob.nodes(data, topics: topics, cancellation: task.cancellation) }
            return TaskOutput(partition: task.partition, payload: try m.serializedData(), recordsRead: read)
        case "influence-graph":
            let g = try await graph(task)
            var m = Chorus_V1_Jobs_InfluenceGraphLoaded()
            m.nodes = UInt64(g.offsets.count - 1)
            m.inEdges = UInt64(g.sources.count)
            return TaskOutput(partition: task.partition, payload: try m.serializedData(), recordsRead: m.inEdges)
        case let s where s.hasPrefix("influence-step-"):
            guard let step = UInt32(s.dropFirst("influence-step-".count)) else {
                throw TaskContext.invalid("run_task.stage", "bad step in '\(s.prefix(40))'")
            }
            guard let cur = current.withLock({ $0 }), cur.step == step else {
                throw task.unavailable("the shares of influence step \(step)")
            }
            let g = try await graph(task)
            let n = try await nodeIndex(task).n
            if let bad = cur.vectors.first(where: { $0.1.count != n }) {
                throw TaskContext.invalid("job_broadcast.payload.vectors", "vector \(bad.0) does not match the node index")
            }
            let out = try await task.compute { () -> Chorus_V1_Jobs_InfluenceInflow in
                var m = Chorus_V1_Jobs_InfluenceInflow()
                for (v, share) in cur.vectors {
                    var s = Chorus_V1_Jobs_InfluenceShare()
                    s.vector = v
                    s.share = PageRank.inflow(offsets: g.offsets, sources: g.sources, share: share)
                    m.vectors.append(s)
                }
                return m
            }
            return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: UInt64(g.sources.count))
        case "influence-authors":
            let (m, read) = try await task.compute { try InfluenceJob.authors(data, cancellation: task.cancellation) }
            return TaskOutput(partition: task.partition, payload: try m.serializedData(), recordsRead: read)
        case "influence-write":
            let idx = try await nodeIndex(task)
            guard let (fin, authors) = results.withLock({ $0 }) else { throw task.unavailable("the influence results") }
            for v in fin.vectors where v.score.count != idx.n || v.rank.count != idx.n {
                throw TaskContext.invalid("job_broadcast.payload.vectors", "vector \(v.vector) does not match the node index")
            }
            let range = idx.range(of: task.partition)
            let (writes, count) = try await task.compute {
                try InfluenceJob.profiles(data, index: idx, range: range, final: fin, authors: authors)
            }
            try await task.write(writes)
            var m = Chorus_V1_Jobs_InfluenceWritten()
            m.users = UInt64(count)
            return TaskOutput(partition: task.partition, payload: try m.serializedData(), recordsRead: UInt64(count))
        default:
            throw TaskContext.invalid("run_task.stage", "influence has no stage '\(task.stage.prefix(40))'")
        }
    }

    /// The node index with its lookup table (built on the compute threads the first time a task needs it).
    func nodeIndex(_ task: TaskContext) async throws -> InfluenceIndex {
        if let i = index.withLock({ $0 }) { return i }
        guard let m = indexMessage.withLock({ $0 }) else { throw task.unavailable("the node index") }
        let built = try await task.compute { try InfluenceIndex(m, field: "job_broadcast.payload.index") }
        index.withLock { i in if indexMessage.withLock({ $0 == m }) { i = built } }
        return built
    }

    /// The partition's cached in-edges, or built from followIn now (first stage, a restart, a moved partition).
    func graph(_ task: TaskContext) async throws -> InfluencePartitionGraph {
        if let g = graphs.withLock({ $0[task.partition] }) { return g }
        let idx = try await nodeIndex(task)
        let data = task.data
        let g = try await task.compute {
            try InfluenceJob.inEdges(data, index: idx, cancellation: task.cancellation)
        }
        graphs.withLock { $0[task.partition] = g }
        return g
    }
}

extension InfluenceJob {
    /// The partition's nodes: users with a record, followers (followOut) and followees (followIn), with their
    /// degrees and (when topics are ranked) the top_topics of their features profile.
    static func nodes(_ data: PartitionView, topics: Bool,
                      cancellation: CancellationFlag) throws -> (Chorus_V1_Jobs_InfluenceNodes, UInt64) {
        var out: [String: UInt32] = [:], inDeg: [String: UInt32] = [:]
        var ids = Set<String>()
        var read: UInt64 = 0
        func tick() throws {
            read += 1
            if read % 8192 == 0, cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
        }
        try data.scan(role: ShardKeys.role(.user)) { k, _ in
            ids.insert(PartitionView.id(of: k)); try tick(); return true
        }
        try data.scan(role: ShardKeys.role(.followOut)) { k, _ in
            out[PartitionView.groupId(of: k), default: 0] += 1; try tick(); return true
        }
        try data.scan(role: ShardKeys.role(.followIn)) { k, _ in
            inDeg[PartitionView.groupId(of: k), default: 0] += 1; try tick(); return true
        }
        ids.formUnion(out.keys)
        ids.formUnion(inDeg.keys)
        var m = Chorus_V1_Jobs_InfluenceNodes()
        m.ids = ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        m.outDegree = m.ids.map { out[$0] ?? 0 }
        m.inDegree = m.ids.map { inDeg[$0] ?? 0 }
        guard topics else { return (m, read) }
        struct Interests: Decodable {
            var topTopics: [WeightedTerm]
            enum CodingKeys: String, CodingKey { case topTopics = "top_topics" }
        }
        let local = Dictionary(uniqueKeysWithValues: m.ids.enumerated().map { ($1, UInt32($0)) })
        var topicIndex: [String: UInt32] = [:]
        let decoder = JSONDecoder()
        try data.scan(role: profileRole) { k, v in
            try tick()
            guard let node = local[PartitionView.id(of: k)],
                  let p = try? decoder.decode(Interests.self, from: Data(v)) else { return true }
            m.profiles += 1
            for t in p.topTopics where t.weight > 0 && t.weight.isFinite {
                let ti: UInt32
                if let i = topicIndex[t.name] { ti = i } else {
                    ti = UInt32(m.topics.count)
                    topicIndex[t.name] = ti
                    m.topics.append(t.name)
                }
                m.topicNode.append(node)
                m.topicIndex.append(ti)
                m.topicWeight.append(t.weight)
            }
            return true
        }
        return (m, read)
    }

    /// The in-edges of the partition's nodes (followIn keys followee\0follower, in key order), with the follower's
    /// global index. A follow whose follower is not in the index (ingested after influence-nodes ran) is left out.
    static func inEdges(_ data: PartitionView, index: InfluenceIndex,
                        cancellation: CancellationFlag) throws -> InfluencePartitionGraph {
        let range = index.range(of: data.partition)
        var local: [String: Int] = [:]
        local.reserveCapacity(range.count)
        for g in range { local[index.ids[g]] = g - range.lowerBound }
        var pairs: [(dst: Int32, src: Int32)] = []
        var n = 0
        try data.scan(role: ShardKeys.role(.followIn)) { k, _ in
            n += 1
            if n % 8192 == 0, cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            let rest = k[5...]
            guard let sep = rest.firstIndex(of: 0) else { return true }
            let followee = String(decoding: k[5..<sep], as: UTF8.self)
            let follower = String(decoding: k[(sep + 1)...], as: UTF8.self)
            if let d = local[followee], let s = index.lookup[follower] { pairs.append((Int32(d), s)) }
            return true
        }
        // Counting sort by destination keeps the key order of each node's in-edges (deterministic).
        var offsets = [Int](repeating: 0, count: range.count + 1)
        for p in pairs { offsets[Int(p.dst) + 1] += 1 }
        for i in 0..<range.count { offsets[i + 1] += offsets[i] }
        var fill = offsets
        var sources = [Int32](repeating: 0, count: pairs.count)
        for p in pairs {
            sources[fill[Int(p.dst)]] = p.src
            fill[Int(p.dst)] += 1
        }
        return InfluencePartitionGraph(offsets: offsets, sources: sources)
    }

    /// Engagement with the partition's content, summed per author: posts, views, engagements (every interaction
    /// but a view) and shares.
    static func authors(_ data: PartitionView, cancellation: CancellationFlag) throws -> (Chorus_V1_Jobs_InfluenceAuthors, UInt64) {
        var authorOf: [String: String] = [:]
        var totals: [String: EngagementInfluence] = [:]
        var read: UInt64 = 0
        try data.scan(role: ShardKeys.role(.content)) { _, v in
            let c = try Chorus_V1_Content(borrowing: v)
            authorOf[c.id] = c.authorID
            totals[c.authorID, default: .init()].posts += 1
            read += 1
            return true
        }
        read += UInt64(try data.interactionGroups(role: ShardKeys.role(.interactionByContent)) { content, group in
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            guard let author = authorOf[content] else { return }  // interactions with content never ingested
            var t = totals[author] ?? .init()
            for i in group {
                if i.kind == .view { t.views += 1 } else { t.engagements += 1 }
                if i.kind == .share { t.shares += 1 }
            }
            totals[author] = t
        })
        var m = Chorus_V1_Jobs_InfluenceAuthors()
        for a in totals.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let t = totals[a]!
            m.authors.append(a)
            m.posts.append(UInt64(t.posts)); m.views.append(UInt64(t.views))
            m.engagements.append(UInt64(t.engagements)); m.shares.append(UInt64(t.shares))
        }
        return (m, read)
    }

    /// The per-user section written into the profile (role 0x61).
    struct Section: Encodable {
        struct TopicRank: Encodable {
            var topic: String
            var score: Double
            var rank: Int?
        }
        var state: String
        var pagerank: Double
        var rank: Int?
        var percentile: Double?
        var rankedUsers: Int
        var followers: Int
        var following: Int
        var engagementInfluence: Double?
        var engagementRate: Double?
        var shares: Int
        var posts: Int
        var contentViews: Int
        var topicRanks: [TopicRank]
        enum CodingKeys: String, CodingKey {
            case state, pagerank, rank, percentile, rankedUsers = "ranked_users", followers, following
            case engagementInfluence = "engagement_influence", engagementRate = "engagement_rate", shares, posts
            case contentViews = "content_views", topicRanks = "topic_ranks"
        }
    }

    /// Writes the section of every node of the partition (replacing the previous run's).
    static func profiles(_ data: PartitionView, index: InfluenceIndex, range: Range<Int>,
                         final: Chorus_V1_Jobs_InfluenceFinal, authors: [String: EngagementInfluence]) throws -> (DerivedWrites, Int) {
        // Degrees again from the partition (local, cheap): the broadcast carries scores and ranks only.
        var out: [String: Int] = [:], inDeg: [String: Int] = [:]
        try data.scan(role: ShardKeys.role(.followOut)) { k, _ in out[PartitionView.groupId(of: k), default: 0] += 1; return true }
        try data.scan(role: ShardKeys.role(.followIn)) { k, _ in inDeg[PartitionView.groupId(of: k), default: 0] += 1; return true }
        var w = DerivedWrites(partition: data.partition)
        w.clear(role: role)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let ranked = Int(final.ranked)
        let plain = final.vectors.first { $0.vector == 0 }
        let topicVectors = final.vectors.filter { $0.vector > 0 && Int($0.vector) <= final.topics.count }
        for g in range {
            let id = index.ids[g]
            let followers = inDeg[id] ?? 0, following = out[id] ?? 0
            let rank = plain.map { Int($0.rank[g]) } ?? 0
            let e = authors[id] ?? .init()
            let s = Section(
                state: followers + following == 0 ? "no_edges" : "ranked",
                pagerank: plain?.score[g] ?? 0,
                rank: rank > 0 ? rank : nil,
                percentile: rank > 0 ? PageRank.percentile(rank: rank, of: ranked) : nil,
                rankedUsers: ranked, followers: followers, following: following,
                engagementInfluence: e.influence(followers: followers), engagementRate: e.engagementRate,
                shares: e.shares, posts: e.posts, contentViews: e.views,
                topicRanks: topicVectors.map { v in
                    let r = Int(v.rank[g])
                    return .init(topic: final.topics[Int(v.vector) - 1], score: v.score[g], rank: r > 0 ? r : nil)
                })
            w.put(role: role, id: id, Array(try encoder.encode(s)))
        }
        return (w, range.count)
    }
}
