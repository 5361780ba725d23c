import ChorusAnalytics
import ChorusModel
import Testing

/// The SIMD row-solve kernels against a plain scalar reference (normal equations summed in Double, one
/// observation at a time), at ranks that exercise every tile shape: below, at and above multiples of 4 and 16.
@Suite struct ALSKernelTests {
    static func factors(count: Int, rank: Int, width: Int, seed: UInt64) -> ALS.Factors {
        var rng = SplitMix64(seed: seed)
        var f = ALS.Factors(rank: rank, width: width, count: count)
        for i in f.data.indices { f.data[i] = Float(rng.gaussian() * 0.5) }
        return f
    }

    static func row(n: Int, of count: Int, seed: UInt64) -> ALS.Row {
        var rng = SplitMix64(seed: seed)
        var idx = Set<Int32>()
        while idx.count < n { idx.insert(Int32(rng.next() % UInt64(count))) }
        let index = idx.sorted()
        return ALS.Row(index: index, value: index.map { _ in Float(1 + rng.next() % 5) })
    }

    /// The scalar reference: A = Σ w z zᵀ + diag, b = Σ c z, in Double, then Cholesky.
    static func reference(row: ALS.Row, other: ALS.Factors, unknowns m: Int, one: Bool,
                          weight: (Int) -> Double, target: (Int) -> Double, gram: [Double]?,
                          diagonal: Double, lastDiagonal: Double?) -> [Double] {
        let k = other.rank
        var a = [Double](repeating: 0, count: m * m), b = [Double](repeating: 0, count: m)
        for t in row.index.indices {
            let j = Int(row.index[t])
            var z = (0..<k).map { Double(other.data[j * other.width + $0]) }
            if one { z.append(1) }
            for p in 0..<m {
                b[p] += target(t) * z[p]
                for q in 0..<m { a[p * m + q] += weight(t) * z[p] * z[q] }
            }
        }
        if let g = gram { for i in a.indices { a[i] += g[i] } }
        for p in 0..<m { a[p * m + p] += diagonal }
        if let l = lastDiagonal { a[(m - 1) * m + m - 1] += l - diagonal }
        #expect(Cholesky.solve(&a, &b, n: m))
        return b
    }

