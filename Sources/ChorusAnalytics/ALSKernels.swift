/// The inner kernels of an ALS row solve (pure Swift, no BLAS; see docs/benchmarks.md for the comparison with
/// OpenBLAS that decided this).
///
/// A row solve gathers the other side's vectors of the row's observations into a contiguous, zero-padded
/// `n × ld` matrix Z (ld a multiple of 16), accumulates the weighted Gram matrix ZᵀWZ with a register-tiled SIMD
/// loop (4 rows × 16 columns of the result per tile, every observation streamed through the tile), and solves
/// the m × m normal equations with a Cholesky factorisation in Double. Everything is in a fixed order, so a row's
/// result depends only on its inputs: the same on any worker and with any number of threads.
public enum ALSKernels {
    /// acc += a·b lane by lane: one fused multiply-add per lane when the build targets a CPU with FMA
    /// (Package.swift defines CHORUS_FMA with its AVX2 + FMA flags), else a multiply and an add. Swift never
    /// fuses `acc += a * b` by itself, and `addProduct` on a CPU without FMA becomes a call to the C library's
    /// `fmaf` per lane (about 20× slower than the multiply and add).
    /// Concrete overloads, not one generic function, so that no caller ever runs it unspecialised.
    @inlinable @inline(__always)
    public static func fused(_ acc: inout SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
        #if CHORUS_FMA
        acc.addProduct(a, b)
        #else
        acc += a * b
        #endif
    }

    /// The same for SIMD4<Double> (the Cholesky update).
    @inlinable @inline(__always)
    public static func fused(_ acc: inout SIMD4<Double>, _ a: SIMD4<Double>, _ b: SIMD4<Double>) {
        #if CHORUS_FMA
        acc.addProduct(a, b)
        #else
        acc += a * b
        #endif
    }

    /// The padded leading dimension for m unknowns.
    @inlinable public static func leading(_ m: Int) -> Int { (m + 15) & ~15 }

