import ChorusModel

/// Counts of scored texts in one time bucket (pure; the unit of the hourly and daily series).
public struct SentimentBucket: Sendable, Equatable, Codable {
    public var n = 0
    public var negative = 0
    public var neutral = 0
    public var positive = 0
    /// Σ score (P(positive) − P(negative)).
    public var scoreSum = 0.0

    public init() {}

    public mutating func add(label: Int, score: Float) {
        n += 1
        switch label {
        case 0: negative += 1
        case 1: neutral += 1
        default: positive += 1
        }
        scoreSum += Double(score)
    }

    public mutating func merge(_ o: SentimentBucket) {
        n += o.n; negative += o.negative; neutral += o.neutral; positive += o.positive; scoreSum += o.scoreSum
    }

    public var meanScore: Double { n == 0 ? 0 : scoreSum / Double(n) }
    public var negativeShare: Double { n == 0 ? 0 : Double(negative) / Double(n) }
}

/// Volume spikes and sentiment dips in an hourly series, against a rolling baseline (pure).
///
/// For every hour the baseline is the `window` hours before it (missing hours count as empty). An hour is a
/// **volume spike** when its count exceeds mean + sensitivity × sd (sd floored at √mean and 1, so a quiet series
/// does not alarm on a handful of texts) and reaches `minCount`. It is a **sentiment dip** when it has at least
/// `minCount` texts and its negative share exceeds the baseline's (texts-weighted) negative share by
/// sensitivity × max(sd, 0.05), where sd is the binomial sd of the share at this hour's count (the hour's share is
/// continuity-corrected: (negatives − ½) / count). After an alert, the
/// same kind stays silent for `cooldown` hours for that key. Hours without `window / 2` hours of history before
/// them are not judged. One pass over the hours: linear in the length of the series.
public struct AlertDetector: Sendable {
    public struct Config: Sendable, Equatable {
        public var window = 24
        public var sensitivity = 4.0
        public var minCount = 20
        public var cooldown = 6
        public init(window: Int = 24, sensitivity: Double = 4, minCount: Int = 20, cooldown: Int = 6) {
            self.window = window; self.sensitivity = sensitivity; self.minCount = minCount; self.cooldown = cooldown
        }
    }

    public enum Kind: String, Sendable, Codable { case volumeSpike = "volume_spike", sentimentDip = "sentiment_dip" }

    public struct Alert: Sendable, Equatable, Codable {
        public var kind: Kind
        /// Unix hour (seconds / 3600) of the alerting bucket.
        public var hour: Int64
        public var value: Double
        public var baseline: Double
        public var threshold: Double
        public var count: Int
    }

    public let config: Config
    public init(_ config: Config = Config()) { self.config = config }

    /// `hourly`: buckets by unix hour (any order, gaps allowed). `from`: the hour the observation starts (e.g. the
    /// first hour of the whole data set), so a key that was silent before its first text still has a baseline of
    /// empty hours; by default the key's own first hour.
    public func detect(_ hourly: [Int64: SentimentBucket], from: Int64? = nil) -> [Alert] {
        guard let own = hourly.keys.min(), let last = hourly.keys.max() else { return [] }
        let first = min(own, from ?? own)
        let w = max(1, config.window)
        var ring = [SentimentBucket](repeating: SentimentBucket(), count: w)
        var sumN = 0.0, sumN2 = 0.0, sumNeg = 0.0, total = 0.0
        var seen = 0
        var quietUntil: [Kind: Int64] = [:]
        var alerts: [Alert] = []
        var h = first
        while h <= last {
            let b = hourly[h] ?? SentimentBucket()
            if seen >= (w + 1) / 2 {
                let hours = Double(min(seen, w))
                let mean = sumN / hours
                let sd = max((max(sumN2 / hours - mean * mean, 0)).squareRoot(), mean.squareRoot(), 1)
                let spikeAt = mean + config.sensitivity * sd
                if b.n >= config.minCount, Double(b.n) > spikeAt, (quietUntil[.volumeSpike] ?? .min) < h {
                    alerts.append(Alert(kind: .volumeSpike, hour: h, value: Double(b.n), baseline: mean, threshold: spikeAt, count: b.n))
                    quietUntil[.volumeSpike] = h + Int64(config.cooldown)
                }
                if b.n >= config.minCount, total > 0 {
                    let base = sumNeg / total
                    let sdShare = max((base * (1 - base) / Double(b.n)).squareRoot(), 0.05)
                    let dipAt = base + config.sensitivity * sdShare
                    // Continuity-corrected share: small counts do not alarm on one extra negative text.
                    let share = (Double(b.negative) - 0.5) / Double(b.n)
                    if share > dipAt, (quietUntil[.sentimentDip] ?? .min) < h {
                        alerts.append(Alert(kind: .sentimentDip, hour: h, value: b.negativeShare, baseline: base, threshold: dipAt, count: b.n))
                        quietUntil[.sentimentDip] = h + Int64(config.cooldown)
                    }
                }
            }
            // Slide the window.
            let slot = Int((h - first) % Int64(w))
            let old = ring[slot]
            if seen >= w {
                sumN -= Double(old.n); sumN2 -= Double(old.n * old.n); sumNeg -= Double(old.negative); total -= Double(old.n)
            }
            ring[slot] = b
            sumN += Double(b.n); sumN2 += Double(b.n * b.n); sumNeg += Double(b.negative); total += Double(b.n)
            seen += 1
            h += 1
        }
        return alerts
    }
}

