import ChorusModel

/// k-means pieces for the `segments` job (pure: no I/O). Points are rows of a row-major `[Float]` matrix of
/// `dims` columns; sums are taken in `Double`, in row order, so that a cluster adding partial results in
/// partition order gets the same centroids from any number of workers.
public enum KMeans {
    /// One Lloyd step's partial result over some rows: per-cluster coordinate sums and counts, and the inertia
    /// (sum of squared distances to the nearest centroid).
    public struct Partial: Sendable, Equatable {
        public var sums: [Double]
        public var counts: [Int]
        public var inertia: Double
        public init(k: Int, dims: Int) {
            sums = [Double](repeating: 0, count: k * dims)
            counts = [Int](repeating: 0, count: k)
            inertia = 0
        }
        /// Adds `other` (same k and dims) into this one.
        public mutating func merge(_ other: Partial) {
            for i in sums.indices { sums[i] += other.sums[i] }
            for i in counts.indices { counts[i] += other.counts[i] }
            inertia += other.inertia
        }
    }

    /// Squared Euclidean distance between row `i` of `points` and row `j` of `centroids`.
    @inline(__always)
    static func distance2(_ points: UnsafeBufferPointer<Float>, _ i: Int, _ centroids: UnsafeBufferPointer<Float>,
                          _ j: Int, _ dims: Int) -> Float {
        var s: Float = 0
        let a = i * dims, b = j * dims
        for t in 0..<dims {
            let d = points[a + t] - centroids[b + t]
            s += d * d
        }
        return s
    }

    /// The nearest centroid of every row and its squared distance.
    public static func assign(_ points: [Float], dims: Int, centroids: [Float]) -> (labels: [Int32], distances: [Float]) {
        let n = dims > 0 ? points.count / dims : 0
        let k = dims > 0 ? centroids.count / dims : 0
        var labels = [Int32](repeating: 0, count: n)
        var dist = [Float](repeating: 0, count: n)
        points.withUnsafeBufferPointer { p in
            centroids.withUnsafeBufferPointer { c in
                for i in 0..<n {
                    var best: Float = .infinity
                    var arg = 0
                    for j in 0..<k {
                        let d = distance2(p, i, c, j, dims)
                        if d < best { best = d; arg = j }
                    }
                    labels[i] = Int32(arg)
                    dist[i] = best
                }
            }
        }
        return (labels, dist)
    }

    /// One Lloyd step over `points`: the partial sums for the next centroids.
    public static func partial(_ points: [Float], dims: Int, centroids: [Float]) -> Partial {
        let k = centroids.count / max(dims, 1)
        var out = Partial(k: k, dims: dims)
        let (labels, dist) = assign(points, dims: dims, centroids: centroids)
        for i in labels.indices {
            let j = Int(labels[i])
            out.counts[j] += 1
            out.inertia += Double(dist[i])
            let a = i * dims, b = j * dims
            for t in 0..<dims { out.sums[b + t] += Double(points[a + t]) }
        }
        return out
    }

    /// New centroids from merged partial sums; a cluster left empty keeps its previous centroid.
    public static func update(_ p: Partial, previous: [Float], dims: Int) -> [Float] {
        var c = previous
        for j in p.counts.indices where p.counts[j] > 0 {
            for t in 0..<dims { c[j * dims + t] = Float(p.sums[j * dims + t] / Double(p.counts[j])) }
        }
        return c
    }

    /// Largest move of any centroid (Euclidean) between two sets.
    public static func shift(_ a: [Float], _ b: [Float], dims: Int) -> Double {
        var worst = 0.0
        for j in 0..<(a.count / max(dims, 1)) {
            var s = 0.0
            for t in 0..<dims { let d = Double(a[j * dims + t] - b[j * dims + t]); s += d * d }
            worst = max(worst, s.squareRoot())
        }
        return worst
    }

    /// Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with 2 + ⌊ln k⌋ candidates per step as
    /// scikit-learn does): deterministic for a seed.
    public static func plusPlus(_ points: [Float], dims: Int, k: Int, seed: UInt64) -> [Float] {
        let n = points.count / max(dims, 1)
        guard n > 0, k > 0 else { return [] }
        var rng = SplitMix64(seed: seed ^ 0x6B6D_6561_6E73_2B2B)
        var centroids: [Float] = []
        centroids.reserveCapacity(k * dims)
        func row(_ i: Int) -> ArraySlice<Float> { points[(i * dims)..<((i + 1) * dims)] }
        centroids.append(contentsOf: row(rng.below(n)))
        var closest = [Double](repeating: 0, count: n)
        points.withUnsafeBufferPointer { p in
            centroids.withUnsafeBufferPointer { c in
                for i in 0..<n { closest[i] = Double(distance2(p, i, c, 0, dims)) }
            }
        }
        let trials = 2 + Int(Double(k).logNatural)
        while centroids.count < k * dims {
            let total = closest.reduce(0, +)
            var bestCandidate = -1
            var bestPotential = Double.infinity
            var bestClosest: [Double] = []
            for _ in 0..<trials {
                // D² sampling (a uniform pick when every point sits on a centroid already).
                var candidate = rng.below(n)
                if total > 0 {
                    var r = rng.unit() * total
                    for i in 0..<n {
                        r -= closest[i]
                        if r < 0 { candidate = i; break }
                    }
                }
                var next = closest
                var potential = 0.0
                points.withUnsafeBufferPointer { p in
                    let c = Array(row(candidate))
                    c.withUnsafeBufferPointer { cb in
                        for i in 0..<n {
                            next[i] = min(next[i], Double(distance2(p, i, cb, 0, dims)))
                            potential += next[i]
                        }
                    }
                }
                if potential < bestPotential {
                    bestPotential = potential; bestCandidate = candidate; bestClosest = next
                }
            }
            centroids.append(contentsOf: row(bestCandidate))
            closest = bestClosest
        }
        return centroids
    }

