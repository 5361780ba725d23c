import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// A worker's state for one running `als` job: each partition's observations (read once per job), the factors of
/// both sides as last broadcast, their indices, and the hold-out cutoffs.
final class ALSWorkerState: JobWorker {
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
    let workerName: String
    let inner = Mutex(Inner())

    init(config: ALSJobConfig, workerName: String) {
        self.config = config
        self.workerName = workerName
    }

    func release() { inner.withLock { $0 = Inner() } }

    /// Applies a broadcast: the factors of one or both sides. The ids (and the popularity and hold-out cutoffs)
    /// come with the first broadcast this process receives for each side; a later one without them is refused as
    /// unavailable if they are missing here, and the coordinator then sends them again.
    func receive(_ broadcast: JobBroadcast) throws {
        let b: Chorus_V1_Jobs_AlsBroadcast
        do {
            b = try Chorus_V1_Jobs_AlsBroadcast(serializedBytes: broadcast.payload)
        } catch {
            throw TaskContext.invalid("job_broadcast.payload", "not an ALS broadcast: \(error)")
        }
        // Every side is checked against the job (rank, width, mode, the ids held) before anything is applied, so
        // a refused broadcast changes nothing.
        try RequestValidation.unique(b.sides.map(\.side), "job_broadcast.payload.sides", what: "side")
        let known = inner.withLock { ($0.userIndex.count, $0.itemIndex.count) }
        for (i, m) in b.sides.enumerated() {
            let held = m.side == "users" ? known.0 : known.1
            try ALSPayloads.check(m, field: "job_broadcast.payload.sides[\(i)]", rank: config.als.rank,
                                  width: config.width, implicit: config.als.mode == .implicit,
                                  knownIds: held > 0 ? held : nil)
        }
        if b.hasCutoffs {
            let c = b.cutoffs
            guard c.users.count == c.ts.count else {
                throw TaskContext.invalid("job_broadcast.payload.cutoffs", "\(c.users.count) users but \(c.ts.count) times")
            }
            inner.withLock { s in
                guard s.cutoffs == nil else { return }
                s.cutoffs = Dictionary(zip(c.users, c.ts), uniquingKeysWith: { a, _ in a })
            }
        }
        for m in b.sides {
            var f = ALS.Factors(rank: Int(m.rank), width: Int(m.width), count: 0)
            f.data = FloatPacking.unpack(m.factors)
            let gram = m.gram.isEmpty ? [] : FloatPacking.unpackDoubles(m.gram)
            if m.ids.isEmpty {
                let known = inner.withLock { m.side == "users" ? $0.userIndex.count : $0.itemIndex.count }
                guard known == f.count, known > 0 else {
                    throw ChorusError(.unavailable, "als: the \(m.side) ids of job \(broadcast.jobID) have not reached \(workerName)")
                }
            }
            // Ids are unique (checked); `uniquingKeysWith` keeps this line from trapping even if they were not.
            func index(_ ids: [String]) -> [String: Int32] {
                Dictionary(ids.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
            }
            inner.withLock { s in
                s.mean = m.mean
                if m.side == "users" {
                    if !m.ids.isEmpty, m.ids.count != s.userIndex.count {
                        s.userIndex = index(m.ids)
                        for p in s.parts.keys { s.parts[p]?.itemRows = nil; s.parts[p]?.userGlobal = nil }
                    }
                    s.users = f
                    s.usersGram = gram
                } else {
                    if !m.ids.isEmpty, m.ids.count != s.itemIndex.count {
                        s.itemIndex = index(m.ids)
                        for p in s.parts.keys { s.parts[p]?.userRows = nil; s.parts[p]?.itemGlobal = nil }
                    }
                    s.items = f
                    s.itemsGram = gram
                    if !m.popularity.isEmpty { s.popularity = m.popularity }
                }
            }
        }
    }

    func run(_ task: TaskContext) async throws -> TaskOutput {
        let p = task.partition
        let config = self.config
        let data = task.data
        if task.stage == "als-last" {
            let r = try await task.compute { try Self.lastTimes(data, config: config) }
            return TaskOutput(partition: p, payload: try r.serializedData())
        }
        let part = try await partition(task)
        if task.stage == "als-load" {
            var r = Chorus_V1_Jobs_AlsLoad()
            r.users = part.userIds
            r.items = part.itemIds
            r.itemCounts = part.itemObs.map { UInt32($0.count) }
            r.valueSum = part.valueSum
            r.observations = UInt64(part.observations)
            r.heldOut = UInt64(part.heldOut.count)
            return TaskOutput(partition: p, payload: try r.serializedData(),
                              recordsRead: UInt64(part.observations + part.heldOut.count))
        }
        if task.stage.hasPrefix("als-users-") || task.stage.hasPrefix("als-items-") {
            return try await solve(task, part, users: task.stage.hasPrefix("als-users-"))
        }
        if task.stage == "als-save" {
            return try await save(task, part)
        }
        throw TaskContext.invalid("run_task.stage", "als has no stage '\(task.stage.prefix(40))'")
    }

    /// The partition's cache, loading it if this worker has not read it yet (a restart, or a moved partition).
    func partition(_ task: TaskContext) async throws -> ALSPartition {
        let p = task.partition
        let (cached, received) = inner.withLock { ($0.parts[p], $0.cutoffs) }
        if let part = cached { return part }
        let config = self.config
        var cutoffs: [String: Int64] = [:]
        if config.holdoutBy == .last {
            guard let received else { throw task.unavailable("the per-user hold-out cutoffs") }
            cutoffs = received
        }
        let cut = cutoffs
        let data = task.data
        let part = try await task.compute { try Self.load(data, config: config, cutoffs: cut) }
        inner.withLock { s in if s.parts[p] == nil { s.parts[p] = part } }
        return part
    }

    /// Reads one partition's interactions (both copies) into memory: the ratings cache of the job.
    static func load(_ data: PartitionView, config: ALSJobConfig, cutoffs: [String: Int64]) throws -> ALSPartition {
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
            try data.scan(role: role) { key, value in
                let gid = PartitionView.groupId(of: key)
                if gid != current { flush(); current = gid; acc.removeAll(keepingCapacity: true) }
                let m = try Chorus_V1_Interaction(borrowing: value)
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
    static func lastTimes(_ data: PartitionView, config: ALSJobConfig) throws -> Chorus_V1_Jobs_AlsLoad {
        var r = Chorus_V1_Jobs_AlsLoad()
        var current: String?
        var latest = Int64.min, earliest = Int64.max
        func flush() {
            if let c = current, earliest < latest { r.users.append(c); r.lastTs.append(latest) }
        }
        try data.scan(role: ShardKeys.role(.interactionByUser)) { key, value in
            let gid = PartitionView.groupId(of: key)
            if gid != current { flush(); current = gid; latest = .min; earliest = .max }
            let m = try Chorus_V1_Interaction(borrowing: value)
            guard let it = Wire.decode(m), config.value(it) != nil else { return true }
            latest = max(latest, it.ts)
            earliest = min(earliest, it.ts)
            return true
        }
        flush()
        return r
    }

    /// One half-iteration for one partition: solves its rows of one side against the other side's factors.
    func solve(_ task: TaskContext, _ part: ALSPartition, users solvingUsers: Bool) async throws -> TaskOutput {
        let p = task.partition
        let config = self.config
        let (other, gram, index, mean) = inner.withLock { s in
            solvingUsers ? (s.items, s.itemsGram, s.itemIndex, s.mean) : (s.users, s.usersGram, s.userIndex, s.mean)
        }
        // Conjugate-gradient steps start from the row's current vector: the last broadcast of this side, or the
        // initial vector before the first one (the same on every worker).
        let (current, currentIndex) = inner.withLock { s in
            solvingUsers ? (s.users, s.userIndex) : (s.items, s.itemIndex)
        }
        let prefix = solvingUsers ? "u:" : "i:"
        guard let other else { throw task.unavailable("factors of the other side") }
        let ids = solvingUsers ? part.userIds : part.itemIds
        let obs = solvingUsers ? part.userObs : part.itemObs
        // Rows with dense indices are built on the first half-iteration and kept with the partition's cache, and
        // so are the rows' places in the current factors of this side (once this side has been broadcast).
        let (cached, cachedGlobal) = inner.withLock { s in
            solvingUsers ? (s.parts[p]?.userRows, s.parts[p]?.userGlobal) : (s.parts[p]?.itemRows, s.parts[p]?.itemGlobal)
        }
        let flag = task.cancellation
        let (packed, built, builtGlobal): (Data, [ALS.Row]?, [Int32]?) = try await task.compute {
            let rows = cached ?? obs.map { row in
                var pairs: [(Int32, Float)] = []
                pairs.reserveCapacity(row.count)
                for (id, v) in row { if let i = index[id] { pairs.append((i, v)) } }
                pairs.sort { $0.0 < $1.0 }
                return ALS.Row(index: pairs.map(\.0), value: pairs.map(\.1))
            }
            let global: [Int32]? = current == nil ? nil
                : cachedGlobal ?? ids.map { currentIndex[$0] ?? -1 }
            var solver = ALS.RowSolver()
            let cg = config.als.mode == .implicit && config.als.cgSteps > 0
            if cg { solver.prepare(gram: gram, rank: other.rank) }
            let width = other.width
            var out = [Float](repeating: 0, count: ids.count * width)
            try out.withUnsafeMutableBufferPointer { op in
                let o = op.baseAddress!
                // The row's current vector: the last broadcast of this side, or its initial vector before the
                // first (the same on every worker). CG starts from it, and a row whose solve fails keeps it.
                func setCurrent(_ j: Int) {
                    if let current, let g = global?[j], g >= 0 {
                        current.data.withUnsafeBufferPointer { cp in
                            (o + j * width).update(from: cp.baseAddress! + Int(g) * current.width, count: width)
                        }
                    } else {
                        let v = ALS.initialVector(id: prefix + ids[j], seed: config.als.seed, rank: other.rank,
                                                  width: width)
                        v.withUnsafeBufferPointer { (o + j * width).update(from: $0.baseAddress!, count: width) }
                    }
                }
                for (j, r) in rows.enumerated() {
                    // Every row (a relaxed atomic load): an exact row solve at rank 512 takes milliseconds.
                    if flag.isSet { throw ChorusError(.jobFailed, "cancelled") }
                    if r.index.isEmpty { continue }  // stays zero
                    if cg {
                        // In place: from the current vector to the new one (kept if the solve fails).
                        setCurrent(j)
                        _ = solver.implicitCG(row: r, other: other, alpha: config.als.alpha,
                                              lambda: ALS.implicitLambda(config.als, observations: r.index.count),
                                              start: o + j * width, steps: config.als.cgSteps, into: o + j * width,
                                              offset: config.als.confidence.offset)
                        continue
                    }
                    let solved: [Float]?
                    if config.als.mode == .explicit {
                        solved = solver.explicit(row: r, other: other, mean: mean, lambda: config.als.lambda,
                                                 biases: config.als.biases, lambdaExponent: config.als.lambdaExponent,
                                                 biasLambda: config.als.biasLambda)
                    } else {
                        solved = solver.implicit(row: r, other: other, gram: gram, alpha: config.als.alpha,
                                                 lambda: ALS.implicitLambda(config.als, observations: r.index.count),
                                                 offset: config.als.confidence.offset)
                    }
                    if let solved {
                        solved.withUnsafeBufferPointer { (o + j * width).update(from: $0.baseAddress!, count: width) }
                    } else {
                        setCurrent(j)
                    }
                }
            }
            return (FloatPacking.pack(out), cached == nil ? rows : nil, cachedGlobal == nil ? global : nil)
        }
        inner.withLock { s in
            if let built {
                if solvingUsers { s.parts[p]?.userRows = built } else { s.parts[p]?.itemRows = built }
            }
            if let builtGlobal {
                if solvingUsers { s.parts[p]?.userGlobal = builtGlobal } else { s.parts[p]?.itemGlobal = builtGlobal }
            }
        }
        var r = Chorus_V1_Jobs_AlsFactors()
        r.factors = packed
        return TaskOutput(partition: p, payload: try r.serializedData(), recordsRead: UInt64(obs.reduce(0) { $0 + $1.count }))
    }

    /// Stores the partition's factors and top-N lists, and evaluates on its held-out interactions.
    func save(_ task: TaskContext, _ part: ALSPartition) async throws -> TaskOutput {
        let p = task.partition
        let config = self.config
        let (users, items, userIndex, itemIndex, mean, popularity) = inner.withLock {
            ($0.users, $0.items, $0.userIndex, $0.itemIndex, $0.mean, $0.popularity)
        }
        guard let users, let items else { throw task.unavailable("the final factors") }
        let flag = task.cancellation
        let (writes, eval) = try await task.compute { () throws -> (DerivedWrites, Chorus_V1_Jobs_AlsEval) in
            var writes = DerivedWrites(partition: p)
            func put(_ role: UInt8, _ id: String, _ v: ArraySlice<Float>) {
                writes.put(role: role, id: id, [UInt8(users.rank & 0xFF), UInt8(users.rank >> 8)] + [UInt8](FloatPacking.pack(Array(v))))
            }
            for role in [ShardKeys.Derived.userFactors, ShardKeys.Derived.contentFactors,
                         ShardKeys.Derived.userRecommendations] {
                writes.clear(role: role)
            }
            var eval = Chorus_V1_Jobs_AlsEval()
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
                    if j & 63 == 0, flag.isSet { throw ChorusError(.jobFailed, "cancelled") }
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
                    writes.put(role: ShardKeys.Derived.userRecommendations, id: id, [UInt8](json))
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
                for (n, (user, relevant)) in byUser.sorted(by: { $0.key < $1.key }).enumerated() {
                    if n & 63 == 0, flag.isSet { throw ChorusError(.jobFailed, "cancelled") }
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
            return (writes, eval)
        }
        try await task.write(writes)
        return TaskOutput(partition: p, payload: try eval.serializedData())
    }
}
