/// The inner kernels of an ALS row solve (pure Swift, no BLAS; see docs/benchmarks.md for the comparison with
/// OpenBLAS that decided this).
///
/// A row solve gathers the other side's vectors of the row's observations into a contiguous, zero-padded
/// `n × ld` matrix Z (ld a multiple of 16), accumulates the weighted Gram matrix ZᵀWZ with a register-tiled SIMD
/// loop (4 rows × 16 columns of the result per tile, every observation streamed through the tile), and solves
/// the m × m normal equations with a Cholesky factorisation in Double. Everything is in a fixed order, so a row's
/// result depends only on its inputs: the same on any worker and with any number of threads.
public enum ALSKernels {
    /// The padded leading dimension for m unknowns.
    @inlinable public static func leading(_ m: Int) -> Int { (m + 15) & ~15 }

    /// a[p·ld + q] += Σ_t w_t · z[t·ld + p] · z[t·ld + q] for every p ≤ q < m, in tiles (some entries below the
    /// diagonal are filled too; callers read only p ≤ q). `w` nil means every weight is 1. `a` has ld × ld
    /// elements and z has n × ld elements with zero padding in columns m..<ld.
    @inlinable
    public static func weightedGram(z: UnsafePointer<Float>, w: UnsafePointer<Float>?, n: Int, m: Int, ld: Int,
                                    into a: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(z)
        var pb = 0
        while pb < m {
            var qc = pb & ~15
            while qc < m {
                var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
                var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
                var row = 0
                for t in 0..<n {
                    let base = row + qc
                    let y0 = raw.loadUnaligned(fromByteOffset: base * 4, as: SIMD8<Float>.self)
                    let y1 = raw.loadUnaligned(fromByteOffset: (base + 8) * 4, as: SIMD8<Float>.self)
                    let s = w?[t] ?? 1
                    let z0 = z[row + pb] * s, z1 = z[row + pb + 1] * s
                    let z2 = z[row + pb + 2] * s, z3 = z[row + pb + 3] * s
                    c00 += z0 * y0; c01 += z0 * y1
                    c10 += z1 * y0; c11 += z1 * y1
                    c20 += z2 * y0; c21 += z2 * y1
                    c30 += z3 * y0; c31 += z3 * y1
                    row += ld
                }
                let out = UnsafeMutableRawPointer(a)
                func add(_ r: Int, _ v0: SIMD8<Float>, _ v1: SIMD8<Float>) {
                    ALSKernels.addInto(out, byteOffset: (r * ld + qc) * 4, v0)
                    ALSKernels.addInto(out, byteOffset: (r * ld + qc + 8) * 4, v1)
                }
                add(pb, c00, c01); add(pb + 1, c10, c11); add(pb + 2, c20, c21); add(pb + 3, c30, c31)
                qc += 16
            }
            pb += 4
        }
    }

