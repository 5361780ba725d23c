import ChorusAnalytics
import ChorusModel
import Testing

/// The hashed features of the sentiment model, and a tiny end-to-end fit through them.
@Suite struct SentimentFeaturizerTests {
    let f = SentimentFeaturizer(dimensions: 1 << 16)

    func bucket(_ name: String) -> Int32 { Int32(StableHash.fnv1a64(name) & UInt64(f.dimensions - 1)) }

    @Test func featuresAreStableHashedAndScaled() {
        let v = f.vector("I LOVE it!!! :)")
        #expect(v == f.vector("I LOVE it!!! :)"))
        #expect(v.indices.allSatisfy { $0 >= 0 && Int($0) < f.dimensions })
        #expect(zip(v.indices, v.indices.dropFirst()).allSatisfy { $0 < $1 })
        for name in ["w:love", "w2:i love", "f:caps", "f:!!", "e::)"] {
            #expect(v.indices.contains(bucket(name)), "\(name)")
        }
        let norm = v.values.reduce(Float(0)) { $0 + $1 * $1 }
        #expect(abs(norm - 1) < 1e-5, "\(norm)")  // unit length: every feature here occurs once
        #expect(f.vector("").indices.isEmpty)
    }

    @Test func negationIntensityAndChineseShowInTheFeatures() {
        let pos = f.vector("this is good"), neg = f.vector("this is not good")
        #expect(pos.indices.contains(bucket("w:good")) && !pos.indices.contains(bucket("w:NOT_good")))
        #expect(neg.indices.contains(bucket("w:NOT_good")))
        #expect(f.vector("very good").indices.contains(bucket("i:good")))
        #expect(f.vector("slightly annoying").indices.contains(bucket("d:annoying")))
        let zh = f.vector("质量很好")
        #expect(zh.indices.contains(bucket("c2:质量")) && zh.indices.contains(bucket("i:好")))
        #expect(f.vector("不好").indices.contains(bucket("c:NOT_好")))
    }

    @Test func aTinyModelLearnsNegationFromFeatures() {
        let texts: [(String, Int)] = [
            ("good", 2), ("great product", 2), ("love it", 2), ("very good", 2), ("not bad", 2), ("好", 2), ("很好", 2),
            ("bad", 0), ("terrible product", 0), ("hate it", 0), ("not good", 0), ("not great", 0), ("不好", 0),
            ("差", 0), ("ok", 1), ("fine I guess", 1), ("it arrived", 1), ("一般", 1),
        ]
        let examples = texts.map { SoftmaxTraining.Example(x: f.vector($0.0), label: $0.1) }
        let model = SoftmaxTraining.fit(examples, classes: 3, dimensions: f.dimensions, lambda: 1e-4, iterations: 150)
        for (text, label) in texts {
            let p = model.probabilities(f.vector(text))
            #expect(p.indices.max { p[$0] < p[$1] } == label, "\(text): \(p)")
        }
    }
}