/// Terms for "why" lists and complaint themes (pure): English words of three or more letters that are not stop
/// words, hashtags, emoji, and CJK character bigrams (Chinese has no spaces; bigrams need no dictionary).
public enum SentimentTerms {
    static let stopWords: Set<String> = [
        "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out",
        "has", "him", "his", "how", "its", "may", "new", "now", "old", "see", "two", "way", "who", "did", "get", "got",
        "let", "say", "she", "too", "use", "this", "that", "with", "have", "from", "they", "will", "would", "there",
        "their", "what", "about", "which", "when", "make", "like", "time", "just", "know", "take", "into", "your",
        "some", "could", "them", "than", "then", "look", "only", "come", "over", "also", "back", "after", "first",
        "well", "even", "want", "because", "these", "give", "most", "very", "been", "were", "being", "does", "doing",
        "here", "more", "much", "such", "why", "where", "while", "should", "really", "again", "still", "ever",
        "dont", "didnt", "doesnt", "isnt", "wasnt", "cant", "wont", "im", "ive", "its", "it's", "url",
    ]

    public static func terms(_ text: String) -> [String] {
        let tokens = SocialTokenizer.tokenize(text).tokens
        var out: [String] = []
        var previousCJK: String?
        for t in tokens {
            switch t.kind {
            case .word:
                previousCJK = nil
                if t.text.count >= 3, !stopWords.contains(t.text) { out.append(t.text) }
            case .hashtag, .emoji:
                previousCJK = nil
                out.append(t.text)
            case .cjk:
                if let p = previousCJK { out.append(p + t.text) }
                previousCJK = t.text
            default:
                previousCJK = nil
            }
        }
        return out
    }
}

/// The terms that set a window of texts apart from a baseline (pure): smoothed log-odds ratio, weighted by the
/// term's count in the window so that frequent drivers rank above one-off words.
public enum TermContrast {
    public static func top(window: [String: Int], baseline: [String: Int], k: Int, minCount: Int = 2) -> [(term: String, count: Int, lift: Double)] {
        let nw = Double(window.values.reduce(0, +)), nb = Double(baseline.values.reduce(0, +))
        let vocab = Double(Set(window.keys).union(baseline.keys).count)
        guard nw > 0 else { return [] }
        var scored: [(String, Int, Double, Double)] = []
        for (term, c) in window where c >= minCount {
            let pw = (Double(c) + 0.5) / (nw + 0.5 * vocab)
            let pb = (Double(baseline[term] ?? 0) + 0.5) / (nb + 0.5 * vocab)
            let lift = PortableMath.log(pw / pb)
            guard lift > 0 else { continue }
            scored.append((term, c, lift, lift * PortableMath.log(1 + Double(c))))
        }
        scored.sort { $0.3 != $1.3 ? $0.3 > $1.3 : $0.0 < $1.0 }
        return scored.prefix(k).map { ($0.0, $0.1, $0.2) }
    }
}

