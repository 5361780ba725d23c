import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Job kind `segments`: explained audience segments by distributed k-means (docs/audience.md "Segments").
///
/// Stages: `stats` (each partition reads its profiles once into the job's worker state and returns per-feature
/// moments; the coordinator fixes the standardized layout), `sample` (a deterministic sample, on which the
/// coordinator chooses k by silhouette when it is not given and seeds by k-means++ with n_init restarts),
/// `lloyd-N` (one Lloyd iteration per stage: partial sums and counts per cluster, added in partition order), and
/// `write` (each user's segment and distance into the profile section `segment`, and per-segment aggregates from
/// which the coordinator writes the segment table in words). Segment ids are matched to the previous run's
/// centroids (least total distance), so a re-run on similar data keeps them.
public enum SegmentsJob: Job {
    public static let kind = "segments"
    public static let about = "audience segments by k-means on the profiles, each explained in words"
    public static let parameters: [JobParameter] = [
        .init("k", .integer(0...50), "0", "segments; 0 = choose by silhouette on the sample over 2..k_max"),
        .init("k_max", .integer(2...30), "12", "the largest k tried when k=0"),
        .init("features", .text(maxBytes: 200), "auto",
              "feature groups, comma-separated: behaviour, channels, hours, interests, embedding, attitudes; "
              + "auto = the first four, plus embedding and attitudes when an als or sentiment job has run"),
        .init("seed", .integer(0...Int64(UInt32.max)), "1", "seeding and sampling (same seed, same segments)"),
        .init("n_init", .integer(1...50), "4", "k-means++ restarts on the sample; the best is refined on everyone"),
        .init("max_iterations", .integer(1...500), "50", "Lloyd iterations (stages) at most"),
        .init("tolerance", .number(0...10), "1e-4", "stop when no centroid moves more than this (standardized units)"),
        .init("sample_size", .integer(100...1_000_000), "20000", "users in the seeding sample"),
        .init("min_interactions", .integer(0...1_000_000), "3",
              "users with fewer interactions get the state insufficient_data instead of a segment"),
        .init("store_vectors", .boolean, "false",
              "also store each user's standardized vector in the profile (for checks against other tools)"),
        .init("as_of", .time, "now", "accepted for every kind; segments uses the profiles' own as_of"),
    ]

