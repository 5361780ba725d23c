import ChorusAnalytics
import ChorusModel
import ChorusWire
import Foundation
import Synchronization

/// The summary of an `als` job (the job's `summary` in `chorus job status`).
struct ALSReport: Codable, Sendable {
    /// The popularity baseline: the k most popular items the user has not interacted with.
    struct Baseline: Codable, Sendable {
        var name = "popularity"
        var precisionAtK: Double
        var recallAtK: Double
        var ndcgAtK: Double
        var mapAtK: Double
        enum CodingKeys: String, CodingKey {
            case name, precisionAtK = "precision_at_k", recallAtK = "recall_at_k", ndcgAtK = "ndcg_at_k", mapAtK = "map_at_k"
        }
    }

    var mode: String
    var rank: Int
    var iterations: Int
    var lambda: Double
    var alpha: Double
    var seed: UInt64
    var holdout: Double
    var users: Int
    var items: Int
    var observations: Int
    var heldOut: Int
    var secondsPerIteration: Double
    /// The first iteration alone (it also builds the workers' dense rows).
    var firstIterationSeconds: Double
    var rmse: Double?
    var mae: Double?
    /// RMSE of ALS plus the residual neighbourhood correction (param `neighbours` > 0).
    var rmseWithNeighbours: Double?
    var k: Int?
    /// Users ranked in the implicit evaluation (those with held-out items, sampled down to about `eval_users`).
    var evaluatedUsers: Int?
    var precisionAtK: Double?
    var recallAtK: Double?
    var ndcgAtK: Double?
    var mapAtK: Double?
    var baseline: Baseline?
    /// With repeats=true: the user's own most frequent training items (a strong "buy again" reference).
    var personalBaseline: Baseline?
    var holdoutBy: String
    var repeats: Bool
    var factorsStored: Int
    /// Users whose top-N list was stored (0 when store_top_n is 0 or users × items × rank is over the budget).
    var recommendationsStored = 0

    enum CodingKeys: String, CodingKey {
        case mode, rank, iterations, lambda, alpha, seed, holdout, users, items, observations
        case heldOut = "held_out", secondsPerIteration = "seconds_per_iteration", rmse, mae, k
        case firstIterationSeconds = "first_iteration_seconds"
        case evaluatedUsers = "evaluated_users"
        case rmseWithNeighbours = "rmse_with_neighbours"
        case precisionAtK = "precision_at_k", recallAtK = "recall_at_k", ndcgAtK = "ndcg_at_k", mapAtK = "map_at_k"
        case baseline, personalBaseline = "personal_baseline", holdoutBy = "holdout_by", repeats
        case factorsStored = "factors_stored", recommendationsStored = "recommendations_stored"
    }
}

