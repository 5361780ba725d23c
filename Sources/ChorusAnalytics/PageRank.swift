/// PageRank by power iteration, with the semantics of `networkx.pagerank` (docs/audience.md "Influence").
///
/// The graph is directed: an edge u → v (u follows v) is a vote of u for v, so rank flows from u to v. One step,
/// for each ranked vector (the plain one, or one personalized by a teleport distribution p):
///
///     x'[v] = α · (Σ_{u→v} x[u] / outdeg(u) + D · d[v]) + (1 − α) · p[v]
///
/// where D = Σ x[u] over the dangling nodes (no out-edges) and d is where their mass goes: p itself (uniform
/// 1/N for the plain vector), as networkx does when no separate dangling distribution is given. The start
/// vector is uniform 1/N for every vector (networkx's default `nstart`).
///
/// Convergence: the L1 change of the whole vector, Σ_v |x'[v] − x[v]|, below N · tol (networkx's rule; not a
/// per-node check, see networkx issue #8651). A vector that has not converged after `maxIterations` steps is
/// returned as it stands with `converged == false` (networkx raises instead).
///
/// The split into `share` (per source node) and `advance` (per destination node, given the summed inflow) is
/// what the distributed `influence` job runs: the coordinator keeps the vectors and calls `share`/`advance`,
/// each partition sums the inflow of its own nodes over their in-edges. The sums are taken in a fixed order
/// (in-edges in key order, nodes in index order), so the result does not depend on how many workers there are.
public enum PageRank {
    public struct Options: Sendable, Equatable {
        public var damping: Double
        public var tolerance: Double
        public var maxIterations: Int
        public init(damping: Double = 0.85, tolerance: Double = 1e-6, maxIterations: Int = 100) {
            self.damping = damping; self.tolerance = tolerance; self.maxIterations = maxIterations
        }
    }

    /// A directed graph of `n` nodes as in-edge lists (CSR): the sources of node v's in-edges are
    /// `sources[offsets[v]..<offsets[v+1]]`; `outDegree[u]` counts u's out-edges.
    public struct Graph: Sendable {
        public let n: Int
        public let offsets: [Int]
        public let sources: [Int32]
        public let outDegree: [Int32]

        /// From (source, destination) edges; a repeated pair counts once (a follow's identity is the pair), a
        /// self-loop is kept as networkx keeps it.
        public init(n: Int, edges: [(Int, Int)]) {
            var seen = Set<Int>()
            var unique: [(Int, Int)] = []
            for (u, v) in edges where seen.insert(u * n + v).inserted { unique.append((u, v)) }
            unique.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
            var offsets = [Int](repeating: 0, count: n + 1)
            var out = [Int32](repeating: 0, count: n)
            for (u, v) in unique { offsets[v + 1] += 1; out[u] += 1 }
            for i in 0..<n { offsets[i + 1] += offsets[i] }
            self.init(n: n, offsets: offsets, sources: unique.map { Int32($0.0) }, outDegree: out)
        }

        public init(n: Int, offsets: [Int], sources: [Int32], outDegree: [Int32]) {
            precondition(offsets.count == n + 1 && outDegree.count == n && offsets.last == sources.count)
            self.n = n; self.offsets = offsets; self.sources = sources; self.outDegree = outDegree
        }

        public var edgeCount: Int { sources.count }

        /// Σ_{u→v} share[u] for every v: one pass over the in-edges.
        public func inflow(_ share: [Double]) -> [Double] {
            PageRank.inflow(offsets: offsets, sources: sources, share: share)
        }
    }

    /// Σ over each node's in-edges of `share[source]` (`offsets` has one entry more than the nodes).
    public static func inflow(offsets: [Int], sources: [Int32], share: [Double]) -> [Double] {
        let n = offsets.count - 1
        var y = [Double](repeating: 0, count: n)
        share.withUnsafeBufferPointer { s in
            sources.withUnsafeBufferPointer { src in
                offsets.withUnsafeBufferPointer { off in
                    y.withUnsafeMutableBufferPointer { out in
                        for v in 0..<n {
                            var acc = 0.0
                            for e in off[v]..<off[v + 1] { acc += s[Int(src[e])] }
                            out[v] = acc
                        }
                    }
                }
            }
        }
        return y
    }

