/// A tokenizer for social-media text (pure: no I/O, no Foundation), the first stage of the sentiment model.
///
/// One pass over the text's UTF-8 bytes, so the time is linear in the input, and the input is capped at
/// `maxScalars` (the rest is ignored and `Result.truncated` says so). ASCII is classified by bit masks and words of
/// ASCII letters take a one-pass fast path; other scalars are decoded and asked their Unicode properties. The same
/// core (`withScan`) feeds `tokenize` and `SentimentFeaturizer`, so the two cannot disagree. It produces:
/// - **words**, lowercased, with `allCaps` kept as a signal ("LOVE") and `elongated` set when a letter was
///   repeated three or more times ("soooo" → "soo", "goooood" → "good": runs are cut to two, so the common
///   doubled letters survive);
/// - **URLs** (`http://`, `https://`, `www.`) as one `url` token, **@mentions** as `mention`, **#hashtags** as
///   `hashtag` plus the words of a CamelCase or digit-separated tag ("#NeverAgain" → "never", "again");
/// - **emoji** (with their modifiers, variation selectors and ZWJ sequences kept together) and ASCII
///   **emoticons** (":)", ":-(", "<3", ":'(", "xD", …) as tokens of their own;
/// - **Chinese** (and other CJK) text as single characters of kind `cjk`: n-grams over them are left to the
///   feature stage, since character bigrams need no dictionary and work well on short comments;
/// - **negation scope**: after an English cue ("not", "never", "no", "don't", "without", …) the next three words,
///   up to punctuation, are marked `negated`; a second cue inside a scope flips it back. Chinese cues
///   (不, 没, 没有, 别, 无, 未, 非) negate the next three characters the same way ("没有不好": the 不 is negated,
///   and 好 is negated twice, so not negated);
/// - **intensifiers** and **diminishers** ("very", "extremely", "slightly", 很, 非常, 有点, …) are marked so
///   that the feature stage can weigh the next word.
public enum SocialTokenizer {
    /// The hard cap on the scalars of one text.
    public static let maxScalars = 4096

    public struct Token: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: String, Sendable, Equatable {
            case word, number, hashtag, mention, url, emoji, emoticon, cjk, punctuation
        }
        public var text: String
        public var kind: Kind
        public var allCaps = false
        public var elongated = false
        public var negated = false
        public var intensifier = false
        public var diminisher = false

        public init(_ text: String, _ kind: Kind) { self.text = text; self.kind = kind }