    @Test(arguments: [1, 3, 4, 10, 15, 16, 17, 33, 64])
    func explicitSolveMatchesTheScalarReference(rank: Int) {
        let other = Self.factors(count: 200, rank: rank, width: rank + 1, seed: UInt64(rank))
        var solver = ALS.RowSolver()
        for n in [1, 5, 37, 150] {
            let row = Self.row(n: n, of: 200, seed: UInt64(n * 31 + rank))
            let lambda = 0.05, mean: Float = 3.5
            let got = solver.explicit(row: row, other: other, mean: mean, lambda: lambda, biases: true,
                                      lambdaExponent: 0.75, biasLambda: 2)!
            let want = Self.reference(row: row, other: other, unknowns: rank + 1, one: true, weight: { _ in 1 },
                                      target: { t in
                                          Double(row.value[t]) - Double(mean)
                                              - Double(other.data[Int(row.index[t]) * other.width + rank])
                                      }, gram: nil,
                                      diagonal: lambda * pow(Double(n), 0.75), lastDiagonal: 2)
            for q in 0..<(rank + 1) {
                #expect(abs(Double(got[q]) - want[q]) <= 2e-4 * max(1, abs(want[q])),
                        "rank \(rank) n \(n) q \(q): \(got[q]) vs \(want[q])")
            }
        }
    }

    @Test(arguments: [2, 8, 16, 20, 48])
    func implicitSolveMatchesTheScalarReference(rank: Int) {
        let other = Self.factors(count: 300, rank: rank, width: rank, seed: UInt64(100 + rank))
        let gram = ALS.gram(other)
        // The Gram matrix itself against a Double sum.
        for p in 0..<rank {
            for q in 0..<rank {
                let s = (0..<300).reduce(0.0) {
                    $0 + Double(other.data[$1 * rank + p]) * Double(other.data[$1 * rank + q])
                }
                #expect(abs(gram[p * rank + q] - s) <= 1e-4 * max(1, abs(s)))
            }
        }
        var solver = ALS.RowSolver()
        let alpha = 2.0, lambda = 0.1
        for n in [1, 9, 120] {
            let row = Self.row(n: n, of: 300, seed: UInt64(n + rank))
            let got = solver.implicit(row: row, other: other, gram: gram, alpha: alpha, lambda: lambda)!
            let want = Self.reference(row: row, other: other, unknowns: rank, one: false,
                                      weight: { alpha * Double(row.value[$0]) },
                                      target: { 1 + alpha * Double(row.value[$0]) }, gram: gram,
                                      diagonal: lambda, lastDiagonal: nil)
            for q in 0..<rank {
                #expect(abs(Double(got[q]) - want[q]) <= 2e-4 * max(1, abs(want[q])),
                        "rank \(rank) n \(n) q \(q): \(got[q]) vs \(want[q])")
            }
        }
    }

    @Test(arguments: [4, 16, 40])
    func conjugateGradientConvergesToTheExactSolve(rank: Int) {
        let other = Self.factors(count: 300, rank: rank, width: rank, seed: UInt64(7 + rank))
        let gram = ALS.gram(other)
        var solver = ALS.RowSolver()
        solver.prepare(gram: gram, rank: rank)
        let row = Self.row(n: 60, of: 300, seed: UInt64(rank))
        let exact = solver.implicit(row: row, other: other, gram: gram, alpha: 2, lambda: 0.5)!
        let zero = [Float](repeating: 0, count: rank)
        // Enough steps: the CG answer is the exact one (to Float round-off).
        let many = solver.implicitCG(row: row, other: other, alpha: 2, lambda: 0.5, start: zero[...], steps: 4 * rank)!
        let norm = exact.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        let err = zip(many, exact).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        #expect(err <= 1e-3 * max(1, norm), "rank \(rank): ‖cg − exact‖ = \(err), ‖exact‖ = \(norm)")
        // A few steps from a nearby start already get close; each step does not move away.
        let near = exact.map { $0 * 0.9 }
        let three = solver.implicitCG(row: row, other: other, alpha: 2, lambda: 0.5, start: near[...], steps: 3)!
        let err3 = zip(three, exact).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let err0 = zip(near, exact).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        #expect(err3 < err0, "3 steps: \(err3) from \(err0)")
    }

    /// confidence=linear (the `implicit` library's c = α·w, offset 0): the exact solve against the scalar
    /// reference with weight c − 1 = α·w − 1 (negative for α·w < 1) and target c, and CG converging to it.
    @Test(arguments: [4, 16, 33])
    func linearConfidenceSolvesTheImplicitLibrarysObjective(rank: Int) {
        let other = Self.factors(count: 300, rank: rank, width: rank, seed: UInt64(31 + rank))
        let gram = ALS.gram(other)
        var solver = ALS.RowSolver()
        solver.prepare(gram: gram, rank: rank)
        let alpha = 0.7, lambda = 0.3
        for n in [1, 9, 120] {
            let row = Self.row(n: n, of: 300, seed: UInt64(3 * n + rank))
            let got = solver.implicit(row: row, other: other, gram: gram, alpha: alpha, lambda: lambda, offset: 0)!
            let want = Self.reference(row: row, other: other, unknowns: rank, one: false,
                                      weight: { alpha * Double(row.value[$0]) - 1 },
                                      target: { alpha * Double(row.value[$0]) }, gram: gram,
                                      diagonal: lambda, lastDiagonal: nil)
            for q in 0..<rank {
                #expect(abs(Double(got[q]) - want[q]) <= 2e-4 * max(1, abs(want[q])),
                        "rank \(rank) n \(n) q \(q): \(got[q]) vs \(want[q])")
            }
            // The default offset solves a different system.
            let onePlus = solver.implicit(row: row, other: other, gram: gram, alpha: alpha, lambda: lambda)!
            #expect(zip(onePlus, got).contains { abs($0 - $1) > 1e-3 }, "rank \(rank) n \(n)")
            let zero = [Float](repeating: 0, count: rank)
            let cg = solver.implicitCG(row: row, other: other, alpha: alpha, lambda: lambda, start: zero[...],
                                       steps: 4 * rank, offset: 0)!
            let norm = got.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            let err = zip(cg, got).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            #expect(err <= 1e-3 * max(1, norm), "rank \(rank) n \(n): ‖cg − exact‖ = \(err)")
        }
    }

    /// The CG kernels against scalar Double references: o = λv + Gv, and o += Σ_t e_t z_t with
    /// e_t = (target ? 1 + c_t : 0) + sign·c_t·(z_t·v), for row counts around the 4-row blocks and every padded width.
    @Test(arguments: [1, 5, 16, 24, 33, 64, 100, 128])
    func conjugateGradientKernelsMatchTheScalarReference(rank: Int) {
        let ld = ALSKernels.leading(rank)
        var rng = SplitMix64(seed: UInt64(500 + rank))
        // A symmetric G (zero-padded) and a v (zero-padded).
        var g = [Float](repeating: 0, count: ld * ld)
        for p in 0..<rank { for q in p..<rank { let x = Float(rng.gaussian()); g[p * ld + q] = x; g[q * ld + p] = x } }
        var v = [Float](repeating: 0, count: ld)
        for q in 0..<rank { v[q] = Float(rng.gaussian()) }
        var o = [Float](repeating: .nan, count: ld)
        ALSKernels.symmetricProduct(g, v, lambda: 0.3, k: rank, ld: ld, into: &o)
        for p in 0..<ld {
            var want = 0.3 * Double(v[p])
            for q in 0..<rank { want += Double(g[q * ld + p]) * Double(v[q]) }
            #expect(abs(Double(o[p]) - want) <= 1e-4 * max(1, abs(want)), "rank \(rank) G·v[\(p)]: \(o[p]) vs \(want)")
        }
        for n in [0, 1, 3, 4, 5, 8, 11, 97] {
            var z = [Float](repeating: 0, count: max(1, n) * ld)
            for t in 0..<n { for q in 0..<rank { z[t * ld + q] = Float(rng.gaussian()) } }
            let c = (0..<max(1, n)).map { _ in Float(rng.unit() * 4) }
            for (target, sign) in [(false, Float(1)), (true, Float(-1))] {
                let start = (0..<ld).map { q in q < rank ? Float(rng.gaussian()) : 0 }
                var out = start
                ALSKernels.implicitRowPass(z: z, c: c, n: n, ld: ld, v: v, target: target, sign: sign, into: &out)
                for q in 0..<ld {
                    var want = Double(start[q])
                    for t in 0..<n {
                        var d = 0.0
                        for p in 0..<rank { d += Double(z[t * ld + p]) * Double(v[p]) }
                        let e = (target ? 1 + Double(c[t]) : 0) + Double(sign) * Double(c[t]) * d
                        want += e * Double(z[t * ld + q])
                    }
                    #expect(abs(Double(out[q]) - want) <= 1e-4 * max(1, abs(want)),
                            "rank \(rank) n \(n) target \(target) [\(q)]: \(out[q]) vs \(want)")
                }
            }
        }
    }

    /// The in-place CG (start and result in one buffer, as the job calls it) gives exactly the array version.
    @Test func conjugateGradientInPlaceIsTheArrayVersion() {
        let rank = 24
        let other = Self.factors(count: 200, rank: rank, width: rank, seed: 9)
        var solver = ALS.RowSolver()
        solver.prepare(gram: ALS.gram(other), rank: rank)
        let row = Self.row(n: 30, of: 200, seed: 10)
        let start = (0..<rank).map { Float($0) * 0.01 }
        let want = solver.implicitCG(row: row, other: other, alpha: 1, lambda: 0.1, start: start[...], steps: 3)!
        var buffer = start
        let ok = buffer.withUnsafeMutableBufferPointer { b in
            solver.implicitCG(row: row, other: other, alpha: 1, lambda: 0.1, start: b.baseAddress!, steps: 3,
                              into: b.baseAddress!)
        }
        #expect(ok && buffer == want)
        let empty = ALS.Row(index: [], value: [])
        #expect(!buffer.withUnsafeMutableBufferPointer { b in
            solver.implicitCG(row: empty, other: other, alpha: 1, lambda: 0.1, start: b.baseAddress!, steps: 3,
                              into: b.baseAddress!)
        })
    }

    /// implicit_lambda_exponent: a half-iteration regularises each row with λ·n^e (n its observations), exactly
    /// the row solve called with that λ; e = 0 is the plain λ.
    @Test func implicitLambdaExponentScalesEachRowsRegularisation() {
        let rank = 8
        let other = Self.factors(count: 100, rank: rank, width: rank, seed: 77)
        let rows = [Self.row(n: 3, of: 100, seed: 1), Self.row(n: 40, of: 100, seed: 2)]
        var config = ALS.Config()
        config.mode = .implicit; config.rank = rank; config.lambda = 0.2; config.alpha = 1
        for (e, steps) in [(0.0, 0), (1.0, 0), (0.75, 0), (1.0, 3)] {
            config.implicitLambdaExponent = e
            config.cgSteps = steps
            var solving = Self.factors(count: rows.count, rank: rank, width: rank, seed: 78)
            let start = solving
            ALS.halfIteration(rows: rows, solving: &solving, other: other, mean: 0, config: config)
            var solver = ALS.RowSolver()
            let gram = ALS.gram(other)
            solver.prepare(gram: gram, rank: rank)
            for (i, row) in rows.enumerated() {
                let n = Double(row.index.count)
                let reg = e == 0 ? 0.2 : 0.2 * (e == 1 ? n : pow(n, e))
                let used = ALS.implicitLambda(config, observations: row.index.count)
                #expect(abs(used - reg) <= 1e-12 * reg)
                let want = steps == 0
                    ? solver.implicit(row: row, other: other, gram: gram, alpha: 1, lambda: used)!
                    : solver.implicitCG(row: row, other: other, alpha: 1, lambda: used,
                                        start: start.data[(i * rank)..<((i + 1) * rank)], steps: steps)!
                #expect(Array(solving.data[(i * rank)..<((i + 1) * rank)]) == want, "e \(e) steps \(steps) row \(i)")
            }
        }
    }

    /// The left-looking padded Cholesky (solveUpper) against the plain one (Cholesky.solve on the full matrix),
    /// at sizes below, at and above the 4- and 16-column blocks, with garbage left of the diagonal (never read), and
    /// its refusal of a matrix that is not positive definite.
    @Test(arguments: [1, 3, 4, 5, 15, 16, 17, 33, 64, 100])
    func paddedCholeskyMatchesThePlainOne(n: Int) {
        var rng = SplitMix64(seed: UInt64(900 + n))
        let ld = ALSKernels.leading(n)
        // A = MᵀM + n·I, symmetric positive definite.
        let m = (0..<(n * n)).map { _ in rng.gaussian() }
        var full = [Double](repeating: 0, count: n * n)
        for p in 0..<n { for q in 0..<n {
            var s = p == q ? Double(n) : 0
            for t in 0..<n { s += m[t * n + p] * m[t * n + q] }
            full[p * n + q] = s
        } }
        let rhs = (0..<n).map { _ in rng.gaussian() }
        var padded = [Double](repeating: 0, count: ld * ld)
        for p in 0..<n {
            for q in 0..<p { padded[p * ld + q] = 1e30 * rng.gaussian() }  // below the diagonal: never read
            for q in p..<n { padded[p * ld + q] = full[p * n + q] }
        }
        var x = rhs + [Double](repeating: 0, count: ld - n)
        #expect(padded.withUnsafeMutableBufferPointer { a in
            x.withUnsafeMutableBufferPointer { b in Cholesky.solveUpper(a.baseAddress!, b.baseAddress!, n: n, ld: ld) }
        })
        var want = rhs
        #expect(Cholesky.solve(&full, &want, n: n))
        for q in 0..<n {
            #expect(abs(x[q] - want[q]) <= 1e-9 * max(1, abs(want[q])), "n \(n) x[\(q)]: \(x[q]) vs \(want[q])")
        }
        // Not positive definite: −I.
        var bad = [Double](repeating: 0, count: ld * ld)
        for p in 0..<n { bad[p * ld + p] = -1 }
        var y = [Double](repeating: 1, count: ld)
        #expect(!bad.withUnsafeMutableBufferPointer { a in
            y.withUnsafeMutableBufferPointer { b in Cholesky.solveUpper(a.baseAddress!, b.baseAddress!, n: n, ld: ld) }
        })
    }

    func pow(_ x: Double, _ y: Double) -> Double {
        // x^0.75 = sqrt(x)·sqrt(sqrt(x)), enough for this test.
        precondition(y == 0.75)
        let s = x.squareRoot()
        return s * s.squareRoot()
    }
}
