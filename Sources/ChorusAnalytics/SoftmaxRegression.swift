import ChorusModel

/// Multinomial logistic regression over sparse features (pure), the model behind sentiment scoring.
///
/// The loss is the mean negative log-likelihood plus (λ/2)·‖W‖² (biases unregularised). Its gradient is a sum over
/// examples, so a cluster can compute partial sums per shard and add them in a fixed order; `LBFGS` then takes
/// deterministic steps from the summed gradient. Probabilities use a max-shifted softmax, so they are calibrated
/// by the likelihood and never overflow.
public struct SoftmaxModel: Sendable, Equatable {
    public let classes: Int
    public let dimensions: Int
    /// classes × dimensions, row-major, then `classes` biases.
    public var parameters: [Double]

    public init(classes: Int, dimensions: Int) {
        self.classes = classes
        self.dimensions = dimensions
        parameters = [Double](repeating: 0, count: classes * dimensions + classes)
    }

    /// Class scores (logits) of a sparse feature vector.
    public func logits(_ x: SparseVector) -> [Double] {
        var z = [Double](repeating: 0, count: classes)
        for c in 0..<classes {
            var s = parameters[classes * dimensions + c]
            let row = c * dimensions
            for (i, v) in zip(x.indices, x.values) { s += parameters[row + Int(i)] * Double(v) }
            z[c] = s
        }
        return z
    }

    /// Class probabilities.
    public func probabilities(_ x: SparseVector) -> [Double] { Self.softmax(logits(x)) }

