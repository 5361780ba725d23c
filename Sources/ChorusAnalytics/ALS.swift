import ChorusModel

/// Alternating least squares for the user × item interaction matrix (pure: no I/O).
///
/// Two modes:
/// - **explicit** (ratings): minimises Σ (r_ui − μ − b_u − c_i − x_uᵀy_i)² + λ (n_u‖x_u‖² + n_i‖y_i‖² + n_u b_u² + n_i c_i²),
///   the weighted-λ regularisation of Zhou et al. 2008, with a global mean μ and per-user and per-item biases;
/// - **implicit** (views, likes, …): minimises Σ_all c_ui (p_ui − x_uᵀy_i)² + λ (‖x_u‖² + ‖y_i‖²) with
///   p_ui = 1 for observed pairs, c_ui = 1 + α·w_ui (Hu, Koren and Volinsky 2008), using the YᵀY trick so a row
///   solve costs O(n_u·k² + k³).
///
/// A half-iteration solves every row of one side against the fixed other side. Each row solve is independent and
/// deterministic given its inputs (its ratings in a fixed order and the other side's factors), which is what lets
/// the distributed job give the same factors on any number of workers.
public enum ALS {
    public enum Mode: String, Sendable, Codable { case explicit, implicit }

    public struct Config: Sendable, Codable, Equatable {
        public var rank = 16
        public var lambda = 0.05
        public var alpha = 10.0
        public var iterations = 10
        public var seed: UInt64 = 42
        public var mode = Mode.explicit
        /// Per-user and per-item biases (explicit mode).
        public var biases = true
        /// Regularisation of a row with n observations is λ·n^e: e = 1 is Zhou et al.'s weighted-λ; 0.75 was
        /// better on MovieLens 100K (docs/benchmarks.md).
        public var lambdaExponent = 1.0
        /// Regularisation of each bias term (constant, not weighted by n).
        public var biasLambda = 1.0
        /// Implicit mode: the regularisation of a row with n observations is λ·n^e with this e. 0 (the default) is
        /// a plain λ, as in Hu, Koren and Volinsky and the `implicit` library; 1 scales it by the row's count as
        /// Spark MLlib does (ALS-WR).
        public var implicitLambdaExponent = 0.0
        /// Implicit mode: 0 solves each row exactly (normal equations, Cholesky); n > 0 takes n conjugate-gradient
        /// steps from the row's previous vector instead (`RowSolver.implicitCG`).
        public var cgSteps = 0
        /// Implicit mode: the confidence function of an observed pair.
        public var confidence = Confidence.onePlus
        public init() {}
    }

    /// The confidence c of an observed pair with weight w (the job's `confidence` parameter, by raw value).
    public enum Confidence: String, Sendable, Codable, CaseIterable {
        /// c = 1 + α·w: Hu, Koren and Volinsky, and Spark.
        case onePlus = "one_plus"
        /// c = α·w: the `implicit` library's, where a pair with α·w = 1 weighs no more than an unobserved one and
        /// only its preference differs.
        case linear
        /// c = offset + α·w: the `offset` the row solvers take.
        public var offset: Double { self == .onePlus ? 1 : 0 }
    }

    /// One row's observations: indices into the other side and values (ratings, or implicit weights).
    public struct Row: Sendable {
        public var index: [Int32]
        public var value: [Float]
        public init(index: [Int32], value: [Float]) { self.index = index; self.value = value }
    }

    /// Factors of one side, row-major (`count × width`). In explicit mode with biases, width = rank + 1 and the
    /// last column is the bias.
    public struct Factors: Sendable, Equatable {
        public var rank: Int
        public var width: Int
        public var data: [Float]
        public var count: Int { width == 0 ? 0 : data.count / width }
        public init(rank: Int, width: Int, count: Int) {
            self.rank = rank; self.width = width; data = [Float](repeating: 0, count: count * width)
        }
        @inlinable public func vector(_ i: Int) -> ArraySlice<Float> { data[(i * width)..<(i * width + rank)] }
        @inlinable public func bias(_ i: Int) -> Float { width > rank ? data[i * width + rank] : 0 }
    }

    /// A deterministic initial vector for `id`: depends on the id, the seed and the rank only (not on which worker
    /// or in which order rows are seen). Small values, N(0, 0.1²/rank)-like.
    public static func initialVector(id: String, seed: UInt64, rank: Int, width: Int) -> [Float] {
        var rng = SplitMix64(seed: StableHash.fnv1a64(Array(id.utf8)) ^ (seed &* 0x9E37_79B9_7F4A_7C15))
        var v = [Float](repeating: 0, count: width)
        let scale = 0.1 / Double(rank).squareRoot()
        for j in 0..<rank { v[j] = Float(rng.gaussian() * scale) }
        return v
    }

