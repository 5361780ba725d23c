import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// One partition's users as the `segments` job sees them: the raw named features of every user with enough data
/// (columns local to the partition, NaN = the user lacks the feature), and the users below min_interactions.
struct SegmentRows: Sendable {
    var ids: [String] = []
    var names: [String] = []
    var raw: [Float] = []
    var insufficient: [(id: String, interactions: Int)] = []
    /// Home channel, top topics and hashtags per user (for the segment descriptions).
    var channel: [String] = []
    var topics: [[WeightedTerm]] = []
    var hashtags: [[WeightedTerm]] = []
    var read: UInt64 = 0

    var dims: Int { names.count }
}

extension SegmentsJob {
    static let role: UInt8 = 0x60

    /// Reads the partition's profiles (with the ALS factors and the sentiment attitudes when they are there).
    static func load(_ data: PartitionView, groups: Set<SegmentFeatures.Group>, minInteractions: Int,
                     cancellation: CancellationFlag) throws -> SegmentRows {
        var rows = SegmentRows()
        var column: [String: Int] = [:]
        var pending: [[(Int, Float)]] = []
        let decoder = JSONDecoder()
        let wantFactors = groups.contains(.embedding), wantAttitudes = groups.contains(.attitudes)
        try data.scan(role: ShardKeys.Derived.profile.rawValue) { key, value in
            rows.read += 1
            if rows.read % 4096 == 0, cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            let id = PartitionView.id(of: key)
            let f = try decoder.decode(UserFeatures.self, from: Data(value))
            guard f.interactions >= minInteractions else {
                rows.insufficient.append((id, f.interactions))
                return true
            }
            var factors: [Float]?
            if wantFactors, let b = try data.get(role: ShardKeys.Derived.userFactors, id: id), b.count >= 2 {
                let rank = Int(b[0]) | Int(b[1]) << 8
                let v = FloatPacking.unpack(Data(b.dropFirst(2)))
                factors = Array(v.prefix(rank))
            }
            var attitudes: [String: (score: Double, comments: Int)] = [:]
            if wantAttitudes, let b = try data.get(role: ShardKeys.Derived.userSentiment, id: id),
               let s = try? decoder.decode(UserSentiment.self, from: Data(b)) {
                for (k, a) in s.attitudes { attitudes[k] = (a.meanScore, a.comments) }
            }
            var row: [(Int, Float)] = []
            for (name, x) in SegmentFeatures.raw(f, factors: factors, attitudes: attitudes, groups: groups) where x.isFinite {
                let c: Int
                if let have = column[name] { c = have } else {
                    c = rows.names.count
                    column[name] = c
                    rows.names.append(name)
                }
                row.append((c, Float(x)))
            }
            pending.append(row)
            rows.ids.append(id)
            rows.channel.append(f.channel)
            rows.topics.append(f.topTopics)
            rows.hashtags.append(f.topHashtags)
            return true
        }
        let d = rows.names.count
        rows.raw = [Float](repeating: .nan, count: rows.ids.count * d)
        for (i, row) in pending.enumerated() { for (c, x) in row { rows.raw[i * d + c] = x } }
        return rows
    }

    /// The moments of every raw feature of the partition.
    static func stats(_ rows: SegmentRows) -> Chorus_V1_Jobs_SegmentsStats {
        var m = [FeatureMoments](repeating: FeatureMoments(), count: rows.dims)
        for i in 0..<rows.ids.count {
            for c in 0..<rows.dims {
                let x = rows.raw[i * rows.dims + c]
                if !x.isNaN { m[c].add(Double(x)) }
            }
        }
        var out = Chorus_V1_Jobs_SegmentsStats()
        out.names = rows.names
        out.sum = m.map(\.sum)
        out.sumSquares = m.map(\.sumSquares)
        out.present = m.map { UInt64($0.present) }
        out.users = UInt64(rows.ids.count)
        out.insufficient = UInt64(rows.insufficient.count)
        return out
    }

    /// The partition's users as rows of the plan's standardized vector.
    static func standardize(_ rows: SegmentRows, _ plan: Chorus_V1_Jobs_SegmentsPlan) -> [Float] {
        let dims = plan.names.count
        var index: [String: Int] = [:]
        for (i, n) in plan.names.enumerated() { index[n] = i }
        let local = rows.names.map { index[$0] }
        var out = [Float](repeating: 0, count: rows.ids.count * dims)
        for i in 0..<rows.ids.count {
            // A column the user lacks: the mean (standardized 0) when imputed, else a raw 0.
            for c in 0..<dims where !plan.impute[c] { out[i * dims + c] = (0 - plan.center[c]) * plan.scale[c] }
            for (lc, g) in local.enumerated() {
                guard let g else { continue }
                let x = rows.raw[i * rows.dims + lc]
                if !x.isNaN { out[i * dims + g] = (x - plan.center[g]) * plan.scale[g] }
            }
        }
        return out
    }