    /// One ranked vector being iterated.
    public struct Vector: Sendable {
        /// The current scores (sum 1).
        public private(set) var x: [Double]
        /// The teleport distribution (sum 1); nil: uniform.
        public let personalization: [Double]?
        public private(set) var iterations = 0
        /// L1 change of the last step (infinity before the first).
        public private(set) var delta = Double.infinity
        public private(set) var converged = false

        public init(n: Int, personalization: [Double]? = nil) {
            x = [Double](repeating: n > 0 ? 1 / Double(n) : 0, count: n)
            self.personalization = personalization
        }

        /// A teleport distribution from non-negative weights (normalized to sum 1); nil when they sum to zero.
        public static func distribution(_ weights: [Double]) -> [Double]? {
            let s = weights.reduce(0, +)
            guard s > 0, s.isFinite else { return nil }
            return weights.map { $0 / s }
        }

        /// What each node sends along each of its out-edges, x[u] / outdeg(u) (0 for a dangling node), and the
        /// dangling mass D.
        public func share(outDegree: [Int32]) -> (share: [Double], dangling: Double) {
            var s = [Double](repeating: 0, count: x.count)
            var dangling = 0.0
            for u in x.indices {
                if outDegree[u] > 0 { s[u] = x[u] / Double(outDegree[u]) } else { dangling += x[u] }
            }
            return (s, dangling)
        }

        /// One step from the summed inflow of every node; sets `converged` when the L1 change is below N·tol.
        public mutating func advance(inflow y: [Double], dangling: Double, options: Options) {
            let n = x.count
            let a = options.damping
            let uniform = n > 0 ? 1 / Double(n) : 0
            var err = 0.0
            for v in 0..<n {
                let p = personalization?[v] ?? uniform
                let next = a * (y[v] + dangling * p) + (1 - a) * p
                err += abs(next - x[v])
                x[v] = next
            }
            iterations += 1
            delta = err
            converged = err < Double(n) * options.tolerance
        }
    }

    /// Runs power iteration on one machine (the reference the distributed job is tested against).
    public static func run(_ g: Graph, options: Options = .init(), personalization: [Double]? = nil) -> Vector {
        var v = Vector(n: g.n, personalization: personalization)
        guard g.n > 0 else { return v }
        while v.iterations < options.maxIterations && !v.converged {
            let (s, d) = v.share(outDegree: g.outDegree)
            v.advance(inflow: g.inflow(s), dangling: d, options: options)
        }
        return v
    }

    /// Ranks of `scores` among the nodes where `eligible` is true: 1 = highest score, ties by `ids` ascending;
    /// 0 for the others. Deterministic.
    public static func ranks(_ scores: [Double], ids: [String], eligible: [Bool]) -> [Int] {
        let order = scores.indices.filter { eligible[$0] }.sorted { a, b in
            scores[a] != scores[b] ? scores[a] > scores[b] : ids[a].utf8.lexicographicallyPrecedes(ids[b].utf8)
        }
        var r = [Int](repeating: 0, count: scores.count)
        for (i, node) in order.enumerated() { r[node] = i + 1 }
        return r
    }

    /// Percentile of a rank among `ranked` nodes: 100 for the first, 0 for the last (100 when alone).
    public static func percentile(rank: Int, of ranked: Int) -> Double {
        ranked > 1 ? 100 * Double(ranked - rank) / Double(ranked - 1) : 100
    }
}

/// The plain engagement influence of a content author (docs/audience.md "Influence"):
///
///     engagement_rate = engagements / views of the author's content     (engagements: every interaction but a view)
///     share_rate      = shares / views
///     engagement_influence = followers × engagement_rate × (1 + share_rate)
///
/// that is, how many of the author's followers a post is expected to engage, lifted by how often it is passed
/// on. An author whose content has no views has no rate: the influence is nil ("no_content_views").
public struct EngagementInfluence: Sendable, Equatable {
    public var posts: Int
    public var views: Int
    public var engagements: Int
    public var shares: Int
    public init(posts: Int = 0, views: Int = 0, engagements: Int = 0, shares: Int = 0) {
        self.posts = posts; self.views = views; self.engagements = engagements; self.shares = shares
    }
    public var engagementRate: Double? { views > 0 ? Double(engagements) / Double(views) : nil }
    public var shareRate: Double? { views > 0 ? Double(shares) / Double(views) : nil }
    public func influence(followers: Int) -> Double? {
        guard let e = engagementRate, let s = shareRate else { return nil }
        return Double(followers) * e * (1 + s)
    }
}