    /// YᵀY (k × k, Double) over every row of `factors`, for implicit mode. Rows are summed in index order, in
    /// blocks of 256 through the SIMD kernel (Float sums within a block, Double across blocks).
    public static func gram(_ factors: Factors) -> [Double] {
        let k = factors.rank, w = factors.width, ld = ALSKernels.leading(k)
        var g = [Double](repeating: 0, count: k * k)
        let block = 256
        var z = [Float](repeating: 0, count: block * ld)
        var a = [Float](repeating: 0, count: ld * ld)
        var start = 0
        while start < factors.count {
            let n = min(block, factors.count - start)
            for t in 0..<n {
                let src = (start + t) * w
                for q in 0..<k { z[t * ld + q] = factors.data[src + q] }
            }
            for i in a.indices { a[i] = 0 }
            z.withUnsafeBufferPointer { zp in
                a.withUnsafeMutableBufferPointer { ap in
                    ALSKernels.weightedGram(z: zp.baseAddress!, w: nil, n: n, m: k, ld: ld, into: ap.baseAddress!)
                }
            }
            for p in 0..<k { for q in p..<k { g[p * k + q] += Double(a[p * ld + q]) } }
            start += n
        }
        for p in 0..<k { for q in 0..<p { g[p * k + q] = g[q * k + p] } }
        return g
    }

    /// Adds `other` into `into` (partial Gram matrices from several workers, summed in a fixed order).
    public static func addGram(_ into: inout [Double], _ other: [Double]) {
        for i in into.indices { into[i] += other[i] }
    }

    /// Solves one row in explicit mode. `other` holds the fixed side; `otherBiasIsFixed` says the other side's bias
    /// column is subtracted from the target (it is fixed), while this row's own bias is solved for (when biases
    /// are on). Returns the new row (width = other.width), or nil when the row has no observations. For many rows,
    /// keep one `RowSolver` and call it directly (it reuses its scratch space).
    public static func solveExplicit(row: Row, other: Factors, mean: Float, lambda: Double, biases: Bool,
                                     lambdaExponent: Double = 1, biasLambda: Double = 1) -> [Float]? {
        var s = RowSolver()
        return s.explicit(row: row, other: other, mean: mean, lambda: lambda, biases: biases,
                          lambdaExponent: lambdaExponent, biasLambda: biasLambda)
    }

    /// Solves one row in implicit mode: (YᵀY + Y_Iᵀ(C−I)Y_I + λI) x = Y_Iᵀ C p, with c = offset + α·w
    /// (`Confidence.offset`: 1 by default).
    public static func solveImplicit(row: Row, other: Factors, gram: [Double], alpha: Double, lambda: Double,
                                     offset: Double = 1) -> [Float]? {
        var s = RowSolver()
        return s.implicit(row: row, other: other, gram: gram, alpha: alpha, lambda: lambda, offset: offset)
    }

    /// Predicted score of a (user, item) pair.
    @inlinable public static func predict(user u: Int, item i: Int, users: Factors, items: Factors, mean: Float) -> Float {
        var s: Float = 0
        let ub = u * users.width, ib = i * items.width
        for q in 0..<users.rank { s += users.data[ub + q] * items.data[ib + q] }
        return s + mean + users.bias(u) + items.bias(i)
    }

    /// xᵤ·yᵢ for every item i (no mean or biases), into `scores` (items.count long).
    public static func scores(user u: Int, users: Factors, items: Factors, into scores: inout [Float]) {
        let k = users.rank
        users.data.withUnsafeBufferPointer { ud in
            items.data.withUnsafeBufferPointer { id in
                scores.withUnsafeMutableBufferPointer { out in
                    let x = ud.baseAddress! + u * users.width
                    for i in 0..<items.count {
                        let y = id.baseAddress! + i * items.width
                        var s: Float = 0
                        for q in 0..<k { s += x[q] * y[q] }
                        out[i] = s
                    }
                }
            }
        }
    }