    static func softmax(_ z: [Double]) -> [Double] {
        let m = z.max() ?? 0
        let e = z.map { PortableMath.exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

/// A sparse feature vector: sorted, distinct indices and their values.
public struct SparseVector: Sendable, Equatable {
    public var indices: [Int32]
    public var values: [Float]
    public init(indices: [Int32], values: [Float]) { self.indices = indices; self.values = values }

    /// Builds a vector from (index, value) pairs, adding up repeated indices.
    public init(pairs: [(Int32, Float)]) {
        let sorted = pairs.sorted { $0.0 < $1.0 }
        var idx: [Int32] = [], val: [Float] = []
        for (i, v) in sorted {
            if idx.last == i { val[val.count - 1] += v } else { idx.append(i); val.append(v) }
        }
        indices = idx
        values = val
    }
}

public enum SoftmaxTraining {
    /// One labelled example.
    public struct Example: Sendable {
        public var x: SparseVector
        public var label: Int
        public var weight: Double
        public init(x: SparseVector, label: Int, weight: Double = 1) { self.x = x; self.label = label; self.weight = weight }
    }

    /// Σ weight · (−log p(label | x)) over `examples`, and its gradient added into `gradient` (same layout as
    /// `model.parameters`). Not divided by the count and not regularised: partial sums from shards add up.
    public static func lossAndGradient(_ model: SoftmaxModel, _ examples: [Example],
                                       into gradient: inout [Double]) -> Double {
        precondition(gradient.count == model.parameters.count)
        let k = model.classes, d = model.dimensions
        var loss = 0.0
        for ex in examples {
            let p = model.probabilities(ex.x)
            loss -= ex.weight * PortableMath.log(max(p[ex.label], 1e-300))
            for c in 0..<k {
                let g = ex.weight * (p[c] - (c == ex.label ? 1 : 0))
                if g == 0 { continue }
                let row = c * d
                for (i, v) in zip(ex.x.indices, ex.x.values) { gradient[row + Int(i)] += g * Double(v) }
                gradient[k * d + c] += g
            }
        }
        return loss
    }

    /// The full objective: mean loss + (λ/2)‖W‖², and its gradient, from summed parts.
    public static func objective(model: SoftmaxModel, lossSum: Double, gradientSum: [Double], count: Double,
                                 lambda: Double) -> (Double, [Double]) {
        let weights = model.classes * model.dimensions
        var g = gradientSum.map { $0 / count }
        var reg = 0.0
        for i in 0..<weights {
            let w = model.parameters[i]
            reg += w * w
            g[i] += lambda * w
        }
        return (lossSum / count + 0.5 * lambda * reg, g)
    }

    /// Trains in one process with L-BFGS (the reference for the distributed trainer and what the tests use).
    public static func fit(_ examples: [Example], classes: Int, dimensions: Int, lambda: Double,
                           iterations: Int = 100, tolerance: Double = 1e-9,
                           progress: (_ iteration: Int, _ objective: Double, _ parameters: [Double]) -> Void = { _, _, _ in }) -> SoftmaxModel {
        var model = SoftmaxModel(classes: classes, dimensions: dimensions)
        let count = examples.reduce(0.0) { $0 + $1.weight }
        func evaluate(_ params: [Double]) -> (Double, [Double]) {
            var m = model
            m.parameters = params
            var g = [Double](repeating: 0, count: params.count)
            let l = lossAndGradient(m, examples, into: &g)
            return objective(model: m, lossSum: l, gradientSum: g, count: max(count, 1), lambda: lambda)
        }
        var opt = LBFGS(memory: 8)
        var x = model.parameters
        var (f, g) = evaluate(x)
        for it in 0..<iterations {
            guard let step = opt.step(x: &x, f: &f, g: &g, evaluate: evaluate) else { break }
            progress(it + 1, f, x)
            if step < tolerance { break }
        }
        model.parameters = x
        return model
    }
}

/// Limited-memory BFGS with a backtracking (Armijo) line search; deterministic.
public struct LBFGS: Sendable {
    let memory: Int
    var s: [[Double]] = []
    var y: [[Double]] = []

    public init(memory: Int) { self.memory = memory }

    /// One iteration from (x, f, g); `evaluate` gives the objective and gradient at a point. Returns the relative
    /// decrease of f, or nil when no step decreased it (converged or stuck).
    public mutating func step(x: inout [Double], f: inout Double, g: inout [Double],
                              evaluate: ([Double]) -> (Double, [Double])) -> Double? {
        guard let (d, slope) = direction(g) else { return nil }
        var t = 1.0
        for _ in 0..<Self.maxHalvings {
            let xn = Self.moved(x, t, d)
            let (fn, gn) = evaluate(xn)
            if let decrease = accept(x: &x, f: &f, g: &g, xn: xn, fn: fn, gn: gn, t: t, slope: slope) { return decrease }
            t *= 0.5
        }
        return nil
    }

    /// The same iteration with an asynchronous objective (the cluster trainer: every evaluation is a stage).
    public mutating func step(x: inout [Double], f: inout Double, g: inout [Double],
                              evaluate: ([Double]) async throws -> (Double, [Double])) async rethrows -> Double? {
        guard let (d, slope) = direction(g) else { return nil }
        var t = 1.0
        for _ in 0..<Self.maxHalvings {
            let xn = Self.moved(x, t, d)
            let (fn, gn) = try await evaluate(xn)
            if let decrease = accept(x: &x, f: &f, g: &g, xn: xn, fn: fn, gn: gn, t: t, slope: slope) { return decrease }
            t *= 0.5
        }
        return nil
    }

    static let maxHalvings = 40

    static func moved(_ x: [Double], _ t: Double, _ d: [Double]) -> [Double] {
        var xn = x
        for i in xn.indices { xn[i] += t * d[i] }
        return xn
    }

    /// The search direction −H·g by the two-loop recursion, and its slope g·d; restarts from −g when that is not
    /// a descent direction. Nil when even −g is not (g = 0: converged).
    mutating func direction(_ g: [Double]) -> ([Double], Double)? {
        var q = g
        var alphas = [Double](repeating: 0, count: s.count)
        for i in stride(from: s.count - 1, through: 0, by: -1) {
            let rho = 1 / dot(y[i], s[i])
            alphas[i] = rho * dot(s[i], q)
            axpy(-alphas[i], y[i], &q)
        }
        if let ls = s.last, let ly = y.last {
            let gamma = dot(ls, ly) / dot(ly, ly)
            for i in q.indices { q[i] *= gamma }
        } else {
            let n = dot(g, g).squareRoot()
            if n > 0 { for i in q.indices { q[i] /= n } }
        }
        for i in 0..<s.count {
            let rho = 1 / dot(y[i], s[i])
            let beta = rho * dot(y[i], q)
            axpy(alphas[i] - beta, s[i], &q)
        }
        var d = q.map { -$0 }
        var slope = dot(g, d)
        if slope >= 0 {  // not a descent direction: restart from the gradient
            s.removeAll(); y.removeAll()
            d = g.map { -$0 }
            slope = dot(g, d)
        }
        return slope < 0 ? (d, slope) : nil
    }

    /// The Armijo test of a trial point; on success remembers the curvature pair, moves to it and returns the
    /// relative decrease.
    mutating func accept(x: inout [Double], f: inout Double, g: inout [Double], xn: [Double], fn: Double, gn: [Double],
                         t: Double, slope: Double) -> Double? {
        guard fn.isFinite, fn <= f + 1e-4 * t * slope else { return nil }
        var sk = xn, yk = gn
        for i in sk.indices { sk[i] -= x[i]; yk[i] -= g[i] }
        if dot(sk, yk) > 1e-12 {
            s.append(sk); y.append(yk)
            if s.count > memory { s.removeFirst(); y.removeFirst() }
        }
        let decrease = (f - fn) / max(abs(f), 1e-12)
        x = xn; f = fn; g = gn
        return decrease
    }

    func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in a.indices { s += a[i] * b[i] }
        return s
    }

    func axpy(_ a: Double, _ x: [Double], _ y: inout [Double]) {
        for i in y.indices { y[i] += a * x[i] }
    }
}