/// Groups short texts into recurring themes (pure): TF-IDF vectors of their terms, L2-normalised, and spherical
/// k-means (cosine) from a deterministic k-means++ start. Each theme reports its size, its top terms (centroid
/// weights) and the texts closest to its centroid as examples.
public enum ThemeClustering {
    public struct Theme: Sendable, Equatable {
        public var terms: [String]
        public var size: Int
        /// Indices into the input, closest to the centroid first.
        public var examples: [Int]
    }

    public static func cluster(_ docs: [[String]], k: Int, seed: UInt64 = 7, iterations: Int = 20,
                               examplesPerTheme: Int = 3, termsPerTheme: Int = 5) -> [Theme] {
        // Vocabulary and document frequencies (terms sorted: deterministic ids).
        var df: [String: Int] = [:]
        for d in docs { for t in Set(d) { df[t, default: 0] += 1 } }
        let vocab = df.keys.sorted()
        var id: [String: Int] = [:]
        for (i, t) in vocab.enumerated() { id[t] = i }
        let n = Double(docs.count)
        var vectors: [[(Int, Double)]] = []
        var usable: [Int] = []
        for (di, d) in docs.enumerated() {
            var tf: [Int: Double] = [:]
            for t in d { tf[id[t]!, default: 0] += 1 }
            // Sorted by term id *before* summing: a dictionary's order is seeded per process, and a sum in another
            // order can differ in the last bit, which flipped tied terms between runs.
            var v = tf.map { ($0.key, $0.value * PortableMath.log(1 + n / Double(df[vocab[$0.key]]!))) }
                .sorted { $0.0 < $1.0 }
            let norm = v.reduce(0.0) { $0 + $1.1 * $1.1 }.squareRoot()
            guard norm > 0 else { continue }
            v = v.map { ($0.0, $0.1 / norm) }
            vectors.append(v)
            usable.append(di)
        }
        let m = vectors.count
        guard m > 0 else { return [] }
        let kk = max(1, min(k, m))
        func dot(_ a: [(Int, Double)], _ c: [Double]) -> Double { a.reduce(0.0) { $0 + $1.1 * c[$1.0] } }
        func dense(_ a: [(Int, Double)]) -> [Double] {
            var c = [Double](repeating: 0, count: vocab.count)
            for (i, v) in a { c[i] = v }
            return c
        }
        // k-means++ start (cosine distance 1 − sim), seeded.
        var rng = SplitMix64(seed: seed)
        var centroids: [[Double]] = [dense(vectors[Int(rng.next() % UInt64(m))])]
        var best = [Double](repeating: 1, count: m)
        while centroids.count < kk {
            let c = centroids.last!
            for i in 0..<m { best[i] = min(best[i], max(0, 1 - dot(vectors[i], c))) }
            let total = best.reduce(0, +)
            guard total > 0 else { break }
            var r = rng.unit() * total
            var pick = m - 1
            for i in 0..<m {
                r -= best[i]
                if r <= 0 { pick = i; break }
            }
            centroids.append(dense(vectors[pick]))
        }
        var assign = [Int](repeating: 0, count: m)
        for _ in 0..<iterations {
            var changed = false
            for i in 0..<m {
                var bi = 0, bs = -Double.infinity
                for (ci, c) in centroids.enumerated() {
                    let s = dot(vectors[i], c)
                    if s > bs { bs = s; bi = ci }
                }
                if assign[i] != bi { assign[i] = bi; changed = true }
            }
            for ci in centroids.indices {
                var c = [Double](repeating: 0, count: vocab.count)
                for i in 0..<m where assign[i] == ci { for (t, v) in vectors[i] { c[t] += v } }
                let norm = c.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0 { centroids[ci] = c.map { $0 / norm } }
            }
            if !changed { break }
        }
        var themes: [Theme] = []
        for (ci, c) in centroids.enumerated() {
            let members = (0..<m).filter { assign[$0] == ci }
            guard !members.isEmpty else { continue }
            let terms = c.indices.filter { c[$0] > 0 }.sorted { c[$0] != c[$1] ? c[$0] > c[$1] : $0 < $1 }
                .prefix(termsPerTheme).map { vocab[$0] }
            let examples = members.sorted {
                let a = dot(vectors[$0], c), b = dot(vectors[$1], c)
                return a != b ? a > b : $0 < $1
            }.map { usable[$0] }
            // Each example once: a burst repeats the same comment, and three copies of it teach nothing.
            let distinct = DistinctExamples.pick(examples, text: { docs[$0].joined(separator: " ") },
                                                 limit: examplesPerTheme)
            themes.append(Theme(terms: terms, size: members.count, examples: distinct))
        }
        return themes.sorted { $0.size != $1.size ? $0.size > $1.size : $0.terms.lexicographicallyPrecedes($1.terms) }
    }
}

