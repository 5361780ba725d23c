import ChorusModel

/// Quality measures for recommendations (pure).
public enum Evaluation {
    /// Root mean squared error and mean absolute error of (prediction, truth) pairs.
    public static func errors(_ pairs: [(Float, Float)]) -> (rmse: Double, mae: Double) {
        guard !pairs.isEmpty else { return (0, 0) }
        var se = 0.0, ae = 0.0
        for (p, t) in pairs {
            let d = Double(p) - Double(t)
            se += d * d
            ae += abs(d)
        }
        return ((se / Double(pairs.count)).squareRoot(), ae / Double(pairs.count))
    }

    public struct Ranking: Sendable, Codable, Equatable {
        public var users = 0
        public var precision = 0.0
        public var recall = 0.0
        public var ndcg = 0.0
        public var map = 0.0
        public var k = 10
        public init(k: Int) { self.k = k }
    }

    /// Accumulates precision@k, recall@k, NDCG@k and MAP@k over users: `ranked` is the user's top-k list, `relevant`
    /// the held-out items. Users without held-out items are skipped.
    public struct RankingAccumulator: Sendable {
        public let k: Int
        var n = 0
        var p = 0.0, r = 0.0, ndcg = 0.0, ap = 0.0
        public init(k: Int) { self.k = k }

        public mutating func add<T: Hashable>(ranked: [T], relevant: Set<T>) {
            guard !relevant.isEmpty else { return }
            let top = ranked.prefix(k)
            var hits = 0
            var dcg = 0.0, sumPrec = 0.0
            for (i, item) in top.enumerated() where relevant.contains(item) {
                hits += 1
                dcg += 1 / log2(Double(i + 2))
                sumPrec += Double(hits) / Double(i + 1)
            }
            var idcg = 0.0
            for i in 0..<min(k, relevant.count) { idcg += 1 / log2(Double(i + 2)) }
            n += 1
            p += Double(hits) / Double(k)
            r += Double(hits) / Double(relevant.count)
            ndcg += idcg > 0 ? dcg / idcg : 0
            ap += sumPrec / Double(min(k, relevant.count))
        }

        /// The raw sums (users, precision, recall, NDCG, average precision), for merging across workers.
        public var sums: (n: Int, p: Double, r: Double, ndcg: Double, ap: Double) { (n, p, r, ndcg, ap) }

        public init(k: Int, sums: (n: Int, p: Double, r: Double, ndcg: Double, ap: Double)) {
            self.k = k
            (n, p, r, ndcg, ap) = sums
        }

        public mutating func merge(_ o: RankingAccumulator) {
            n += o.n; p += o.p; r += o.r; ndcg += o.ndcg; ap += o.ap
        }

        public var result: Ranking {
            var out = Ranking(k: k)
            out.users = n
            guard n > 0 else { return out }
            out.precision = p / Double(n)
            out.recall = r / Double(n)
            out.ndcg = ndcg / Double(n)
            out.map = ap / Double(n)
            return out
        }
    }

    /// The indices of the `n` largest scores, excluding `exclude`, highest first (ties: lower index first).
    public static func topN(scores: [Float], n: Int, exclude: Set<Int>) -> [Int] {
        guard n > 0 else { return [] }
        var heap: [(Float, Int)] = []  // a small sorted buffer: n is small (10–100)
        heap.reserveCapacity(n + 1)
        for (i, s) in scores.enumerated() where !exclude.contains(i) && s.isFinite {
            if heap.count == n, let last = heap.last, !(s > last.0 || (s == last.0 && i < last.1)) { continue }
            var lo = 0, hi = heap.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if heap[mid].0 > s || (heap[mid].0 == s && heap[mid].1 < i) { lo = mid + 1 } else { hi = mid }
            }
            heap.insert((s, i), at: lo)
            if heap.count > n { heap.removeLast() }
        }
        return heap.map(\.1)
    }
}

@inline(__always) func log2(_ x: Double) -> Double { PortableMath.log(x) / 0.693_147_180_559_945_3 }
