import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Synchronization

/// Settings of an `als` job, parsed from its params (documented in docs/cli.md).
struct ALSJobConfig: Sendable {
    var als = ALS.Config()
    /// Fraction of interactions held out for evaluation (decided per interaction id, so both copies agree).
    var holdout = 0.2
    /// How the evaluation set is chosen: `interaction` (a `holdout` fraction, by a hash of the interaction id and
    /// the seed) or `last` (per user: the interactions at the user's latest timestamp, e.g. the last order, for
    /// users with earlier ones too; `holdout` is then ignored).
    var holdoutBy = HoldoutBy.interaction
    enum HoldoutBy: String, Sendable { case interaction, last }
    /// Implicit evaluation: may an item the user already interacted with be recommended (and count as a hit)?
    /// false (default) for discovery; true for repeat consumption such as grocery orders. With true, the report
    /// also has a `personal` baseline: the user's own most frequent items.
    var repeats = false
    /// Implicit evaluation: rank for at most about this many users (a stable hash of the user id and the seed
    /// picks them; 0 = every user). Scoring a user costs items × rank, so all users of a large set would cost
    /// users × items × rank.
    var evalUsers = 5000
    /// Top-N recommendations stored per user by the save stage (0 = none), when users × items × rank is at most
    /// `topNBudget` (scoring every user against every item; beyond that `chorus recommend` scores on demand).
    var storeTopN = 10
    static let topNBudget = 2e10
    /// k of the ranking metrics.
    var k = 10
    /// Explicit mode: also report the RMSE of ALS plus the residual neighbourhood correction over this many of the
    /// user's rated items (0 = off). See `ALS.correction`.
    var neighbours = 0
    /// Implicit confidence weight per interaction type.
    var weights = Self.defaultWeights
    static let defaultWeights: [InteractionKind: Double] = [.view: 1, .like: 3, .comment: 4, .share: 5, .click: 2,
                                                             .conversion: 8, .rating: 1]

