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

    func pow(_ x: Double, _ y: Double) -> Double {
        // x^0.75 = sqrt(x)·sqrt(sqrt(x)), enough for this test.
        precondition(y == 0.75)
        let s = x.squareRoot()
        return s * s.squareRoot()
    }
}
