import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// One user of a partition, as propensity reads it.
struct PropensityUser: Sendable {
    var id: String
    var channel: String
    var followers: Int
    var events: [PropensityEvent]
}

/// A partition's feature rows for one plan. Slices: 0 fit, 1 dev, 2 calibration (training period), 3 test, 4 scoring.
struct PropensityRows: Sendable {
    var plan: Chorus_V1_Jobs_PropensityPlan
    var x: [[[Double]]] = Array(repeating: [], count: 5)
    var labels: [[Bool]] = Array(repeating: [], count: 5)
    var ids: [[String]] = Array(repeating: [], count: 5)
    /// Users without an interaction before the train cutoff, the test cutoff, the end of the data.
    var insufficient = [0, 0, 0]
    /// The users with no interaction at all up to the end of the data (their profile says so).
    var unscored: [String] = []
}

/// The job on one worker: each partition's users (read once), their rows for the current plan, and the latest
/// broadcast. Tasks of several partitions run at once, so all of it sits behind mutexes.
final class PropensityWorker: JobWorker {
    let users = Mutex<[UInt32: [PropensityUser]]>([:])
    let rows = Mutex<[UInt32: PropensityRows]>([:])
    let current = Mutex<(stage: String, broadcast: Chorus_V1_Jobs_PropensityBroadcast)?>(nil)

    func receive(_ broadcast: JobBroadcast) throws {
        let b: Chorus_V1_Jobs_PropensityBroadcast
        do {
            b = try Chorus_V1_Jobs_PropensityBroadcast(serializedBytes: broadcast.payload)
        } catch {
            throw TaskContext.invalid("job_broadcast.payload", "not a propensity broadcast: \(error)")
        }
        try Self.check(b, stage: broadcast.stage)
        current.withLock { $0 = (broadcast.stage, b) }
    }

    func release() {
        users.withLock { $0 = [:] }
        rows.withLock { $0 = [:] }
        current.withLock { $0 = nil }
    }