extension Coordinator {
    /// Runs an `als` job: load (each partition's ratings cached on its worker), then `iterations` × (users half,
    /// items half), then save. In each half the coordinator broadcasts the fixed side's factors once to every
    /// worker and collects the solved rows of each partition; nothing else crosses the network.
    func runALS(_ job: Chorus_V1_JobInfo) async throws -> String {
        let config = try ALSJobConfig(params: job.params)
        let k = config.als.rank, width = config.width
        // 0. Per-user hold-out: each user's cutoff time, sent with every broadcast of the job.
        var cutoffs: Chorus_V1_AlsCutoffs?
        if config.holdoutBy == .last {
            _ = try await state.update(job.id) { $0.stage = "als: finding each user's last interactions" }
            var latest: [(String, Int64)] = []
            try await runStage(job: job, stage: "als-last", broadcast: nil, tracker: BroadcastTracker()) { r in
                latest.append(contentsOf: zip(r.alsLoad.users, r.alsLoad.lastTs))
            }
            latest.sort { $0.0 < $1.0 }
            var c = Chorus_V1_AlsCutoffs()
            c.users = latest.map(\.0)
            c.ts = latest.map(\.1)
            c.params = job.params
            cutoffs = c
        }
        func broadcast(_ models: [Chorus_V1_AlsModel]) -> Chorus_V1_JobBroadcast {
            var b = Chorus_V1_JobBroadcast()
            b.jobID = job.id
            b.als = models
            if let cutoffs { b.alsCutoffs = cutoffs }
            return b
        }
        /// Sends a broadcast to one worker incarnation: the ids, popularity and cutoffs only if that incarnation
        /// has not received them yet in this job (they do not change), so each half-iteration moves factors only.
        let delivered = DeliveredParts()
        func sender(_ full: Chorus_V1_JobBroadcast) -> @Sendable (String, Int, Peer) async throws -> Void {
            { node, inc, peer in
                let key = "\(node)#\(inc)#"
                var b = full
                var parts: [String] = []
                for i in b.als.indices {
                    let part = key + b.als[i].side
                    parts.append(part)
                    if delivered.has(part) { b.als[i].ids = []; b.als[i].popularity = [] }
                }
                if b.hasAlsCutoffs {
                    parts.append(key + "cutoffs")
                    if delivered.has(key + "cutoffs") { b.clearAlsCutoffs() }
                }
                do {
                    _ = try await peer.call(.jobBroadcast(b), timeout: .seconds(120))
                    delivered.add(parts)
                } catch {
                    delivered.remove(parts)
                    throw error
                }
            }
        }
        // 1. Load.
        _ = try await state.update(job.id) { $0.stage = "als: loading ratings" }
        var loads: [UInt32: Chorus_V1_AlsLoadResult] = [:]
        try await runStage(job: job, stage: "als-load", broadcast: cutoffs.map { _ in broadcast([]) },
                           tracker: BroadcastTracker(), send: cutoffs.map { _ in sender(broadcast([])) }) { r in
            // A worker's reply is remote input too: parallel lists must match before they are zipped.
            guard r.alsLoad.itemCounts.count == r.alsLoad.items.count,
                  r.alsLoad.observations <= 1 << 40, r.alsLoad.heldOut <= 1 << 40, r.alsLoad.valueSum.isFinite else {
                throw ChorusError(.internal, "partition \(r.partition): malformed als-load result (\(r.alsLoad.items.count) "
                                  + "items, \(r.alsLoad.itemCounts.count) counts, \(r.alsLoad.observations) observations)")
            }
            loads[r.partition] = r.alsLoad
        }
        var userIds: [String] = [], itemIds: [String] = [], popularityById: [String: UInt32] = [:]
        var valueSum = 0.0, observations = 0, heldOut = 0
        for p in loads.keys.sorted() {
            guard let l = loads[p] else { continue }
            userIds.append(contentsOf: l.users)
            itemIds.append(contentsOf: l.items)
            for (id, n) in zip(l.items, l.itemCounts) { popularityById[id] = n }
            valueSum += l.valueSum
            observations += Int(l.observations)
            heldOut += Int(l.heldOut)
        }
        userIds.sort()
        itemIds.sort()
        guard !userIds.isEmpty, !itemIds.isEmpty else {
            throw JobFailure(message: "no interactions to factorize in \(config.als.mode.rawValue) mode"
                             + (config.als.mode == .explicit
                                ? ": explicit mode reads only interactions of type rating with a value (stars), and "
                                  + "there are none; use mode=implicit for views, likes, comments, clicks and conversions"
                                : ""))
        }
        // A user is read by the one partition that holds it, and an item's ids are the partition's own: a repeat
        // means a worker replied with ids it does not own, and the job fails instead of building a broken index.
        for (side, ids) in [("user", userIds), ("item", itemIds)] {
            if let i = ids.indices.dropFirst().first(where: { ids[$0] == ids[$0 - 1] }) {
                throw JobFailure(message: "als-load: \(side) id '\(ids[i].prefix(60))' came from two partitions")
            }
        }
        let userIndex = Dictionary(userIds.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let itemIndex = Dictionary(itemIds.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let mean = config.als.mode == .explicit && observations > 0 ? Float(valueSum / Double(observations)) : 0
        let popularity = itemIds.map { popularityById[$0] ?? 0 }
        var users = ALS.Factors(rank: k, width: width, count: userIds.count)
        var items = ALS.Factors(rank: k, width: width, count: itemIds.count)
        for (i, id) in userIds.enumerated() {
            users.data.replaceSubrange((i * width)..<((i + 1) * width),
                                       with: ALS.initialVector(id: "u:" + id, seed: config.als.seed, rank: k, width: width))
        }
        for (i, id) in itemIds.enumerated() {
            items.data.replaceSubrange((i * width)..<((i + 1) * width),
                                       with: ALS.initialVector(id: "i:" + id, seed: config.als.seed, rank: k, width: width))
        }

        func model(_ side: String, _ f: ALS.Factors, ids: [String]) -> Chorus_V1_AlsModel {
            var m = Chorus_V1_AlsModel()
            m.side = side
            m.ids = ids
            m.factors = FloatPacking.pack(f.data)
            m.rank = UInt32(k)
            m.width = UInt32(width)
            m.mean = mean
            m.params = job.params
            if config.als.mode == .implicit { m.gram = FloatPacking.packDoubles(ALS.gram(f)) }
            if side == "items" { m.popularity = popularity }
            return m
        }
        /// Each partition's rows in global factor order, computed once (the String lookups stay out of the loop).
        var userRowsOf: [UInt32: [Int]] = [:], itemRowsOf: [UInt32: [Int]] = [:]
        for (p, l) in loads {
            userRowsOf[p] = l.users.compactMap { userIndex[$0] }  // every id is in the index: built from these lists
            itemRowsOf[p] = l.items.compactMap { itemIndex[$0] }
        }
        /// Writes a partition's solved rows into `into`, at the global indices of the partition's ids.
        func collect(_ r: Chorus_V1_TaskResult, rows: [Int], into f: inout ALS.Factors) throws {
            let v = FloatPacking.unpack(r.alsFactors)
            guard v.count == rows.count * width else {
                throw ChorusError(.internal, "partition \(r.partition): \(v.count) floats for \(rows.count) rows")
            }
            f.data.withUnsafeMutableBufferPointer { d in
                v.withUnsafeBufferPointer { src in
                    for (j, g) in rows.enumerated() {
                        (d.baseAddress! + g * width).update(from: src.baseAddress! + j * width, count: width)
                    }
                }
            }
        }

        // 2. Iterations.
        let start = ContinuousClock.now
        var firstDone = start
        for it in 1...config.als.iterations {
            _ = try await state.update(job.id) { $0.stage = "als: iteration \(it)/\(config.als.iterations)" }
            var nextUsers = users
            let itemsOut = broadcast([model("items", items, ids: itemIds)])
            try await runStage(job: job, stage: "als-users-\(it)", broadcast: itemsOut, tracker: BroadcastTracker(),
                               send: sender(itemsOut)) { r in
                try collect(r, rows: userRowsOf[r.partition] ?? [], into: &nextUsers)
            }
            users = nextUsers
            var nextItems = items
            let usersOut = broadcast([model("users", users, ids: userIds)])
            try await runStage(job: job, stage: "als-items-\(it)", broadcast: usersOut, tracker: BroadcastTracker(),
                               send: sender(usersOut)) { r in
                try collect(r, rows: itemRowsOf[r.partition] ?? [], into: &nextItems)
            }
            items = nextItems
            if it == 1 { firstDone = .now }
        }
        // Steady state: the mean of iterations 2...N (the first also builds each partition's dense rows), the
        // same quantity as the peers' marginal (fit(1 + N) − fit(1)) / N in bench/als.sh.
        let n = config.als.iterations
        let firstIteration = (firstDone - start).seconds
        let perIteration = n > 1 ? (ContinuousClock.now - firstDone).seconds / Double(n - 1) : firstIteration

        // 3. Save factors and evaluate on the held-out interactions.
        _ = try await state.update(job.id) { $0.stage = "als: saving factors and evaluating" }
        var evals: [UInt32: Chorus_V1_AlsEvalResult] = [:]
        try await runStage(job: job, stage: "als-save",
                           broadcast: broadcast([model("users", users, ids: userIds), model("items", items, ids: itemIds)]),
                           tracker: BroadcastTracker()) { r in
            evals[r.partition] = r.alsEval
        }
        // Summed in partition order, so the figures do not depend on which task finished first.
        var eval = Chorus_V1_AlsEvalResult()
        for p in evals.keys.sorted() {
            guard let e = evals[p] else { continue }
            eval.squaredError += e.squaredError; eval.absoluteError += e.absoluteError; eval.pairs += e.pairs
            eval.users += e.users
            eval.precisionSum += e.precisionSum; eval.recallSum += e.recallSum
            eval.ndcgSum += e.ndcgSum; eval.mapSum += e.mapSum
            eval.basePrecisionSum += e.basePrecisionSum; eval.baseRecallSum += e.baseRecallSum
            eval.baseNdcgSum += e.baseNdcgSum; eval.baseMapSum += e.baseMapSum
            eval.factorsStored += e.factorsStored
            eval.correctedSquaredError += e.correctedSquaredError
            eval.personalPrecisionSum += e.personalPrecisionSum; eval.personalRecallSum += e.personalRecallSum
            eval.personalNdcgSum += e.personalNdcgSum; eval.personalMapSum += e.personalMapSum
            eval.recommendationsStored += e.recommendationsStored
        }
        var report = ALSReport(mode: config.als.mode.rawValue, rank: k, iterations: config.als.iterations,
                               lambda: config.als.lambda, alpha: config.als.alpha, seed: config.als.seed,
                               holdout: config.holdout, users: userIds.count, items: itemIds.count,
                               observations: observations, heldOut: heldOut, secondsPerIteration: perIteration,
                               firstIterationSeconds: firstIteration,
                               holdoutBy: config.holdoutBy.rawValue, repeats: config.repeats,
                               factorsStored: Int(eval.factorsStored))
        report.recommendationsStored = Int(eval.recommendationsStored)
        if config.als.mode == .explicit, eval.pairs > 0 {
            report.rmse = (eval.squaredError / Double(eval.pairs)).squareRoot()
            report.mae = eval.absoluteError / Double(eval.pairs)
            if config.neighbours > 0 {
                report.rmseWithNeighbours = (eval.correctedSquaredError / Double(eval.pairs)).squareRoot()
            }
        }
        if config.als.mode == .implicit, eval.users > 0 {
            let n = Double(eval.users)
            report.k = config.k
            report.evaluatedUsers = Int(eval.users)
            report.precisionAtK = eval.precisionSum / n
            report.recallAtK = eval.recallSum / n
            report.ndcgAtK = eval.ndcgSum / n
            report.mapAtK = eval.mapSum / n
            report.baseline = .init(precisionAtK: eval.basePrecisionSum / n, recallAtK: eval.baseRecallSum / n,
                                    ndcgAtK: eval.baseNdcgSum / n, mapAtK: eval.baseMapSum / n)
            if config.repeats {
                report.personalBaseline = .init(name: "personal", precisionAtK: eval.personalPrecisionSum / n,
                                                recallAtK: eval.personalRecallSum / n, ndcgAtK: eval.personalNdcgSum / n,
                                                mapAtK: eval.personalMapSum / n)
            }
        }
        // Keep the item side for `chorus recommend` and `chorus similar`.
        var serving = model("items", items, ids: itemIds)
        serving.gram = Data()
        serving.params["job_id"] = job.id
        serving.params["mode"] = config.als.mode.rawValue
        try await keepALSModel(serving)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(report), as: UTF8.self)
    }
}

/// Which parts of an ALS job's broadcasts (a side's ids and popularity, the hold-out cutoffs) each worker
/// incarnation has received, keyed "node#incarnation#part".
final class DeliveredParts: Sendable {
    private let parts = Mutex<Set<String>>([])
    func has(_ p: String) -> Bool { parts.withLock { $0.contains(p) } }
    func add(_ ps: [String]) { parts.withLock { $0.formUnion(ps) } }
    func remove(_ ps: [String]) { parts.withLock { $0.subtract(ps) } }
}