    /// A whole fit in one process over row-indexed data (users 0..<U, items 0..<I). The distributed job runs the
    /// same row solves; this is the reference it is tested against, and what the unit tests and benchmarks use.
    public static func fit(byUser: [Row], byItem: [Row], userIds: [String], itemIds: [String], config: Config,
                           progress: ((Int, Factors, Factors) -> Void)? = nil) -> (users: Factors, items: Factors, mean: Float) {
        let k = config.rank
        let biases = config.mode == .explicit && config.biases
        let width = biases ? k + 1 : k
        var users = Factors(rank: k, width: width, count: byUser.count)
        var items = Factors(rank: k, width: width, count: byItem.count)
        for (i, id) in userIds.enumerated() {
            users.data.replaceSubrange((i * width)..<((i + 1) * width),
                                       with: initialVector(id: "u:" + id, seed: config.seed, rank: k, width: width))
        }
        for (i, id) in itemIds.enumerated() {
            items.data.replaceSubrange((i * width)..<((i + 1) * width),
                                       with: initialVector(id: "i:" + id, seed: config.seed, rank: k, width: width))
        }
        var mean: Float = 0
        if config.mode == .explicit {
            var s = 0.0, n = 0
            for r in byUser { for v in r.value { s += Double(v) }; n += r.value.count }
            mean = n > 0 ? Float(s / Double(n)) : 0
        }
        for it in 0..<config.iterations {
            halfIteration(rows: byUser, solving: &users, other: items, mean: mean, config: config)
            halfIteration(rows: byItem, solving: &items, other: users, mean: mean, config: config)
            progress?(it + 1, users, items)
        }
        return (users, items, mean)
    }

    /// The implicit-mode regularisation of a row with `observations` pairs: λ·n^e (`implicitLambdaExponent`).
    @inlinable public static func implicitLambda(_ config: Config, observations n: Int) -> Double {
        config.implicitLambdaExponent == 0 ? config.lambda : config.lambda * power(Double(max(1, n)), config.implicitLambdaExponent)
    }

    /// Re-solves every row of `solving` against `other`. Rows without observations keep their vector.
    public static func halfIteration(rows: [Row], solving: inout Factors, other: Factors, mean: Float, config: Config) {
        let biases = config.mode == .explicit && config.biases
        let g = config.mode == .implicit ? gram(other) : []
        var solver = RowSolver()
        if config.mode == .implicit && config.cgSteps > 0 { solver.prepare(gram: g, rank: other.rank) }
        for (i, row) in rows.enumerated() {
            let reg = implicitLambda(config, observations: row.index.count)
            let solved = config.mode == .explicit
                ? solver.explicit(row: row, other: other, mean: mean, lambda: config.lambda, biases: biases,
                                  lambdaExponent: config.lambdaExponent, biasLambda: config.biasLambda)
                : config.cgSteps > 0
                ? solver.implicitCG(row: row, other: other, alpha: config.alpha, lambda: reg,
                                    start: solving.data[(i * solving.width)..<((i + 1) * solving.width)],
                                    steps: config.cgSteps, offset: config.confidence.offset)
                : solver.implicit(row: row, other: other, gram: g, alpha: config.alpha, lambda: reg,
                                  offset: config.confidence.offset)
            if let v = solved { solving.data.replaceSubrange((i * solving.width)..<((i + 1) * solving.width), with: v) }
        }
    }
}

extension ALS {
    /// Settings of the neighbourhood correction (see `correction`).
    public struct Neighbourhood: Sendable, Codable, Equatable {
        public var neighbours = 30
        public var power = 2.0
        public var weight = 0.6
        public var shrink = 0.1
        public init() {}
    }

    /// A residual correction for the explicit prediction of (user, item): among the items the user rated, the
    /// `neighbours` most similar to `item` by cosine of their factors, the similarity-weighted mean of the model's
    /// residuals on them (r_uj − r̂_uj), times `weight`. It captures what the low-rank part leaves out, using only
    /// the user's own ratings and the item factors (so it runs where the user's partition is).
    public static func correction(userRow row: Row, user u: Int, item i: Int, users: Factors, items: Factors,
                                  mean: Float, settings: Neighbourhood) -> Float {
        guard settings.neighbours > 0, !row.index.isEmpty else { return 0 }
        let k = items.rank
        func norm(_ j: Int) -> Float {
            var s: Float = 0
            let b = j * items.width
            for q in 0..<k { s += items.data[b + q] * items.data[b + q] }
            return s.squareRoot()
        }
        let ni = norm(i)
        guard ni > 0 else { return 0 }
        var sims: [(Float, Float)] = []
        sims.reserveCapacity(row.index.count)
        let ib = i * items.width
        for t in 0..<row.index.count {
            let j = Int(row.index[t])
            if j == i { continue }
            let jb = j * items.width
            var d: Float = 0
            for q in 0..<k { d += items.data[ib + q] * items.data[jb + q] }
            let s = d / max(1e-6, ni * norm(j))
            guard s > 0 else { continue }
            sims.append((s, row.value[t] - predict(user: u, item: j, users: users, items: items, mean: mean)))
        }
        if sims.count > settings.neighbours {
            sims.sort { $0.0 > $1.0 }
            sims.removeSubrange(settings.neighbours...)
        }
        var num: Float = 0, den: Float = 0
        for (s, r) in sims {
            let w = Float(power(Double(s), settings.power))
            num += w * r
            den += w
        }
        return den > 0 ? Float(settings.weight) * num / (den + Float(settings.shrink)) : 0
    }
}