    /// Whether the sample keeps a user: a stable hash of (seed, id) below the rate.
    static func sampled(_ id: String, seed: UInt64, rate: Double) -> Bool {
        guard rate < 1 else { return true }
        var bytes = withUnsafeBytes(of: seed.littleEndian) { Array($0) }
        bytes.append(contentsOf: id.utf8)
        return Double(StableHash.mixed64(bytes) >> 11) * 0x1.0p-53 < rate
    }

    /// The plan a broadcast carries, checked against itself (a short array would trap later).
    static func plan(_ payload: Data) throws -> Chorus_V1_Jobs_SegmentsPlan {
        let p: Chorus_V1_Jobs_SegmentsPlan
        do { p = try Chorus_V1_Jobs_SegmentsPlan(serializedBytes: payload) } catch {
            throw TaskContext.invalid("job_broadcast.payload", "not a segments plan: \(error)")
        }
        let d = p.names.count
        guard d > 0, p.center.count == d, p.scale.count == d, p.impute.count == d else {
            throw TaskContext.invalid("segments_plan", "\(d) columns but \(p.center.count) centers, \(p.scale.count) scales, \(p.impute.count) impute flags")
        }
        guard p.centroids.count == Int(p.k) * d, p.ids.isEmpty || p.ids.count == Int(p.k) else {
            throw TaskContext.invalid("segments_plan.centroids", "\(p.centroids.count) values for k=\(p.k) × \(d) columns")
        }
        guard p.sampleRate.isFinite, p.center.allSatisfy(\.isFinite), p.scale.allSatisfy(\.isFinite),
              p.centroids.allSatisfy(\.isFinite) else {
            throw TaskContext.invalid("segments_plan", "a value is not finite")
        }
        return p
    }

    final class Worker: JobWorker {
        struct Cached {
            var rows: SegmentRows
            /// The standardized matrix, for the plan with this layout fingerprint.
            var matrix: [Float]?
            var layout: UInt64 = 0
        }
        let groups: Set<SegmentFeatures.Group>
        let minInteractions: Int
        let cache = Mutex<[UInt32: Cached]>([:])
        let plans = Mutex<[String: Chorus_V1_Jobs_SegmentsPlan]>([:])

        init(_ info: WorkerJobInfo) {
            groups = SegmentsJob.groups(info.params)
            minInteractions = info.params.int("min_interactions", 3)
        }

        func receive(_ broadcast: JobBroadcast) throws {
            let p = try SegmentsJob.plan(broadcast.payload)
            plans.withLock { $0[broadcast.stage] = p }
        }

        func release() {
            cache.withLock { $0 = [:] }
            plans.withLock { $0 = [:] }
        }

        static func fingerprint(_ p: Chorus_V1_Jobs_SegmentsPlan) -> UInt64 {
            var h = StableHash.fnv1a64(p.names.joined(separator: "\u{0}"))
            for x in p.center + p.scale { h = StableHash.avalanche(h ^ UInt64(x.bitPattern)) }
            return h
        }

