import ChorusModel

/// Turns a social text into the sparse, hashed feature vector of the sentiment model (pure).
///
/// Every feature is a namespaced string hashed with FNV-1a 64 (the project's stable hash, so a model trained in
/// one process scores the same in every other) into `dimensions` buckets:
/// - `w:` words and `w2:` word bigrams, a word inside a negation scope as `w:NOT_word`;
/// - `c:` CJK characters and `c2:` character bigrams (with `NOT_` likewise), which stand in for a segmenter;
/// - `e:` emoji and emoticons (negated ones too: "not :)" is not a smile);
/// - `h:` hashtags (their CamelCase words also count as words);
/// - `i:` and `d:` the word after an intensifier or a diminisher, so "very good" weighs apart from "good";
/// - `f:` flags: all-caps words, elongated words, "!" and "?" runs, URLs, mentions.
/// Values are 1 per occurrence, scaled by 1/√(number of features) so that long and short texts weigh alike.
public struct SentimentFeaturizer: Sendable, Equatable {
    public let dimensions: Int

    public init(dimensions: Int = 1 << 18) {
        precondition(dimensions > 0 && dimensions & (dimensions - 1) == 0, "dimensions must be a power of two")
        self.dimensions = dimensions
    }

    public func vector(_ text: String) -> SparseVector {
        vector(tokens: SocialTokenizer.tokenize(text).tokens)
    }

    public func vector(tokens: [SocialTokenizer.Token]) -> SparseVector {
        var names: [String] = []
        names.reserveCapacity(tokens.count * 3)
        var previous: SocialTokenizer.Token?
        var modifier: String?  // "i" or "d" when the previous word intensified or diminished
        for t in tokens {
            let neg = t.negated ? "NOT_" : ""
            switch t.kind {
            case .word, .number:
                names.append("w:" + neg + t.text)
                if let p = previous, p.kind == .word || p.kind == .number { names.append("w2:" + p.text + " " + t.text) }
                if let m = modifier { names.append(m + ":" + neg + t.text) }
                if t.allCaps { names.append("f:caps") }
                if t.elongated { names.append("f:elongated") }
            case .cjk:
                names.append("c:" + neg + t.text)
                if let p = previous, p.kind == .cjk { names.append("c2:" + neg + p.text + t.text) }
                if let m = modifier, !t.intensifier, !t.diminisher { names.append(m + ":" + neg + t.text) }
            case .emoji, .emoticon:
                names.append("e:" + neg + t.text)
            case .hashtag:
                names.append("h:" + t.text)
            case .url:
                names.append("f:url")
            case .mention:
                names.append("f:mention")
            case .punctuation:
                if t.text.hasPrefix("!") || t.text.hasPrefix("！") { names.append("f:!" + (t.text.count > 1 ? "!" : "")) }
                if t.text.hasPrefix("?") || t.text.hasPrefix("？") { names.append("f:?") }
            }
            if t.kind != .punctuation {
                modifier = t.intensifier ? "i" : t.diminisher ? "d" : nil
            }
            previous = t
        }
        guard !names.isEmpty else { return SparseVector(indices: [], values: []) }
        let scale = Float(1 / Double(names.count).squareRoot())
        let mask = UInt64(dimensions - 1)
        return SparseVector(pairs: names.map { (Int32(truncatingIfNeeded: StableHash.fnv1a64($0) & mask), scale) })
    }
}