/// x^y for x > 0 without Foundation (exp(y·ln x)).
@inline(__always) @usableFromInline func power(_ x: Double, _ y: Double) -> Double {
    if y == 1 { return x }
    if y == 2 { return x * x }
    if x <= 0 { return 0 }
    return PortableMath.exp(y * PortableMath.log(x))
}

/// Dense symmetric positive-definite solves.
public enum Cholesky {
    /// Solves A x = b in place (A is n × n row-major, overwritten by its factor; b becomes x).
    /// Returns false when A is not positive definite.
    public static func solve(_ a: inout [Double], _ b: inout [Double], n: Int) -> Bool {
        precondition(a.count >= n * n && b.count >= n)
        return a.withUnsafeMutableBufferPointer { ap in
            b.withUnsafeMutableBufferPointer { bp in solve(ap.baseAddress!, bp.baseAddress!, n: n) }
        }
    }

    /// Solves A x = b for a symmetric positive-definite A given by its upper triangle in padded row-major storage
    /// (`ld` ≥ n columns, a multiple of 4; entries at columns n..<ld must be zero). A is overwritten by U with
    /// A = UᵀU (right-looking, each rank-1 update vectorised over a row with SIMD4<Double>); b becomes x.
    /// Returns false when A is not positive definite.
    public static func solveUpper(_ a: UnsafeMutablePointer<Double>, _ b: UnsafeMutablePointer<Double>, n: Int,
                                  ld: Int) -> Bool {
        let raw = UnsafeMutableRawPointer(a)
        for j in 0..<n {
            let rj = a + j * ld
            let d = rj[j]
            guard d > 0, d.isFinite else { return false }
            let l = d.squareRoot()
            rj[j] = l
            let inv = 1 / l
            for q in (j + 1)..<max(j + 1, n) { rj[q] *= inv }
            // Rows i > j: U[i][q] −= U[j][i]·U[j][q] for q ≥ i (vectorised from i rounded down to 4; the few
            // entries left of the diagonal that this touches are never read).
            var i = j + 1
            while i < n {
                let f = rj[i]
                if f != 0 {
                    let fv = SIMD4<Double>(repeating: f)
                    var q = i & ~3
                    while q < ld {
                        let src: SIMD4<Double> = raw.loadUnaligned(fromByteOffset: (j * ld + q) * 8, as: SIMD4<Double>.self)
                        let dstOffset = (i * ld + q) * 8
                        let dst: SIMD4<Double> = raw.loadUnaligned(fromByteOffset: dstOffset, as: SIMD4<Double>.self)
                        var updated = dst
                        ALSKernels.fused(&updated, -fv, src)
                        raw.storeBytes(of: updated, toByteOffset: dstOffset, as: SIMD4<Double>.self)
                        q += 4
                    }
                }
                i += 1
            }
        }
        // Uᵀ y = b, by columns of U (rows of the storage).
        for p in 0..<n {
            let rp = a + p * ld
            let y = b[p] / rp[p]
            b[p] = y
            for i in (p + 1)..<max(p + 1, n) { b[i] -= rp[i] * y }
        }
        // U x = y
        var i = n - 1
        while i >= 0 {
            let ri = a + i * ld
            var s = b[i]
            var q = i + 1
            while q < n { s -= ri[q] * b[q]; q += 1 }
            b[i] = s / ri[i]
            i -= 1
        }
        return true
    }

    /// The same on raw storage (a: n × n row-major, b: n).
    public static func solve(_ a: UnsafeMutablePointer<Double>, _ b: UnsafeMutablePointer<Double>, n: Int) -> Bool {
        // Lower factor L in the lower triangle, row by row: L[i][j] = (A[i][j] − Σ_p L[i][p]·L[j][p]) / L[j][j].
        for j in 0..<n {
            let rj = a + j * n
            var d = rj[j]
            for p in 0..<j { d -= rj[p] * rj[p] }
            guard d > 0, d.isFinite else { return false }
            let l = d.squareRoot()
            rj[j] = l
            let inv = 1 / l
            var i = j + 1
            while i < n {
                let ri = a + i * n
                var s = ri[j]
                for p in 0..<j { s -= ri[p] * rj[p] }
                ri[j] = s * inv
                i += 1
            }
        }
        // L y = b
        for i in 0..<n {
            let ri = a + i * n
            var s = b[i]
            for p in 0..<i { s -= ri[p] * b[p] }
            b[i] = s / ri[i]
        }
        // Lᵀ x = y
        var i = n - 1
        while i >= 0 {
            var s = b[i]
            var p = i + 1
            while p < n { s -= a[p * n + i] * b[p]; p += 1 }
            b[i] = s / a[i * n + i]
            i -= 1
        }
        return true
    }
}