    public static func tasksPerPartition(_ params: JobParams) -> Int { 3 + params.int("max_iterations", 50) }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        _ = try groups(checking: params)
        let k = params.int("k", 0)
        if k == 1 { throw ChorusError(.usage, "segments: k=1 is one segment, the whole audience", hint: "use k=0 (choose) or k ≥ 2") }
    }

    public static var profileSections: [ProfileSection] {
        [ProfileSection("segment", role: role, csvFields: ["segment", "distance", "state"]) { o in
            if (o["state"] as? String) == "assigned" {
                let d = (o["distance"] as? NSNumber)?.doubleValue ?? 0
                return ["segment: \(o["segment"] ?? "?") (distance to its centre " + String(format: "%.2f", d)
                        + "; `chorus segments show \(o["segment"] ?? "?")` explains it)"]
            }
            return ["segment: none, " + ((o["reason"] as? String) ?? (o["state"] as? String) ?? "unknown")]
        }]
    }

    static func groups(checking params: JobParams) throws -> Set<SegmentFeatures.Group>? {
        let spec = params.string("features", "auto")
        if spec == "auto" { return nil }
        var out = Set<SegmentFeatures.Group>()
        for part in spec.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let g = SegmentFeatures.Group(rawValue: name) else {
                throw ChorusError(.usage, "segments: unknown feature group '\(name.prefix(40))'",
                                  hint: "groups: " + SegmentFeatures.Group.allCases.map(\.rawValue).joined(separator: ", "))
            }
            out.insert(g)
        }
        if out.isEmpty { throw ChorusError(.usage, "segments: features names no group", hint: "e.g. features=behaviour,channels") }
        return out
    }

    /// The groups the workers read (auto: all; the driver drops empty embedding/attitude columns).
    static func groups(_ params: JobParams) -> Set<SegmentFeatures.Group> {
        ((try? groups(checking: params)) ?? nil) ?? Set(SegmentFeatures.Group.allCases)
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { Worker(info) }

    public static var fuzzSeeds: [FuzzSeed] {
        var p = Chorus_V1_Jobs_SegmentsPlan()
        p.names = ["engagement_rate", "channel:x"]; p.center = [0.1, 0.5]; p.scale = [1, 1]; p.impute = [true, false]
        p.k = 2; p.centroids = [0, 0, 1, 1]; p.ids = [0, 1]; p.sampleRate = 0.5; p.seed = 1
        let b = try? p.serializedData()
        return [FuzzSeed(stage: "stats"), FuzzSeed(stage: "sample", broadcast: b), FuzzSeed(stage: "lloyd-1", broadcast: b)]
    }

    // MARK: - driver

    struct Layout {
        var names: [String] = []
        var center: [Float] = []
        var scale: [Float] = []
        var impute: [Bool] = []
        var mean: [String: (mean: Double, std: Double)] = [:]
    }

    public static func drive(_ ctx: JobContext) async throws -> String {
        let started = ContinuousClock.now
        let p = ctx.params
        let seed = UInt64(p.int("seed", 1))
        let requested = try groups(checking: p)

        // 1. Moments of every raw feature.
        try await ctx.setStage("stats")
        var moments: [String: FeatureMoments] = [:]
        var users = 0, insufficient = 0
        for out in try await ctx.collect("stats") {
            let s = try Chorus_V1_Jobs_SegmentsStats(serializedBytes: out.payload)
            guard s.sum.count == s.names.count, s.sumSquares.count == s.names.count, s.present.count == s.names.count else {
                throw ChorusError(.internal, "partition \(out.partition): malformed segments stats")
            }
            users += Int(s.users)
            insufficient += Int(s.insufficient)
            for (i, n) in s.names.enumerated() {
                moments[n, default: FeatureMoments()].merge(FeatureMoments(sum: s.sum[i], sumSquares: s.sumSquares[i],
                                                                          present: Int(s.present[i])))
            }
        }
        let minInteractions = p.int("min_interactions", 3)
        guard users >= 2 else {
            throw ctx.failure("insufficient data: \(users) user(s) with at least \(minInteractions) interactions "
                              + "(\(insufficient) below); run the features job first, or lower min_interactions")
        }
        let layout = makeLayout(moments, users: users, groups: requested)
        guard !layout.names.isEmpty else { throw ctx.failure("insufficient data: every feature is constant over the audience") }

        var plan = Chorus_V1_Jobs_SegmentsPlan()
        plan.names = layout.names; plan.center = layout.center; plan.scale = layout.scale; plan.impute = layout.impute
        plan.seed = seed
        plan.minInteractions = UInt32(minInteractions)
        plan.storeVectors = p.bool("store_vectors", false)
        let dims = layout.names.count

        // 2. The sample: choice of k and seeding.
        try await ctx.setStage("sample")
        let sampleSize = p.int("sample_size", 20000)
        plan.sampleRate = min(1, Double(sampleSize) / Double(users))
        var sample: [Float] = []
        for out in try await ctx.collect("sample", broadcast: Broadcast(try plan.serializedData())) {
            sample += try Chorus_V1_Jobs_SegmentsSample(serializedBytes: out.payload).rows
        }
        guard sample.count % dims == 0 else { throw ChorusError(.internal, "segments: malformed sample") }
        let sampleRows = sample.count / dims
        let nInit = p.int("n_init", 4)
        var k = p.int("k", 0)
        var curve: [[String: Any]] = []
        if k == 0 {
            try await ctx.setStage("choosing k by silhouette")
            let kMax = min(p.int("k_max", 12), sampleRows - 1)
            guard kMax >= 2 else { throw ctx.failure("insufficient data: \(sampleRows) users sampled, too few to choose k") }
            let silRows = min(sampleRows, 2000)
            let silSample = Array(sample[0..<(silRows * dims)])
            var best = (k: 2, score: -Double.infinity)
            for kk in 2...kMax {
                try await ctx.checkCancelled()
                let (c, inertia) = KMeans.bestOf(sample, dims: dims, k: kk, restarts: nInit, seed: seed)
                let labels = KMeans.assign(silSample, dims: dims, centroids: c).labels
                let s = KMeans.silhouette(silSample, dims: dims, labels: labels, k: kk)
                curve.append(["k": kk, "silhouette": round4(s), "sample_inertia": round4(inertia)])
                if s > best.score + 1e-12 { best = (kk, s) }
            }
            k = best.k
        }
        guard k <= sampleRows else {
            throw ctx.failure("insufficient data: k=\(k) but only \(sampleRows) users in the sample; lower k or raise sample_size")
        }
        var centroids = KMeans.bestOf(sample, dims: dims, k: k, restarts: nInit, seed: seed).centroids
        plan.k = UInt32(k)

        // 3. Lloyd iterations, one stage each.
        let maxIterations = p.int("max_iterations", 50)
        let tolerance = p.double("tolerance", 1e-4)
        var iterations = 0, converged = false
        var inertias: [Double] = []
        var iterationSeconds: [Double] = []
        var lastCounts: [Int] = []
        while iterations < maxIterations {
            try await ctx.checkCancelled()
            iterations += 1
            try await ctx.setStage("lloyd: iteration \(iterations)/\(maxIterations)")
            plan.centroids = centroids
            let t0 = ContinuousClock.now
            var merged = KMeans.Partial(k: k, dims: dims)
            for out in try await ctx.collect("lloyd-\(iterations)", broadcast: Broadcast(try plan.serializedData())) {
                let part = try Chorus_V1_Jobs_SegmentsPartial(serializedBytes: out.payload)
                guard part.sums.count == k * dims, part.counts.count == k, part.inertia.isFinite else {
                    throw ChorusError(.internal, "partition \(out.partition): malformed lloyd partial")
                }
                var q = KMeans.Partial(k: k, dims: dims)
                q.sums = part.sums; q.counts = part.counts.map { Int($0) }; q.inertia = part.inertia
                merged.merge(q)
            }
            iterationSeconds.append((ContinuousClock.now - t0).seconds)
            inertias.append(merged.inertia)
            lastCounts = merged.counts
            let next = KMeans.update(merged, previous: centroids, dims: dims)
            let moved = KMeans.shift(centroids, next, dims: dims)
            centroids = next
            if moved <= tolerance { converged = true; break }
        }

        // 4. Stable ids: match the previous run's centroids.
        let previous = try await ctx.getResult("centroids").flatMap { try? JSONDecoder().decode(StoredCentroids.self, from: Data($0)) }
        let ids = stableIds(centroids, layout: layout, k: k, previous: previous, sizes: lastCounts)
        plan.centroids = centroids
        plan.ids = ids.map { UInt32($0) }

        // 5. Write each user's segment; gather the descriptions.
        try await ctx.setStage("write")
        var aggs = (0..<k).map { _ in Aggregate(dims: dims) }
        for out in try await ctx.collect("write", broadcast: Broadcast(try plan.serializedData())) {
            let w = try Chorus_V1_Jobs_SegmentsWritten(serializedBytes: out.payload)
            guard w.segments.count == k else { throw ChorusError(.internal, "partition \(out.partition): malformed segments") }
            for s in w.segments {
                guard Int(s.row) < k, s.rawSum.count == dims, s.rawPresent.count == dims else {
                    throw ChorusError(.internal, "partition \(out.partition): malformed segment aggregate")
                }
                aggs[Int(s.row)].add(s)
            }
        }
        try await ctx.setTasksDone(nil)
        let table = segmentTable(aggs, ids: ids, layout: layout, users: users, insufficient: insufficient,
                                 centroids: centroids, jobID: ctx.jobID)
        let inertia = aggs.reduce(0) { $0 + $1.inertia }
        let stored = StoredCentroids(names: layout.names, ids: ids,
                                     rows: (0..<k).map { j in (0..<dims).map { c in
                                         Double(centroids[j * dims + c] / layout.scale[c] + layout.center[c]) } })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try await ctx.putResults([(key: "table", value: Array(try JSONSerialization.data(withJSONObject: table, options: [.sortedKeys]))),
                                  (key: "centroids", value: Array(try encoder.encode(stored)))])

        var summary: [String: Any] = [
            "k": k, "k_rule": p.int("k", 0) == 0 ? "silhouette on a sample of \(min(sampleRows, 2000)) users over k=2..\(min(p.int("k_max", 12), sampleRows - 1)), highest wins" : "given",
            "iterations": iterations, "converged": converged, "inertia": round4(inertia),
            "inertia_by_iteration": inertias.map(round4),
            "seconds_per_iteration": round4(iterationSeconds.reduce(0, +) / Double(max(1, iterationSeconds.count))),
            "users": users, "insufficient_data": insufficient, "dimensions": dims,
            "feature_groups": Array(Set(layout.names.map { SegmentFeatures.Group.of($0).rawValue })).sorted(),
            "sample_users": sampleRows, "ids_matched_to_previous_run": previous != nil,
            "seconds": round4((ContinuousClock.now - started).seconds),
            "segments": (table["segments"] as? [[String: Any]] ?? []).map {
                ["id": $0["id"] ?? 0, "name": $0["name"] ?? "", "users": $0["users"] ?? 0, "share": $0["share"] ?? 0,
                 "description": $0["description"] ?? ""]
            },
        ]
        if !curve.isEmpty { summary["silhouette"] = curve }
        return String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Columns with a spread, in layout order. Each group gets the same total weight: a column's scale is
    /// 1 / (std · √(columns in its group)). Auto mode drops the embedding and attitudes when nobody has them;
    /// topics and attitudes keep the 30 and 10 most common.
    static func makeLayout(_ moments: [String: FeatureMoments], users: Int, groups: Set<SegmentFeatures.Group>?) -> Layout {
        var keep: [String] = []
        var byGroup: [SegmentFeatures.Group: [String]] = [:]
        for (name, _) in moments {
            let g = SegmentFeatures.Group.of(name)
            if let groups, !groups.contains(g) { continue }
            byGroup[g, default: []].append(name)
        }
        for (g, names) in byGroup {
            var list = names.sorted { (moments[$0]!.present, $1) > (moments[$1]!.present, $0) }
            if g == .interests { list = Array(list.prefix(30)) }
            if g == .attitudes { list = Array(list.prefix(10)) }
            keep += list.filter { moments[$0]!.meanAndStd(users: users, impute: g.imputesMean).std > 1e-9 }
        }
        keep.sort(by: SegmentFeatures.layoutOrder)
        var count: [SegmentFeatures.Group: Int] = [:]
        for n in keep { count[SegmentFeatures.Group.of(n), default: 0] += 1 }
        var l = Layout()
        for n in keep {
            let g = SegmentFeatures.Group.of(n)
            let (mean, std) = moments[n]!.meanAndStd(users: users, impute: g.imputesMean)
            l.names.append(n)
            l.center.append(Float(mean))
            l.scale.append(Float(1 / (std * Double(count[g]!).squareRoot())))
            l.impute.append(g.imputesMean)
            l.mean[n] = (mean, std)
        }
        return l
    }

    /// The previous run's centroids in raw units, by feature name (result "centroids").
    struct StoredCentroids: Codable {
        var names: [String]
        var ids: [Int]
        var rows: [[Double]]
    }

    /// Ids for the new centroid rows: the previous run's id of the matched centroid (least total squared
    /// distance, in this run's standardized units), fresh ids for the rest; on a first run, by size (0 = largest).
    static func stableIds(_ centroids: [Float], layout: Layout, k: Int, previous: StoredCentroids?, sizes: [Int]) -> [Int] {
        let dims = layout.names.count
        guard let prev = previous, prev.rows.count == prev.ids.count, !prev.ids.isEmpty,
              prev.rows.allSatisfy({ $0.count == prev.names.count }) else {
            let order = (0..<k).sorted { (sizes.count > $0 ? sizes[$0] : 0, $1) > (sizes.count > $1 ? sizes[$1] : 0, $0) }
            var ids = [Int](repeating: 0, count: k)
            for (rank, row) in order.enumerated() { ids[row] = rank }
            return ids
        }
        var column: [String: Int] = [:]
        for (i, n) in prev.names.enumerated() { column[n] = i }
        let old = prev.rows.map { raw in
            (0..<dims).map { c -> Double in
                guard let i = column[layout.names[c]] else { return 0 }
                return (raw[i] - Double(layout.center[c])) * Double(layout.scale[c])
            }
        }
        let n = max(k, old.count)
        var cost = [Double](repeating: 0, count: n * n)
        for i in 0..<k {
            for j in 0..<old.count {
                var s = 0.0
                for c in 0..<dims { let d = Double(centroids[i * dims + c]) - old[j][c]; s += d * d }
                cost[i * n + j] = s
            }
        }
        let match = KMeans.minimumCostMatching(cost, size: n)
        var next = (prev.ids.max() ?? -1) + 1
        return (0..<k).map { i in
            let j = match[i]
            if j < old.count { return prev.ids[j] }
            defer { next += 1 }
            return next
        }
    }

    struct Aggregate {
        var users = 0
        var inertia = 0.0
        var rawSum: [Double]
        var rawPresent: [Int]
        var channels: [String: Int] = [:]
        var topics: [String: Double] = [:]
        var hashtags: [String: Double] = [:]
        var nearest: [(String, Float)] = []
        init(dims: Int) {
            rawSum = [Double](repeating: 0, count: dims)
            rawPresent = [Int](repeating: 0, count: dims)
        }
        mutating func add(_ s: Chorus_V1_Jobs_SegmentAggregate) {
            users += Int(s.users)
            inertia += s.inertia
            for i in rawSum.indices { rawSum[i] += s.rawSum[i]; rawPresent[i] += Int(s.rawPresent[i]) }
            for (c, n) in s.channels { channels[c, default: 0] += Int(n) }
            for (t, w) in s.topics { topics[t, default: 0] += w }
            for (t, w) in s.hashtags { hashtags[t, default: 0] += w }
            nearest += s.nearest.map { ($0.userID, $0.distance) }
        }
    }

    /// The segment table (result "table"): per segment its size, share, name, description, distinguishing
    /// features with effect sizes, top topics and hashtags, channel mix and representative users.
    static func segmentTable(_ aggs: [Aggregate], ids: [Int], layout: Layout, users: Int, insufficient: Int,
                             centroids: [Float], jobID: String) -> [String: Any] {
        var segments: [[String: Any]] = []
        for (row, a) in aggs.enumerated() {
            var means: [String: Double] = [:]
            for (c, n) in layout.names.enumerated() {
                let impute = layout.impute[c]
                let denom = impute ? a.rawPresent[c] : a.users
                // Imputed features average over the members that have them; the others count a missing one as 0.
                means[n] = denom > 0 ? a.rawSum[c] / Double(denom) : layout.mean[n]?.mean ?? 0
            }
            let traits = SegmentDescriptions.traits(segment: means, audience: layout.mean, count: 5)
            let name = SegmentDescriptions.name(traits, all: means, audience: layout.mean)
            let share = Double(a.users) / Double(max(users, 1))
            func top(_ m: [String: Double], _ n: Int) -> [[String: Any]] {
                let total = m.values.reduce(0, +)
                return m.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(n).map {
                    ["name": $0.key, "share": round4(total > 0 ? $0.value / total : 0)]
                }
            }
            let mix = a.channels.mapValues { round4(Double($0) / Double(max(a.users, 1))) }
            let near = a.nearest.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(5).map(\.0)
            let traitsJSON = traits.map { t -> [String: Any] in
                ["feature": t.feature, "segment": t.segment, "audience": t.audience, "effect_size": t.effectSize, "text": t.text]
            }
            let topTopics = top(a.topics, 5), topTags = top(a.hashtags, 5)
            let description = "\(a.users) users (\(Int((share * 100).rounded()))%): "
                + traits.map(\.text).joined(separator: "; ")
                + (topTopics.isEmpty ? "" : "; top topics " + topTopics.compactMap { $0["name"] as? String }.joined(separator: ", "))
            segments.append(["id": ids[row], "name": name, "users": a.users, "share": round4(share),
                             "description": description, "traits": traitsJSON, "top_topics": topTopics,
                             "top_hashtags": topTags, "channel_mix": mix, "representative_users": Array(near),
                             "inertia": round4(a.inertia)])
        }
        segments.sort { (($0["id"] as? Int) ?? 0) < (($1["id"] as? Int) ?? 0) }
        return ["job_id": jobID, "users": users, "insufficient_data": insufficient, "features": layout.names,
                "segments": segments]
    }

    static func round4(_ x: Double) -> Double { (x * 10000).rounded() / 10000 }

    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8))) as? [String: Any] else { return nil }
        let iterations = o["iterations"] as? Int ?? 0
        var lines = ["k=\(o["k"] ?? "?") (\(o["k_rule"] ?? "")), \(iterations) Lloyd iteration\(iterations == 1 ? "" : "s")"
                     + ((o["converged"] as? Bool) == true ? " (converged)" : " (not converged)")
                     + ", inertia \(o["inertia"] ?? 0), \(o["users"] ?? 0) users, \(o["insufficient_data"] ?? 0) with too little data"]
        if let curve = o["silhouette"] as? [[String: Any]] {
            lines.append("silhouette: " + curve.map { "k=\($0["k"] ?? "")→\($0["silhouette"] ?? "")" }.joined(separator: "  "))
        }
        lines.append(contentsOf: segmentLines(o["segments"] as? [[String: Any]] ?? []))
        return lines.joined(separator: "\n")
    }

    /// Per segment: id, share and name, then its description wrapped at `width` columns.
    public static func segmentLines(_ segments: [[String: Any]], width: Int = 100) -> [String] {
        segments.map { s in
            let share = ((s["share"] as? NSNumber)?.doubleValue ?? 0) * 100
            let head = String(format: "  %3d  %5.1f%%  ", (s["id"] as? Int) ?? 0, share) + "\(s["name"] ?? "")"
            return ([head] + wrap(s["description"] as? String ?? "", width: width - 13).map { String(repeating: " ", count: 13) + $0 })
                .joined(separator: "\n")
        }
    }

    /// Words of `text` in lines of at most `width` characters (a longer word gets a line of its own).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
