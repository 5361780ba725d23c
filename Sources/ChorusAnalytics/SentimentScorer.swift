import ChorusModel

/// Scores texts with trained sentiment weights (pure): tokenize, hash, one pass over the sparse features.
///
/// The weights are kept feature-major (the three class weights of a bucket side by side), so each feature costs one
/// cache line. Probabilities come from a max-shifted softmax; `score` is P(positive) − P(negative) in [−1, 1].
public struct SentimentScorer: Sendable {
    public let featurizer: SentimentFeaturizer
    public let classes: Int
    /// dimensions × classes, feature-major.
    let weights: [Float]
    let biases: [Float]

    /// `parameters` in the trainer's layout: classes × dimensions (class-major), then `classes` biases.
    public init(dimensions: Int, classes: Int, parameters: [Float]) {
        precondition(parameters.count == classes * dimensions + classes, "parameter count does not match the shape")
        featurizer = SentimentFeaturizer(dimensions: dimensions)
        self.classes = classes
        var w = [Float](repeating: 0, count: classes * dimensions)
        for c in 0..<classes {
            for i in 0..<dimensions { w[i * classes + c] = parameters[c * dimensions + i] }
        }
        weights = w
        biases = Array(parameters[(classes * dimensions)...])
    }

    public struct Scored: Sendable, Equatable {
        /// negative, neutral, positive
        public var probabilities: [Float]
        public var label: Int
        /// P(positive) − P(negative)
        public var score: Float
    }

    /// Equal to `score(featurizer.vector(text))`, without building the vector: the features' sorted buckets are
    /// summed straight from the scan, in the same order and with the same values.
    public func score(_ text: String) -> Scored {
        SocialTokenizer.withScan(text) { scan in
            featurizer.withSortedIndices(scan) { idx in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: classes) { z in
                    _ = z.initialize(from: biases)
                    if !idx.isEmpty {
                        let scale = Float(1 / Double(idx.count).squareRoot())
                        weights.withUnsafeBufferPointer { w in
                            var j = 0
                            while j < idx.count {
                                let i = idx[j]
                                var v = scale
                                j += 1
                                while j < idx.count && idx[j] == i { v += scale; j += 1 }
                                let base = Int(i) * classes
                                for c in 0..<classes { z[c] += w[base + c] * v }
                            }
                        }
                    }
                    return finish(UnsafeBufferPointer(z))
                }
            }
        }
    }

    public func score(_ x: SparseVector) -> Scored {
        var z = biases
        x.indices.withUnsafeBufferPointer { idx in
            x.values.withUnsafeBufferPointer { val in
                weights.withUnsafeBufferPointer { w in
                    z.withUnsafeMutableBufferPointer { z in
                        for j in 0..<idx.count {
                            let base = Int(idx[j]) * classes
                            let v = val[j]
                            for c in 0..<classes { z[c] += w[base + c] * v }
                        }
                    }
                }
            }
        }
        return z.withUnsafeBufferPointer { finish($0) }
    }

    /// Softmax of the class scores, the label and P(positive) − P(negative).
    @inline(__always)
    func finish(_ z: UnsafeBufferPointer<Float>) -> Scored {
        let m = z.max() ?? 0
        var p = z.map { Float(PortableMath.exp(Double($0 - m))) }
        let s = p.reduce(0, +)
        for c in p.indices { p[c] /= s }
        var best = 0
        for c in 1..<classes where p[c] > p[best] { best = c }
        let score = classes == 3 ? p[2] - p[0] : 0
        return Scored(probabilities: p, label: best, score: score)
    }
}

/// A confusion matrix and the measures taken from it (pure).
public struct ConfusionMatrix: Sendable, Equatable, Codable {
    public let classes: Int
    /// counts[gold * classes + predicted]
    public var counts: [Int]

    public init(classes: Int) {
        self.classes = classes
        counts = [Int](repeating: 0, count: classes * classes)
    }

    public mutating func add(gold: Int, predicted: Int, count: Int = 1) { counts[gold * classes + predicted] += count }
    public mutating func merge(_ o: ConfusionMatrix) { for i in counts.indices { counts[i] += o.counts[i] } }

    public var total: Int { counts.reduce(0, +) }
    public var accuracy: Double {
        let t = total
        return t == 0 ? 0 : Double((0..<classes).reduce(0) { $0 + counts[$1 * classes + $1] }) / Double(t)
    }

    /// Gold examples of a class.
    public func support(_ c: Int) -> Int { (0..<classes).reduce(0) { $0 + counts[c * classes + $1] } }

    /// F1 of one class (0 when it has neither gold nor predicted examples).
    public func f1(_ c: Int) -> Double {
        let tp = Double(counts[c * classes + c])
        let predicted = Double((0..<classes).reduce(0) { $0 + counts[$1 * classes + c] })
        let gold = Double(support(c))
        return predicted + gold == 0 ? 0 : 2 * tp / (predicted + gold)
    }

    /// The mean F1 over `over` (default: every class with gold examples). For the binary sets, pass the two
    /// polar classes: a neutral prediction of a polar text then counts as a miss.
    public func macroF1(over: [Int]? = nil) -> Double {
        let cs = over ?? (0..<classes).filter { support($0) > 0 }
        return cs.isEmpty ? 0 : cs.reduce(0.0) { $0 + f1($1) } / Double(cs.count)
    }
}