        public var description: String {
            var flags = ""
            if allCaps { flags += "^" }
            if elongated { flags += "~" }
            if negated { flags += "!" }
            if intensifier { flags += "+" }
            if diminisher { flags += "-" }
            return kind == .word ? text + flags : "\(kind.rawValue):\(text)\(flags)"
        }
    }

    public struct Result: Sendable, Equatable {
        public var tokens: [Token]
        /// True when the text was longer than `maxScalars` and only its start was read.
        public var truncated: Bool
    }

    static let negationCues: Set<String> = [
        "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "without", "cannot",
        "hardly", "barely", "isnt", "arent", "wasnt", "werent", "dont", "doesnt", "didnt", "cant", "couldnt",
        "wont", "wouldnt", "shouldnt", "aint", "havent", "hasnt", "hadnt", "mustnt", "neednt",
    ]
    static let cjkNegationCues: Set<String> = ["不", "没", "别", "无", "未", "非", "莫"]
    static let intensifiers: Set<String> = [
        "very", "really", "so", "extremely", "absolutely", "totally", "completely", "super", "incredibly",
        "highly", "hugely", "most", "too", "utterly", "truly", "especially", "particularly", "damn", "freaking",
        "很", "非常", "太", "超", "特别", "十分", "真", "极", "最",
    ]
    static let diminishers: Set<String> = [
        "slightly", "somewhat", "kinda", "kindof", "sorta", "little", "bit", "barely", "marginally", "fairly",
        "partly", "rather", "有点", "有些", "稍微", "略",
    ]
    /// ASCII emoticons, longest first within each start character.
    static let emoticons: [String] = [
        ":-)", ":)", ":-]", ":]", ":-D", ":D", ";-)", ";)", ":-P", ":P", ":-p", ":p", ":-(", ":(", ":'(", ":-[",
        ":[", ":-/", ":/", ":-|", ":|", ":-O", ":O", ":-o", ":o", ":*", "=)", "=(", "=D", "<3", "</3", "xD", "XD",
        "^_^", "^^", "-_-", "T_T", ";_;", "D:",
    ]

    public static func tokenize(_ text: String) -> Result {
        withScan(text) { scan in
            var out: [Token] = []
            out.reserveCapacity(scan.tokens.count)
            for r in scan.tokens {
                var t = Token(String(decoding: scan.bytes(r), as: UTF8.self), r.kind.publicKind)
                t.allCaps = r.has(.allCaps)
                t.elongated = r.has(.elongated)
                t.negated = r.has(.negated)
                t.intensifier = r.has(.intensifier)
                t.diminisher = r.has(.diminisher)
                out.append(t)
            }
            return Result(tokens: out, truncated: scan.truncated)
        }
    }

    // MARK: the scanning core (shared by `tokenize` and `SentimentFeaturizer`)

    /// A token as the core produces it: its (lowercased) text is `count` bytes at `start` of the scan's byte arena.
    struct RawToken {
        enum Kind: UInt8 {
            case word, number, hashtag, mention, url, emoji, emoticon, cjk, punctuation

            var publicKind: Token.Kind {
                switch self {
                case .word: .word
                case .number: .number
                case .hashtag: .hashtag
                case .mention: .mention
                case .url: .url
                case .emoji: .emoji
                case .emoticon: .emoticon
                case .cjk: .cjk
                case .punctuation: .punctuation
                }
            }

            init(_ k: Token.Kind) {
                switch k {
                case .word: self = .word
                case .number: self = .number
                case .hashtag: self = .hashtag
                case .mention: self = .mention
                case .url: self = .url
                case .emoji: self = .emoji
                case .emoticon: self = .emoticon
                case .cjk: self = .cjk
                case .punctuation: self = .punctuation
                }
            }
        }

        struct Flags: OptionSet {
            let rawValue: UInt8
            static let allCaps = Flags(rawValue: 1)
            static let elongated = Flags(rawValue: 2)
            static let negated = Flags(rawValue: 4)
            static let intensifier = Flags(rawValue: 8)
            static let diminisher = Flags(rawValue: 16)
            /// Punctuation that ends a clause (and so a negation scope): . , ! ? ; : and their CJK forms.
            static let endsClause = Flags(rawValue: 32)
            /// Punctuation starting with "!" or "！", and with "?" or "？" (the featurizer's flags).
            static let bang = Flags(rawValue: 64)
            static let question = Flags(rawValue: 128)
        }

        var start: Int32
        var count: Int32
        var kind: Kind
        var flags: Flags
        /// For punctuation: more than one character ("!!").
        var multiple = false
        /// For words: the lexicon flags of the text (`Lexicon`), looked up while scanning.
        var lex: UInt8 = 0

        @inline(__always) func has(_ f: Flags) -> Bool { flags.contains(f) }
    }

    /// The result of one scan: tokens whose texts live in `arena`; valid only inside `withScan`'s body.
    struct Scan {
        var arena: UnsafeMutableBufferPointer<UInt8>
        var tokens: UnsafeMutableBufferPointer<RawToken>
        var truncated: Bool

        @inline(__always) func bytes(_ t: RawToken) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: arena[Int(t.start)..<Int(t.start + t.count)])
        }
    }

    /// Scans `text` once (its UTF-8 bytes, with an ASCII fast path and the Unicode properties only for other
    /// scalars), marks negation scopes and modifiers, and hands the tokens to `body`. Scratch memory is temporary
    /// (on the stack when small), so a call allocates nothing else.
    static func withScan<R>(_ text: String, _ body: (Scan) -> R) -> R {
        var text = text
        return text.withUTF8 { utf8 in
            // The cap: cut at the start of scalar number maxScalars + 1 (a scalar is never longer than its bytes).
            var n = utf8.count
            var truncated = false
            if n > maxScalars {
                var scalars = 0
                for k in 0..<n where utf8[k] & 0xC0 != 0x80 {
                    if scalars == maxScalars { n = k; truncated = true; break }
                    scalars += 1
                }
            }
            // Bounds: a token consumes at least one scalar, and only a hashtag adds more tokens (its words, at most
            // one per scalar of its body); a token's text is at most 1.5× the bytes it consumed (lowercasing grows
            // a scalar by at most half: "İ" → "i̇"), twice for a hashtag and its words, 5 bytes for a URL (≥ 4).
            let tokenCapacity = 2 * n + 2
            let arenaCapacity = 3 * n + 32  // + 16 bytes that `asciiWord` may read past the end
            return withUnsafeTemporaryAllocation(of: RawToken.self, capacity: tokenCapacity) { tokens in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: arenaCapacity) { arena in
                    lexicon.table.withUnsafeBufferPointer { lex in
                        var s = Scanner(p: utf8.baseAddress!, n: n, arena: arena.baseAddress!, tokens: tokens.baseAddress!,
                                        lexicon: lex.baseAddress!)
                        if n > 0 { s.run() }
                        precondition(s.used + 16 <= arenaCapacity && s.count <= tokenCapacity)
                        let scan = Scan(arena: UnsafeMutableBufferPointer(rebasing: arena[0..<s.used]),
                                        tokens: UnsafeMutableBufferPointer(rebasing: tokens[0..<s.count]),
                                        truncated: truncated)
                        markScopes(scan, lex.baseAddress!)
                        return body(scan)
                    }
                }
            }
        }
    }

    /// ASCII character classes as 128-bit masks (checked against the Unicode properties in the tests).
    struct ASCIIClass {
        let lo: UInt64, hi: UInt64
        @inline(__always) func contains(_ b: UInt32) -> Bool {
            b < 64 ? (lo >> UInt64(b)) & 1 != 0 : (hi >> UInt64(b &- 64)) & 1 != 0
        }
        /// `isWhitespace`
        static let whitespace = ASCIIClass(lo: 0x1_0000_3e00, hi: 0)
        /// letters, digits, "'" and "_"
        static let word = ASCIIClass(lo: 0x03ff_0080_0000_0000, hi: 0x07ff_fffe_87ff_fffe)
        /// `isAlphabetic`
        static let alphabetic = ASCIIClass(lo: 0, hi: 0x07ff_fffe_07ff_fffe)
        static let uppercase = ASCIIClass(lo: 0, hi: 0x07ff_fffe)
        static let lowercase = ASCIIClass(lo: 0, hi: 0x07ff_fffe_0000_0000)
        /// `numericType != nil`
        static let digit = ASCIIClass(lo: 0x03ff_0000_0000_0000, hi: 0)
        /// general category P*
        static let punctuation = ASCIIClass(lo: 0x8c00_f7ee_0000_0000, hi: 0x2800_0000_b800_0001)
    }

    // ASCII answers inline; other scalars ask the Unicode properties out of line.
    @inline(__always) static func isWhitespace(_ v: UInt32) -> Bool {
        v < 128 ? ASCIIClass.whitespace.contains(v) : slowIsWhitespace(v)
    }
    @inline(__always) static func isWordScalar(_ v: UInt32) -> Bool {
        v < 128 ? ASCIIClass.word.contains(v) : slowIsWordScalar(v)
    }
    @inline(__always) static func isUppercase(_ v: UInt32) -> Bool {
        v < 128 ? ASCIIClass.uppercase.contains(v) : Unicode.Scalar(v)!.properties.isUppercase
    }
    @inline(__always) static func isLowercase(_ v: UInt32) -> Bool {
        v < 128 ? ASCIIClass.lowercase.contains(v) : Unicode.Scalar(v)!.properties.isLowercase
    }
    @inline(__always) static func isNumeric(_ v: UInt32) -> Bool {
        v < 128 ? ASCIIClass.digit.contains(v) : Unicode.Scalar(v)!.properties.numericType != nil
    }
    @inline(__always) static func isPunctuation(_ v: UInt32) -> Bool {
        v < 128 ? ASCIIClass.punctuation.contains(v) : isPunctuation(Unicode.Scalar(v)!)
    }
    @inline(never) static func slowIsWhitespace(_ v: UInt32) -> Bool { Unicode.Scalar(v)!.properties.isWhitespace }
    @inline(never) static func slowIsWordScalar(_ v: UInt32) -> Bool {
        let p = Unicode.Scalar(v)!.properties
        return (p.isAlphabetic && !isCJK(v)) || p.numericType != nil || v == 0x2019
    }
    @inline(__always) static func isCJK(_ v: UInt32) -> Bool {
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0xF900...0xFAFF, 0x3040...0x30FF, 0xAC00...0xD7AF:
            return true
        default: return false
        }
    }
    @inline(never) static func isEmoji(_ v: UInt32) -> Bool { v >= 128 && isEmoji(Unicode.Scalar(v)!) }

    /// The scanner's state: the input bytes, and the arena and token buffers it writes.
    struct Scanner {
        let p: UnsafePointer<UInt8>
        let n: Int
        let arena: UnsafeMutablePointer<UInt8>
        let tokens: UnsafeMutablePointer<RawToken>
        let lexicon: UnsafePointer<Lexicon.Entry>
        var used = 0
        var count = 0

        init(p: UnsafePointer<UInt8>, n: Int, arena: UnsafeMutablePointer<UInt8>, tokens: UnsafeMutablePointer<RawToken>,
             lexicon: UnsafePointer<Lexicon.Entry>) {
            self.p = p; self.n = n; self.arena = arena; self.tokens = tokens; self.lexicon = lexicon
        }

        /// The scalar at byte `i` (valid UTF-8) and its length.
        @inline(__always) func decode(_ i: Int) -> (UInt32, Int) {
            let b0 = UInt32(p[i])
            if b0 < 0x80 { return (b0, 1) }
            if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
            if b0 < 0xF0 {
                return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
            }
            return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
                        | UInt32(p[i + 3] & 0x3F), 4)
        }

        @inline(__always) mutating func put(_ b: UInt8) { arena[used] = b; used += 1 }
        /// Appends the lowercase mapping of `v`.
        @inline(__always) mutating func putLower(_ v: UInt32) {
            if v < 128 {
                put(UInt8(v) | (ASCIIClass.uppercase.contains(v) ? 0x20 : 0))
            } else {
                for u in Unicode.Scalar(v)!.properties.lowercaseMapping.utf8 { put(u) }
            }
        }
        @inline(__always) mutating func emit(_ start: Int, _ kind: RawToken.Kind, _ flags: RawToken.Flags = []) {
            tokens[count] = RawToken(start: Int32(start), count: Int32(used - start), kind: kind, flags: flags)
            count += 1
        }

        /// Case-insensitive ASCII prefix match at byte `i` (a non-ASCII scalar never lowercases to these).
        @inline(__always) func startsWithFolded(_ i: Int, _ prefix: StaticString) -> Bool {
            let len = prefix.utf8CodeUnitCount
            guard i + len <= n else { return false }
            let q = prefix.utf8Start
            for k in 0..<len {
                var c = p[i + k]
                if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                if c != q[k] { return false }
            }
            return true
        }

        mutating func run() {
            var i = 0
            var afterSpace = true  // i == 0 or the scalar before i is whitespace
            while i < n {
                let (s, len) = decode(i)
                if isWhitespace(s) { i += len; afterSpace = true; continue }
                // URLs
                if s == 0x68 || s == 0x48 || s == 0x77 || s == 0x57,
                   startsWithFolded(i, "http://") || startsWithFolded(i, "https://") || startsWithFolded(i, "www.") {
                    var j = i
                    while j < n {
                        let (t, l) = decode(j)
                        if isWhitespace(t) { break }
                        j += l
                    }
                    let start = used
                    put(0x3C); put(0x75); put(0x72); put(0x6C); put(0x3E)  // "<url>"
                    emit(start, .url)
                    i = j; afterSpace = false
                    continue
                }
                // Emoticons (at a token boundary only, so "a:b" is not one): the first pattern that matches.
                if afterSpace, s < 128, case let e = emoticon(at: i), e > 0 {
                    let end = i + e
                    var boundary = end == n
                    if !boundary { let (t, _) = decode(end); boundary = isWhitespace(t) || isPunctuation(t) }
                    if boundary {
                        let start = used
                        for k in i..<end { put(p[k]) }
                        emit(start, .emoticon)
                        i = end; afterSpace = false
                        continue
                    }
                }
                // Mentions and hashtags
                if s == 0x40 || s == 0x23 || s == 0xFF03, i + len < n {
                    let (t, _) = decode(i + len)
                    if isWordScalar(t) || isCJK(t) {
                        let bodyStart = i + len
                        var j = bodyStart
                        var hasCJK = false
                        while j < n {
                            let (u, l) = decode(j)
                            if isCJK(u) { hasCJK = true } else if !isWordScalar(u) { break }
                            j += l
                        }
                        let start = used
                        put(s == 0x40 ? 0x40 : 0x23)
                        var k = bodyStart
                        while k < j { let (u, l) = decode(k); putLower(u); k += l }
                        emit(start, s == 0x40 ? .mention : .hashtag)
                        if s != 0x40 && !hasCJK { hashtagWords(bodyStart, j) }
                        i = j; afterSpace = false
                        continue
                    }
                }
                if s >= 128 {
                    // Emoji, with modifiers, variation selectors and ZWJ sequences
                    if isEmoji(s) {
                        var j = i + len
                        while j < n {
                            let (t, l) = decode(j)
                            if t == 0xFE0F || t == 0xFE0E || (0xE0020...0xE007F).contains(t)
                                || (t >= 128 && Unicode.Scalar(t)!.properties.isEmojiModifier) {
                                j += l
                            } else if t == 0x200D, j + l < n, isEmoji(decode(j + l).0) {
                                j += l + decode(j + l).1
                            } else { break }
                        }
                        let start = used
                        var k = i
                        while k < j {
                            let (t, l) = decode(k)
                            if t != 0xFE0F && t != 0xFE0E { for q in k..<(k + l) { put(p[q]) } }
                            k += l
                        }
                        emit(start, .emoji)
                        i = j; afterSpace = false
                        continue
                    }
                    if isCJK(s) {
                        let start = used
                        for q in i..<(i + len) { put(p[q]) }
                        emit(start, .cjk)
                        i += len; afterSpace = false
                        continue
                    }
                }
                if s < 128 && ASCIIClass.word.contains(s), let j = asciiWord(i) {
                    i = j; afterSpace = false
                    continue
                }
                if isWordScalar(s) {
                    var j = i + len
                    while j < n {
                        let b = p[j]
                        if b < 128 {
                            if !ASCIIClass.word.contains(UInt32(b)) { break }
                            j += 1
                        } else {
                            let (t, l) = decode(j)
                            if !isWordScalar(t) { break }
                            j += l
                        }
                    }
                    word(i, j, hashtagPart: false)
                    i = j; afterSpace = false
                    continue
                }
                // Anything else: punctuation and symbols, one token per run of the same scalar ("!!!" is one)
                var j = i + len
                var run = 1
                while j < n {
                    let (t, l) = decode(j)
                    if t != s { break }
                    j += l; run += 1
                }
                let start = used
                for _ in 0..<min(run, 3) { for q in i..<(i + len) { put(p[q]) } }
                var flags: RawToken.Flags = []
                switch s {
                case 0x2E, 0x2C, 0x3F, 0x3B, 0x3A, 0x3002, 0xFF0C, 0xFF1F, 0xFF1B, 0xFF1A: flags.insert(.endsClause)
                case 0x21, 0xFF01: flags.formUnion([.endsClause, .bang])
                default: break
                }
                if s == 0x3F || s == 0xFF1F { flags.insert(.question) }
                emit(start, .punctuation, flags)
                tokens[count - 1].multiple = run > 1
                i = j; afterSpace = false
            }
        }

        /// The length of the first emoticon (in `emoticons` order) that the bytes at `i` start with, or 0: the
        /// list unrolled by first byte (patterns of one first byte never both match, except where the list puts
        /// the longer first, as ":-)" before ":)"; the tests check this against the list).
        @inline(__always) func emoticon(at i: Int) -> Int {
            let c0 = p[i]
            let c1: UInt8 = i + 1 < n ? p[i + 1] : 0
            let c2: UInt8 = i + 2 < n ? p[i + 2] : 0
            switch c0 {
            case 0x3A:  // ':'
                switch c1 {
                case 0x2D:  // ":-" then ) ] D P p ( [ / | O o
                    switch c2 {
                    case 0x29, 0x5D, 0x44, 0x50, 0x70, 0x28, 0x5B, 0x2F, 0x7C, 0x4F, 0x6F: return 3
                    default: return 0
                    }
                case 0x29, 0x5D, 0x44, 0x50, 0x70, 0x28, 0x5B, 0x2F, 0x7C, 0x4F, 0x6F, 0x2A: return 2
                case 0x27: return c2 == 0x28 ? 3 : 0  // ":'("
                default: return 0
                }
            case 0x3B:  // ';' ";-)", ";)", ";_;"
                if c1 == 0x2D && c2 == 0x29 { return 3 }
                if c1 == 0x29 { return 2 }
                if c1 == 0x5F && c2 == 0x3B { return 3 }
                return 0
            case 0x3D: return c1 == 0x29 || c1 == 0x28 || c1 == 0x44 ? 2 : 0  // "=)", "=(", "=D"
            case 0x3C: return c1 == 0x33 ? 2 : c1 == 0x2F && c2 == 0x33 ? 3 : 0  // "<3", "</3"
            case 0x78, 0x58: return c1 == 0x44 ? 2 : 0  // "xD", "XD"
            case 0x5E: return c1 == 0x5F && c2 == 0x5E ? 3 : c1 == 0x5E ? 2 : 0  // "^_^", "^^"
            case 0x2D: return c1 == 0x5F && c2 == 0x2D ? 3 : 0  // "-_-"
            case 0x54: return c1 == 0x5F && c2 == 0x54 ? 3 : 0  // "T_T"
            case 0x44: return c1 == 0x3A ? 2 : 0  // "D:"
            default: return 0
            }
        }

        /// A word of ASCII bytes from `i`, the common case: one pass that finds its end, lowercases, counts,
        /// cuts elongation and packs the text for the lexicon. Nil (and nothing written) when a non-ASCII scalar
        /// follows, which `word(_:_:hashtagPart:)` then handles.
        @inline(__always) mutating func asciiWord(_ i: Int) -> Int? {
            // The common shape first: no apostrophe and no byte three times in a row, so every byte is kept.
            let out = arena + used
            var letters = 0, upper = 0, digits = 0
            var odd = false  // an apostrophe or a run of three
            var b1: UInt8 = 0, b2: UInt8 = 0
            var k = i
            while k < n {
                let b = p[k]
                if b >= 128 { return slowASCIIWord(i) }  // a non-ASCII scalar follows: nil
                if !ASCIIClass.word.contains(UInt32(b)) { break }
                let isUpper = b &- 0x41 < 26
                let alpha = (b | 0x20) &- 0x61 < 26
                letters &+= alpha ? 1 : 0
                upper &+= isUpper ? 1 : 0
                digits &+= b &- 0x30 < 10 ? 1 : 0
                odd = odd || b == 0x27 || (b == b1 && b == b2)
                b2 = b1; b1 = b
                out[k - i] = isUpper ? b | 0x20 : b
                k += 1
            }
            if odd { return slowASCIIWord(i) }
            let length = k - i
            var flags: RawToken.Flags = []
            if letters >= 2 && upper == letters { flags.insert(.allCaps) }
            var lex: UInt8 = 0
            if length > 0 && length <= Lexicon.maxLength {
                // The key: the text's bytes, read 16 at a time (the arena has room) and cut to its length.
                let raw = UnsafeRawPointer(out)
                var lo = raw.loadUnaligned(as: UInt64.self).littleEndian
                var hi = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
                if length < 8 { lo &= (1 << UInt64(8 * length)) &- 1; hi = 0 } else if length < 16 { hi &= (1 << UInt64(8 * (length - 8))) &- 1 }
                lex = Lexicon.flags(lexicon, lo, hi)
            }
            tokens[count] = RawToken(start: Int32(used), count: Int32(length), kind: letters == 0 && digits > 0 ? .number : .word,
                                     flags: flags, lex: lex)
            count += 1
            used += length
            return k
        }

        /// `asciiWord` for words with apostrophes or runs (and nil at a non-ASCII scalar).
        @inline(never) mutating func slowASCIIWord(_ i: Int) -> Int? {
            var letters = 0, upper = 0, digits = 0
            var elongated = false
            var run = 0
            var last: UInt8 = 0  // the last kept byte (as written)
            var lo: UInt64 = 0, hi: UInt64 = 0
            let start = used
            var k = i
            while k < n {
                let b = p[k]
                if b >= 128 { used = start; return nil }
                if !ASCIIClass.word.contains(UInt32(b)) { break }
                k += 1
                if b == 0x27 { continue }
                let alpha = ASCIIClass.alphabetic.contains(UInt32(b))
                if alpha {
                    letters += 1
                    if b <= 0x5A { upper += 1 }
                } else if b <= 0x39 {
                    digits += 1
                }
                if b == last { run += 1 } else { run = 1 }
                if run >= 3 && alpha { elongated = true; continue }
                last = b
                let o = alpha ? b | 0x20 : b
                let at = used - start
                if at < 8 { lo |= UInt64(o) << UInt64(8 * at) } else if at < 16 { hi |= UInt64(o) << UInt64(8 * (at - 8)) }
                arena[used] = o; used += 1
            }
            var flags: RawToken.Flags = []
            if letters >= 2 && upper == letters { flags.insert(.allCaps) }
            if elongated { flags.insert(.elongated) }
            let length = used - start
            tokens[count] = RawToken(start: Int32(start), count: Int32(length), kind: letters == 0 && digits > 0 ? .number : .word,
                                     flags: flags,
                                     lex: length > 0 && length <= Lexicon.maxLength ? Lexicon.flags(lexicon, lo, hi) : 0)
            count += 1
            return k
        }

        /// A word token over bytes i..<j (any scalars): lowercased, apostrophes dropped ("don't" → "dont"), runs of 3+ of a
        /// letter cut to 2.
        @inline(never) mutating func word(_ i: Int, _ j: Int, hashtagPart: Bool) {
            var letters = 0, upper = 0, digits = 0
            var elongated = false
            var run = 0
            var last: UInt32 = 0xFFFF_FFFF  // the last kept scalar (as written, not lowercased)
            let start = used
            var k = i
            while k < j {
                let b = p[k]
                if b < 128 {
                    // ASCII: letters, digits, "'" and "_" only (a word's scalars).
                    k += 1
                    let v = UInt32(b)
                    if b == 0x27 { continue }
                    let alpha = ASCIIClass.alphabetic.contains(v)
                    if alpha {
                        letters += 1
                        if b <= 0x5A { upper += 1 }
                    } else if b <= 0x39 {
                        digits += 1
                    }
                    if v == last { run += 1 } else { run = 1 }
                    if run >= 3 && alpha { elongated = true; continue }
                    last = v
                    put(alpha ? b | 0x20 : b)
                } else {
                    let (v, l) = decode(k)
                    k += l
                    if v == 0x2019 { continue }
                    let props = Unicode.Scalar(v)!.properties
                    let alpha = props.isAlphabetic
                    if alpha { letters += 1; if props.isUppercase { upper += 1 } }
                    if props.numericType != nil { digits += 1 }
                    if v == last { run += 1 } else { run = 1 }
                    if run >= 3 && alpha { elongated = true; continue }
                    last = v
                    putLower(v)
                }
            }
            var flags: RawToken.Flags = []
            if !hashtagPart && letters >= 2 && upper == letters { flags.insert(.allCaps) }  // "#USA" is no emphasis
            if elongated { flags.insert(.elongated) }
            emit(start, letters == 0 && digits > 0 ? .number : .word, flags)
            tokens[count - 1].lex = Lexicon.flags(lexicon, UnsafeBufferPointer(start: arena + start, count: used - start))
        }

        /// The words of a hashtag body (bytes i..<j, no CJK): split at lower→Upper changes, letter↔digit changes
        /// and underscores; nothing when it is one word.
        mutating func hashtagWords(_ i: Int, _ j: Int) {
            // First pass: count the parts; second: emit them (parts are contiguous byte ranges).
            func forEachPart(_ body: (Int, Int) -> Void) {
                var partStart = i
                var prev: UInt32? = nil  // the last scalar of the current part
                var k = i
                while k < j {
                    let (c, l) = decode(k)
                    if c == 0x5F {
                        if k > partStart { body(partStart, k) }
                        partStart = k + l; prev = nil; k += l
                        continue
                    }
                    if let pv = prev {
                        let cu = isUppercase(c)
                        let lowerToUpper = cu && isLowercase(pv)
                        let acronymEnd = cu && isUppercase(pv) && k + l < j && isLowercase(decode(k + l).0)
                        let digitChange = isNumeric(pv) != isNumeric(c)
                        if lowerToUpper || acronymEnd || digitChange {
                            body(partStart, k)
                            partStart = k
                        }
                    }
                    prev = c
                    k += l
                }
                if j > partStart { body(partStart, j) }
            }
            var parts = 0
            forEachPart { _, _ in parts += 1 }
            guard parts > 1 else { return }
            forEachPart { a, b in word(a, b, hashtagPart: true) }
        }
    }

    // MARK: lexicon lookups by packed bytes

    struct Lexicon {
        struct Entry { var lo: UInt64; var hi: UInt64; var flags: UInt8 }
        static let negation: UInt8 = 1, cjkNegation: UInt8 = 2, intensifier: UInt8 = 4, diminisher: UInt8 = 8
        static let maxLength = 16
        static let slots = 256
        var table: [Entry]

        init() {
            table = Array(repeating: Entry(lo: 0, hi: 0, flags: 0), count: Self.slots)
            func add(_ words: Set<String>, _ f: UInt8) {
                for w in words {
                    let bytes = Array(w.utf8)
                    precondition(bytes.count <= Self.maxLength && !bytes.isEmpty)
                    let (lo, hi) = bytes.withUnsafeBufferPointer { Self.pack($0) }
                    var slot = Self.slot(lo, hi)
                    while table[slot].flags != 0 && (table[slot].lo != lo || table[slot].hi != hi) {
                        slot = (slot + 1) & (Self.slots - 1)
                    }
                    table[slot].lo = lo; table[slot].hi = hi; table[slot].flags |= f
                }
            }
            add(SocialTokenizer.negationCues, Self.negation)
            add(SocialTokenizer.cjkNegationCues, Self.cjkNegation)
            add(SocialTokenizer.intensifiers, Self.intensifier)
            add(SocialTokenizer.diminishers, Self.diminisher)
        }

        /// Up to 16 bytes packed little-endian into two words (the empty byte is never part of a key).
        @inline(__always) static func pack(_ b: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
            var lo: UInt64 = 0, hi: UInt64 = 0
            for k in 0..<min(b.count, 8) { lo |= UInt64(b[k]) << UInt64(8 * k) }
            if b.count > 8 { for k in 8..<b.count { hi |= UInt64(b[k]) << UInt64(8 * (k - 8)) } }
            return (lo, hi)
        }
        @inline(__always) static func slot(_ lo: UInt64, _ hi: UInt64) -> Int {
            Int(truncatingIfNeeded: ((lo ^ (hi &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9) >> 56)
        }

        @inline(__always) static func flags(_ t: UnsafePointer<Entry>, _ b: UnsafeBufferPointer<UInt8>) -> UInt8 {
            guard !b.isEmpty, b.count <= Self.maxLength else { return 0 }
            let (lo, hi) = Self.pack(b)
            return flags(t, lo, hi)
        }

        /// The flags of a packed key (zero when it is no lexicon word).
        @inline(__always) static func flags(_ t: UnsafePointer<Entry>, _ lo: UInt64, _ hi: UInt64) -> UInt8 {
            var slot = Self.slot(lo, hi)
            while true {
                let e = t[slot]
                if e.flags == 0 { return 0 }
                if e.lo == lo && e.hi == hi { return e.flags }
                slot = (slot + 1) & (Self.slots - 1)
            }
        }
    }
    static let lexicon = Lexicon()

    // MARK: pieces

    static func isEmoji(_ s: Unicode.Scalar) -> Bool {
        if s.properties.isEmojiPresentation { return true }
        switch s.value {
        case 0x2600...0x27BF, 0x1F300...0x1FAFF, 0x2B50, 0x2B55, 0x2764, 0x203C, 0x2049: return s.properties.isEmoji
        default: return false
        }
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .otherPunctuation, .openPunctuation, .closePunctuation, .dashPunctuation, .finalPunctuation,
             .initialPunctuation, .connectorPunctuation: return true
        default: return false
        }
    }

    /// Negation scopes and intensifier/diminisher marks. A cue toggles `negated` on the next three words,
    /// characters, emoji or emoticons of its clause; a cue inside another cue's scope toggles again, so a double
    /// negation reads as none. Each token is visited once and each cue marks at most three more: linear.
    static func markScopes(_ scan: Scan, _ lexicon: UnsafePointer<Lexicon.Entry>) {
        let tokens = scan.tokens
        let count = tokens.count
        var k = 0
        while k < count {
            let t = tokens[k]
            guard t.kind == .word || t.kind == .cjk else { k += 1; continue }
            var pairIsModifier = false
            if t.kind == .cjk, k + 1 < count, tokens[k + 1].kind == .cjk {
                // Two-character intensifiers and diminishers ("非常", "有点") mark both characters, and such a pair
                // is no negation cue ("非常好" is "very good"). The two texts are adjacent in the arena.
                let pair = UnsafeBufferPointer(rebasing: scan.arena[Int(t.start)..<Int(t.start + t.count + tokens[k + 1].count)])
                let f = Lexicon.flags(lexicon, pair)
                if f & Lexicon.intensifier != 0 { tokens[k].flags.insert(.intensifier); tokens[k + 1].flags.insert(.intensifier) }
                if f & Lexicon.diminisher != 0 { tokens[k].flags.insert(.diminisher); tokens[k + 1].flags.insert(.diminisher) }
                pairIsModifier = f & (Lexicon.intensifier | Lexicon.diminisher) != 0
            }
            let text = scan.bytes(t)
            let f = t.kind == .word ? t.lex : Lexicon.flags(lexicon, text)
            if f & Lexicon.intensifier != 0 { tokens[k].flags.insert(.intensifier) }
            if f & Lexicon.diminisher != 0 { tokens[k].flags.insert(.diminisher) }
            let cue = t.kind == .word ? f & Lexicon.negation != 0 : !pairIsModifier && f & Lexicon.cjkNegation != 0
            guard cue else { k += 1; continue }
            // "没有" is one cue: its scope starts after 有.
            var m = k + 1
            if t.kind == .cjk, text.elementsEqual("没".utf8), m < count, scan.bytes(tokens[m]).elementsEqual("有".utf8) { m += 1 }
            var covered = 0
            while m < count, covered < 3, !tokens[m].has(.endsClause) {
                switch tokens[m].kind {
                case .word, .cjk, .emoji, .emoticon:
                    tokens[m].flags.formSymmetricDifference(.negated)
                    covered += 1
                default: break
                }
                m += 1
            }
            k += 1
        }
    }
}