    init(params: [String: String]) throws {
        func num(_ key: String) throws -> Double? {
            guard let s = params[key] else { return nil }
            guard let v = Double(s), v.isFinite else { throw ChorusError(.usage, "als: \(key) must be a number, not '\(s)'") }
            return v
        }
        /// An integer parameter, range-checked before the conversion (Int(1e300) would trap).
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = try num(key) else { return nil }
            guard v >= Double(range.lowerBound), v <= Double(range.upperBound), v == v.rounded() else {
                throw ChorusError(.usage, "als: \(key) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return Int(v)
        }
        if let v = try int("rank", 1...512) { als.rank = v }
        if let v = try num("lambda") { als.lambda = v }
        if let v = try num("alpha") { als.alpha = v }
        if let v = try int("iterations", 1...1000) { als.iterations = v }
        if let v = try num("lambda_exponent") { als.lambdaExponent = v }
        if let v = try num("bias_lambda") { als.biasLambda = v }
        if let v = try int("cg_steps", 0...100) { als.cgSteps = v }
        if let sv = params["solver"] {
            switch sv {
            case "cholesky": als.cgSteps = 0
            case "cg": if params["cg_steps"] == nil { als.cgSteps = 3 }
            default: throw ChorusError(.usage, "als: solver must be cholesky or cg")
            }
        }
        if let v = try num("holdout") { holdout = v }
        if let v = try int("k", 1...1000) { k = v }
        if let v = try int("neighbours", 0...1000) { neighbours = v }
        if let v = try int("eval_users", 0...100_000_000) { evalUsers = v }
        if let v = try int("store_top_n", 0...1000) { storeTopN = v }
        if let s = params["seed"] {
            guard let v = UInt64(s) else { throw ChorusError(.usage, "als: seed must be an unsigned integer") }
            als.seed = v
        }
        if let m = params["mode"] {
            guard let mode = ALS.Mode(rawValue: m) else { throw ChorusError(.usage, "als: mode must be explicit or implicit") }
            als.mode = mode
        }
        if params["biases"] == "false" { als.biases = false }
        if let h = params["holdout_by"] {
            guard let v = HoldoutBy(rawValue: h) else { throw ChorusError(.usage, "als: holdout_by must be interaction or last") }
            holdoutBy = v
        }
        if let r = params["repeats"] {
            guard let v = Bool(r) else { throw ChorusError(.usage, "als: repeats must be true or false") }
            repeats = v
        }
        for kind in InteractionKind.allCases {
            if let v = try num("weight_" + kind.name) { weights[kind] = v }
        }
        guard als.lambda >= 0, als.alpha >= 0 else { throw ChorusError(.usage, "als: lambda and alpha must be ≥ 0") }
        guard (0.0..<1.0).contains(holdout) else { throw ChorusError(.usage, "als: holdout must be in [0, 1)") }
    }

    var width: Int { als.mode == .explicit && als.biases ? als.rank + 1 : als.rank }

    /// True when the interaction is held out: a stable hash of its id and the seed, or (holdout_by=last) its time
    /// against the user's cutoff.
    func isHeldOut(_ it: InteractionRecord, cutoffs: [String: Int64]) -> Bool {
        switch holdoutBy {
        case .last:
            guard let c = cutoffs[it.userId] else { return false }
            return it.ts >= c
        case .interaction:
            guard holdout > 0 else { return false }
            // FNV-1a 64 alone hardly moves its top bits when only the seed's last digit changes, so seeds 1, 2
            // and 3 gave one split; the avalanche step makes each seed its own split.
            let h = StableHash.mixed64(Array(it.id.utf8) + [0] + Array(String(als.seed).utf8))
            return Double(h >> 11) * 0x1.0p-53 < holdout
        }
    }

    /// The observation value of an interaction, or nil when it does not count in this mode.
    func value(_ it: InteractionRecord) -> Float? {
        switch als.mode {
        // Only ratings are ratings: a conversion's value is money, and fitting it as stars gave an RMSE of 56.
        case .explicit: return it.kind == .rating && it.value > 0 ? Float(it.value) : nil
        case .implicit:
            let w = it.kind == .rating ? max(it.value, 1) : (weights[it.kind] ?? 0)
            return w > 0 ? Float(w) : nil
        }
    }
}

/// One partition's observations, read once per job.
struct ALSPartition: Sendable {
    var userIds: [String] = []
    var userObs: [[(String, Float)]] = []
    var itemIds: [String] = []
    var itemObs: [[(String, Float)]] = []
    var heldOut: [(user: String, item: String, value: Float)] = []
    var valueSum = 0.0
    var observations = 0
    /// Dense rows, built when the other side's index is known.
    var userRows: [ALS.Row]?
    var itemRows: [ALS.Row]?
}

/// A worker's state for one running `als` job.
final class ALSWorkerJob: Sendable {
    struct Inner {
        var parts: [UInt32: ALSPartition] = [:]
        var userIndex: [String: Int32] = [:]
        var itemIndex: [String: Int32] = [:]
        var users: ALS.Factors?
        var items: ALS.Factors?
        var usersGram: [Double] = []
        var itemsGram: [Double] = []
        var mean: Float = 0
        var popularity: [UInt32] = []
        /// holdout_by=last: each user's hold-out cutoff (from the coordinator's broadcast).
        var cutoffs: [String: Int64]?
    }
    let config: ALSJobConfig
    let inner = Mutex(Inner())
    init(config: ALSJobConfig) { self.config = config }
}

enum FloatPacking {
    static func pack(_ v: [Float]) -> Data {
        #if _endian(little)
        return v.withUnsafeBytes { Data($0) }
        #else
        var d = Data(capacity: v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
        #endif
    }

    static func unpack(_ d: Data) -> [Float] {
        var out = [Float](repeating: 0, count: d.count / 4)
        d.withUnsafeBytes { raw in
            for i in out.indices { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
        }
        return out
    }

    static func packDoubles(_ v: [Double]) -> Data {
        var d = Data(capacity: v.count * 8)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    static func unpackDoubles(_ d: Data) -> [Double] {
        var out = [Double](repeating: 0, count: d.count / 8)
        d.withUnsafeBytes { raw in
            for i in out.indices { out[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))) }
        }
        return out
    }
}

extension ShardKeys.Derived {
    /// Stored factor roles (float32 LE vector, bias last in explicit mode with biases).
    static let userFactors: UInt8 = 0x52  // 'R'
    static let contentFactors: UInt8 = 0x53  // 'S'
    /// The user's stored top-N recommendations (UTF-8 JSON array of {"content_id", "score"}).
    static let userRecommendations: UInt8 = 0x54  // 'T'
}

extension Worker {
    func alsJob(_ t: Chorus_V1_RunTask) throws -> ALSWorkerJob {
        if let j = state.withLock({ $0.als[t.jobID] }) { return j }
        let j = ALSWorkerJob(config: try ALSJobConfig(params: t.params))
        return state.withLock { s in
            if let e = s.als[t.jobID] { return e }
            s.als[t.jobID] = j
            return j
        }
    }