/// A fixed-size MinHash sketch of a set of ids: `k` minima of `k` stable hash functions. Sketches of parts of a
/// set merge by element-wise minimum, so partitions can sketch their share of an alert window's comments and the
/// coordinator still estimates how much two windows share (Broder 1997).
public struct MinHashSketch: Sendable, Equatable, Codable {
    public static let size = 32
    public var minima: [UInt64]
    /// Ids added (the set's size when every id is added once).
    public var count: Int

    public init() {
        minima = Array(repeating: .max, count: Self.size)
        count = 0
    }

    @inlinable
    public mutating func add(_ id: String) {
        let base = StableHash.fnv1a64(id)
        for j in 0..<minima.count {
            let h = StableHash.avalanche(base ^ (UInt64(j + 1) &* 0x9E37_79B9_7F4A_7C15))
            if h < minima[j] { minima[j] = h }
        }
        count += 1
    }

    public mutating func merge(_ o: MinHashSketch) {
        guard o.minima.count == minima.count else { return }
        for j in minima.indices { minima[j] = min(minima[j], o.minima[j]) }
        count += o.count
    }

    /// Estimated Jaccard similarity of the two sets.
    public func jaccard(_ o: MinHashSketch) -> Double {
        guard minima.count == o.minima.count, count > 0, o.count > 0 else { return 0 }
        let same = zip(minima, o.minima).filter { $0 == $1 && $0 != .max }.count
        return Double(same) / Double(minima.count)
    }

    /// Estimated share of the smaller set that is also in the other: |A ∩ B| / min(|A|, |B|).
    public func containment(_ o: MinHashSketch) -> Double {
        let j = jaccard(o)
        guard j > 0 else { return 0 }
        let inter = j * Double(count + o.count) / (1 + j)
        return min(1, inter / Double(max(1, min(count, o.count))))
    }
}

/// Groups alerts that are one incident: the same burst of comments seen through several keys (a topic, its
/// hashtags and a brand). Two alerts belong together when they fire within `maxHourGap` hours of each other and
/// at least `minContainment` of the smaller one's window comments are also in the other's (estimated from their
/// sketches). Groups are the connected components of that relation. Deterministic: groups come in the order of
/// their first alert, and the alerts of a group keep their input order.
public enum IncidentGrouping {
    public struct Input: Sendable {
        public var hour: Int64
        public var sketch: MinHashSketch
        public init(hour: Int64, sketch: MinHashSketch) { self.hour = hour; self.sketch = sketch }
    }

    public static func groups(_ alerts: [Input], maxHourGap: Int64 = 1, minContainment: Double = 0.5) -> [[Int]] {
        var parent = Array(alerts.indices)
        func find(_ i: Int) -> Int {
            var i = i
            while parent[i] != i { parent[i] = parent[parent[i]]; i = parent[i] }
            return i
        }
        for i in alerts.indices {
            for j in alerts.indices where j > i {
                guard abs(alerts[i].hour - alerts[j].hour) <= maxHourGap,
                      alerts[i].sketch.containment(alerts[j].sketch) >= minContainment else { continue }
                let a = find(i), b = find(j)
                if a != b { parent[max(a, b)] = min(a, b) }
            }
        }
        var order: [Int] = [], members: [Int: [Int]] = [:]
        for i in alerts.indices {
            let r = find(i)
            if members[r] == nil { order.append(r) }
            members[r, default: []].append(i)
        }
        return order.map { members[$0]! }
    }
}

/// Example texts people can read: the most negative first, each text once (case and spacing ignored).
public enum DistinctExamples {
    public static func pick<T>(_ items: [T], text: (T) -> String, limit: Int) -> [T] {
        var seen = Set<String>(), out: [T] = []
        for it in items {
            let norm = text(it).lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
                .joined(separator: " ")
            if seen.insert(norm).inserted { out.append(it) }
            if out.count == limit { break }
        }
        return out
    }
}
