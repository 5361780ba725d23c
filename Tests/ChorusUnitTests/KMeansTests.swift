import ChorusAnalytics
import ChorusModel
import Testing

@Suite struct KMeansTests {
    /// Three well separated 2-d blobs of 200 points each, in blob order.
    func blobs(seed: UInt64 = 3) -> (points: [Float], truth: [Int]) {
        var g = SplitMix64(seed: seed)
        let centres: [(Double, Double)] = [(0, 0), (6, 0), (0, 6)]
        var p: [Float] = [], t: [Int] = []
        for (c, (x, y)) in centres.enumerated() {
            for _ in 0..<200 {
                p += [Float(x + g.gaussian() * 0.5), Float(y + g.gaussian() * 0.5)]
                t.append(c)
            }
        }
        return (p, t)
    }

    @Test func adjustedRandIndexMatchesKnownValues() {
        #expect(KMeans.adjustedRandIndex([0, 0, 1, 1], [1, 1, 0, 0]) == 1)
        // scikit-learn's documented example: adjusted_rand_score([0, 0, 1, 2], [0, 0, 1, 1]) = 0.57...
        #expect(abs(KMeans.adjustedRandIndex([0, 0, 1, 2], [0, 0, 1, 1]) - 0.5714285714) < 1e-9)
        // Splitting every pair apart: 0 agreement beyond chance... negative here.
        #expect(KMeans.adjustedRandIndex([0, 0, 0, 0], [0, 1, 2, 3]) == 0)
    }

    @Test func minimumCostMatchingIsOptimal() {
        var g = SplitMix64(seed: 9)
        for _ in 0..<20 {
            let k = 5
            let cost = (0..<(k * k)).map { _ in g.unit() }
            let m = KMeans.minimumCostMatching(cost, size: k)
            #expect(Set(m).count == k)
            let got = (0..<k).reduce(0.0) { $0 + cost[$1 * k + m[$1]] }
            // Brute force over the 120 permutations.
            var best = Double.infinity
            func perm(_ used: [Bool], _ row: Int, _ sum: Double) {
                if row == k { best = min(best, sum); return }
                for j in 0..<k where !used[j] { var u = used; u[j] = true; perm(u, row + 1, sum + cost[row * k + j]) }
            }
            perm([Bool](repeating: false, count: k), 0, 0)
            #expect(abs(got - best) < 1e-12)
        }
    }

    @Test func recoversBlobsDeterministically() {
        let (p, truth) = blobs()
        let a = KMeans.bestOf(p, dims: 2, k: 3, restarts: 3, seed: 7)
        let b = KMeans.bestOf(p, dims: 2, k: 3, restarts: 3, seed: 7)
        #expect(a.centroids == b.centroids)
        let labels = KMeans.assign(p, dims: 2, centroids: a.centroids).labels.map { Int($0) }
        #expect(KMeans.adjustedRandIndex(labels, truth) > 0.99)
        // The inertia is about n · dims · σ² = 600 · 2 · 0.25.
        #expect(a.inertia > 200 && a.inertia < 400, "\(a.inertia)")
        let s = KMeans.silhouette(p, dims: 2, labels: labels.map { Int32($0) }, k: 3)
        #expect(s > 0.8, "\(s)")
    }

    @Test func partialSumsMergeToTheWholeStep() {
        let (p, _) = blobs(seed: 5)
        let c = KMeans.plusPlus(p, dims: 2, k: 3, seed: 1)
        let whole = KMeans.partial(p, dims: 2, centroids: c)
        var merged = KMeans.partial(Array(p[0..<500]), dims: 2, centroids: c)
        merged.merge(KMeans.partial(Array(p[500...]), dims: 2, centroids: c))
        #expect(merged.counts == whole.counts)
        #expect(abs(merged.inertia - whole.inertia) < 1e-6 * whole.inertia)
        let next = KMeans.update(merged, previous: c, dims: 2)
        #expect(KMeans.shift(next, KMeans.update(whole, previous: c, dims: 2), dims: 2) < 1e-5)
    }

    @Test func anEmptyClusterKeepsItsCentroid() {
        let p: [Float] = [0, 0, 0.1, 0, 5, 5]
        let c: [Float] = [0, 0, 5, 5, 100, 100]
        let next = KMeans.update(KMeans.partial(p, dims: 2, centroids: c), previous: c, dims: 2)
        #expect(Array(next[4...]) == [100, 100])
        #expect(abs(next[0] - 0.05) < 1e-6)
    }

    @Test func segmentTraitsNameWhatStandsOut() {
        let audience: [String: (mean: Double, std: Double)] = [
            "channel:tiktok": (0.15, 0.3), "type:share": (0.02, 0.01), "hours:20-23": (0.25, 0.1),
            "topic:gaming": (0.06, 0.1), "als:0": (0, 1), "frequency": (2, 1),
        ]
        let segment = ["channel:tiktok": 0.71, "type:share": 0.046, "hours:20-23": 0.48, "topic:gaming": 0.4,
                       "als:0": 9, "frequency": 2.05]
        let t = SegmentDescriptions.traits(segment: segment, audience: audience, count: 5)
        #expect(!t.contains { $0.feature == "als:0" || $0.feature == "frequency" })
        #expect(t.first?.feature == "topic:gaming")
        #expect(t.contains { $0.text == "2.3× the audience's share rate" })
        #expect(t.contains { $0.text == "71% of activity on tiktok (audience 15%)" })
        #expect(SegmentDescriptions.name(t, all: segment, audience: audience) == "tiktok · gaming · 20–23h UTC")
    }
}