    /// Local Lloyd iterations (on a sample): returns the centroids and their inertia.
    public static func lloyd(_ points: [Float], dims: Int, centroids start: [Float], maxIterations: Int,
                             tolerance: Double) -> (centroids: [Float], inertia: Double, iterations: Int) {
        var c = start
        var it = 0
        while it < maxIterations {
            it += 1
            let p = partial(points, dims: dims, centroids: c)
            let next = update(p, previous: c, dims: dims)
            let moved = shift(c, next, dims: dims)
            c = next
            if moved <= tolerance { break }
        }
        return (c, partial(points, dims: dims, centroids: c).inertia, it)
    }

    /// The best of `restarts` k-means++ seedings refined on `points` (lowest inertia), as scikit-learn's n_init.
    public static func bestOf(_ points: [Float], dims: Int, k: Int, restarts: Int, seed: UInt64,
                              maxIterations: Int = 100, tolerance: Double = 1e-4) -> (centroids: [Float], inertia: Double) {
        var best: ([Float], Double) = ([], .infinity)
        for r in 0..<max(1, restarts) {
            let s = plusPlus(points, dims: dims, k: k, seed: seed &+ UInt64(r) &* 0x9E37_79B9)
            let (c, inertia, _) = lloyd(points, dims: dims, centroids: s, maxIterations: maxIterations, tolerance: tolerance)
            if inertia < best.1 { best = (c, inertia) }
        }
        return best
    }

    /// Mean silhouette of a labelling (Rousseeuw 1987), O(n²·dims): use a sample of a few thousand rows.
    /// Points alone in their cluster score 0, as in scikit-learn.
    public static func silhouette(_ points: [Float], dims: Int, labels: [Int32], k: Int) -> Double {
        let n = labels.count
        guard n > 1, k > 1 else { return 0 }
        var size = [Int](repeating: 0, count: k)
        for l in labels { size[Int(l)] += 1 }
        var total = 0.0
        points.withUnsafeBufferPointer { p in
            var sums = [Double](repeating: 0, count: k)
            for i in 0..<n {
                for j in 0..<k { sums[j] = 0 }
                for j in 0..<n where j != i {
                    sums[Int(labels[j])] += Double(distance2(p, i, p, j, dims)).squareRoot()
                }
                let own = Int(labels[i])
                guard size[own] > 1 else { continue }
                let a = sums[own] / Double(size[own] - 1)
                var b = Double.infinity
                for j in 0..<k where j != own && size[j] > 0 { b = min(b, sums[j] / Double(size[j])) }
                guard b.isFinite else { continue }
                let m = max(a, b)
                total += m > 0 ? (b - a) / m : 0
            }
        }
        return total / Double(n)
    }

    /// Adjusted Rand index of two labellings of the same items (Hubert & Arabie 1985): 1 for the same partition,
    /// about 0 for a random one.
    public static func adjustedRandIndex(_ a: [Int], _ b: [Int]) -> Double {
        precondition(a.count == b.count)
        var table: [Int: [Int: Int]] = [:]
        var rows: [Int: Int] = [:], cols: [Int: Int] = [:]
        for (x, y) in zip(a, b) {
            table[x, default: [:]][y, default: 0] += 1
            rows[x, default: 0] += 1
            cols[y, default: 0] += 1
        }
        func c2(_ n: Int) -> Double { Double(n) * Double(n - 1) / 2 }
        let index = table.values.reduce(0.0) { $0 + $1.values.reduce(0.0) { $0 + c2($1) } }
        let sa = rows.values.reduce(0.0) { $0 + c2($1) }, sb = cols.values.reduce(0.0) { $0 + c2($1) }
        let expected = sa * sb / max(c2(a.count), 1)
        let maxIndex = (sa + sb) / 2
        return maxIndex == expected ? 1 : (index - expected) / (maxIndex - expected)
    }

    /// The assignment of `new` rows to `old` rows of a cost matrix (k×k, row-major) with the least total cost
    /// (Hungarian method, O(k³)): `result[i]` is the old index matched to new row i.
    public static func minimumCostMatching(_ cost: [Double], size k: Int) -> [Int] {
        guard k > 0 else { return [] }
        // Jonker–Volgenant style potentials over a (k+1)×(k+1) 1-based formulation.
        var u = [Double](repeating: 0, count: k + 1), v = [Double](repeating: 0, count: k + 1)
        var p = [Int](repeating: 0, count: k + 1), way = [Int](repeating: 0, count: k + 1)
        for i in 1...k {
            p[0] = i
            var j0 = 0
            var minv = [Double](repeating: .infinity, count: k + 1)
            var used = [Bool](repeating: false, count: k + 1)
            repeat {
                used[j0] = true
                let i0 = p[j0]
                var delta = Double.infinity
                var j1 = 0
                for j in 1...k where !used[j] {
                    let cur = cost[(i0 - 1) * k + (j - 1)] - u[i0] - v[j]
                    if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                    if minv[j] < delta { delta = minv[j]; j1 = j }
                }
                for j in 0...k {
                    if used[j] { u[p[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
                }
                j0 = j1
            } while p[j0] != 0
            repeat {
                let j1 = way[j0]
                p[j0] = p[j1]
                j0 = j1
            } while j0 != 0
        }
        var result = [Int](repeating: 0, count: k)
        for j in 1...k where p[j] > 0 { result[p[j] - 1] = j - 1 }
        return result
    }
}

extension Double {
    /// ln(x) without libm (PortableMath), for determinism across platforms.
    var logNatural: Double { PortableMath.log(self) }
}
