import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// Job kind `als`: matrix factorization of the user × content interactions by alternating least squares
/// (explicit star ratings, or implicit confidence-weighted engagement), with a held-out evaluation, stored
/// factors and top-N recommendations. docs/architecture.md "ALS" has the method.
///
/// Stages: [als-last] (holdout_by=last: each user's latest interaction) → als-load (each partition's ratings,
/// cached on its worker for the whole run) → iterations × (als-users-N, als-items-N) → als-save. In each half the
/// driver broadcasts the fixed side's factors once to every worker and collects the solved rows of each
/// partition; nothing else crosses the network.
public enum ALSJob: Job {
    public static let kind = "als"
    public static let about = "matrix factorization of user × content interactions (embeddings, recommendations, evaluation)"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; ALS does not use it"),
        .init("mode", .choice(["implicit", "explicit"]), "(required)",
              "implicit: confidence-weighted engagement (views, likes, clicks...); explicit: star ratings "
              + "(interactions of type rating only)"),
        .init("rank", .integer(1...512), "16", "factors per user and item"),
        .init("lambda", .number(0...1e6), "0.05", "regularisation"),
        .init("lambda_exponent", .number(0...4), "1 (explicit), 0 (implicit)",
              "λ·n^e per row of n observations (1 = weighted-λ, as Spark; 0 = plain λ)"),
        .init("bias_lambda", .number(0...1e6), "1", "explicit: regularisation of the biases"),
        .init("biases", .boolean, "true", "explicit: fit user and item biases"),
        .init("alpha", .number(0...1e6), "10", "implicit: the confidence is 1 + alpha·weight, or alpha·weight with confidence=linear"),
        .init("confidence", .choice(ALS.Confidence.allCases.map(\.rawValue)), ALS.Confidence.onePlus.rawValue,
              "implicit: one_plus is c = 1 + alpha·weight (Hu, Koren and Volinsky; Spark), linear is c = alpha·weight (the implicit library)"),
        .init("iterations", .integer(1...1000), "10", "ALS sweeps (each one users half + items half)"),
        .init("solver", .choice(["cholesky", "cg"]), "cholesky", "exact row solves, or conjugate gradient"),
        .init("cg_steps", .integer(0...100), "3", "CG steps per row with solver=cg"),
        .init("seed", .integer(0...Int64.max), "42", "initial vectors and the hold-out split"),
        .init("holdout", .number(0...0.99), "0.2", "fraction held out for evaluation, by interaction id"),
        .init("holdout_by", .choice(["interaction", "last"]), "interaction",
              "last: hold out each user's last order or session"),
        .init("repeats", .boolean, "false", "seen items may be recommended and count as hits"),
        .init("k", .integer(1...1000), "10", "k of P@k, recall@k, NDCG@k and MAP@k"),
        .init("neighbours", .integer(0...1000), "0", "explicit: residual neighbourhood correction size"),
        .init("eval_users", .integer(0...100_000_000), "5000", "users ranked in the evaluation (0 = all)"),
        .init("store_top_n", .integer(0...1000), "10", "recommendations stored per user"),
    ] + InteractionKind.allCases.map { k in
        .init("weight_" + k.name, .number(0...1e6), defaultWeight(k), "implicit: confidence weight of a \(k.name)")
    }

    static func defaultWeight(_ k: InteractionKind) -> String {
        let w = ALSJobConfig.defaultWeights[k] ?? 0
        return w == w.rounded() ? String(Int(w)) : String(w)
    }

    public static func tasksPerPartition(_ params: JobParams) -> Int {
        // [als-last] + als-load + 2 per iteration + als-save
        let last = params["holdout_by"] == "last" ? 1 : 0
        return last + 2 + 2 * max(1, params.int("iterations", ALS.Config().iterations))
    }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        _ = try ALSJobConfig(params: params.raw)
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker {
        let config: ALSJobConfig
        do {
            config = try ALSJobConfig(params: info.params.raw)
        } catch let e as ChorusError {
            throw TaskContext.invalid("params", e.message)
        }
        return ALSWorkerState(config: config, workerName: info.workerName)
    }

    /// An implicit job of rank 2: the stages, and broadcasts of one side (3 ids, with the Gram matrix) and of both.
    public static var fuzzSeeds: [FuzzSeed] {
        let params = ["mode": "implicit", "rank": "2", "iterations": "1"]
        var items = Chorus_V1_Jobs_AlsSide()
        items.side = "items"; items.ids = ["i1", "i2", "i3"]; items.rank = 2; items.width = 2
        items.factors = FloatPacking.pack([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
        items.gram = FloatPacking.packDoubles([1, 0, 0, 1]); items.popularity = [3, 2, 1]
        var users = items
        users.side = "users"; users.ids = ["u1", "u2", "u3"]; users.popularity = []
        var one = Chorus_V1_Jobs_AlsBroadcast(); one.sides = [items]
        var both = Chorus_V1_Jobs_AlsBroadcast(); both.sides = [users, items]
        return [FuzzSeed(stage: "als-last", params: params), FuzzSeed(stage: "als-load", params: params),
                FuzzSeed(stage: "als-users-1", params: params, broadcast: try? one.serializedData()),
                FuzzSeed(stage: "als-items-1", params: params),
                FuzzSeed(stage: "als-save", params: params, broadcast: try? both.serializedData())]
    }

    public static func drive(_ ctx: JobContext) async throws -> String {
        let config = try ALSJobConfig(params: ctx.params.raw)
        let k = config.als.rank, width = config.width
        // 0. Per-user hold-out: each user's cutoff time, sent with the broadcasts of the job.
        var cutoffs: Chorus_V1_Jobs_AlsCutoffs?
        if config.holdoutBy == .last {
            try await ctx.setStage("als: finding each user's last interactions")
            var latest: [(String, Int64)] = []
            for out in try await ctx.collect("als-last") {
                let r = try Chorus_V1_Jobs_AlsLoad(serializedBytes: out.payload)
                latest.append(contentsOf: zip(r.users, r.lastTs))
            }
            latest.sort { $0.0 < $1.0 }
            var c = Chorus_V1_Jobs_AlsCutoffs()
            c.users = latest.map(\.0)
            c.ts = latest.map(\.1)
            cutoffs = c
        }
        func message(_ sides: [Chorus_V1_Jobs_AlsSide]) -> Chorus_V1_Jobs_AlsBroadcast {
            var b = Chorus_V1_Jobs_AlsBroadcast()
            b.sides = sides
            if let cutoffs { b.cutoffs = cutoffs }
            return b
        }
        /// A broadcast sent to each worker incarnation with a side's ids and popularity, and the cutoffs, only if
        /// that incarnation has not received them yet in this job (they do not change), so each half-iteration
        /// moves factors only.
        let delivered = DeliveredParts()
        func lean(_ full: Chorus_V1_Jobs_AlsBroadcast) -> Broadcast {
            Broadcast(perRecipient: { r in
                var b = full
                var parts: [String] = []
                for i in b.sides.indices {
                    let part = r.key + "#" + b.sides[i].side
                    parts.append(part)
                    if delivered.has(part) { b.sides[i].ids = []; b.sides[i].popularity = [] }
                }
                if b.hasCutoffs {
                    parts.append(r.key + "#cutoffs")
                    if delivered.has(r.key + "#cutoffs") { b.clearCutoffs() }
                }
                delivered.stage(r.key, parts)
                return try b.serializedData()
            }, delivered: { r, ok in delivered.settle(r.key, ok) })
        }
        // 1. Load.
        try await ctx.setStage("als: loading ratings")
        var loads: [UInt32: Chorus_V1_Jobs_AlsLoad] = [:]
        try await ctx.runStage("als-load", broadcast: cutoffs.map { _ in lean(message([])) }) { out in
            let l = try Chorus_V1_Jobs_AlsLoad(serializedBytes: out.payload)
            // A worker's reply is remote input too: parallel lists must match before they are zipped.
            guard l.itemCounts.count == l.items.count, l.observations <= 1 << 40, l.heldOut <= 1 << 40,
                  l.valueSum.isFinite else {
                throw ChorusError(.internal, "partition \(out.partition): malformed als-load result (\(l.items.count) "
                                  + "items, \(l.itemCounts.count) counts, \(l.observations) observations)")
            }
            loads[out.partition] = l
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
            throw ctx.failure("no interactions to factorize in \(config.als.mode.rawValue) mode"
                              + (config.als.mode == .explicit
                                 ? ": explicit mode reads only interactions of type rating with a value (stars), and "
                                   + "there are none; use mode=implicit for views, likes, comments, clicks and conversions"
                                 : ""))
        }
        // A user is read by the one partition that holds it, and an item's ids are the partition's own: a repeat
        // means a worker replied with ids it does not own, and the job fails instead of building a broken index.
        for (side, ids) in [("user", userIds), ("item", itemIds)] {
            if let i = ids.indices.dropFirst().first(where: { ids[$0] == ids[$0 - 1] }) {
                throw ctx.failure("als-load: \(side) id '\(ids[i].prefix(60))' came from two partitions")
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

        func side(_ name: String, _ f: ALS.Factors, ids: [String]) -> Chorus_V1_Jobs_AlsSide {
            var m = Chorus_V1_Jobs_AlsSide()
            m.side = name
            m.ids = ids
            m.factors = FloatPacking.pack(f.data)
            m.rank = UInt32(k)
            m.width = UInt32(width)
            m.mean = mean
            if config.als.mode == .implicit { m.gram = FloatPacking.packDoubles(ALS.gram(f)) }
            if name == "items" { m.popularity = popularity }
            return m
        }
        /// Each partition's rows in global factor order, computed once (the String lookups stay out of the loop).
        var userRowsOf: [UInt32: [Int]] = [:], itemRowsOf: [UInt32: [Int]] = [:]
        for (p, l) in loads {
            userRowsOf[p] = l.users.compactMap { userIndex[$0] }  // every id is in the index: built from these lists
            itemRowsOf[p] = l.items.compactMap { itemIndex[$0] }
        }
        /// Writes a partition's solved rows into `into`, at the global indices of the partition's ids.
        func collect(_ out: TaskOutput, rows: [Int], into f: inout ALS.Factors) throws {
            let v = FloatPacking.unpack(try Chorus_V1_Jobs_AlsFactors(serializedBytes: out.payload).factors)
            guard v.count == rows.count * width else {
                throw ChorusError(.internal, "partition \(out.partition): \(v.count) floats for \(rows.count) rows")
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
            try await ctx.checkCancelled()
            try await ctx.setStage("als: iteration \(it)/\(config.als.iterations)")
            var nextUsers = users
            try await ctx.runStage("als-users-\(it)", broadcast: lean(message([side("items", items, ids: itemIds)]))) { out in
                try collect(out, rows: userRowsOf[out.partition] ?? [], into: &nextUsers)
            }
            users = nextUsers
            var nextItems = items
            try await ctx.runStage("als-items-\(it)", broadcast: lean(message([side("users", users, ids: userIds)]))) { out in
                try collect(out, rows: itemRowsOf[out.partition] ?? [], into: &nextItems)
            }
            items = nextItems
            if it == 1 { firstDone = .now }
        }
        // Steady state: the mean of iterations 2...N (the first also builds each partition's dense rows), the
        // same quantity as the peers' marginal (fit(1 + N) − fit(1)) / N in bench/als.sh.
        let n = config.als.iterations
        let firstIteration = (firstDone - start).seconds
        let perIteration = n > 1 ? (ContinuousClock.now - firstDone).seconds / Double(n - 1) : firstIteration

        // 3. Save factors and evaluate on the held-out interactions (both sides in full, to every worker).
        try await ctx.setStage("als: saving factors and evaluating")
        var eval = Chorus_V1_Jobs_AlsEval()
        let final = try message([side("users", users, ids: userIds), side("items", items, ids: itemIds)]).serializedData()
        // Summed in partition order, so the figures do not depend on which task finished first.
        for out in try await ctx.collect("als-save", broadcast: Broadcast(final)) {
            let e = try Chorus_V1_Jobs_AlsEval(serializedBytes: out.payload)
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
                               lambda: config.als.lambda, alpha: config.als.alpha,
                               confidence: config.als.mode == .explicit ? nil : config.als.confidence.rawValue,
                               seed: config.als.seed,
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
        // The item side serves `chorus recommend` and `chorus similar`.
        var serving = Chorus_V1_AlsModel()
        let itemSide = side("items", items, ids: itemIds)
        serving.side = itemSide.side
        serving.ids = itemSide.ids
        serving.factors = itemSide.factors
        serving.rank = itemSide.rank
        serving.width = itemSide.width
        serving.mean = itemSide.mean
        serving.popularity = itemSide.popularity
        serving.params = ctx.params.raw
        serving.params["job_id"] = ctx.jobID
        serving.params["mode"] = config.als.mode.rawValue
        try await ctx.publishRecommendationModel(serving)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(report), as: UTF8.self)
    }
}

/// Which parts of an ALS job's broadcasts (a side's ids and popularity, the hold-out cutoffs) each worker
/// incarnation has received, keyed "node#incarnation#part"; the parts of a send in flight wait in `staged`.
final class DeliveredParts: Sendable {
    private let state = Mutex<(done: Set<String>, staged: [String: [String]])>(([], [:]))
    func has(_ p: String) -> Bool { state.withLock { $0.done.contains(p) } }
    func stage(_ recipient: String, _ parts: [String]) { state.withLock { $0.staged[recipient] = parts } }
    func settle(_ recipient: String, _ ok: Bool) {
        state.withLock { s in
            let parts = s.staged.removeValue(forKey: recipient) ?? []
            if ok { s.done.formUnion(parts) } else { s.done.subtract(parts) }
        }
    }
}

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
    /// Implicit mode: `one_plus` (c = 1 + α·w) or `linear` (c = α·w); absent in explicit mode.
    var confidence: String?
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
        case mode, rank, iterations, lambda, alpha, confidence, seed, holdout, users, items, observations
        case heldOut = "held_out", secondsPerIteration = "seconds_per_iteration", rmse, mae, k
        case firstIterationSeconds = "first_iteration_seconds"
        case evaluatedUsers = "evaluated_users"
        case rmseWithNeighbours = "rmse_with_neighbours"
        case precisionAtK = "precision_at_k", recallAtK = "recall_at_k", ndcgAtK = "ndcg_at_k", mapAtK = "map_at_k"
        case baseline, personalBaseline = "personal_baseline", holdoutBy = "holdout_by", repeats
        case factorsStored = "factors_stored", recommendationsStored = "recommendations_stored"
    }
}