    /// Σ a[i]·b[i] over n (a multiple of 16) elements, in a fixed order.
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var i = 0
        while i < n {
            let a0: SIMD8<Float> = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let b0: SIMD8<Float> = rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let a1: SIMD8<Float> = ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            let b1: SIMD8<Float> = rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            s0 += a0 * b0
            s1 += a1 * b1
            i += 16
        }
        return (s0 + s1).sum()
    }

    /// y[i] += s·x[i] over n (a multiple of 16) elements.
    @inlinable @inline(__always)
    public static func axpy(_ s: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        let sv = SIMD8<Float>(repeating: s)
        var i = 0
        while i < n {
            let x0: SIMD8<Float> = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let y0: SIMD8<Float> = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            ry.storeBytes(of: y0 + sv * x0, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
    }

    /// *(p + byteOffset) += v, unaligned.
    @inlinable @inline(__always)
    public static func addInto(_ p: UnsafeMutableRawPointer, byteOffset o: Int, _ v: SIMD8<Float>) {
        let old: SIMD8<Float> = p.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
        let sum: SIMD8<Float> = old + v
        p.storeBytes(of: sum, toByteOffset: o, as: SIMD8<Float>.self)
    }

    /// b[q] += Σ_t c_t · z[t·ld + q] over the padded width.
    @inlinable
    public static func weightedSum(z: UnsafePointer<Float>, c: UnsafePointer<Float>, n: Int, ld: Int,
                                   into b: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(z), out = UnsafeMutableRawPointer(b)
        var qc = 0
        while qc < ld {
            var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
            var row = 0
            for t in 0..<n {
                let s = c[t]
                let v0: SIMD8<Float> = raw.loadUnaligned(fromByteOffset: (row + qc) * 4, as: SIMD8<Float>.self)
                let v1: SIMD8<Float> = raw.loadUnaligned(fromByteOffset: (row + qc + 8) * 4, as: SIMD8<Float>.self)
                acc0 += s * v0
                acc1 += s * v1
                row += ld
            }
            addInto(out, byteOffset: qc * 4, acc0)
            addInto(out, byteOffset: (qc + 8) * 4, acc1)
            qc += 16
        }
    }
}

extension ALS {
    /// Reusable scratch space for row solves: one per thread (it is a value type; each task makes its own).
    public struct RowSolver: Sendable {
        var z: [Float] = []
        var w: [Float] = []
        var c: [Float] = []
        var a: [Float] = []
        var b: [Float] = []
        var ad: [Double] = []
        var bd: [Double] = []
        public init() {}

        /// Gathers the row's other-side vectors (the first `k` columns of each, then a constant 1 when `one`, for
        /// the bias unknown) into z, zero-padded to ld columns.
        mutating func gather(_ row: Row, other: Factors, k: Int, ld: Int, one: Bool) {
            let n = row.index.count
            if z.count < n * ld { z = [Float](repeating: 0, count: n * ld) }
            z.withUnsafeMutableBufferPointer { zp in
                other.data.withUnsafeBufferPointer { d in
                    for t in 0..<n {
                        let src = Int(row.index[t]) * other.width
                        let dst = t * ld
                        for q in 0..<k { zp[dst + q] = d[src + q] }
                        var q = k
                        if one { zp[dst + k] = 1; q += 1 }
                        while q < ld { zp[dst + q] = 0; q += 1 }
                    }
                }
            }
        }

        mutating func reset(_ ld: Int) {
            if a.count < ld * ld { a = [Float](repeating: 0, count: ld * ld) } else {
                a.withUnsafeMutableBufferPointer { $0.baseAddress!.update(repeating: 0, count: ld * ld) }
            }
            if b.count < ld { b = [Float](repeating: 0, count: ld) } else {
                b.withUnsafeMutableBufferPointer { $0.baseAddress!.update(repeating: 0, count: ld) }
            }
        }

        /// Explicit-mode row solve (see `ALS.solveExplicit`).
        public mutating func explicit(row: Row, other: Factors, mean: Float, lambda: Double, biases: Bool,
                                      lambdaExponent: Double = 1, biasLambda: Double = 1) -> [Float]? {
            let n = row.index.count
            guard n > 0 else { return nil }
            let k = other.rank
            let m = biases ? k + 1 : k
            let ld = ALSKernels.leading(m)
            gather(row, other: other, k: k, ld: ld, one: biases)
            reset(ld)
            if c.count < n { c = [Float](repeating: 0, count: n) }
            for t in 0..<n {
                let j = Int(row.index[t])
                c[t] = row.value[t] - mean - (biases ? other.data[j * other.width + other.width - 1] : 0)
            }
            z.withUnsafeBufferPointer { zp in
                a.withUnsafeMutableBufferPointer { ap in
                    ALSKernels.weightedGram(z: zp.baseAddress!, w: nil, n: n, m: m, ld: ld, into: ap.baseAddress!)
                }
                c.withUnsafeBufferPointer { cp in
                    b.withUnsafeMutableBufferPointer { bp in
                        ALSKernels.weightedSum(z: zp.baseAddress!, c: cp.baseAddress!, n: n, ld: ld, into: bp.baseAddress!)
                    }
                }
            }
            let reg = lambda * power(Double(n), lambdaExponent)  // weighted-λ
            guard solve(m: m, ld: ld, gram: nil, diagonal: reg, lastDiagonal: biases ? biasLambda : nil) else { return nil }
            var out = [Float](repeating: 0, count: other.width)
            for q in 0..<k { out[q] = Float(bd[q]) }
            if biases { out[other.width - 1] = Float(bd[k]) }
            return out
        }

        /// Implicit-mode row solve (see `ALS.solveImplicit`).
        public mutating func implicit(row: Row, other: Factors, gram: [Double], alpha: Double, lambda: Double) -> [Float]? {
            let n = row.index.count
            guard n > 0 else { return nil }
            let k = other.rank
            let ld = ALSKernels.leading(k)
            gather(row, other: other, k: k, ld: ld, one: false)
            reset(ld)
            if c.count < n { c = [Float](repeating: 0, count: n) }
            if w.count < n { w = [Float](repeating: 0, count: n) }
            for t in 0..<n {
                let conf = 1 + alpha * Double(row.value[t])
                c[t] = Float(conf)
                w[t] = Float(conf - 1)
            }
            z.withUnsafeBufferPointer { zp in
                a.withUnsafeMutableBufferPointer { ap in
                    w.withUnsafeBufferPointer { wp in
                        ALSKernels.weightedGram(z: zp.baseAddress!, w: wp.baseAddress!, n: n, m: k, ld: ld, into: ap.baseAddress!)
                    }
                }
                c.withUnsafeBufferPointer { cp in
                    b.withUnsafeMutableBufferPointer { bp in
                        ALSKernels.weightedSum(z: zp.baseAddress!, c: cp.baseAddress!, n: n, ld: ld, into: bp.baseAddress!)
                    }
                }
            }
            guard solve(m: k, ld: ld, gram: gram, diagonal: lambda, lastDiagonal: nil) else { return nil }
            var out = [Float](repeating: 0, count: other.width)
            for q in 0..<k { out[q] = Float(bd[q]) }
            return out
        }

        /// Builds the m × m Double system from the upper triangle of `a` (plus `gram`, plus the diagonal terms)
        /// and solves it with Cholesky; the solution is in bd.
        mutating func solve(m: Int, ld: Int, gram: [Double]?, diagonal: Double, lastDiagonal: Double?) -> Bool {
            if ad.count != ld * ld { ad = [Double](repeating: 0, count: ld * ld) }
            if bd.count != ld { bd = [Double](repeating: 0, count: ld) }
            let empty: [Double] = []
            return ad.withUnsafeMutableBufferPointer { adp in
                bd.withUnsafeMutableBufferPointer { bdp in
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            (gram ?? empty).withUnsafeBufferPointer { gp in
                                let A = adp.baseAddress!, B = bdp.baseAddress!, F = ap.baseAddress!
                                for p in 0..<m {
                                    let row = p * ld
                                    if gram != nil {
                                        let g = gp.baseAddress! + p * m
                                        for q in p..<m { A[row + q] = Double(F[row + q]) + g[q] }
                                    } else {
                                        for q in p..<m { A[row + q] = Double(F[row + q]) }
                                    }
                                    for q in m..<ld { A[row + q] = 0 }
                                    A[row + p] += diagonal
                                    B[p] = Double(bp[p])
                                }
                                if let last = lastDiagonal { A[(m - 1) * ld + (m - 1)] += last - diagonal }
                                return Cholesky.solveUpper(A, B, n: m, ld: ld)
                            }
                        }
                    }
                }
            }
        }

        /// The Float, padded (ld × ld) copy of YᵀY used by `implicitCG`; set once per half-iteration.
        var gramF: [Float] = []
        var gramLd = 0

        /// Prepares `implicitCG` for the fixed side whose YᵀY is `gram` (k × k).
        public mutating func prepare(gram: [Double], rank k: Int) {
            let ld = ALSKernels.leading(k)
            gramLd = ld
            gramF = [Float](repeating: 0, count: ld * ld)
            for p in 0..<k { for q in 0..<k { gramF[p * ld + q] = Float(gram[p * k + q]) } }
        }

        /// Implicit-mode row solve by `steps` conjugate-gradient steps from `start` (the row's previous vector),
        /// as in Takács, Pilászy and Tikk 2011 (and the `implicit` library's default): each step costs O(k² + n·k)
        /// instead of the O(n·k² + k³) of the exact solve. Call `prepare(gram:rank:)` first.
        public mutating func implicitCG(row: Row, other: Factors, alpha: Double, lambda: Double,
                                        start: ArraySlice<Float>, steps: Int) -> [Float]? {
            let n = row.index.count
            guard n > 0 else { return nil }
            let k = other.rank
            let ld = ALSKernels.leading(k)
            precondition(gramLd == ld, "RowSolver.prepare(gram:rank:) was not called for rank \(k)")
            gather(row, other: other, k: k, ld: ld, one: false)
            if c.count < n { c = [Float](repeating: 0, count: n) }
            if b.count < 4 * ld { b = [Float](repeating: 0, count: 4 * ld) }
            let lam = Float(lambda)
            var out = [Float](repeating: 0, count: other.width)
            let ok: Bool = z.withUnsafeBufferPointer { zp in
                gramF.withUnsafeBufferPointer { gp in
                    b.withUnsafeMutableBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            let Z = zp.baseAddress!, G = gp.baseAddress!, C = cp.baseAddress!
                            // x, r, p, Ap in one scratch block of 4·ld.
                            let x = bp.baseAddress!, r = x + ld, pv = r + ld, ap = pv + ld
                            x.update(repeating: 0, count: 4 * ld)
                            for q in 0..<k { x[q] = start[start.startIndex + q] }
                            for t in 0..<n { C[t] = Float(alpha * Double(row.value[t])) }  // c − 1
                            // A·v = YᵀY v + Σ_t (c_t − 1)(z_t·v) z_t + λ v, written to `into`.
                            func apply(_ v: UnsafeMutablePointer<Float>, into o: UnsafeMutablePointer<Float>) {
                                for q in 0..<ld { o[q] = lam * v[q] }
                                for q in 0..<k {
                                    let s = v[q]
                                    if s != 0 { ALSKernels.axpy(s, G + q * ld, o, ld) }
                                }
                                for t in 0..<n {
                                    let zt = Z + t * ld
                                    let d = ALSKernels.dot(zt, v, ld)
                                    ALSKernels.axpy(C[t] * d, zt, o, ld)
                                }
                            }
                            // r = b − A x with b = Σ c_t z_t.
                            apply(x, into: ap)
                            for q in 0..<ld { r[q] = -ap[q] }
                            for t in 0..<n { ALSKernels.axpy(C[t] + 1, Z + t * ld, r, ld) }
                            for q in 0..<ld { pv[q] = r[q] }
                            var rs = ALSKernels.dot(r, r, ld)
                            for _ in 0..<steps {
                                if rs < 1e-20 { break }
                                apply(pv, into: ap)
                                let pAp = ALSKernels.dot(pv, ap, ld)
                                guard pAp > 0, pAp.isFinite else { return false }
                                let step = rs / pAp
                                ALSKernels.axpy(step, pv, x, ld)
                                ALSKernels.axpy(-step, ap, r, ld)
                                let next = ALSKernels.dot(r, r, ld)
                                let beta = next / rs
                                for q in 0..<ld { pv[q] = r[q] + beta * pv[q] }
                                rs = next
                            }
                            for q in 0..<k { out[q] = x[q] }
                            return out.allSatisfy(\.isFinite)
                        }
                    }
                }
            }
            return ok ? out : nil
        }
    }
}
