import ChorusAnalytics
import ChorusModel
import Testing

@Suite struct ALSTests {
    /// A planted rank-r matrix R = U Vᵀ, observed at ~40% of the cells; the rest is held out.
    static func planted(users: Int, items: Int, rank: Int, seed: UInt64)
        -> (train: [(Int, Int, Float)], test: [(Int, Int, Float)]) {
        var rng = SplitMix64(seed: seed)
        let u = (0..<(users * rank)).map { _ in Float(rng.gaussian()) }
        let v = (0..<(items * rank)).map { _ in Float(rng.gaussian()) }
        var train: [(Int, Int, Float)] = [], test: [(Int, Int, Float)] = []
        for a in 0..<users {
            for b in 0..<items {
                var r: Float = 0
                for q in 0..<rank { r += u[a * rank + q] * v[b * rank + q] }
                let x = rng.unit()
                if x < 0.4 { train.append((a, b, r)) } else if x < 0.5 { test.append((a, b, r)) }
            }
        }
        return (train, test)
    }

    static func rows(_ triples: [(Int, Int, Float)], count: Int, byFirst: Bool) -> [ALS.Row] {
        var rows = [ALS.Row](repeating: ALS.Row(index: [], value: []), count: count)
        for (a, b, r) in triples.sorted(by: { byFirst ? ($0.0, $0.1) < ($1.0, $1.1) : ($0.1, $0.0) < ($1.1, $1.0) }) {
            let (row, col) = byFirst ? (a, b) : (b, a)
            rows[row].index.append(Int32(col))
            rows[row].value.append(r)
        }
        return rows
    }

    @Test func choleskySolvesASymmetricSystem() {
        var a: [Double] = [4, 2, 0.6, 2, 5, 1, 0.6, 1, 3]
        var b: [Double] = [1, 2, 3]
        let orig = a, rhs = b
        #expect(Cholesky.solve(&a, &b, n: 3))
        for i in 0..<3 {
            let s = (0..<3).reduce(0.0) { $0 + orig[i * 3 + $1] * b[$1] }
            #expect(abs(s - rhs[i]) < 1e-12)
        }
        var bad: [Double] = [1, 2, 2, 1]
        var rhs2: [Double] = [1, 1]
        #expect(!Cholesky.solve(&bad, &rhs2, n: 2))
    }

    @Test func recoversAPlantedLowRankMatrix() {
        let (train, test) = Self.planted(users: 120, items: 90, rank: 4, seed: 7)
        var c = ALS.Config()
        c.rank = 4
        c.lambda = 0.001
        c.iterations = 25
        c.biases = false
        let fit = ALS.fit(byUser: Self.rows(train, count: 120, byFirst: true),
                          byItem: Self.rows(train, count: 90, byFirst: false),
                          userIds: (0..<120).map(String.init), itemIds: (0..<90).map(String.init), config: c)
        let pairs = test.map { (ALS.predict(user: $0.0, item: $0.1, users: fit.users, items: fit.items, mean: fit.mean), $0.2) }
        let (rmse, _) = Evaluation.errors(pairs)
        let scale = Evaluation.errors(test.map { (0, $0.2) }).rmse  // RMSE of predicting 0
        #expect(rmse < 0.05 * scale, "held-out RMSE \(rmse) against a scale of \(scale)")
    }

    @Test func sameSeedSameFactorsAndBiasesHelp() {
        let (train, test) = Self.planted(users: 60, items: 40, rank: 3, seed: 11)
        // Ratings-like data: an offset per user and item on top of the low-rank part.
        let shifted = train.map { ($0.0, $0.1, $0.2 + 3 + Float($0.0 % 5) * 0.2 - Float($0.1 % 3) * 0.3) }
        let shiftedTest = test.map { ($0.0, $0.1, $0.2 + 3 + Float($0.0 % 5) * 0.2 - Float($0.1 % 3) * 0.3) }
        var c = ALS.Config()
        c.rank = 3
        c.lambda = 0.01
        c.iterations = 15
        func run(_ c: ALS.Config) -> (ALS.Factors, ALS.Factors, Float) {
            let f = ALS.fit(byUser: Self.rows(shifted, count: 60, byFirst: true),
                            byItem: Self.rows(shifted, count: 40, byFirst: false),
                            userIds: (0..<60).map(String.init), itemIds: (0..<40).map(String.init), config: c)
            return (f.users, f.items, f.mean)
        }
        let a = run(c), b = run(c)
        #expect(a.0 == b.0 && a.1 == b.1)
        let withBias = Evaluation.errors(shiftedTest.map { (ALS.predict(user: $0.0, item: $0.1, users: a.0, items: a.1, mean: a.2), $0.2) }).rmse
        var nb = c
        nb.biases = false
        let z = run(nb)
        let without = Evaluation.errors(shiftedTest.map { (ALS.predict(user: $0.0, item: $0.1, users: z.0, items: z.1, mean: z.2), $0.2) }).rmse
        #expect(withBias.isFinite && without.isFinite)
        #expect(withBias <= without * 1.05, "with biases \(withBias), without \(without)")
    }

