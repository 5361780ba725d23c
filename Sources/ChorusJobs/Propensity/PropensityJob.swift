import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Job kind `propensity`: the probability that each user converts (an interaction of type `conversion`) within
/// `horizon_days`, by L2 logistic regression on features computed as of a cutoff from the raw interactions
/// (docs/audience.md, "Conversion propensity").
///
/// Periods (T = the latest interaction, H = the horizon): the held-out test period has its cutoff at `cutoff`
/// (default T − H) and labels in (cutoff, cutoff + H]; the training period is one horizon earlier (cutoff − H,
/// labels in (cutoff − H, cutoff]). Training users are split by a stable hash of their id into fit (60%), dev (20%,
/// chooses λ) and calibration (20%, Platt scaling); nothing is tuned on the test period. The profile scores use
/// features as of T.
///
/// Stages (proto/chorus/v1/jobs/propensity.proto): `pr-load` → `pr-features` → `pr-eval-N` (L-BFGS, one stage per
/// evaluation) and `pr-predict-K` per λ → `pr-score` → `pr-write`. Every sum is taken in partition order.
public enum PropensityJob: Job {
    public static let kind = "propensity"
    public static let about = "probability of converting within H days (logistic regression, time-based split, calibrated)"
    public static let role: UInt8 = 0x62
    /// The role a `segments` job writes each user's segment under (JSON `{"segment": N, ...}`).
    public static let segmentRole: UInt8 = 0x60
    public static let defaultLambdas = "1e-4,1e-3,1e-2,1e-1"

    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; propensity takes its times from the data (see cutoff)"),
        .init("horizon_days", .integer(1...365), "7", "predict a conversion within this many days after a cutoff"),
        .init("cutoff", .time, "T − horizon",
              "the held-out period's cutoff (default: one horizon before the latest interaction T); "
              + "training uses the cutoff one horizon earlier"),
        .init("window_days", .integer(0...3650), "0",
              "counts and rates look back this many days from a cutoff (0: twice the horizon)"),
        .init("lambdas", .text(maxBytes: 200), defaultLambdas,
              "L2 strengths to try (comma-separated, 1–8 values in 0…10); the dev slice picks one"),
        .init("iterations", .integer(1...1000), "200", "L-BFGS iterations at most, per λ"),
        .init("tolerance", .number(0...1), "1e-10", "stop when the objective improves relatively less than this"),
        .init("top", .integer(1...10_000), "10000", "users kept in the top list (`chorus propensity top`)"),
        .init("export_features", .boolean, "false",
              "also store every feature row and label (`chorus propensity features`, bench/propensity_sklearn.py)"),
    ]

    /// load, features, score, write, and per λ its predictions and about 30 evaluations (line searches may add
    /// some: the driver then extends the total, so progress stays within 100%).
    public static func tasksPerPartition(_ params: JobParams) -> Int {
        let grid = (try? lambdas(params)) ?? [0]
        return 4 + grid.count * 31
    }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        _ = try lambdas(params)
    }

    /// The λ grid, largest first (each fit starts from the previous one's solution).
    static func lambdas(_ params: JobParams) throws -> [Double] {
        let raw = params.string("lambdas", defaultLambdas)
        let parts = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var out: [Double] = []
        for p in parts {
            guard let v = Double(p), v.isFinite, v >= 0, v <= 10 else {
                throw ChorusError(.usage, "propensity: lambdas=\(raw.prefix(60)) is not valid: '\(p.prefix(20))' is not a number in 0…10",
                                  hint: "e.g. --param lambdas=\(defaultLambdas), or one value to skip tuning")
            }
            out.append(v)
        }
        guard (1...8).contains(out.count) else {
            throw ChorusError(.usage, "propensity: lambdas takes 1 to 8 values, not \(out.count)",
                              hint: "e.g. --param lambdas=\(defaultLambdas)")
        }
        return Array(Set(out)).sorted(by: >)
    }

    public static var profileSections: [ProfileSection] {
        [ProfileSection("propensity", role: role, csvFields: ["state", "probability", "decile"]) { d in
            var lines = ["propensity"]
            let h = (d["horizon_days"] as? NSNumber)?.intValue ?? 0
            if d["state"] as? String == "scored" {
                let p = (d["probability"] as? NSNumber)?.doubleValue ?? 0
                let dec = (d["decile"] as? NSNumber)?.intValue ?? 0
                lines.append(String(format: "  %.1f%% chance of converting within %d days (decile %d of 10, 1 = highest)",
                                    100 * p, h, dec))
                for r in d["reasons"] as? [String] ?? [] { lines.append("  because: " + r) }
            } else {
                lines.append("  insufficient data: " + (d["reason"] as? String ?? "no interactions"))
            }
            return lines
        }]
    }

    public static var fuzzSeeds: [FuzzSeed] {
        var b = Chorus_V1_Jobs_PropensityBroadcast()
        var plan = Chorus_V1_Jobs_PropensityPlan()
        plan.trainCutoff = 1_757_894_400; plan.testCutoff = 1_758_499_200; plan.scoreAt = 1_759_104_000
        plan.horizonS = 7 * 86400; plan.windowS = 14 * 86400; plan.channels = ["x"]
        b.plan = plan
        let d = PropensityFeatures.names(channels: plan.channels).count
        b.mean = [Double](repeating: 0, count: d); b.scale = [Double](repeating: 1, count: d)
        b.parameters = [Double](repeating: 0.1, count: d + 1)
        b.plattA = 1
        b.step = 1
        b.top = 10
        b.decileCuts = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
        let bytes = try? b.serializedData()
        return [FuzzSeed(stage: "pr-load"), FuzzSeed(stage: "pr-features", broadcast: bytes),
                FuzzSeed(stage: "pr-eval-1", broadcast: bytes), FuzzSeed(stage: "pr-predict-1", broadcast: bytes),
                FuzzSeed(stage: "pr-score", broadcast: bytes), FuzzSeed(stage: "pr-write", broadcast: bytes)]
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { PropensityWorker() }

    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let d = try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8)) as? [String: Any] else { return nil }
        var lines: [String] = []
        let t = d["test"] as? [String: Any] ?? [:]
        func num(_ o: [String: Any], _ k: String) -> Double? { (o[k] as? NSNumber)?.doubleValue }
        lines.append("conversion within \(d["horizon_days"] ?? "?") days; held-out period \(t["period"] ?? "?")")
        lines.append(String(format: "held-out: AUC %@, log-loss %.4f, ECE %.4f, lift in the top decile %@, base rate %.2f%% (%d users)",
                            num(t, "auc").map { String(format: "%.3f", $0) } ?? "n/a", num(t, "log_loss") ?? 0,
                            num(t, "ece") ?? 0, num(t, "lift_top_decile").map { String(format: "%.2f×", $0) } ?? "n/a",
                            100 * (num(t, "base_rate") ?? 0), (t["users"] as? NSNumber)?.intValue ?? 0))
        if let l = d["lambda"] as? [String: Any] {
            lines.append("λ = \(l["chosen"] ?? "?") (chosen on the dev slice of the training period, not on the test period)")
        }
        lines.append("top drivers:")
        for s in d["drivers"] as? [String] ?? [] { lines.append("  " + s) }
        if let s = d["scoring"] as? [String: Any] {
            lines.append("scored \(s["scored"] ?? 0) users as of \(s["as_of"] ?? "?"); \(s["insufficient_data"] ?? 0) with insufficient data")
        }
        return lines.joined(separator: "\n")
    }

    static var iso: ISO8601DateFormatter { ISO8601DateFormatter() }
    static func isoTime(_ t: Int64) -> String { iso.string(from: Date(timeIntervalSince1970: TimeInterval(t))) }

    // MARK: driver

    public static func drive(_ ctx: JobContext) async throws -> String {
        let start = ContinuousClock.now
        let p = ctx.params
        let grid = try lambdas(p)
        let horizon = Int64(p.int("horizon_days", 7)) * 86400
        let windowDays = p.int("window_days", 0)
        let window = windowDays > 0 ? Int64(windowDays) * 86400 : 2 * horizon
        let iterations = p.int("iterations", 200)
        let tolerance = p.double("tolerance", 1e-10)
        let topN = p.int("top", 10_000)
        let export = p.bool("export_features", false)
        let partitions = Int(ctx.partitionCount)
        var stagesDone = 0
        var planned = tasksPerPartition(p)  // stages per partition in the progress total
        func progress() async throws {
            stagesDone += 1
            try await ctx.setTasksDone(partitions * stagesDone)
        }

        // 1. The data's time span and channels.
        try await ctx.setStage("propensity: reading interactions")
        var first = Int64.max, last = Int64.min
        var users = 0, events = 0
        var channelUsers: [String: UInt64] = [:]
        for out in try await ctx.collect("pr-load") {
            let l = try Chorus_V1_Jobs_PropensityLoad(serializedBytes: out.payload)
            users += Int(l.users)
            events += Int(l.events)
            if l.events > 0 { first = min(first, l.firstTs); last = max(last, l.lastTs) }
            for (c, n) in l.channels { channelUsers[c, default: 0] += n }
        }
        try await progress()
        guard events > 0 else {
            throw ctx.failure("no interactions in the cluster: ingest interactions (with conversions) first")
        }
        let testCutoff = p["cutoff"].flatMap { Int64($0) } ?? (last - horizon)
        let trainCutoff = testCutoff - horizon
        guard testCutoff + horizon <= last else {
            throw ctx.failure("cutoff \(isoTime(testCutoff)) + \(horizon / 86400) days is after the latest interaction "
                              + "(\(isoTime(last))): the held-out labels are not all in the data; use a cutoff at or "
                              + "before \(isoTime(last - horizon)) or leave it out")
        }
        guard trainCutoff > first else {
            throw ctx.failure("the training cutoff \(isoTime(trainCutoff)) (cutoff − \(horizon / 86400) days) is not after "
                              + "the first interaction (\(isoTime(first))): the data spans too little time for a "
                              + "\(horizon / 86400)-day horizon; use a shorter horizon_days or a later cutoff")
        }
        // One-hot channels: the 8 with the most users (ties by name).
        let channels = channelUsers.filter { !$0.key.isEmpty && $0.value > 0 }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(8).map(\.key)
        var plan = Chorus_V1_Jobs_PropensityPlan()
        plan.trainCutoff = trainCutoff
        plan.testCutoff = testCutoff
        plan.scoreAt = last
        plan.horizonS = horizon
        plan.windowS = window
        plan.channels = channels
        plan.exportFeatures = export
        let names = PropensityFeatures.names(channels: channels)
        let d = names.count

        // 2. Feature rows and their standardization (fit slice of the training period).
        try await ctx.setStage("propensity: features as of \(isoTime(trainCutoff)), \(isoTime(testCutoff)) and \(isoTime(last))")
        var b0 = Chorus_V1_Jobs_PropensityBroadcast()
        b0.plan = plan
        var sum = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        var rows = [Int](repeating: 0, count: 5), positives = [Int](repeating: 0, count: 4)
        var insufficient = [Int](repeating: 0, count: 3)
        var design: [Chorus_V1_Jobs_PropensityRow] = []
        for out in try await ctx.collect("pr-features", broadcast: Broadcast(try b0.serializedData())) {
            let s = try Chorus_V1_Jobs_PropensityStats(serializedBytes: out.payload)
            guard s.fitSum.count == d, s.fitSumSquares.count == d, s.rows.count == 5, s.positives.count == 4,
                  s.insufficient.count == 3, s.fitSum.allSatisfy(\.isFinite), s.fitSumSquares.allSatisfy(\.isFinite) else {
                throw ChorusError(.internal, "partition \(out.partition): malformed propensity statistics from its worker")
            }
            for j in 0..<d { sum[j] += s.fitSum[j]; sq[j] += s.fitSumSquares[j] }
            for k in 0..<5 { rows[k] += Int(s.rows[k]) }
            for k in 0..<4 { positives[k] += Int(s.positives[k]) }
            for k in 0..<3 { insufficient[k] += Int(s.insufficient[k]) }
            if export { design.append(contentsOf: s.design) }
        }
        try await progress()
        let fitCount = rows[0]
        guard positives[0] > 0, positives[0] < fitCount else {
            throw ctx.failure("the training period has \(positives[0]) converting users of \(fitCount) in its fit slice "
                              + "(conversions in (\(isoTime(trainCutoff)), \(isoTime(testCutoff))]): a model needs both; "
                              + "use a longer horizon_days or more data")
        }
        let std = Standardizer(count: Double(fitCount), sum: sum, sumSquares: sq)

        // 3. One L-BFGS fit per λ (largest first, warm-started), each scored on the dev slice.
        var step: UInt32 = 0
        var evaluations = 0
        func broadcast(_ params: [Double], step s: UInt32 = 0) -> Chorus_V1_Jobs_PropensityBroadcast {
            var b = Chorus_V1_Jobs_PropensityBroadcast()
            b.plan = plan
            b.step = s
            b.mean = std.mean
            b.scale = std.scale
            b.parameters = params
            return b
        }
        struct Fit { var lambda: Double; var params: [Double]; var objective: Double; var iterations: Int
                     var devLogLoss: Double; var predictions: Chorus_V1_Jobs_PropensityPredictions }
        var fits: [Fit] = []
        var x = [Double](repeating: 0, count: d + 1)
        for (k, lambda) in grid.enumerated() {
            func evaluate(_ params: [Double]) async throws -> (Double, [Double]) {
                step += 1
                evaluations += 1
                let outs = try await ctx.collect("pr-eval-\(step)", broadcast: Broadcast(try broadcast(params, step: step).serializedData()))
                var loss = 0.0
                var g = [Double](repeating: 0, count: d + 1)
                var n = 0
                for out in outs {  // partition order
                    let r = try Chorus_V1_Jobs_PropensityGradient(serializedBytes: out.payload)
                    guard r.gradient.count == d + 1, r.loss.isFinite, r.gradient.allSatisfy(\.isFinite) else {
                        throw ChorusError(.internal, "partition \(out.partition): malformed gradient from its worker")
                    }
                    loss += r.loss
                    for j in 0...d { g[j] += r.gradient[j] }
                    n += Int(r.rows)
                }
                guard n == fitCount else {
                    throw ChorusError(.internal, "the gradient covers \(n) fit rows, the features stage counted \(fitCount)")
                }
                return LogisticRegression.objective(params: params, lossSum: loss, gradientSum: g,
                                                    count: Double(fitCount), lambda: lambda)
            }
            try await ctx.setStage(String(format: "propensity: fitting λ = %g (%d of %d)", lambda, k + 1, grid.count))
            var opt = LBFGS(memory: 10)
            var (f, g) = try await evaluate(x)
            var its = 0
            for it in 1...iterations {
                guard let dec = try await opt.step(x: &x, f: &f, g: &g, evaluate: evaluate) else { break }
                its = it
                if dec < tolerance { break }
                try await ctx.checkCancelled()
            }
            let pred = Chorus_V1_Jobs_PropensityPredictions.self
            var bp = broadcast(x, step: UInt32(k + 1))
            bp.step = UInt32(k + 1)
            var merged = pred.init()
            for out in try await ctx.collect("pr-predict-\(k + 1)", broadcast: Broadcast(try bp.serializedData())) {
                let r = try pred.init(serializedBytes: out.payload)
                guard r.devLogits.count == r.devLabels.count, r.calibrationLogits.count == r.calibrationLabels.count,
                      r.testLogits.count == r.testLabels.count else {
                    throw ChorusError(.internal, "partition \(out.partition): malformed predictions from its worker")
                }
                merged.devLogits += r.devLogits; merged.devLabels += r.devLabels
                merged.calibrationLogits += r.calibrationLogits; merged.calibrationLabels += r.calibrationLabels
                merged.testLogits += r.testLogits; merged.testLabels += r.testLabels
            }
            let devP = merged.devLogits.map(LogisticRegression.sigmoid)
            let devLoss = PropensityMetrics.logLoss(devP, merged.devLabels.map { $0 != 0 })
            fits.append(Fit(lambda: lambda, params: x, objective: f, iterations: its, devLogLoss: devLoss, predictions: merged))
            // Line searches run extra evaluations: progress counts the stages that ran.
            stagesDone = 2 + evaluations + k + 1
            try await ctx.setTasksDone(partitions * stagesDone)
            let need = stagesDone + 2 + (grid.count - k - 1) * 31
            if need > planned {
                try await ctx.addPlannedTasks(partitions * (need - planned))
                planned = need
            }
        }
        // The λ with the lowest dev log-loss (ties: the larger λ, met first). Without dev rows: the first.
        var chosen = fits[0]
        for f in fits.dropFirst() where f.devLogLoss < chosen.devLogLoss { chosen = f }
        let params = chosen.params

        // 4. Calibration on the calibration slice; the held-out metrics on the test period.
        let calLabels = chosen.predictions.calibrationLabels.map { $0 != 0 }
        let platt = PlattScaling.fit(logits: chosen.predictions.calibrationLogits, labels: calLabels)
        let testLabels = chosen.predictions.testLabels.map { $0 != 0 }
        let testP = chosen.predictions.testLogits.map { platt.probability($0) }
        let testRaw = chosen.predictions.testLogits.map(LogisticRegression.sigmoid)
        let testPos = testLabels.filter { $0 }.count
        var test: [String: Any] = [
            "period": "features as of \(isoTime(testCutoff)), labels in (\(isoTime(testCutoff)), \(isoTime(testCutoff + horizon))]",
            "users": testLabels.count, "converted": testPos,
            "base_rate": testLabels.isEmpty ? 0 : Double(testPos) / Double(testLabels.count),
            "log_loss": PropensityMetrics.logLoss(testP, testLabels),
            "log_loss_uncalibrated": PropensityMetrics.logLoss(testRaw, testLabels),
            "ece": PropensityMetrics.ece(testP, testLabels),
            "ece_uncalibrated": PropensityMetrics.ece(testRaw, testLabels),
        ]
        test["auc"] = PropensityMetrics.auc(testP, testLabels) ?? NSNull()
        if let lift = PropensityMetrics.liftTopDecile(testP, testLabels) {
            test["lift_top_decile"] = lift.lift
            test["top_decile_rate"] = lift.rate
        } else {
            test["lift_top_decile"] = NSNull()
            test["top_decile_rate"] = NSNull()
        }
        let coefficients = (0..<d).map { j -> [String: Any] in
            ["feature": names[j], "coefficient": params[j], "mean": std.mean[j], "sd": std.scale[j]]
        }
        let drivers = (0..<d).filter { params[$0] != 0 }
            .sorted { abs(params[$0]) != abs(params[$1]) ? abs(params[$0]) > abs(params[$1]) : $0 < $1 }
            .prefix(5).map { PropensityWords.driver(names[$0], coefficient: params[$0]) }

        // 5. Score every user as of the end of the data; deciles over that population; write the profiles.
        try await ctx.setStage("propensity: scoring users as of \(isoTime(last))")
        var bs = broadcast(params)
        bs.plattA = platt.a
        bs.plattB = platt.b
        bs.top = UInt32(topN)
        var allP: [Double] = []
        var top: [Chorus_V1_Jobs_PropensityTopUser] = []
        var scoreInsufficient = 0
        for out in try await ctx.collect("pr-score", broadcast: Broadcast(try bs.serializedData())) {
            let r = try Chorus_V1_Jobs_PropensityScores(serializedBytes: out.payload)
            guard r.probabilities.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }), r.top.count <= topN else {
                throw ChorusError(.internal, "partition \(out.partition): malformed scores from its worker")
            }
            allP += r.probabilities
            top += r.top
            scoreInsufficient += Int(r.insufficient)
        }
        try await progress()
        let cuts = PropensityMetrics.decileCuts(allP)
        bs.decileCuts = cuts
        try await ctx.setStage("propensity: writing profiles")
        var written = 0, writtenInsufficient = 0
        var deciles = [Int](repeating: 0, count: 10)
        for out in try await ctx.collect("pr-write", broadcast: Broadcast(try bs.serializedData())) {
            let r = try Chorus_V1_Jobs_PropensityWritten(serializedBytes: out.payload)
            written += Int(r.scored)
            writtenInsufficient += Int(r.insufficient)
            for (i, n) in r.deciles.prefix(10).enumerated() { deciles[i] += Int(n) }
        }
        top.sort { $0.probability != $1.probability ? $0.probability > $1.probability : $0.userID < $1.userID }
        if top.count > topN { top.removeLast(top.count - topN) }

        // 6. Results for `chorus propensity top` / `features`, and the summary.
        let topJSON: [String: Any] = [
            "job_id": ctx.jobID, "scored_as_of": isoTime(last), "horizon_days": Int(horizon / 86400),
            "users": top.map { u -> [String: Any] in
                var o: [String: Any] = ["user_id": u.userID, "probability": u.probability,
                                        "decile": PropensityMetrics.decile(u.probability, cuts: cuts)]
                if u.segmented { o["segment"] = u.segment }
                return o
            },
        ]
        let lambdaReport: [String: Any] = [
            "chosen": chosen.lambda, "sklearn_C": 1 / (Double(fitCount) * max(chosen.lambda, 1e-300)),
            "rule": "lowest log-loss on the dev slice (20% of the training period's users); the test period was not used",
            "grid": fits.map { ["lambda": $0.lambda, "dev_log_loss": $0.devLogLoss, "iterations": $0.iterations,
                                "objective": $0.objective] as [String: Any] },
        ]
        let model: [String: Any] = [
            "job_id": ctx.jobID, "features": names, "coefficients": Array(params.prefix(d)), "intercept": params[d],
            "mean": std.mean, "scale": std.scale, "lambda": chosen.lambda, "fit_rows": fitCount,
            "platt": ["a": platt.a, "b": platt.b],
            "train_cutoff": trainCutoff, "test_cutoff": testCutoff, "score_at": last, "horizon_s": horizon, "window_s": window,
        ]
        var results: [(key: String, value: [UInt8])] = [
            ("top", Array(try JSONSerialization.data(withJSONObject: topJSON, options: [.sortedKeys]))),
            ("model", Array(try JSONSerialization.data(withJSONObject: model, options: [.sortedKeys]))),
        ]
        // Without export_features an empty export replaces an older run's (`chorus propensity features` refuses it).
        results.append(("features", export ? Array(designCSV(design, names: names, std: std).utf8) : []))
        try await ctx.putResults(results)
        try await ctx.setTasksDone(nil)

        let slices = ["fit", "dev", "calibration"]
        let report: [String: Any] = [
            "horizon_days": Int(horizon / 86400), "window_days": Double(window) / 86400,
            "latest_interaction": isoTime(last), "first_interaction": isoTime(first),
            "train": [
                "period": "features as of \(isoTime(trainCutoff)), labels in (\(isoTime(trainCutoff)), \(isoTime(testCutoff))]",
                "cutoff": isoTime(trainCutoff),
                "slices": (0..<3).map { ["slice": slices[$0], "users": rows[$0], "converted": positives[$0]] as [String: Any] },
                "insufficient_data": insufficient[0],
            ] as [String: Any],
            "test": test.merging(["cutoff": isoTime(testCutoff), "insufficient_data": insufficient[1]]) { a, _ in a },
            "lambda": lambdaReport,
            "calibration": ["method": "Platt scaling on the calibration slice of the training period", "a": platt.a, "b": platt.b,
                            "users": calLabels.count] as [String: Any],
            "coefficients": coefficients, "intercept": params[d], "drivers": drivers,
            "scoring": ["as_of": isoTime(last), "scored": written, "insufficient_data": writtenInsufficient,
                        "deciles": deciles, "top_kept": top.count] as [String: Any],
            "users": users, "interactions": events, "features": names, "evaluations": evaluations,
            "partitions": partitions, "workers": await ctx.activeWorkerCount(),
            "seconds": (ContinuousClock.now - start).seconds,
        ]
        _ = scoreInsufficient
        return String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)
    }

    /// The design matrix as the model sees it: one row per user and period, standardized features.
    static func designCSV(_ rows: [Chorus_V1_Jobs_PropensityRow], names: [String], std: Standardizer) -> String {
        let sliceNames = ["fit", "dev", "calibration", "test", "score"]
        var out = "user_id,slice,label," + names.map { "\"\($0)\"" }.joined(separator: ",") + "\n"
        for r in rows where r.x.count == names.count {
            let z = std.apply(r.x)
            let id = r.userID.contains(",") || r.userID.contains("\"")
                ? "\"" + r.userID.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : r.userID
            out += id + "," + sliceNames[min(Int(r.slice), 4)] + "," + (r.label ? "1" : "0") + ","
                + z.map { String($0) }.joined(separator: ",") + "\n"
        }
        return out
    }
}