    /// a[p·ld + q] += Σ_t w_t · z[t·ld + p] · z[t·ld + q] for every p ≤ q < m, in tiles (some entries below the
    /// diagonal are filled too; callers read only p ≤ q). `w` nil means every weight is 1. `a` has ld × ld
    /// elements and z has n × ld elements with zero padding in columns m..<ld. With weights, the rows are scaled
    /// 64 at a time into a temporary block (w_t·z_t) that feeds the unweighted kernel (`gram(left:right:)`).
    @inlinable
    public static func weightedGram(z: UnsafePointer<Float>, w: UnsafePointer<Float>?, n: Int, m: Int, ld: Int,
                                    into a: UnsafeMutablePointer<Float>) {
        guard let w else { return gram(left: z, right: z, n: n, m: m, ld: ld, into: a) }
        let block = 64
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block * ld) { buffer in
            let scaled = buffer.baseAddress!
            var start = 0
            while start < n {
                let rows = min(block, n - start)
                let src = UnsafeRawPointer(z + start * ld), dst = UnsafeMutableRawPointer(scaled)
                for t in 0..<rows {
                    let s = SIMD8<Float>(repeating: w[start + t])
                    var j = t &* ld &* 4
                    let end = j &+ ld &* 4
                    while j < end {
                        dst.storeBytes(of: s * src.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self),
                                       toByteOffset: j, as: SIMD8<Float>.self)
                        j = j &+ 32
                    }
                }
                gram(left: scaled, right: z + start * ld, n: rows, m: m, ld: ld, into: a)
                start += rows
            }
        }
    }

    /// a[p·ld + q] += Σ_t left[t·ld + p] · right[t·ld + q] for p ≤ q < m (in tiles, as `weightedGram`): the
    /// register-tiled kernel. Each tile is 4 rows × 16 columns of `a` in 8 accumulators; per observation it loads
    /// 16 floats of `right`, broadcasts 4 of `left` and issues 8 fused multiply-adds.
    @inlinable
    public static func gram(left: UnsafePointer<Float>, right: UnsafePointer<Float>, n: Int, m: Int, ld: Int,
                            into a: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(right)
        let stride = ld &* 4
        var pb = 0
        while pb < m {
            var qc = pb & ~15
            while qc < m {
                var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
                var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
                var y = raw + qc &* 4
                var l = left + pb
                for _ in 0..<n {
                    let y0 = y.loadUnaligned(as: SIMD8<Float>.self)
                    let y1 = y.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                    let z0 = SIMD8<Float>(repeating: l[0]), z1 = SIMD8<Float>(repeating: l[1])
                    ALSKernels.fused(&c00, z0, y0); ALSKernels.fused(&c01, z0, y1)
                    ALSKernels.fused(&c10, z1, y0); ALSKernels.fused(&c11, z1, y1)
                    let z2 = SIMD8<Float>(repeating: l[2]), z3 = SIMD8<Float>(repeating: l[3])
                    ALSKernels.fused(&c20, z2, y0); ALSKernels.fused(&c21, z2, y1)
                    ALSKernels.fused(&c30, z3, y0); ALSKernels.fused(&c31, z3, y1)
                    y += stride
                    l += ld
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

    /// o = λ·v + G·v for a symmetric, zero-padded ld × ld `g` (only its first k rows are read) and v zero-padded
    /// to ld. Four 8-wide output blocks at a time, each summed over q in a register (in q order, fused
    /// multiply-adds).
    @inlinable
    public static func symmetricProduct(_ g: UnsafePointer<Float>, _ v: UnsafePointer<Float>, lambda: Float, k: Int,
                                        ld: Int, into o: UnsafeMutablePointer<Float>) {
        let rg = UnsafeRawPointer(g), rv = UnsafeRawPointer(v), ro = UnsafeMutableRawPointer(o)
        let lam = SIMD8<Float>(repeating: lambda)
        let stride = ld &* 4
        var j = 0
        while j < stride {
            if j &+ 128 <= stride {
                var a0: SIMD8<Float> = lam * rv.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self)
                var a1: SIMD8<Float> = lam * rv.loadUnaligned(fromByteOffset: j &+ 32, as: SIMD8<Float>.self)
                var a2: SIMD8<Float> = lam * rv.loadUnaligned(fromByteOffset: j &+ 64, as: SIMD8<Float>.self)
                var a3: SIMD8<Float> = lam * rv.loadUnaligned(fromByteOffset: j &+ 96, as: SIMD8<Float>.self)
                var row = j
                for q in 0..<k {
                    let s = SIMD8<Float>(repeating: v[q])
                    ALSKernels.fused(&a0, s, rg.loadUnaligned(fromByteOffset: row, as: SIMD8<Float>.self))
                    ALSKernels.fused(&a1, s, rg.loadUnaligned(fromByteOffset: row &+ 32, as: SIMD8<Float>.self))
                    ALSKernels.fused(&a2, s, rg.loadUnaligned(fromByteOffset: row &+ 64, as: SIMD8<Float>.self))
                    ALSKernels.fused(&a3, s, rg.loadUnaligned(fromByteOffset: row &+ 96, as: SIMD8<Float>.self))
                    row = row &+ stride
                }
                ro.storeBytes(of: a0, toByteOffset: j, as: SIMD8<Float>.self)
                ro.storeBytes(of: a1, toByteOffset: j &+ 32, as: SIMD8<Float>.self)
                ro.storeBytes(of: a2, toByteOffset: j &+ 64, as: SIMD8<Float>.self)
                ro.storeBytes(of: a3, toByteOffset: j &+ 96, as: SIMD8<Float>.self)
                j = j &+ 128
            } else {
                var a0: SIMD8<Float> = lam * rv.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self)
                var a1: SIMD8<Float> = lam * rv.loadUnaligned(fromByteOffset: j &+ 32, as: SIMD8<Float>.self)
                var row = j
                for q in 0..<k {
                    let s = SIMD8<Float>(repeating: v[q])
                    ALSKernels.fused(&a0, s, rg.loadUnaligned(fromByteOffset: row, as: SIMD8<Float>.self))
                    ALSKernels.fused(&a1, s, rg.loadUnaligned(fromByteOffset: row &+ 32, as: SIMD8<Float>.self))
                    row = row &+ stride
                }
                ro.storeBytes(of: a0, toByteOffset: j, as: SIMD8<Float>.self)
                ro.storeBytes(of: a1, toByteOffset: j &+ 32, as: SIMD8<Float>.self)
                j = j &+ 64
            }
        }
    }

    /// o += Σ_t e_t · z_t over the n gathered rows z_t (ld wide, zero-padded), where d_t = z_t·v and
    /// e_t = (target ? 1 + c_t : 0) + sign · c_t · d_t. With target false and sign 1 it adds Zᵀ diag(c) Z v (the
    /// data part of an implicit CG product A·v); with target true and sign −1 it adds Zᵀ((1 + c) − c ⊙ Zv), the data
    /// part of the residual b − A·v, in the same single pass over Z. Four rows at a time: their four dot products
    /// are independent (no chain through one horizontal sum), and o is loaded and stored once per four rows.
    /// Fused multiply-adds, in a fixed order.
    @inlinable
    public static func implicitRowPass(z: UnsafePointer<Float>, c: UnsafePointer<Float>, n: Int, ld: Int,
                                       v: UnsafePointer<Float>, target: Bool, sign: Float,
                                       into o: UnsafeMutablePointer<Float>) {
        let rv = UnsafeRawPointer(v), ro = UnsafeMutableRawPointer(o)
        let stride = ld &* 4
        var rz = UnsafeRawPointer(z)
        var t = 0
        while t &+ 4 <= n {
            let z0 = rz, z1 = rz + stride, z2 = z1 + stride, z3 = z2 + stride
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
            var j = 0
            while j < stride {
                let x: SIMD8<Float> = rv.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self)
                ALSKernels.fused(&s0, z0.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self), x)
                ALSKernels.fused(&s1, z1.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self), x)
                ALSKernels.fused(&s2, z2.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self), x)
                ALSKernels.fused(&s3, z3.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self), x)
                j = j &+ 32
            }
            let c0 = c[t], c1 = c[t &+ 1], c2 = c[t &+ 2], c3 = c[t &+ 3]
            var e0 = sign * c0 * s0.sum(), e1 = sign * c1 * s1.sum()
            var e2 = sign * c2 * s2.sum(), e3 = sign * c3 * s3.sum()
            if target { e0 += 1 + c0; e1 += 1 + c1; e2 += 1 + c2; e3 += 1 + c3 }
            let f0 = SIMD8<Float>(repeating: e0), f1 = SIMD8<Float>(repeating: e1)
            let f2 = SIMD8<Float>(repeating: e2), f3 = SIMD8<Float>(repeating: e3)
            j = 0
            while j < stride {
                var acc: SIMD8<Float> = ro.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self)
                ALSKernels.fused(&acc, f0, z0.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self))
                ALSKernels.fused(&acc, f1, z1.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self))
                ALSKernels.fused(&acc, f2, z2.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self))
                ALSKernels.fused(&acc, f3, z3.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self))
                ro.storeBytes(of: acc, toByteOffset: j, as: SIMD8<Float>.self)
                j = j &+ 32
            }
            t = t &+ 4
            rz = z3 + stride
        }
        while t < n {
            var s0 = SIMD8<Float>()
            var j = 0
            while j < stride {
                ALSKernels.fused(&s0, rz.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self),
                              rv.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self))
                j = j &+ 32
            }
            var e0 = sign * c[t] * s0.sum()
            if target { e0 += 1 + c[t] }
            let f0 = SIMD8<Float>(repeating: e0)
            j = 0
            while j < stride {
                var acc: SIMD8<Float> = ro.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self)
                ALSKernels.fused(&acc, f0, rz.loadUnaligned(fromByteOffset: j, as: SIMD8<Float>.self))
                ro.storeBytes(of: acc, toByteOffset: j, as: SIMD8<Float>.self)
                j = j &+ 32
            }
            t = t &+ 1
            rz += stride
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
            let width = other.width
            z.withUnsafeMutableBufferPointer { zp in
                other.data.withUnsafeBufferPointer { d in
                    row.index.withUnsafeBufferPointer { ip in
                        let src = d.baseAddress!, pad = ld - k - (one ? 1 : 0)
                        var dst = zp.baseAddress!
                        for t in 0..<n {
                            // Unchecked copies (the indices were checked against the other side when the rows
                            // were built); a scalar loop with overflow checks here cost a fifth of a CG solve.
                            dst.update(from: src + Int(ip[t]) &* width, count: k)
                            if one { dst[k] = 1 }
                            (dst + (ld - pad)).update(repeating: 0, count: pad)
                            dst += ld
                        }
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
        /// The confidence of an observed pair is `offset + alpha·value` (`ALS.Confidence.offset`).
        public mutating func implicit(row: Row, other: Factors, gram: [Double], alpha: Double, lambda: Double,
                                      offset: Double = 1) -> [Float]? {
            let n = row.index.count
            guard n > 0 else { return nil }
            let k = other.rank
            let ld = ALSKernels.leading(k)
            gather(row, other: other, k: k, ld: ld, one: false)
            reset(ld)
            if c.count < n { c = [Float](repeating: 0, count: n) }
            if w.count < n { w = [Float](repeating: 0, count: n) }
            for t in 0..<n {
                let conf = offset + alpha * Double(row.value[t])
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
                                        start: ArraySlice<Float>, steps: Int, offset: Double = 1) -> [Float]? {
            var out = [Float](repeating: 0, count: other.width)
            let ok = out.withUnsafeMutableBufferPointer { o in
                start.withUnsafeBufferPointer { s in
                    implicitCG(row: row, other: other, alpha: alpha, lambda: lambda, start: s.baseAddress!,
                               steps: steps, into: o.baseAddress!, offset: offset)
                }
            }
            return ok ? out : nil
        }

        /// The same, reading the start vector (k floats) from `start` and writing the solution (k floats) to `out`
        /// (which may be the same memory). Returns false, leaving `out` unchanged, when the row has no observations
        /// or the solve fails.
        ///
        /// The row's other-side vectors are gathered once into Z; the residual r = b − A·x (with b = Σ (1 + c_t) z_t)
        /// takes one pass over Z and each step's A·p one more, four rows at a time (`implicitRowPass`); the YᵀY part
        /// is `symmetricProduct`.
        public mutating func implicitCG(row: Row, other: Factors, alpha: Double, lambda: Double,
                                        start: UnsafePointer<Float>, steps: Int,
                                        into out: UnsafeMutablePointer<Float>, offset: Double = 1) -> Bool {
            let n = row.index.count
            guard n > 0 else { return false }
            let k = other.rank
            let ld = ALSKernels.leading(k)
            precondition(gramLd == ld, "RowSolver.prepare(gram:rank:) was not called for rank \(k)")
            gather(row, other: other, k: k, ld: ld, one: false)
            if c.count < n { c = [Float](repeating: 0, count: n) }
            if b.count < 4 * ld { b = [Float](repeating: 0, count: 4 * ld) }
            let lam = Float(lambda)
            return z.withUnsafeBufferPointer { zp in
                gramF.withUnsafeBufferPointer { gp in
                    b.withUnsafeMutableBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            let Z = zp.baseAddress!, G = gp.baseAddress!, C = cp.baseAddress!
                            // x, r, p, Ap in one scratch block of 4·ld.
                            let x = bp.baseAddress!, r = x + ld, pv = r + ld, ap = pv + ld
                            x.update(repeating: 0, count: 4 * ld)
                            for q in 0..<k { x[q] = start[q] }
                            row.value.withUnsafeBufferPointer { vp in
                                let shift = offset - 1
                                for t in 0..<n { C[t] = Float(shift + alpha * Double(vp[t])) }  // c − 1
                            }
                            // r = −(YᵀY + λI) x + Σ_t ((1 + c_t) − c_t (z_t·x)) z_t.
                            ALSKernels.symmetricProduct(G, x, lambda: lam, k: k, ld: ld, into: r)
                            for q in 0..<ld { r[q] = -r[q] }
                            ALSKernels.implicitRowPass(z: Z, c: C, n: n, ld: ld, v: x, target: true, sign: -1, into: r)
                            for q in 0..<ld { pv[q] = r[q] }
                            var rs = ALSKernels.dot(r, r, ld)
                            for _ in 0..<steps {
                                if rs < 1e-20 { break }
                                // Ap = (YᵀY + λI) p + Σ_t c_t (z_t·p) z_t.
                                ALSKernels.symmetricProduct(G, pv, lambda: lam, k: k, ld: ld, into: ap)
                                ALSKernels.implicitRowPass(z: Z, c: C, n: n, ld: ld, v: pv, target: false, sign: 1,
                                                           into: ap)
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
                            for q in 0..<k { guard x[q].isFinite else { return false } }
                            out.update(from: x, count: k)
                            return true
                        }
                    }
                }
            }
        }
    }
}