    /// A broadcast is remote input: a sane plan, and vectors that fit its feature count.
    static func check(_ b: Chorus_V1_Jobs_PropensityBroadcast, stage: String) throws {
        let p = b.plan
        guard p.horizonS > 0, p.horizonS <= 3650 * 86400, p.windowS > 0, p.windowS <= 7300 * 86400 else {
            throw TaskContext.invalid("job_broadcast.payload.plan", "horizon \(p.horizonS) s or window \(p.windowS) s out of range")
        }
        // Times within ±2^40 s (±35,000 years): cutoff − window and cutoff + horizon cannot overflow.
        let bound: Int64 = 1 << 40
        guard [p.trainCutoff, p.testCutoff, p.scoreAt].allSatisfy({ (-bound...bound).contains($0) }) else {
            throw TaskContext.invalid("job_broadcast.payload.plan", "a cutoff is out of range")
        }
        guard p.trainCutoff < p.testCutoff, p.testCutoff <= p.scoreAt, p.channels.count <= 64 else {
            throw TaskContext.invalid("job_broadcast.payload.plan", "cutoffs out of order or too many channels")
        }
        guard stage != "pr-features" else { return }
        let d = PropensityFeatures.names(channels: p.channels).count
        guard b.mean.count == d, b.scale.count == d, b.parameters.count == d + 1 else {
            throw TaskContext.invalid("job_broadcast.payload", "\(b.mean.count) means, \(b.scale.count) scales and "
                                      + "\(b.parameters.count) parameters do not fit \(d) features")
        }
        guard (b.mean + b.parameters + [b.plattA, b.plattB] + b.decileCuts).allSatisfy(\.isFinite),
              b.scale.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw TaskContext.invalid("job_broadcast.payload", "a value is not finite, or a scale is not positive")
        }
        if stage == "pr-write", b.decileCuts.count != 9, !b.decileCuts.isEmpty {
            throw TaskContext.invalid("job_broadcast.payload.decile_cuts", "\(b.decileCuts.count) cut points, not 9")
        }
    }

    func broadcast(_ task: TaskContext) throws -> Chorus_V1_Jobs_PropensityBroadcast {
        guard let (stage, b) = current.withLock({ $0 }), stage == task.stage else {
            throw task.unavailable("the broadcast of \(task.stage)")
        }
        return b
    }

    func loadUsers(_ task: TaskContext) async throws -> [PropensityUser] {
        if let u = users.withLock({ $0[task.partition] }) { return u }
        // First stage, or the partition moved here / this worker restarted: read it from the store.
        let data = task.data
        let u = try await task.compute { try Self.read(data, cancellation: task.cancellation) }
        users.withLock { $0[task.partition] = u }
        return u
    }

    func loadRows(_ task: TaskContext, plan: Chorus_V1_Jobs_PropensityPlan) async throws -> PropensityRows {
        if let r = rows.withLock({ $0[task.partition] }), r.plan == plan { return r }
        let u = try await loadUsers(task)
        let r = try await task.compute { try Self.rows(u, plan: plan, cancellation: task.cancellation) }
        rows.withLock { $0[task.partition] = r }
        return r
    }

    func run(_ task: TaskContext) async throws -> TaskOutput {
        let stage = task.stage
        if stage == "pr-load" {
            let u = try await loadUsers(task)
            var l = Chorus_V1_Jobs_PropensityLoad()
            var first = Int64.max, last = Int64.min
            for user in u {
                for e in user.events { first = min(first, e.ts); last = max(last, e.ts) }
                l.events += UInt64(user.events.count)
                if !user.channel.isEmpty { l.channels[user.channel, default: 0] += 1 }
            }
            l.users = UInt64(u.count)
            if l.events > 0 { l.firstTs = first; l.lastTs = last }
            return TaskOutput(partition: task.partition, payload: try l.serializedData(), recordsRead: l.events)
        }
        let b = try broadcast(task)
        let r = try await loadRows(task, plan: b.plan)
        let n = UInt64(r.x.reduce(0) { $0 + $1.count })
        switch stage {
        case "pr-features":
            let s = Self.stats(r, export: b.plan.exportFeatures)
            return TaskOutput(partition: task.partition, payload: try s.serializedData(), recordsRead: n)
        case _ where stage.hasPrefix("pr-eval-"):
            guard UInt32(stage.dropFirst("pr-eval-".count)) == b.step else {
                throw task.unavailable("the parameters of \(stage)")
            }
            let g = try await task.compute { Self.gradient(r, b) }
            return TaskOutput(partition: task.partition, payload: try g.serializedData(), recordsRead: n)
        case _ where stage.hasPrefix("pr-predict-"):
            let p = try await task.compute { Self.predictions(r, b) }
            return TaskOutput(partition: task.partition, payload: try p.serializedData(), recordsRead: n)
        case "pr-score":
            let data = task.data
            let s = try await task.compute { try Self.scores(r, b, data) }
            return TaskOutput(partition: task.partition, payload: try s.serializedData(), recordsRead: n)
        case "pr-write":
            guard b.decileCuts.count == 9 || r.x[4].isEmpty else {
                throw TaskContext.invalid("job_broadcast.payload.decile_cuts", "pr-write needs 9 cut points")
            }
            let partition = task.partition
            let (w, written) = try await task.compute { try Self.profiles(r, b, partition: partition) }
            try await task.write(w)
            return TaskOutput(partition: task.partition, payload: try written.serializedData(), recordsRead: n)
        default:
            throw TaskContext.invalid("run_task.stage", "propensity has no stage '\(stage.prefix(40))'")
        }
    }

    // MARK: reading

    /// The partition's users: user records, users with interactions, and follower counts; in id order.
    static func read(_ data: PartitionView, cancellation: CancellationFlag) throws -> [PropensityUser] {
        var channel: [String: String] = [:]
        try data.scan(role: ShardKeys.role(.user)) { _, v in
            let u = try Chorus_V1_User(borrowing: v)
            channel[u.id] = u.channel
            return true
        }
        var followers: [String: Int] = [:]
        try data.scan(role: ShardKeys.role(.followIn)) { k, _ in
            followers[PartitionView.groupId(of: k), default: 0] += 1
            return true
        }
        var events: [String: [PropensityEvent]] = [:]
        var n = 0
        _ = try data.interactionGroups(role: ShardKeys.role(.interactionByUser)) { id, group in
            n += 1
            if n % 1024 == 0, cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            events[id] = group.map { PropensityEvent(ts: $0.ts, kind: $0.kind, value: $0.value) }
        }
        return Set(channel.keys).union(events.keys).sorted().map { id in
            PropensityUser(id: id, channel: channel[id] ?? "", followers: followers[id] ?? 0, events: events[id] ?? [])
        }
    }

    /// Every user's rows for the plan: the training period (in its slice), the test period, the scoring time.
    static func rows(_ users: [PropensityUser], plan: Chorus_V1_Jobs_PropensityPlan,
                     cancellation: CancellationFlag) throws -> PropensityRows {
        var r = PropensityRows(plan: plan)
        let ch = plan.channels
        for (i, u) in users.enumerated() {
            if i % 1024 == 0, cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            func add(_ slice: Int, cutoff: Int64, label: Bool, missing: Int) {
                guard let x = PropensityFeatures.row(events: u.events, followers: u.followers, channel: u.channel,
                                                     channels: ch, cutoff: cutoff, window: plan.windowS) else {
                    r.insufficient[missing] += 1
                    if missing == 2 { r.unscored.append(u.id) }
                    return
                }
                r.x[slice].append(x); r.labels[slice].append(label); r.ids[slice].append(u.id)
            }
            add(PropensityFeatures.slice(of: u.id).rawValue, cutoff: plan.trainCutoff,
                label: PropensityFeatures.label(events: u.events, cutoff: plan.trainCutoff, horizon: plan.horizonS), missing: 0)
            add(3, cutoff: plan.testCutoff,
                label: PropensityFeatures.label(events: u.events, cutoff: plan.testCutoff, horizon: plan.horizonS), missing: 1)
            add(4, cutoff: plan.scoreAt, label: false, missing: 2)
        }
        return r
    }

    // MARK: stages

    static func stats(_ r: PropensityRows, export: Bool) -> Chorus_V1_Jobs_PropensityStats {
        let d = PropensityFeatures.names(channels: r.plan.channels).count
        var s = Chorus_V1_Jobs_PropensityStats()
        var sum = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        for x in r.x[0] { for j in 0..<d { sum[j] += x[j]; sq[j] += x[j] * x[j] } }
        s.fitSum = sum
        s.fitSumSquares = sq
        s.rows = r.x.map { UInt64($0.count) }
        s.positives = (0..<4).map { k in UInt64(r.labels[k].filter { $0 }.count) }
        s.insufficient = r.insufficient.map { UInt64($0) }
        if export {
            for k in 0..<5 {
                for i in r.x[k].indices {
                    var row = Chorus_V1_Jobs_PropensityRow()
                    row.userID = r.ids[k][i]; row.slice = UInt32(k); row.label = r.labels[k][i]; row.x = r.x[k][i]
                    s.design.append(row)
                }
            }
        }
        return s
    }

    static func standardizer(_ b: Chorus_V1_Jobs_PropensityBroadcast) -> Standardizer {
        Standardizer(mean: b.mean, scale: b.scale)
    }

    static func gradient(_ r: PropensityRows, _ b: Chorus_V1_Jobs_PropensityBroadcast) -> Chorus_V1_Jobs_PropensityGradient {
        let std = standardizer(b)
        var g = [Double](repeating: 0, count: b.parameters.count)
        let z = r.x[0].map(std.apply)
        var out = Chorus_V1_Jobs_PropensityGradient()
        out.loss = LogisticRegression.lossAndGradient(b.parameters, rows: z, labels: r.labels[0], into: &g)
        out.gradient = g
        out.rows = UInt64(z.count)
        return out
    }

    static func predictions(_ r: PropensityRows, _ b: Chorus_V1_Jobs_PropensityBroadcast) -> Chorus_V1_Jobs_PropensityPredictions {
        let std = standardizer(b)
        func logits(_ k: Int) -> [Double] { r.x[k].map { LogisticRegression.logit(b.parameters, std.apply($0)) } }
        func labels(_ k: Int) -> Data { Data(r.labels[k].map { $0 ? 1 : 0 }) }
        var p = Chorus_V1_Jobs_PropensityPredictions()
        p.devLogits = logits(1); p.devLabels = labels(1)
        p.calibrationLogits = logits(2); p.calibrationLabels = labels(2)
        p.testLogits = logits(3); p.testLabels = labels(3)
        return p
    }

    static func probability(_ x: [Double], _ b: Chorus_V1_Jobs_PropensityBroadcast, _ std: Standardizer) -> Double {
        PlattScaling(a: b.plattA, b: b.plattB).probability(LogisticRegression.logit(b.parameters, std.apply(x)))
    }

    /// The segment a `segments` job wrote for the user (role 0x60, JSON `{"segment": N, ...}`), if any.
    static func segment(_ data: PartitionView, _ id: String) throws -> Int64? {
        try data.get(role: PropensityJob.segmentRole, id: id).flatMap(segment(json:))
    }

    /// The `segment` of a segment section's JSON; nil when it is not an object with a whole-number segment.
    static func segment(json v: [UInt8]) -> Int64? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(v)) as? [String: Any],
              let s = o["segment"] as? NSNumber, let n = Int64(exactly: s.doubleValue) else { return nil }
        return n
    }

    static func scores(_ r: PropensityRows, _ b: Chorus_V1_Jobs_PropensityBroadcast,
                       _ data: PartitionView) throws -> Chorus_V1_Jobs_PropensityScores {
        let std = standardizer(b)
        let p = r.x[4].map { probability($0, b, std) }
        var s = Chorus_V1_Jobs_PropensityScores()
        s.probabilities = p
        s.insufficient = UInt64(r.unscored.count)
        let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : r.ids[4][$0] < r.ids[4][$1] }
        for i in order.prefix(Int(b.top)) {
            var t = Chorus_V1_Jobs_PropensityTopUser()
            t.userID = r.ids[4][i]
            t.probability = p[i]
            if let seg = try segment(data, t.userID) { t.segmented = true; t.segment = seg }
            s.top.append(t)
        }
        return s
    }

    /// Every user's profile section: the score, its decile and the top reasons, or "insufficient data".
    static func profiles(_ r: PropensityRows, _ b: Chorus_V1_Jobs_PropensityBroadcast,
                         partition: UInt32) throws -> (DerivedWrites, Chorus_V1_Jobs_PropensityWritten) {
        let std = standardizer(b)
        let names = PropensityFeatures.names(channels: b.plan.channels)
        let horizonDays = Int(b.plan.horizonS / 86400)
        let asOf = PropensityJob.isoTime(b.plan.scoreAt)
        var w = DerivedWrites(partition: partition)
        w.clear(role: PropensityJob.role)
        var out = Chorus_V1_Jobs_PropensityWritten()
        out.deciles = [UInt64](repeating: 0, count: 10)
        for (i, x) in r.x[4].enumerated() {
            let z = std.apply(x)
            let p = PlattScaling(a: b.plattA, b: b.plattB).probability(LogisticRegression.logit(b.parameters, z))
            let decile = PropensityMetrics.decile(p, cuts: b.decileCuts)
            let reasons = PropensityWords.reasons(names: names, weights: b.parameters, z: z)
            let o: [String: Any] = ["state": "scored", "probability": p, "decile": decile, "horizon_days": horizonDays,
                                    "as_of": asOf, "reasons": reasons]
            w.put(role: PropensityJob.role, id: r.ids[4][i], Array(try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])))
            out.scored += 1
            out.deciles[decile - 1] += 1
        }
        for id in r.unscored {
            let o: [String: Any] = ["state": "insufficient_data", "horizon_days": horizonDays, "as_of": asOf,
                                    "reason": "no interactions up to \(asOf)"]
            w.put(role: PropensityJob.role, id: id, Array(try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])))
            out.insufficient += 1
        }
        return (w, out)
    }
}
