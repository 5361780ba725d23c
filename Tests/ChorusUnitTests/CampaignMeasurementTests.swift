import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// The statistics of campaign measurement (CampaignMeasurement): coverage and false positives of the Welch interval
/// on simulated campaigns, the confidence sequence under peeking, CUPED, the sample-ratio check, scipy/statsmodels
/// on the same numbers (the peer virtualenv of scripts/peers.sh; skipped offline), and retention on the CDNOW
/// purchases (scripts/fetch-mmm-data.sh; skipped when absent). The figures are in docs/campaigns.md
/// "Statistical checks".
@Suite struct CampaignMeasurementTests {
    typealias CM = CampaignMeasurement

    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// Runs a program; (status, stdout, stderr).
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        // stdout through a pipe read to its end; stderr into a file (so neither can fill up and block the child).
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("cm-stderr-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = errHandle
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try? errHandle.close()
        let errText = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), errText)
    }

    /// The peer virtualenv's python with scipy and statsmodels (scripts/peers.sh installs them when PyPI is
    /// reachable); nil offline.
    static let peerPython: String? = {
        guard let r = try? run("/bin/bash", [root.appendingPathComponent("scripts/peers.sh").path, "statsmodels"]),
              r.status == 0 else { return nil }
        let py = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.isExecutableFile(atPath: py) ? py : nil
    }()

    /// Seeded draws: SplitMix64 uniforms, normals by Box–Muller (both of the pair used).
    struct Draws {
        var rng: SplitMix64
        var spare: Double?
        init(seed: UInt64) { rng = SplitMix64(seed: seed) }
        mutating func unit() -> Double { rng.unit() }
        mutating func bernoulli(_ p: Double) -> Double { rng.unit() < p ? 1 : 0 }
        mutating func normal() -> Double {
            if let s = spare { spare = nil; return s }
            let u1 = max(rng.unit(), 1e-300), u2 = rng.unit()
            let r = (-2 * log(u1)).squareRoot()
            spare = r * sin(2 * Double.pi * u2)
            return r * cos(2 * Double.pi * u2)
        }
    }

    static func binomialSD(_ p: Double, _ runs: Int) -> Double { (p * (1 - p) / Double(runs)).squareRoot() }

    // MARK: offline known values

    @Test func knownQuantilesAndTails() {
        // scipy.stats.t.ppf / t.cdf / chi2.sf.
        for (p, df, want) in [(0.975, 1.0, 12.706204736174694), (0.975, 10, 2.228138851986274),
                              (0.975, 30, 2.0422724563012378), (0.995, 5, 4.032142983555228),
                              (0.9, 2.5, 1.7302509288071766), (0.975, 1e6, 1.959966356814107)] {
            let got = CM.studentTQuantile(p, df: df)
            #expect(abs(got - want) < 1e-9 * max(1, want), "t quantile \(p), df \(df): \(got) vs \(want)")
            #expect(abs(CM.studentTQuantile(1 - p, df: df) + want) < 1e-9 * max(1, want))
            #expect(abs(CM.studentTCDF(got, df: df) - p) < 1e-10, "round trip at df \(df)")
        }
        #expect(abs(CM.studentTCDF(-3, df: 7) - 0.009971063065996268) < 1e-12)
        #expect(abs(CM.chiSquareSurvival(10, df: 3) - 0.01856613546304325) < 1e-12)
        #expect(abs(CM.chiSquareSurvival(3.841458820694124, df: 1) - 0.05) < 1e-12)
        #expect(abs(CM.chiSquareSurvival(32, df: 1) / 1.5417257900280013e-08 - 1) < 1e-9)
        // Very large df is the normal.
        #expect(abs(CM.studentTQuantile(0.975, df: 1e15) - Experiment.normalQuantile(0.975)) < 1e-12)
    }

    @Test func degenerateInputsAreFinite() throws {
        let empty = CM.Moments()
        let one = CM.Moments(y: [3])
        let flat = CM.Moments(y: [1, 1, 1, 1])
        let zeros = CM.Moments(y: [0, 0, 0])
        let normal = CM.Moments(y: [1, 2, 4, 7])
        for (t, c) in [(empty, empty), (one, normal), (normal, one), (flat, flat), (flat, zeros), (zeros, zeros),
                       (normal, zeros)] {
            let e = CM.welch(treatment: t, control: c)
            let all = [e.absolute, e.absoluteLow, e.absoluteHigh, e.standardError, e.statistic, e.degreesOfFreedom,
                       e.pValue, e.treatmentMean, e.controlMean] + [e.relative, e.relativeLow, e.relativeHigh].compactMap { $0 }
            #expect(all.allSatisfy { $0.isFinite }, "\(e)")
            #expect((0.0...1.0).contains(e.pValue))
            let s = CM.confidenceSequence(treatment: t, control: c, plannedUsers: 100)
            #expect([s.low, s.high, s.halfWidth, s.pValue].allSatisfy { $0.isFinite }, "\(s)")
            let cu = CM.cuped(treatment: t, control: c)
            #expect(cu.theta.isFinite && cu.varianceReduction.isFinite && cu.estimate.pValue.isFinite)
            _ = try JSONEncoder().encode(e)
        }
        #expect(CM.welch(treatment: one, control: normal).isDegenerate)
        #expect(CM.welch(treatment: one, control: normal).pValue == 1)
        #expect(CM.welch(treatment: flat, control: flat).pValue == 1)
        #expect(CM.welch(treatment: flat, control: zeros).pValue == 0)
        #expect(CM.welch(treatment: normal, control: zeros).relative == nil)
        // Few events in the control: the relative interval (log scale) stays above −100% and agrees in sign with the
        // absolute one.
        let treated = CM.Moments(y: [Double](repeating: 1, count: 22) + [Double](repeating: 0, count: 139))
        let held = CM.Moments(y: [Double](repeating: 1, count: 3) + [Double](repeating: 0, count: 148))
        let small = CM.welch(treatment: treated, control: held)
        #expect(small.absoluteLow > 0)
        #expect((small.relativeLow ?? -9) > 0 && (small.relativeHigh ?? 0) > (small.relative ?? 0))
        #expect(CM.sampleRatio(observed: [0, 0], expectedShares: [0.5, 0.5]).pValue == 1)
        #expect(CM.sampleRatio(observed: [5, 3], expectedShares: [1, 0]).mismatch)
        #expect(CM.adjust([], method: .holm).isEmpty)
        // The moments add up across partitions.
        var a = CM.Moments(), b = CM.Moments()
        a.add(y: 1, x: 2); a.add(y: 3, x: 1); b.add(y: 5, x: 0)
        #expect(a + b == CM.Moments(y: [1, 3, 5], x: [2, 1, 0]))
        #expect(abs((a + b).variance - 4) < 1e-12 && (a + b).mean == 3)
    }

    // MARK: simulated campaigns

    /// Coverage of the nominal 95% Welch interval with a planted lift, and the false-positive rate at zero lift,
    /// on a conversion metric (10% → 11%) and a continuous one (unequal arms and variances).
    @Test func welchCoverageAndFalsePositives() {
        let runs = 1000
        var covered = [0, 0], falsePositive = [0, 0]
        var draws = Draws(seed: 20_261_206)
        for _ in 0..<runs {
            // Conversion: 2000 per arm.
            var t = CM.Moments(), c = CM.Moments(), t0 = CM.Moments()
            for _ in 0..<2000 {
                t.add(y: draws.bernoulli(0.11)); c.add(y: draws.bernoulli(0.10)); t0.add(y: draws.bernoulli(0.10))
            }
            let e = CM.welch(treatment: t, control: c)
            if e.absoluteLow <= 0.01 && 0.01 <= e.absoluteHigh { covered[0] += 1 }
            if CM.welch(treatment: t0, control: c).pValue < 0.05 { falsePositive[0] += 1 }
            // Continuous: 300 treated ~ N(10.3, 4²), 500 control ~ N(10, 3²).
            var ct = CM.Moments(), cc = CM.Moments(), ct0 = CM.Moments()
            for _ in 0..<300 { ct.add(y: 10.3 + 4 * draws.normal()); ct0.add(y: 10 + 4 * draws.normal()) }
            for _ in 0..<500 { cc.add(y: 10 + 3 * draws.normal()) }
            let f = CM.welch(treatment: ct, control: cc)
            if f.absoluteLow <= 0.3 && 0.3 <= f.absoluteHigh { covered[1] += 1 }
            if CM.welch(treatment: ct0, control: cc).pValue < 0.05 { falsePositive[1] += 1 }
        }
        let sd = Self.binomialSD(0.05, runs)
        for (i, name) in ["conversion", "continuous"].enumerated() {
            let cov = Double(covered[i]) / Double(runs), fpr = Double(falsePositive[i]) / Double(runs)
            print("welch \(name): coverage \(cov), false-positive rate \(fpr) over \(runs) campaigns")
            #expect(cov >= 0.93 && cov <= 0.97, "\(name) coverage \(cov)")
            // A 5% test has a 5% false-positive rate: within three binomial standard deviations of it.
            #expect(fpr <= 0.05 + 3 * sd && fpr >= 0.05 - 3 * sd, "\(name) false-positive rate \(fpr)")
        }
    }

    /// Twenty looks per campaign at zero lift: the confidence sequence keeps the chance of ever excluding 0 below α,
    /// the fixed-horizon interval looked at twenty times does not (the peeking problem).
    @Test func confidenceSequenceSurvivesPeeking() {
        let runs = 500, looks = 20, perLook = 100
        var sequentialHits = 0, fixedHits = 0, finalFixedHits = 0
        var consistent = true
        var draws = Draws(seed: 77)
        for _ in 0..<runs {
            var t = CM.Moments(), c = CM.Moments()
            var seqAny = false, fixedAny = false
            for look in 1...looks {
                for _ in 0..<perLook { t.add(y: draws.bernoulli(0.2)); c.add(y: draws.bernoulli(0.2)) }
                let s = CM.confidenceSequence(treatment: t, control: c, plannedUsers: Double(2 * looks * perLook))
                let w = CM.welch(treatment: t, control: c)
                if s.low > 0 || s.high < 0 { seqAny = true }
                if (s.pValue < 0.05) != (s.low > 0 || s.high < 0) { consistent = false }
                if w.absoluteLow > 0 || w.absoluteHigh < 0 { fixedAny = true; if look == looks { finalFixedHits += 1 } }
                #expect(s.halfWidth >= (w.absoluteHigh - w.absoluteLow) / 2)
            }
            if seqAny { sequentialHits += 1 }
            if fixedAny { fixedHits += 1 }
        }
        let seq = Double(sequentialHits) / Double(runs), fixed = Double(fixedHits) / Double(runs)
        print("peeking (\(looks) looks, \(runs) campaigns, zero lift): confidence sequence ever excludes 0 in \(seq), "
              + "fixed-horizon interval in \(fixed) (at the last look alone \(Double(finalFixedHits) / Double(runs)))")
        #expect(seq <= 0.05, "confidence sequence under peeking: \(seq)")
        #expect(fixed > 0.05 + 3 * Self.binomialSD(0.05, runs), "the fixed-horizon interval should suffer from peeking: \(fixed)")
        #expect(consistent, "the always-valid p-value is below α exactly when the sequence excludes 0")
    }

    /// The mixture is tuned so that the sequence is narrowest at the planned number of users.
    @Test func confidenceSequenceIsTightestAtThePlannedUsers() {
        var draws = Draws(seed: 5)
        var t = CM.Moments(), c = CM.Moments()
        for _ in 0..<1000 { t.add(y: draws.normal() + 0.1); c.add(y: draws.normal()) }
        let at = CM.confidenceSequence(treatment: t, control: c, plannedUsers: 2000).halfWidth
        for planned in [1000.0, 1500, 1800, 2200, 3000, 10_000] {
            #expect(CM.confidenceSequence(treatment: t, control: c, plannedUsers: planned).halfWidth > at, "\(planned)")
        }
        let w = CM.welch(treatment: t, control: c)
        // About 1.55 × the fixed-horizon interval at α = 0.05 (multiplier 3.04 against 1.96).
        let ratio = at / (w.absoluteHigh - w.absoluteLow) * 2
        #expect(ratio > 1.5 && ratio < 1.6, "\(ratio)")
    }

    /// A pre-period covariate with correlation 0.7: CUPED removes about ρ² = 0.49 of the variance, stays unbiased
    /// and its interval keeps 95% coverage.
    @Test func cupedReducesVarianceWithoutBias() {
        let runs = 1000, n = 300, rho = 0.7, effect = 0.1
        var reductions = 0.0, estimates = 0.0, covered = 0
        var draws = Draws(seed: 4242)
        let noise = (1 - rho * rho).squareRoot()
        for _ in 0..<runs {
            var t = CM.Moments(), c = CM.Moments()
            for _ in 0..<n {
                let x = draws.normal(); t.add(y: 5 + effect + rho * x + noise * draws.normal(), x: x)
                let x2 = draws.normal(); c.add(y: 5 + rho * x2 + noise * draws.normal(), x: x2)
            }
            let r = CM.cuped(treatment: t, control: c)
            reductions += r.varianceReduction
            estimates += r.estimate.absolute
            if r.estimate.absoluteLow <= effect && effect <= r.estimate.absoluteHigh { covered += 1 }
        }
        let reduction = reductions / Double(runs), mean = estimates / Double(runs), cov = Double(covered) / Double(runs)
        // The adjusted difference's standard deviation is √(2(1 − ρ²)/n); the mean of `runs` of them is within 4 of
        // its standard errors of the planted effect.
        let tolerance = 4 * (2 * (1 - rho * rho) / Double(n)).squareRoot() / Double(runs).squareRoot()
        print("cuped (ρ = \(rho)): mean variance reduction \(reduction), mean estimate \(mean) (planted \(effect)), coverage \(cov)")
        #expect(abs(reduction - rho * rho) < 0.02, "variance reduction \(reduction)")
        #expect(abs(mean - effect) < tolerance, "mean estimate \(mean)")
        #expect(cov >= 0.93 && cov <= 0.97, "coverage \(cov)")
        // θ on a noiseless line is its slope, and the reduction is complete.
        let exact = CM.cuped(treatment: CM.Moments(y: [3, 5, 7], x: [1, 2, 3]), control: CM.Moments(y: [1, 3, 5], x: [0, 1, 2]))
        #expect(abs(exact.theta - 2) < 1e-12)
        #expect(exact.varianceReduction > 0.999999 || exact.estimate.isDegenerate)
    }

    @Test func sampleRatioMismatchIsFlagged() {
        let skewed = CM.sampleRatio(observed: [10_400, 9_600], expectedShares: [0.5, 0.5])
        print("srm: 52/48 of 20000 on a 50/50 design: χ² \(skewed.chiSquare), p \(skewed.pValue)")
        #expect(skewed.mismatch && skewed.pValue < 0.001 && skewed.chiSquare == 32 && skewed.degreesOfFreedom == 1)
        var draws = Draws(seed: 11)
        var arms = [0.0, 0.0]
        for _ in 0..<20_000 { arms[draws.unit() < 0.5 ? 0 : 1] += 1 }
        let fair = CM.sampleRatio(observed: arms, expectedShares: [50, 50])
        print("srm: a true 50/50 split \(arms): p \(fair.pValue)")
        #expect(!fair.mismatch, "\(fair)")
        #expect(CM.sampleRatio(observed: [10_000, 10_000], expectedShares: [1, 1]).pValue == 1)
        // Three arms, 10/45/45.
        let three = CM.sampleRatio(observed: [1_000, 4_400, 4_600], expectedShares: [0.1, 0.45, 0.45])
        #expect(three.degreesOfFreedom == 2 && !three.mismatch && three.expected == [1_000, 4_500, 4_500])
    }

    @Test func correctionsByHand() {
        let p = [0.01, 0.04, 0.03, 0.005]
        // Holm: sorted 0.005, 0.01, 0.03, 0.04 × 4, 3, 2, 1 → 0.02, 0.03, 0.06, 0.06 (running max).
        #expect(zip(CM.adjust(p, method: .holm), [0.03, 0.06, 0.06, 0.02]).allSatisfy { abs($0 - $1) < 1e-15 })
        // BH: 0.005·4/1, 0.01·4/2, 0.03·4/3, 0.04·4/4 → 0.02, 0.02, 0.04, 0.04 (running min from the top).
        #expect(zip(CM.adjust(p, method: .benjaminiHochberg), [0.02, 0.04, 0.04, 0.02]).allSatisfy { abs($0 - $1) < 1e-15 })
        #expect(CM.adjust(p, method: .none) == p)
        #expect(CM.adjust([0.5, 0.9], method: .holm) == [1, 1])
    }

    @Test func retentionDefinition() {
        let day: Int64 = 86_400
        #expect(CM.retained(firstExposure: 0, activity: [0, 3 * day], days: 7, dataEnd: 6 * day) == nil)
        #expect(CM.retained(firstExposure: 0, activity: [0, 3 * day], days: 7, dataEnd: 7 * day) == false)
        #expect(CM.retained(firstExposure: 0, activity: [0, 3 * day, 7 * day], days: 7, dataEnd: 7 * day) == true)
        #expect(CM.retained(firstExposure: 0, activity: [0, 30 * day], days: 7, dataEnd: 40 * day) == true)
        #expect(CM.retained(firstExposure: 10, activity: [], days: 0, dataEnd: 10) == false)
    }

    // MARK: against scipy and statsmodels

    /// Welch (statistic, df, p, 95% interval), the t distribution, chi-square and the corrections against scipy
    /// and statsmodels run on the same numbers in this test.
    @Test(.enabled(if: CampaignMeasurementTests.peerPython != nil,
                   "skipped: scipy/statsmodels could not be installed into .cache/peers/venv (scripts/peers.sh statsmodels needs PyPI)"))
    func agreesWithScipyAndStatsmodels() throws {
        let py = try #require(Self.peerPython)
        var draws = Draws(seed: 99)
        var pairs: [[[Double]]] = [
            [[1, 2, 3, 4, 5], [2, 4, 6]],
            [[0, 0, 1, 0, 1, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0, 0]],
            [[10.5, 11.2, 9.8], [12.1, 12.0, 11.9, 12.4, 30.0]],
        ]
        pairs.append([(0..<200).map { _ in 3 + 2 * draws.normal() }, (0..<150).map { _ in 3.4 + 0.5 * draws.normal() }])
        pairs.append([(0..<5000).map { _ in draws.bernoulli(0.031) }, (0..<4000).map { _ in draws.bernoulli(0.026) }])
        pairs.append([(0..<40).map { _ in exp(draws.normal()) }, (0..<60).map { _ in exp(0.3 + draws.normal()) }])
        let pValues = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0001, 0.5, 0.03]
        let counts: [([Double], [Double])] = [([10_400, 9_600], [0.5, 0.5]), ([980, 4_470, 4_550], [0.1, 0.45, 0.45]),
                                              ([51, 49], [1, 1]), ([120, 80, 95, 105], [1, 1, 1, 1])]
        let tPoints: [(Double, Double)] = [(-2.5, 3), (0.3, 1), (1.7, 12.5), (4, 200), (-6, 40), (2, 1e5), (1.5, 3e6), (-2.2, 5e7), (0.01, 2e7), (5.5, 1e9)]
        let input: [String: Any] = [
            "pairs": pairs, "pvalues": pValues,
            "counts": counts.map { ["observed": $0.0, "shares": $0.1] },
            "t_points": tPoints.map { [$0.0, $0.1] },
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cm-scipy-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inputURL = dir.appendingPathComponent("in.json")
        try JSONSerialization.data(withJSONObject: input).write(to: inputURL)
        let script = """
        import json, sys
        from scipy import stats
        from statsmodels.stats.multitest import multipletests
        d = json.load(open(sys.argv[1]))
        out = {"welch": [], "chi": [], "t": []}
        for a, b in d["pairs"]:
            r = stats.ttest_ind(a, b, equal_var=False)
            ci = r.confidence_interval(0.95)
            out["welch"].append([float(r.statistic), float(r.df), float(r.pvalue), float(ci.low), float(ci.high)])
        for c in d["counts"]:
            tot = sum(c["observed"]); s = sum(c["shares"])
            r = stats.chisquare(c["observed"], [tot * x / s for x in c["shares"]])
            out["chi"].append([float(r.statistic), float(r.pvalue)])
        for x, df in d["t_points"]:
            out["t"].append([float(stats.t.cdf(x, df)), float(stats.t.ppf(stats.t.cdf(x, df), df))])
        out["holm"] = [float(v) for v in multipletests(d["pvalues"], method="holm")[1]]
        out["bh"] = [float(v) for v in multipletests(d["pvalues"], method="fdr_bh")[1]]
        print(json.dumps(out))
        """
        let r = try Self.run(py, ["-c", script, inputURL.path])
        #expect(r.status == 0, "\(r.stderr)")
        let ref = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        func close(_ a: Double, _ b: Double, _ what: String) {
            #expect(abs(a - b) <= 1e-6 * max(1, abs(b)), "\(what): chorus \(a), reference \(b)")
        }
        var worst = 0.0
        func track(_ a: Double, _ b: Double) { worst = max(worst, abs(a - b) / max(1, abs(b))) }
        let welch = try #require(ref["welch"] as? [[Double]])
        #expect(welch.count == pairs.count)
        for (pair, want) in zip(pairs, welch) {
            let e = CM.welch(treatment: CM.Moments(y: pair[0]), control: CM.Moments(y: pair[1]))
            for (got, w, name) in [(e.statistic, want[0], "t"), (e.degreesOfFreedom, want[1], "df"), (e.pValue, want[2], "p"),
                                   (e.absoluteLow, want[3], "low"), (e.absoluteHigh, want[4], "high")] {
                close(got, w, "welch \(name) n=\(pair[0].count)/\(pair[1].count)"); track(got, w)
            }
        }
        let chi = try #require(ref["chi"] as? [[Double]])
        for (c, want) in zip(counts, chi) {
            let s = CM.sampleRatio(observed: c.0, expectedShares: c.1)
            close(s.chiSquare, want[0], "chi-square \(c.0)"); close(s.pValue, want[1], "chi-square p \(c.0)")
            track(s.chiSquare, want[0]); track(s.pValue, want[1])
        }
        let t = try #require(ref["t"] as? [[Double]])
        for (point, want) in zip(tPoints, t) {
            let cdf = CM.studentTCDF(point.0, df: point.1)
            close(cdf, want[0], "t cdf \(point)"); track(cdf, want[0])
            let q = CM.studentTQuantile(want[0], df: point.1)
            close(q, want[1], "t quantile \(point)"); track(q, want[1])
        }
        for (key, method) in [("holm", CM.Correction.holm), ("bh", .benjaminiHochberg)] {
            let want = try #require(ref[key] as? [Double])
            let got = CM.adjust(pValues, method: method)
            #expect(got.count == want.count)
            for (g, w) in zip(got, want) { close(g, w, key); track(g, w) }
        }
        print("scipy/statsmodels agreement: largest relative difference \(worst)")
    }

    // MARK: retention on CDNOW

    /// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil).
    static func days(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The CDNOW purchases (PyMC-Marketing's cdnow_transactions.csv): each customer's first purchase day is the
    /// exposure, their purchase days the activity, the last date the data end. 7- and 28-day retention and the
    /// repeat-purchase rate through `retained`, counted again by a plain python script.
    @Test func retentionOnCDNOWMatchesADirectCount() throws {
        let url = Self.root.appendingPathComponent(".cache/real-data/pymc-marketing/cdnow_transactions.csv")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            print("skipped: \(url.path) is absent (run scripts/fetch-mmm-data.sh)")
            return
        }
        var lines = text.split(whereSeparator: \.isNewline)
        let header = lines.removeFirst().split(separator: ",").map(String.init)
        let idCol = try #require(header.firstIndex(of: "id")), dateCol = try #require(header.firstIndex(of: "date"))
        var activity = [String: [Int64]]()
        var end: Int64 = .min
        for line in lines {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            let date = try #require(Int(f[dateCol]), "date \(f[dateCol])")
            let t = Int64(Self.days(date / 10_000, date / 100 % 100, date % 100)) * 86_400
            activity[String(f[idCol]), default: []].append(t)
            end = max(end, t)
        }
        var counts = [String: [Int]]()
        for (name, days) in [("d7", 7), ("d28", 28), ("repeat", 1)] {
            var eligible = 0, kept = 0
            for (_, raw) in activity {
                let times = raw.sorted()
                guard let r = CM.retained(firstExposure: times[0], activity: times, days: days, dataEnd: end) else { continue }
                eligible += 1
                if r { kept += 1 }
            }
            counts[name] = [eligible, kept]
        }
        let script = """
        import csv, datetime, json, sys
        firsts, days = {}, {}
        for row in csv.DictReader(open(sys.argv[1])):
            d = datetime.datetime.strptime(row["date"], "%Y%m%d").date().toordinal()
            days.setdefault(row["id"], set()).add(d)
        end = max(max(s) for s in days.values())
        out = {"customers": len(days)}
        for name, n in (("d7", 7), ("d28", 28), ("repeat", 1)):
            eligible = kept = 0
            for s in days.values():
                first = min(s)
                if first + n > end:
                    continue
                eligible += 1
                kept += any(d >= first + n for d in s)
            out[name] = [eligible, kept]
        print(json.dumps(out))
        """
        let r = try Self.run("/usr/bin/env", ["python3", "-c", script, url.path])
        #expect(r.status == 0, "\(r.stderr)")
        let ref = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(ref["customers"] as? Int == activity.count)
        for name in ["d7", "d28", "repeat"] {
            let want = try #require(ref[name] as? [Int])
            #expect(counts[name] == want, "\(name): chorus \(counts[name] ?? []), python \(want)")
            let c = counts[name] ?? [1, 0]
            print("cdnow \(name): \(c[1]) of \(c[0]) eligible customers (\(Double(c[1]) / Double(max(c[0], 1))))")
        }
    }
}
