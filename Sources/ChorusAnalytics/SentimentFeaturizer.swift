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
        SocialTokenizer.withScan(text) { scan in
            withSortedIndices(scan) { idx in Self.sparseVector(idx) }
        }
    }

    public func vector(tokens: [SocialTokenizer.Token]) -> SparseVector {
        // The same feature code as `vector(_:)`, over tokens laid out as the scanner lays them out.
        var arena: [UInt8] = []
        var raw: [SocialTokenizer.RawToken] = []
        raw.reserveCapacity(tokens.count)
        for t in tokens {
            let start = arena.count
            arena.append(contentsOf: t.text.utf8)
            var flags: SocialTokenizer.RawToken.Flags = []
            if t.allCaps { flags.insert(.allCaps) }
            if t.elongated { flags.insert(.elongated) }
            if t.negated { flags.insert(.negated) }
            if t.intensifier { flags.insert(.intensifier) }
            if t.diminisher { flags.insert(.diminisher) }
            if t.text.hasPrefix("!") || t.text.hasPrefix("！") { flags.insert(.bang) }
            if t.text.hasPrefix("?") || t.text.hasPrefix("？") { flags.insert(.question) }
            raw.append(SocialTokenizer.RawToken(start: Int32(start), count: Int32(arena.count - start),
                                                kind: .init(t.kind), flags: flags, multiple: t.text.count > 1))
        }
        arena.append(0)  // never empty
        return arena.withUnsafeMutableBufferPointer { a in
            raw.withUnsafeMutableBufferPointer { r in
                let scan = SocialTokenizer.Scan(arena: a, tokens: r, truncated: false)
                return withSortedIndices(scan) { idx in Self.sparseVector(idx) }
            }
        }
    }

    /// The sorted bucket indices of a scan's features (one per occurrence, so repeats are adjacent), in temporary
    /// memory that is valid only inside `body`.
    @inline(__always)
    func withSortedIndices<R>(_ scan: SocialTokenizer.Scan, _ body: (UnsafeMutableBufferPointer<Int32>) -> R) -> R {
        // At most 5 features per token (a word: w, w2, i/d, caps, elongated).
        let capacity = 5 * scan.tokens.count + 8  // room to pad the features to a multiple of 8
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * capacity) { buffer in
            let n = Self.features(scan, mask: UInt64(dimensions - 1), into: buffer.baseAddress!)
            let idx = UnsafeMutableBufferPointer(rebasing: buffer[0..<n])
            Self.sort(idx, scratch: buffer.baseAddress! + capacity)
            return body(idx)
        }
    }

    /// Sorted indices (repeats adjacent) → the vector: 1/√n per occurrence, n the number of occurrences.
    static func sparseVector(_ idx: UnsafeMutableBufferPointer<Int32>) -> SparseVector {
        guard !idx.isEmpty else { return SparseVector(indices: [], values: []) }
        let scale = Float(1 / Double(idx.count).squareRoot())
        var distinct = 1
        for j in 1..<idx.count where idx[j] != idx[j - 1] { distinct += 1 }
        let values = [Float](unsafeUninitializedCapacity: distinct) { v, count in
            var k = -1
            for j in 0..<idx.count {
                if j > 0 && idx[j] == idx[j - 1] { v[k] += scale } else { k += 1; v[k] = scale }
            }
            count = distinct
        }
        let indices = [Int32](unsafeUninitializedCapacity: distinct) { out, count in
            var k = 0
            for j in 0..<idx.count where j == 0 || idx[j] != idx[j - 1] { out[k] = idx[j]; k += 1 }
            count = distinct
        }
        return SparseVector(indices: indices, values: values)
    }

    /// Sorts `a`, using `scratch` (at least as long, rounded up to 8): for the short lists of a short text, each
    /// element goes straight to its rank (how many are smaller, or equal and earlier), counted 8 at a time with SIMD
    /// compares and no data-dependent branches; the standard sort beyond.
    @inline(__always)
    static func sort(_ a: UnsafeMutableBufferPointer<Int32>, scratch: UnsafeMutablePointer<Int32>) {
        let n = a.count
        guard n > 1 else { return }
        if n > 96 { var a = a; a.sort(); return }
        let p = a.baseAddress!
        let blocks = (n + 7) / 8
        // Pad to whole blocks with values that never count (compared below only through the lane limit).
        for k in n..<(blocks * 8) { p[k] = Int32.max }
        let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        let raw = UnsafeRawPointer(p)
        for i in 0..<n {
            let x = SIMD8<Int32>(repeating: p[i])
            var counts = SIMD8<Int32>.zero
            for b in 0..<blocks {
                let v = raw.loadUnaligned(fromByteOffset: 32 * b, as: SIMD8<Int32>.self)
                let index = lanes &+ SIMD8<Int32>(repeating: Int32(8 * b))
                let less = (v .< x) .& (index .< SIMD8<Int32>(repeating: Int32(n)))
                let equalBefore = (v .== x) .& (index .< SIMD8<Int32>(repeating: Int32(i)))
                counts &-= unsafeBitCast(less .| equalBefore, to: SIMD8<Int32>.self)  // a true lane is -1
            }
            scratch[Int(counts.wrappedSum())] = p[i]
        }
        p.update(from: scratch, count: n)
    }

    /// FNV-1a 64 states after the namespace prefixes, so a name's hash continues from its prefix.
    struct Prefixes {
        let w = FNV().feed("w:").value, wNot = FNV().feed("w:NOT_").value, w2 = FNV().feed("w2:").value
        let c = FNV().feed("c:").value, cNot = FNV().feed("c:NOT_").value
        let c2 = FNV().feed("c2:").value, c2Not = FNV().feed("c2:NOT_").value
        let i = FNV().feed("i:").value, iNot = FNV().feed("i:NOT_").value
        let d = FNV().feed("d:").value, dNot = FNV().feed("d:NOT_").value
        let e = FNV().feed("e:").value, eNot = FNV().feed("e:NOT_").value
        let h = FNV().feed("h:").value
    }
    static let prefixes = Prefixes()

    @inline(__always)
    static func fnv(_ state: UInt64, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = state
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    /// Writes the bucket of every feature of the scan to `out` and returns how many (one per occurrence).
    static func features(_ scan: SocialTokenizer.Scan, mask: UInt64, into out: UnsafeMutablePointer<Int32>) -> Int {
        let P = prefixes
        var n = 0
        @inline(__always) func add(_ h: UInt64) { out[n] = Int32(truncatingIfNeeded: h & mask); n += 1 }
        var previous: SocialTokenizer.RawToken?
        var modifier: UInt8 = 0  // 1 "i:" or 2 "d:" when the previous word intensified or diminished
        for t in scan.tokens {
            let neg = t.has(.negated)
            let text = scan.bytes(t)
            switch t.kind {
            case .word, .number:
                add(fnv(neg ? P.wNot : P.w, text))
                if let p = previous, p.kind == .word || p.kind == .number {
                    add(fnv((fnv(P.w2, scan.bytes(p)) ^ 0x20) &* 0x0000_0100_0000_01b3, text))  // "w2:" prev " " word
                }
                if modifier == 1 { add(fnv(neg ? P.iNot : P.i, text)) }
                if modifier == 2 { add(fnv(neg ? P.dNot : P.d, text)) }
                if t.has(.allCaps) { add(caps) }
                if t.has(.elongated) { add(elongated) }
            case .cjk:
                add(fnv(neg ? P.cNot : P.c, text))
                if let p = previous, p.kind == .cjk { add(fnv(fnv(neg ? P.c2Not : P.c2, scan.bytes(p)), text)) }
                if !t.has(.intensifier) && !t.has(.diminisher) {
                    if modifier == 1 { add(fnv(neg ? P.iNot : P.i, text)) }
                    if modifier == 2 { add(fnv(neg ? P.dNot : P.d, text)) }
                }
            case .emoji, .emoticon:
                add(fnv(neg ? P.eNot : P.e, text))
            case .hashtag:
                add(fnv(P.h, text))
            case .url:
                add(url)
            case .mention:
                add(mention)
            case .punctuation:
                if t.has(.bang) { add(t.multiple ? bangs : bang) }
                if t.has(.question) { add(question) }
            }
            if t.kind != .punctuation {
                modifier = t.has(.intensifier) ? 1 : t.has(.diminisher) ? 2 : 0
            }
            previous = t
        }
        return n
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
