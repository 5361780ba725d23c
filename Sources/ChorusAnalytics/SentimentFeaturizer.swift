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
        // Each name is hashed piece by piece (FNV-1a continues over the pieces), so no name string is built;
        // the hash equals FNV-1a 64 of the concatenated name.
        var hashes: [UInt64] = []
        hashes.reserveCapacity(tokens.count * 3)
        var previous: SocialTokenizer.Token?
        var modifier: String?  // "i:" or "d:" when the previous word intensified or diminished
        for t in tokens {
            let neg = t.negated
            switch t.kind {
            case .word, .number:
                hashes.append(FNV().feed("w:").feed(neg ? "NOT_" : "").feed(t.text).value)
                if let p = previous, p.kind == .word || p.kind == .number {
                    hashes.append(FNV().feed("w2:").feed(p.text).feed(" ").feed(t.text).value)
                }
                if let m = modifier { hashes.append(FNV().feed(m).feed(neg ? "NOT_" : "").feed(t.text).value) }
                if t.allCaps { hashes.append(Self.caps) }
                if t.elongated { hashes.append(Self.elongated) }
            case .cjk:
                hashes.append(FNV().feed("c:").feed(neg ? "NOT_" : "").feed(t.text).value)
                if let p = previous, p.kind == .cjk {
                    hashes.append(FNV().feed("c2:").feed(neg ? "NOT_" : "").feed(p.text).feed(t.text).value)
                }
                if let m = modifier, !t.intensifier, !t.diminisher {
                    hashes.append(FNV().feed(m).feed(neg ? "NOT_" : "").feed(t.text).value)
                }
            case .emoji, .emoticon:
                hashes.append(FNV().feed("e:").feed(neg ? "NOT_" : "").feed(t.text).value)
            case .hashtag:
                hashes.append(FNV().feed("h:").feed(t.text).value)
            case .url:
                hashes.append(Self.url)
            case .mention:
                hashes.append(Self.mention)
            case .punctuation:
                if t.text.hasPrefix("!") || t.text.hasPrefix("！") { hashes.append(t.text.count > 1 ? Self.bangs : Self.bang) }
                if t.text.hasPrefix("?") || t.text.hasPrefix("？") { hashes.append(Self.question) }
            }
            if t.kind != .punctuation {
                modifier = t.intensifier ? "i:" : t.diminisher ? "d:" : nil
            }
            previous = t
        }
        guard !hashes.isEmpty else { return SparseVector(indices: [], values: []) }
        let scale = Float(1 / Double(hashes.count).squareRoot())
        let mask = UInt64(dimensions - 1)
        var idx = hashes.map { Int32(truncatingIfNeeded: $0 & mask) }
        idx.sort()
        var indices: [Int32] = [], values: [Float] = []
        indices.reserveCapacity(idx.count); values.reserveCapacity(idx.count)
        for i in idx {
            if indices.last == i { values[values.count - 1] += scale } else { indices.append(i); values.append(scale) }
        }
        return SparseVector(indices: indices, values: values)
    }

    static let caps = StableHash.fnv1a64("f:caps")
    static let elongated = StableHash.fnv1a64("f:elongated")
    static let url = StableHash.fnv1a64("f:url")
    static let mention = StableHash.fnv1a64("f:mention")
    static let bang = StableHash.fnv1a64("f:!")
    static let bangs = StableHash.fnv1a64("f:!!")
    static let question = StableHash.fnv1a64("f:?")
}

/// FNV-1a 64 fed piece by piece: `FNV().feed(a).feed(b).value == StableHash.fnv1a64(a + b)`.
struct FNV {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325

    @inline(__always)
    func feed(_ s: String) -> FNV {
        var h = value
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return FNV(value: h)
    }
}
