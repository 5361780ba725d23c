import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import Foundation

/// Settings of an `als` job, parsed from its params (documented in docs/cli.md).
public struct ALSJobConfig: Sendable {
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
    public static let defaultWeights: [InteractionKind: Double] = [.view: 1, .like: 3, .comment: 4, .share: 5, .click: 2,
                                                             .conversion: 8, .rating: 1]

    public init(params: [String: String]) throws {
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
        if let c = params["confidence"] {
            guard let v = ALS.Confidence(rawValue: c) else {
                throw ChorusError(.usage, "als: confidence must be one_plus (c = 1 + alpha·w) or linear (c = alpha·w)")
            }
            als.confidence = v
        }
        // lambda_exponent: λ·n^e per row in both modes, with a default of 1 in explicit mode and 0 (plain λ) in
        // implicit mode.
        if als.mode == .implicit { als.implicitLambdaExponent = try num("lambda_exponent") ?? 0 }
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
        if als.confidence == .linear, als.alpha == 0 {
            // Every confidence would be 0: all targets vanish and every vector comes out 0.
            throw ChorusError(.usage, "als: confidence=linear needs alpha > 0 (the confidence is alpha·weight)")
        }
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
    /// Each user's (item's) place in the broadcast user (item) factors, in `userIds` (`itemIds`) order; −1 when absent.
    var userGlobal: [Int32]?
    var itemGlobal: [Int32]?
}