    @Test func implicitModeRanksHeldOutItemsAboveRandom() {
        // Two taste groups: users in group g interact with items of group g.
        var rng = SplitMix64(seed: 3)
        var train: [(Int, Int, Float)] = [], held: [Int: Set<Int>] = [:]
        for u in 0..<80 {
            let g = u % 2
            for i in stride(from: g, to: 60, by: 2) where rng.unit() < 0.5 {
                if rng.unit() < 0.2 { held[u, default: []].insert(i) } else { train.append((u, i, 1)) }
            }
        }
        var c = ALS.Config()
        c.mode = .implicit
        c.rank = 4
        c.lambda = 0.1
        c.alpha = 5
        c.iterations = 10
        func ranking(_ config: ALS.Config) -> Evaluation.Ranking {
            let fit = ALS.fit(byUser: Self.rows(train, count: 80, byFirst: true),
                              byItem: Self.rows(train, count: 60, byFirst: false),
                              userIds: (0..<80).map(String.init), itemIds: (0..<60).map(String.init), config: config)
            var acc = Evaluation.RankingAccumulator(k: 10)
            for u in 0..<80 {
                let seen = Set(train.filter { $0.0 == u }.map(\.1))
                let scores = (0..<60).map { ALS.predict(user: u, item: $0, users: fit.users, items: fit.items, mean: 0) }
                let top = Evaluation.topN(scores: scores, n: 10, exclude: seen)
                #expect(top.allSatisfy { !seen.contains($0) })
                acc.add(ranked: top, relevant: held[u] ?? [])
            }
            return acc.result
        }
        // Random ranking over ~20 unseen candidates of which half are in-group gives P@10 ≈ 0.1; ALS should find
        // the group, with exact solves and with conjugate-gradient steps.
        let exact = ranking(c)
        #expect(exact.precision > 0.15 && exact.ndcg > 0.2, "\(exact)")
        var cg = c
        cg.cgSteps = 3
        let approx = ranking(cg)
        #expect(approx.precision > 0.15 && approx.ndcg > 0.2, "\(approx)")
    }

    @Test func rankingMetricsOnAKnownList() {
        var acc = Evaluation.RankingAccumulator(k: 3)
        acc.add(ranked: ["a", "x", "b"], relevant: ["a", "b"])
        let r = acc.result
        #expect(abs(r.precision - 2.0 / 3) < 1e-12)
        #expect(abs(r.recall - 1) < 1e-12)
        #expect(abs(r.map - (1 + 2.0 / 3) / 2) < 1e-12)
        let idcg = 1 + 1 / log2of(3)
        #expect(abs(r.ndcg - (1 + 1 / log2of(4)) / idcg) < 1e-9)
        #expect(Evaluation.topN(scores: [0.1, 0.9, 0.5, 0.9], n: 2, exclude: [1]) == [3, 2])
    }

    func log2of(_ x: Double) -> Double {
        var v = x, e = 0.0
        while v >= 2 { v /= 2; e += 1 }
        // log2 of v in [1, 2) by bisection-free series: ln(v)/ln2 with ln via atanh
        let t = (v - 1) / (v + 1)
        var s = 0.0, p = t
        for i in stride(from: 1, through: 41, by: 2) { s += p / Double(i); p *= t * t }
        return e + 2 * s / 0.6931471805599453
    }
}

@Suite struct ALSNeighbourhoodTests {
    @Test func correctionIsZeroWithoutSimilarRatedItemsAndBoundedOtherwise() {
        var users = ALS.Factors(rank: 2, width: 3, count: 1)
        var items = ALS.Factors(rank: 2, width: 3, count: 3)
        users.data = [1, 0, 0]
        items.data = [1, 0, 0,   0.9, 0.1, 0,   -1, 0, 0]
        let s = ALS.Neighbourhood()
        // The user rated item 1 (similar to 0) one point above the model, and item 2 (opposite) below.
        let row = ALS.Row(index: [1, 2], value: [1.9, -3])
        let c = ALS.correction(userRow: row, user: 0, item: 0, users: users, items: items, mean: 0, settings: s)
        #expect(c > 0 && c <= Float(s.weight) * 1.0001, "\(c)")
        let none = ALS.correction(userRow: ALS.Row(index: [2], value: [5]), user: 0, item: 0, users: users,
                                  items: items, mean: 0, settings: s)
        #expect(none == 0)
    }
}
