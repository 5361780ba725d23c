import ChorusAnalytics
import ChorusModel
import Testing

/// The sentiment model's trainer: the analytic gradient against finite differences, and a separable set learnt
/// perfectly.
@Suite struct SoftmaxRegressionTests {
    static func randomExamples(_ n: Int, dims: Int, classes: Int, seed: UInt64) -> [SoftmaxTraining.Example] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            let pairs = (0..<4).map { _ in (Int32(rng.next() % UInt64(dims)), Float(rng.gaussian())) }
            return SoftmaxTraining.Example(x: SparseVector(pairs: pairs), label: Int(rng.next() % UInt64(classes)),
                                           weight: 0.5 + rng.unit())
        }
    }

    @Test func gradientMatchesFiniteDifferences() {
        let dims = 12, classes = 3, lambda = 0.1
        let examples = Self.randomExamples(40, dims: dims, classes: classes, seed: 5)
        var model = SoftmaxModel(classes: classes, dimensions: dims)
        var rng = SplitMix64(seed: 9)
        for i in model.parameters.indices { model.parameters[i] = rng.gaussian() * 0.5 }
        let count = examples.reduce(0.0) { $0 + $1.weight }
        func objective(_ m: SoftmaxModel) -> (Double, [Double]) {
            var g = [Double](repeating: 0, count: m.parameters.count)
            let l = SoftmaxTraining.lossAndGradient(m, examples, into: &g)
            return SoftmaxTraining.objective(model: m, lossSum: l, gradientSum: g, count: count, lambda: lambda)
        }
        let (_, grad) = objective(model)
        let h = 1e-6
        for i in model.parameters.indices {
            var plus = model, minus = model
            plus.parameters[i] += h
            minus.parameters[i] -= h
            let numeric = (objective(plus).0 - objective(minus).0) / (2 * h)
            #expect(abs(numeric - grad[i]) <= 1e-6 * max(1, abs(numeric)), "parameter \(i): \(numeric) vs \(grad[i])")
        }
    }

    @Test func aSeparableSetIsLearntPerfectlyWithCalibratedProbabilities() {
        // Class c is signalled by feature c (plus shared noise features).
        var rng = SplitMix64(seed: 1)
        var examples: [SoftmaxTraining.Example] = []
        for n in 0..<90 {
            let c = n % 3
            let noise = Int32(3 + rng.next() % 5)
            examples.append(.init(x: SparseVector(pairs: [(Int32(c), 1), (noise, 1)]), label: c))
        }
        var losses: [Double] = []
        let model = SoftmaxTraining.fit(examples, classes: 3, dimensions: 8, lambda: 1e-3, iterations: 200) { _, f, _ in
            losses.append(f)
        }
        for ex in examples {
            let p = model.probabilities(ex.x)
            #expect(p.indices.max { p[$0] < p[$1] } == ex.label)
            #expect(abs(p.reduce(0, +) - 1) < 1e-9)
            #expect(p[ex.label] > 0.9)
        }
        #expect(zip(losses, losses.dropFirst()).allSatisfy { $0.1 <= $0.0 + 1e-12 }, "the objective never rises")
    }

    @Test func portableExpMatchesKnownValues() {
        #expect(abs(PortableMath.exp(0) - 1) < 1e-15)
        #expect(abs(PortableMath.exp(1) - 2.718281828459045) < 1e-14)
        #expect(abs(PortableMath.exp(-20) - 2.061153622438558e-09) < 1e-22)
        #expect(PortableMath.exp(-1000) == 0 && PortableMath.exp(1000) == .infinity)
        #expect(abs(PortableMath.log(PortableMath.exp(3.7)) - 3.7) < 1e-12)
    }
}