    /// Applies an ALS broadcast: the factors of one or both sides. The ids (and the popularity and hold-out
    /// cutoffs) come with the first broadcast this process receives for each side; a later one without them is
    /// refused as unavailable if they are missing here, and the coordinator then sends them again.
    func alsBroadcast(_ b: Chorus_V1_JobBroadcast) throws {
        // The shape of every side was checked by `RequestValidation.check`; here each side is checked against the
        // job (rank, width, mode, the ids held) before anything is applied, so a refused broadcast changes nothing.
        let existing = state.withLock { $0.als[b.jobID] }
        var config = existing?.config
        if config == nil {
            guard let params = b.als.first?.params ?? (b.hasAlsCutoffs ? b.alsCutoffs.params : nil) else { return }
            do {
                config = try ALSJobConfig(params: params)
            } catch let e as ChorusError {
                throw RequestValidation.invalid("job_broadcast.als[0].params", e.message)
            }
        }
        guard let config else { return }
        let known = existing?.inner.withLock { ($0.userIndex.count, $0.itemIndex.count) } ?? (0, 0)
        for (i, m) in b.als.enumerated() {
            let held = m.side == "users" ? known.0 : known.1
            try RequestValidation.alsModel(m, field: "job_broadcast.als[\(i)]", rank: config.als.rank,
                                           width: config.width, implicit: config.als.mode == .implicit,
                                           knownIds: held > 0 ? held : nil)
        }
        let job = existing ?? state.withLock { s in
            if let e = s.als[b.jobID] { return e }
            let j = ALSWorkerJob(config: config)
            s.als[b.jobID] = j
            return j
        }
        if b.hasAlsCutoffs {
            job.inner.withLock { s in
                guard s.cutoffs == nil else { return }
                let c = b.alsCutoffs
                s.cutoffs = Dictionary(zip(c.users, c.ts), uniquingKeysWith: { a, _ in a })
            }
        }
        for m in b.als {
            let data = FloatPacking.unpack(m.factors)
            var f = ALS.Factors(rank: Int(m.rank), width: Int(m.width), count: 0)
            f.data = data
            let gram = m.gram.isEmpty ? [] : FloatPacking.unpackDoubles(m.gram)
            if m.ids.isEmpty {
                let known = job.inner.withLock { m.side == "users" ? $0.userIndex.count : $0.itemIndex.count }
                guard known == f.count, known > 0 else {
                    throw ChorusError(.unavailable, "als: the \(m.side) ids of job \(b.jobID) have not reached \(name)")
                }
            }
            // Ids are unique (validated); `uniquingKeysWith` keeps this line from trapping even if they were not.
            func index(_ ids: [String]) -> [String: Int32] {
                Dictionary(ids.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
            }
            job.inner.withLock { s in
                s.mean = m.mean
                if m.side == "users" {
                    if !m.ids.isEmpty, m.ids.count != s.userIndex.count {
                        s.userIndex = index(m.ids)
                        for p in s.parts.keys { s.parts[p]?.itemRows = nil }
                    }
                    s.users = f
                    s.usersGram = gram
                } else {
                    if !m.ids.isEmpty, m.ids.count != s.itemIndex.count {
                        s.itemIndex = index(m.ids)
                        for p in s.parts.keys { s.parts[p]?.userRows = nil }
                    }
                    s.items = f
                    s.itemsGram = gram
                    if !m.popularity.isEmpty { s.popularity = m.popularity }
                }
            }
        }
    }

    /// Reads one partition's interactions (both copies) into memory: the ratings cache of the job.
    static func alsLoad(store: Store, partition p: UInt32, config: ALSJobConfig,
                        cutoffs: [String: Int64]) throws -> ALSPartition {
        var part = ALSPartition()
        func side(_ role: UInt8, user: Bool) throws -> ([String], [[(String, Float)]]) {
            var ids: [String] = []
            var obs: [[(String, Float)]] = []
            var current: String?
            var acc: [String: (Double, Int)] = [:]
            func flush() {
                guard let c = current, !acc.isEmpty else { return }
                ids.append(c)
                obs.append(acc.keys.sorted().map { k in
                    let (s, n) = acc[k]!
                    return (k, Float(config.als.mode == .explicit ? s / Double(n) : s))
                })
            }
            try store.scan(prefix: ShardKeys.prefix(partition: p, role: role)) { key, value in
                let gid = groupId(key)
                if gid != current { flush(); current = gid; acc.removeAll(keepingCapacity: true) }
                let m = try Chorus_V1_Interaction(borrowing: UnsafeRawBufferPointer(value))
                guard let it = Wire.decode(m), let v = config.value(it) else { return true }
                if config.isHeldOut(it, cutoffs: cutoffs) {
                    if user { part.heldOut.append((it.userId, it.contentId, v)) }
                    return true
                }
                let other = user ? it.contentId : it.userId
                let e = acc[other] ?? (0, 0)
                acc[other] = (e.0 + Double(v), e.1 + 1)
                if user { part.valueSum += Double(v); part.observations += 1 }
                return true
            }
            flush()
            return (ids, obs)
        }
        (part.userIds, part.userObs) = try side(ShardKeys.role(.interactionByUser), user: true)
        (part.itemIds, part.itemObs) = try side(ShardKeys.role(.interactionByContent), user: false)
        // The user side was averaged per pair above; count pairs, not raw interactions.
        part.observations = part.userObs.reduce(0) { $0 + $1.count }
        part.valueSum = part.userObs.reduce(0.0) { $0 + $1.reduce(0.0) { $0 + Double($1.1) } }
        return part
    }

    /// Each user's latest interaction time, for users with an earlier one too (holdout_by=last).
    static func alsLastTimes(store: Store, partition p: UInt32, config: ALSJobConfig) throws -> Chorus_V1_AlsLoadResult {
        var r = Chorus_V1_AlsLoadResult()
        var current: String?
        var latest = Int64.min, earliest = Int64.max
        func flush() {
            if let c = current, earliest < latest { r.users.append(c); r.lastTs.append(latest) }
        }
        try store.scan(prefix: ShardKeys.prefix(partition: p, role: ShardKeys.role(.interactionByUser))) { key, value in
            let gid = groupId(key)
            if gid != current { flush(); current = gid; latest = .min; earliest = .max }
            let m = try Chorus_V1_Interaction(borrowing: UnsafeRawBufferPointer(value))
            guard let it = Wire.decode(m), config.value(it) != nil else { return true }
            latest = max(latest, it.ts)
            earliest = min(earliest, it.ts)
            return true
        }
        flush()
        return r
    }

    /// The partition's cache, loading it if this worker has not read it yet (a restart, or a moved partition).
    func alsPartition(_ job: ALSWorkerJob, _ p: UInt32) async throws -> ALSPartition {
        let (cached, received) = job.inner.withLock { ($0.parts[p], $0.cutoffs) }
        if let part = cached { return part }
        let store = self.store
        let config = job.config
        var cutoffs: [String: Int64] = [:]
        if config.holdoutBy == .last {
            guard let received else {
                throw ChorusError(.unavailable, "als: the per-user hold-out cutoffs have not reached \(name) yet")
            }
            cutoffs = received
        }
        let cut = cutoffs
        let part = try await computeQueue.run {
            try Self.alsLoad(store: store, partition: p, config: config, cutoffs: cut)
        }
        job.inner.withLock { s in if s.parts[p] == nil { s.parts[p] = part } }
        return part
    }

    func runALSTask(_ t: Chorus_V1_RunTask) async throws -> Chorus_V1_TaskResult {
        let job = try alsJob(t)
        let p = t.partition
        var result = Chorus_V1_TaskResult()
        result.jobID = t.jobID; result.stage = t.stage; result.partition = p
        if t.stage == "als-last" {
            let store = self.store
            let config = job.config
            result.alsLoad = try await computeQueue.run { try Self.alsLastTimes(store: store, partition: p, config: config) }
            return result
        }
        let part = try await alsPartition(job, p)
        if t.stage == "als-load" {
            var r = Chorus_V1_AlsLoadResult()
            r.users = part.userIds
            r.items = part.itemIds
            r.itemCounts = part.itemObs.map { UInt32($0.count) }
            r.valueSum = part.valueSum
            r.observations = UInt64(part.observations)
            r.heldOut = UInt64(part.heldOut.count)
            result.alsLoad = r
            result.recordsRead = UInt64(part.observations + part.heldOut.count)
            return result
        }
        let config = job.config
        if t.stage.hasPrefix("als-users-") || t.stage.hasPrefix("als-items-") {
            let solvingUsers = t.stage.hasPrefix("als-users-")
            let (other, gram, index, mean) = job.inner.withLock { s in
                solvingUsers ? (s.items, s.itemsGram, s.itemIndex, s.mean) : (s.users, s.usersGram, s.userIndex, s.mean)
            }
            // Conjugate-gradient steps start from the row's current vector: the last broadcast of this side, or the
            // initial vector before the first one (the same on every worker).
            let (current, currentIndex) = job.inner.withLock { s in
                solvingUsers ? (s.users, s.userIndex) : (s.items, s.itemIndex)
            }
            let prefix = solvingUsers ? "u:" : "i:"
            guard let other else {
                throw ChorusError(.unavailable, "job \(t.jobID): factors of the other side not received on \(name)")
            }
            let ids = solvingUsers ? part.userIds : part.itemIds
            let obs = solvingUsers ? part.userObs : part.itemObs
            // Rows with dense indices are built on the first half-iteration and kept with the partition's cache.
            let cached = job.inner.withLock { s in solvingUsers ? s.parts[p]?.userRows : s.parts[p]?.itemRows }
            let (packed, built): (Data, [ALS.Row]?) = try await computeQueue.run {
                let rows = cached ?? obs.map { row in
                    var pairs: [(Int32, Float)] = []
                    pairs.reserveCapacity(row.count)
                    for (id, v) in row { if let i = index[id] { pairs.append((i, v)) } }
                    pairs.sort { $0.0 < $1.0 }
                    return ALS.Row(index: pairs.map(\.0), value: pairs.map(\.1))
                }
                var solver = ALS.RowSolver()
                let cg = config.als.mode == .implicit && config.als.cgSteps > 0
                if cg { solver.prepare(gram: gram, rank: other.rank) }
                var out = [Float]()
                out.reserveCapacity(ids.count * other.width)
                let zero = [Float](repeating: 0, count: other.width)
                // The row's current vector: the last broadcast of this side, or its initial vector before the first
                // (the same on every worker). CG starts from it, and a row whose solve fails keeps it.
                func currentVector(_ j: Int) -> ArraySlice<Float> {
                    if let current, let g = currentIndex[ids[j]] {
                        return current.data[(Int(g) * current.width)..<((Int(g) + 1) * current.width)]
                    }
                    return ALS.initialVector(id: prefix + ids[j], seed: config.als.seed, rank: other.rank,
                                             width: other.width)[...]
                }
                for (j, r) in rows.enumerated() {
                    let solved: [Float]?
                    if config.als.mode == .explicit {
                        solved = solver.explicit(row: r, other: other, mean: mean, lambda: config.als.lambda,
                                                 biases: config.als.biases, lambdaExponent: config.als.lambdaExponent,
                                                 biasLambda: config.als.biasLambda)
                    } else if cg {
                        solved = solver.implicitCG(row: r, other: other, alpha: config.als.alpha,
                                                   lambda: config.als.lambda, start: currentVector(j),
                                                   steps: config.als.cgSteps)
                    } else {
                        solved = solver.implicit(row: r, other: other, gram: gram, alpha: config.als.alpha,
                                                 lambda: config.als.lambda)
                    }
                    if let solved { out.append(contentsOf: solved) } else if r.index.isEmpty {
                        out.append(contentsOf: zero)
                    } else {
                        out.append(contentsOf: currentVector(j))
                    }
                }
                return (FloatPacking.pack(out), cached == nil ? rows : nil)
            }
            if let built {
                job.inner.withLock { s in
                    if solvingUsers { s.parts[p]?.userRows = built } else { s.parts[p]?.itemRows = built }
                }
            }
            result.alsFactors = packed
            result.recordsRead = UInt64(obs.reduce(0) { $0 + $1.count })
            return result
        }
        if t.stage == "als-save" {
            let (users, items, userIndex, itemIndex, mean, popularity) = job.inner.withLock {
                ($0.users, $0.items, $0.userIndex, $0.itemIndex, $0.mean, $0.popularity)
            }
            guard let users, let items else {
                throw ChorusError(.unavailable, "job \(t.jobID): final factors not received on \(name)")
            }
            let (ops, eval) = try await computeQueue.run { () throws -> ([Chorus_V1_ReplicaOp], Chorus_V1_AlsEvalResult) in
                var ops: [Chorus_V1_ReplicaOp] = []
                func put(_ role: UInt8, _ id: String, _ v: ArraySlice<Float>) {
                    var op = Chorus_V1_ReplicaOp()
                    op.partition = p
                    op.key = Data(ShardKeys.key(partition: p, role: role, id: Array(id.utf8)))
                    op.value = Data([UInt8(users.rank & 0xFF), UInt8(users.rank >> 8)]) + FloatPacking.pack(Array(v))
                    ops.append(op)
                }
                for role in [ShardKeys.Derived.userFactors, ShardKeys.Derived.contentFactors,
                             ShardKeys.Derived.userRecommendations] {
                    let pre = ShardKeys.prefix(partition: p, role: role)
                    var op = Chorus_V1_ReplicaOp()
                    op.partition = p
                    op.key = Data(pre)
                    op.rangeEnd = Data(Store.prefixEnd(pre) ?? pre)
                    ops.append(op)
                }
                var eval = Chorus_V1_AlsEvalResult()
                for id in part.userIds {
                    guard let i = userIndex[id] else { continue }
                    let b = Int(i) * users.width
                    put(ShardKeys.Derived.userFactors, id, users.data[b..<(b + users.width)])
                    eval.factorsStored += 1
                }
                for id in part.itemIds {
                    guard let i = itemIndex[id] else { continue }
                    let b = Int(i) * items.width
                    put(ShardKeys.Derived.contentFactors, id, items.data[b..<(b + items.width)])
                    eval.factorsStored += 1
                }
                // Top-N per user, leaving out everything the user interacted with (training and held out).
                if config.storeTopN > 0,
                   Double(users.count) * Double(items.count) * Double(users.rank) <= ALSJobConfig.topNBudget {
                    var itemIdOf = [String](repeating: "", count: items.count)
                    for (id, i) in itemIndex { itemIdOf[Int(i)] = id }
                    var heldOf: [String: [String]] = [:]
                    for h in part.heldOut { heldOf[h.user, default: []].append(h.item) }
                    var scores = [Float](repeating: 0, count: items.count)
                    for (j, id) in part.userIds.enumerated() {
                        guard let u = userIndex[id].map(Int.init) else { continue }
                        ALS.scores(user: u, users: users, items: items, into: &scores)
                        // Explicit mode: the predicted rating (mean and both biases); implicit: the preference score.
                        if items.width > items.rank {
                            let base = mean + users.bias(u)
                            for i in 0..<items.count { scores[i] += base + items.bias(i) }
                        }
                        for (item, _) in part.userObs[j] { if let i = itemIndex[item] { scores[Int(i)] = -.infinity } }
                        for item in heldOf[id] ?? [] { if let i = itemIndex[item] { scores[Int(i)] = -.infinity } }
                        let top = Evaluation.topN(scores: scores, n: config.storeTopN, exclude: [])
                        let list = top.map { ["content_id": itemIdOf[$0], "score": Double(scores[$0])] as [String: Any] }
                        guard let json = try? JSONSerialization.data(withJSONObject: list, options: [.sortedKeys]) else { continue }
                        var op = Chorus_V1_ReplicaOp()
                        op.partition = p
                        op.key = Data(ShardKeys.key(partition: p, role: ShardKeys.Derived.userRecommendations, id: Array(id.utf8)))
                        op.value = json
                        ops.append(op)
                        eval.recommendationsStored += 1
                    }
                }
                // Evaluation on the held-out interactions of this partition's users.
                if config.als.mode == .explicit {
                    var hood = ALS.Neighbourhood()
                    hood.neighbours = config.neighbours
                    var rowsOf: [String: ALS.Row] = [:]
                    if config.neighbours > 0 {
                        for (j, id) in part.userIds.enumerated() {
                            let pairs = part.userObs[j].compactMap { o in itemIndex[o.0].map { (Int32($0), o.1) } }
                            rowsOf[id] = ALS.Row(index: pairs.map(\.0), value: pairs.map(\.1))
                        }
                    }
                    for h in part.heldOut {
                        let u = userIndex[h.user].map(Int.init), it = itemIndex[h.item].map(Int.init)
                        var pred = mean
                        if let u, let it {
                            pred = ALS.predict(user: u, item: it, users: users, items: items, mean: mean)
                        } else if let u {
                            pred += users.bias(u)
                        } else if let it {
                            pred += items.bias(it)
                        }
                        let d = Double(pred) - Double(h.value)
                        eval.squaredError += d * d
                        eval.absoluteError += abs(d)
                        eval.pairs += 1
                        if config.neighbours > 0 {
                            var corrected = pred
                            if let u = userIndex[h.user].map(Int.init), let it = itemIndex[h.item].map(Int.init),
                               let row = rowsOf[h.user] {
                                corrected += ALS.correction(userRow: row, user: u, item: it, users: users, items: items,
                                                            mean: mean, settings: hood)
                            }
                            let e = Double(corrected) - Double(h.value)
                            eval.correctedSquaredError += e * e
                        }
                    }
                } else {
                    // Without repeats, relevant = held-out items the user had not interacted with in training:
                    // recommendations leave seen items out, so a held-out repeat could never be found by any method.
                    // With repeats, every held-out item counts and seen items may be ranked.
                    let seenOf = Dictionary(zip(part.userIds, part.userObs), uniquingKeysWith: { a, _ in a })
                    var byUser: [String: Set<Int>] = [:]
                    var seenCache: [String: Set<Int>] = [:]
                    func seenSet(_ user: String) -> Set<Int> {
                        if let s = seenCache[user] { return s }
                        let s = Set((seenOf[user] ?? []).compactMap { itemIndex[$0.0].map(Int.init) })
                        seenCache[user] = s
                        return s
                    }
                    let rate = config.evalUsers == 0 ? 1.0 : Double(config.evalUsers) / Double(max(1, userIndex.count))
                    func evaluated(_ user: String) -> Bool {
                        guard rate < 1 else { return true }
                        let h = StableHash.mixed64(Array(user.utf8) + [1] + Array(String(config.als.seed).utf8))
                        return Double(h >> 11) * 0x1.0p-53 < rate
                    }
                    for h in part.heldOut where evaluated(h.user) {
                        if let it = itemIndex[h.item].map(Int.init), config.repeats || !seenSet(h.user).contains(it) {
                            byUser[h.user, default: []].insert(it)
                        }
                    }
                    var model = Evaluation.RankingAccumulator(k: config.k)
                    var base = Evaluation.RankingAccumulator(k: config.k)
                    var personal = Evaluation.RankingAccumulator(k: config.k)
                    // One count per item: a popularity list of another length (a broadcast that changed the item
                    // ids without sending counts) ranks by nothing rather than indexing past its end.
                    let popScores = popularity.count == items.count ? popularity.map { Float($0) }
                        : [Float](repeating: 0, count: items.count)
                    let maxPop = Float(max(1, popularity.max() ?? 1))
                    var scores = [Float](repeating: 0, count: items.count)
                    for (user, relevant) in byUser.sorted(by: { $0.key < $1.key }) {
                        // Seen items are excluded by scoring them −∞ (topN skips non-finite scores): no hashing per item.
                        let exclude = config.repeats ? [] : seenSet(user)
                        if let u = userIndex[user].map(Int.init) {
                            ALS.scores(user: u, users: users, items: items, into: &scores)
                            for i in exclude { scores[i] = -.infinity }
                            model.add(ranked: Evaluation.topN(scores: scores, n: config.k, exclude: []), relevant: relevant)
                        } else {
                            model.add(ranked: [Int](), relevant: relevant)
                        }
                        var pop = popScores
                        for i in exclude { pop[i] = -.infinity }
                        base.add(ranked: Evaluation.topN(scores: pop, n: config.k, exclude: []), relevant: relevant)
                        if config.repeats {
                            // The user's own items by training weight, then the popular ones.
                            var own = popScores.map { $0 / maxPop }
                            for (id, v) in seenOf[user] ?? [] { if let i = itemIndex[id] { own[Int(i)] += 1 + v } }
                            personal.add(ranked: Evaluation.topN(scores: own, n: config.k, exclude: []), relevant: relevant)
                        }
                    }
                    let m = model.sums, bs = base.sums, ps = personal.sums
                    eval.users = UInt64(m.n)
                    eval.precisionSum = m.p; eval.recallSum = m.r; eval.ndcgSum = m.ndcg; eval.mapSum = m.ap
                    eval.basePrecisionSum = bs.p; eval.baseRecallSum = bs.r; eval.baseNdcgSum = bs.ndcg; eval.baseMapSum = bs.ap
                    eval.personalPrecisionSum = ps.p; eval.personalRecallSum = ps.r
                    eval.personalNdcgSum = ps.ndcg; eval.personalMapSum = ps.ap
                }
                return (ops, eval)
            }
            try await writeDerived(ops)
            result.alsEval = eval
            return result
        }
        throw ChorusError(.usage, "unknown stage '\(t.stage)' for job kind als")
    }
}

extension Worker {
    /// The stored ALS factors of a user and the content ids the user interacted with (for recommendations).
    func userHistory(_ r: Chorus_V1_UserHistoryRequest) async throws -> Chorus_V1_UserHistory {
        try checkPrimary([r.partition], in: state.withLock { $0.map })
        let store = self.store
        return try await computeQueue.run {
            var out = Chorus_V1_UserHistory()
            let id = Array(r.userID.utf8)
            if let f = try store.get(ShardKeys.key(partition: r.partition, role: ShardKeys.Derived.userFactors, id: id)),
               f.count >= 2 {
                out.rank = UInt32(f[0]) | UInt32(f[1]) << 8
                out.factors = FloatPacking.unpack(Data(f.dropFirst(2)))
            }
            var seen = Set<String>()
            try store.scan(prefix: ShardKeys.key(partition: r.partition, role: ShardKeys.role(.interactionByUser), id: id + [0])) { _, v in
                let m = try Chorus_V1_Interaction(borrowing: UnsafeRawBufferPointer(v))
                seen.insert(m.contentID)
                out.interactions += 1
                if m.type == .rating && m.value > 0 { out.valued += 1 }  // what explicit mode learns from
                return true
            }
            out.seen = seen.sorted()
            return out
        }
    }
}