        /// The partition's rows (read once per job and worker) and, with a plan, its standardized matrix.
        func rows(_ task: TaskContext, plan: Chorus_V1_Jobs_SegmentsPlan?) async throws -> (SegmentRows, [Float]?) {
            let p = task.partition
            var cached = cache.withLock { $0[p] }
            if cached == nil {
                let data = task.data, groups = self.groups, minInteractions = self.minInteractions
                let rows = try await task.compute {
                    try SegmentsJob.load(data, groups: groups, minInteractions: minInteractions, cancellation: task.cancellation)
                }
                cached = Cached(rows: rows)
            }
            guard var c = cached else { throw ChorusError(.internal, "segments: no rows") }
            if let plan {
                let fp = Self.fingerprint(plan)
                if c.matrix == nil || c.layout != fp {
                    let rows = c.rows
                    c.matrix = try await task.compute { SegmentsJob.standardize(rows, plan) }
                    c.layout = fp
                }
            }
            let done = c
            cache.withLock { $0[p] = done }
            return (c.rows, c.matrix)
        }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            let stage = task.stage
            if stage == "stats" {
                let (rows, _) = try await self.rows(task, plan: nil)
                return TaskOutput(partition: task.partition, payload: try SegmentsJob.stats(rows).serializedData(),
                                  recordsRead: rows.read)
            }
            guard stage == "sample" || stage == "write" || stage.hasPrefix("lloyd-") else {
                throw TaskContext.invalid("run_task.stage", "segments has no stage '\(stage.prefix(40))'")
            }
            guard let plan = plans.withLock({ $0[stage] }) else { throw task.unavailable("the \(stage) plan") }
            let (rows, m) = try await self.rows(task, plan: plan)
            guard let matrix = m else { throw ChorusError(.internal, "segments: no matrix") }
            let dims = plan.names.count
            switch stage {
            case "sample":
                var out = Chorus_V1_Jobs_SegmentsSample()
                for (i, id) in rows.ids.enumerated() where SegmentsJob.sampled(id, seed: plan.seed, rate: plan.sampleRate) {
                    out.rows.append(contentsOf: matrix[(i * dims)..<((i + 1) * dims)])
                }
                return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: UInt64(rows.ids.count))
            case "write":
                let (written, writes) = try await task.compute {
                    try SegmentsJob.write(rows, matrix: matrix, plan: plan, partition: task.partition)
                }
                try await task.write(writes)
                return TaskOutput(partition: task.partition, payload: try written.serializedData(), recordsRead: UInt64(rows.ids.count))
            default:
                let centroids = plan.centroids
                let p = try await task.compute { KMeans.partial(matrix, dims: dims, centroids: centroids) }
                var out = Chorus_V1_Jobs_SegmentsPartial()
                out.sums = p.sums
                out.counts = p.counts.map { UInt64($0) }
                out.inertia = p.inertia
                return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: UInt64(rows.ids.count))
            }
        }
    }

    /// The user's segment section JSON (or its insufficient-data state), and the partition's aggregates.
    static func write(_ rows: SegmentRows, matrix: [Float], plan: Chorus_V1_Jobs_SegmentsPlan,
                      partition: UInt32) throws -> (Chorus_V1_Jobs_SegmentsWritten, DerivedWrites) {
        let dims = plan.names.count, k = Int(plan.k)
        var w = DerivedWrites(partition: partition)
        w.clear(role: role)
        let (labels, dist) = KMeans.assign(matrix, dims: dims, centroids: plan.centroids)
        var index: [String: Int] = [:]
        for (i, n) in plan.names.enumerated() { index[n] = i }
        let local = rows.names.map { index[$0] }
        var aggs = (0..<k).map { j -> Chorus_V1_Jobs_SegmentAggregate in
            var a = Chorus_V1_Jobs_SegmentAggregate()
            a.row = UInt32(j)
            a.rawSum = [Double](repeating: 0, count: dims)
            a.rawPresent = [UInt64](repeating: 0, count: dims)
            return a
        }
        var nearest = [[(String, Float)]](repeating: [], count: k)
        for i in 0..<rows.ids.count {
            let j = Int(labels[i])
            let id = plan.ids.isEmpty ? UInt32(j) : plan.ids[j]
            var o = "{\"state\":\"assigned\",\"segment\":\(id),\"distance\":\(String(format: "%.4f", Double(dist[i]).squareRoot()))"
            if plan.storeVectors {
                o += ",\"vector\":[" + matrix[(i * dims)..<((i + 1) * dims)].map { String($0) }.joined(separator: ",") + "]"
            }
            o += "}"
            w.put(role: role, id: rows.ids[i], Array(o.utf8))
            aggs[j].users += 1
            aggs[j].inertia += Double(dist[i])
            for (lc, g) in local.enumerated() {
                guard let g else { continue }
                let x = rows.raw[i * rows.dims + lc]
                if !x.isNaN { aggs[j].rawSum[g] += Double(x); aggs[j].rawPresent[g] += 1 }
            }
            aggs[j].channels[rows.channel[i], default: 0] += 1
            for t in rows.topics[i] { aggs[j].topics[t.name, default: 0] += t.weight }
            for t in rows.hashtags[i] { aggs[j].hashtags[t.name, default: 0] += t.weight }
            nearest[j].append((rows.ids[i], dist[i]))
            if nearest[j].count > 12 {
                nearest[j].sort { ($0.1, $0.0) < ($1.1, $1.0) }
                nearest[j].removeLast(nearest[j].count - 5)
            }
        }
        for j in 0..<k {
            nearest[j].sort { ($0.1, $0.0) < ($1.1, $1.0) }
            aggs[j].nearest = nearest[j].prefix(5).map { var n = Chorus_V1_Jobs_SegmentNearUser(); n.userID = $0.0; n.distance = $0.1.squareRoot(); return n }
        }
        for u in rows.insufficient {
            let o = "{\"state\":\"insufficient_data\",\"reason\":\"\(u.interactions) interaction\(u.interactions == 1 ? "" : "s"), "
                + "below min_interactions=\(plan.minInteractions)\"}"
            w.put(role: role, id: u.id, Array(o.utf8))
        }
        var out = Chorus_V1_Jobs_SegmentsWritten()
        out.segments = aggs
        out.insufficient = UInt64(rows.insufficient.count)
        return (out, w)
    }
}
