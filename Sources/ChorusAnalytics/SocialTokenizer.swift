/// A tokenizer for social-media text (pure: no I/O, no Foundation), the first stage of the sentiment model.
///
/// One pass over the text's Unicode scalars, so the time is linear in the input, and the input is capped at
/// `maxScalars` (the rest is ignored and `Result.truncated` says so). It produces:
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
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(min(text.unicodeScalars.count, maxScalars))
        var truncated = false
        for s in text.unicodeScalars {
            if scalars.count == maxScalars { truncated = true; break }
            scalars.append(s)
        }
        var out: [Token] = []
        var i = 0
        let n = scalars.count
        func isWordScalar(_ s: Unicode.Scalar) -> Bool {
            (s.properties.isAlphabetic && !isCJK(s)) || s.properties.numericType != nil || s == "'" || s == "’"
                || s == "_"
        }
        while i < n {
            let s = scalars[i]
            if s.properties.isWhitespace { i += 1; continue }
            // URLs
            if startsWith(scalars, i, "http://") || startsWith(scalars, i, "https://") || startsWith(scalars, i, "www.") {
                var j = i
                while j < n, !scalars[j].properties.isWhitespace { j += 1 }
                out.append(Token("<url>", .url))
                i = j
                continue
            }
            // Emoticons (at a token boundary only, so "a:b" is not one)
            if i == 0 || scalars[i - 1].properties.isWhitespace, let e = emoticon(scalars, i) {
                let end = i + e.unicodeScalars.count
                if end == n || scalars[end].properties.isWhitespace || isPunctuation(scalars[end]) {
                    out.append(Token(e, .emoticon))
                    i = end
                    continue
                }
            }
            // Mentions and hashtags
            if (s == "@" || s == "#" || s == "＃"), i + 1 < n, isWordScalar(scalars[i + 1]) || isCJK(scalars[i + 1]) {
                var j = i + 1
                while j < n, isWordScalar(scalars[j]) || isCJK(scalars[j]) { j += 1 }
                let body = Array(scalars[(i + 1)..<j])
                if s == "@" {
                    out.append(Token("@" + lower(body), .mention))
                } else {
                    out.append(Token("#" + lower(body), .hashtag))
                    for part in hashtagWords(body) { out.append(part) }
                }
                i = j
                continue
            }
            // Emoji, with modifiers, variation selectors and ZWJ sequences
            if isEmoji(s) {
                var j = i + 1
                while j < n {
                    let t = scalars[j]
                    if t.properties.isEmojiModifier || t.value == 0xFE0F || t.value == 0xFE0E || (0xE0020...0xE007F).contains(t.value) {
                        j += 1
                    } else if t.value == 0x200D, j + 1 < n, isEmoji(scalars[j + 1]) {
                        j += 2
                    } else { break }
                }
                var e = ""
                for t in scalars[i..<j] where t.value != 0xFE0F && t.value != 0xFE0E { e.unicodeScalars.append(t) }
                out.append(Token(e, .emoji))
                i = j
                continue
            }
            if isCJK(s) {
                out.append(Token(String(Character(s)), .cjk))
                i += 1
                continue
            }
            if isWordScalar(s) {
                var j = i
                while j < n, isWordScalar(scalars[j]) { j += 1 }
                out.append(word(Array(scalars[i..<j])))
                i = j
                continue
            }
            // Anything else: punctuation and symbols, one token per run of the same scalar ("!!!" is one)
            var j = i + 1
            while j < n, scalars[j] == s { j += 1 }
            var p = ""
            for _ in 0..<min(j - i, 3) { p.unicodeScalars.append(s) }
            out.append(Token(p, .punctuation))
            i = j
        }
        markScopes(&out)
        return Result(tokens: out, truncated: truncated)
    }

    // MARK: pieces

    static func startsWith(_ s: [Unicode.Scalar], _ i: Int, _ prefix: String) -> Bool {
        var j = i
        for p in prefix.unicodeScalars {
            guard j < s.count else { return false }
            let c = s[j]
            guard c == p || (c.properties.isUppercase && c.properties.lowercaseMapping == String(p)) else { return false }
            j += 1
        }
        return true
    }

    static func emoticon(_ s: [Unicode.Scalar], _ i: Int) -> String? {
        for e in emoticons where startsWith(s, i, e) && caseExact(s, i, e) { return e }
        return nil
    }

    static func caseExact(_ s: [Unicode.Scalar], _ i: Int, _ e: String) -> Bool {
        var j = i
        for p in e.unicodeScalars {
            if s[j] != p { return false }
            j += 1
        }
        return true
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0xF900...0xFAFF, 0x3040...0x30FF, 0xAC00...0xD7AF:
            return true
        default: return false
        }
    }

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

    static func lower(_ s: [Unicode.Scalar]) -> String {
        var out = ""
        for c in s { out += c.properties.lowercaseMapping }
        return out
    }

    /// A word token: lowercased, apostrophes dropped ("don't" → "dont"), runs of 3+ of a letter cut to 2.
    static func word(_ s: [Unicode.Scalar]) -> Token {
        var letters = 0, upper = 0, digits = 0
        var kept: [Unicode.Scalar] = []
        var elongated = false
        var run = 0
        for c in s {
            if c == "'" || c == "’" { continue }
            if c.properties.isAlphabetic { letters += 1; if c.properties.isUppercase { upper += 1 } }
            if c.properties.numericType != nil { digits += 1 }
            if let last = kept.last, last == c { run += 1 } else { run = 1 }
            if run >= 3 && c.properties.isAlphabetic { elongated = true; continue }
            kept.append(c)
        }
        var t = Token(lower(kept), letters == 0 && digits > 0 ? .number : .word)
        t.allCaps = letters >= 2 && upper == letters
        t.elongated = elongated
        return t
    }

    /// The words of a hashtag body: split at lower→Upper changes, letter↔digit changes and underscores.
    static func hashtagWords(_ body: [Unicode.Scalar]) -> [Token] {
        if body.contains(where: isCJK) { return [] }
        var parts: [[Unicode.Scalar]] = [[]]
        for (k, c) in body.enumerated() {
            if c == "_" { parts.append([]); continue }
            if let prev = parts.last?.last {
                let lowerToUpper = prev.properties.isLowercase && c.properties.isUppercase
                let acronymEnd = prev.properties.isUppercase && c.properties.isUppercase && k + 1 < body.count
                    && body[k + 1].properties.isLowercase
                let digitChange = (prev.properties.numericType != nil) != (c.properties.numericType != nil)
                if lowerToUpper || acronymEnd || digitChange { parts.append([]) }
            }
            parts[parts.count - 1].append(c)
        }
        let words = parts.filter { !$0.isEmpty }
        guard words.count > 1 else { return [] }
        return words.map { w in
            var t = word(w)
            t.allCaps = false  // "#USA" says nothing about emphasis
            return t
        }
    }

    static func endsClause(_ t: Token) -> Bool {
        t.kind == .punctuation && (t.text.unicodeScalars.first.map { ".,!?;:。，！？；：".unicodeScalars.contains($0) } ?? false)
    }

    /// Negation scopes and intensifier/diminisher marks. A cue toggles `negated` on the next three words,
    /// characters, emoji or emoticons of its clause; a cue inside another cue's scope toggles again, so a double
    /// negation reads as none. Each token is visited once and each cue marks at most three more: linear.
    static func markScopes(_ tokens: inout [Token]) {
        var k = 0
        while k < tokens.count {
            let t = tokens[k]
            guard t.kind == .word || t.kind == .cjk else { k += 1; continue }
            var pairIsModifier = false
            if t.kind == .cjk, k + 1 < tokens.count, tokens[k + 1].kind == .cjk {
                // Two-character intensifiers and diminishers ("非常", "有点") mark both characters, and such a pair
                // is no negation cue ("非常好" is "very good").
                let pair = t.text + tokens[k + 1].text
                if intensifiers.contains(pair) { tokens[k].intensifier = true; tokens[k + 1].intensifier = true }
                if diminishers.contains(pair) { tokens[k].diminisher = true; tokens[k + 1].diminisher = true }
                pairIsModifier = intensifiers.contains(pair) || diminishers.contains(pair)
            }
            if intensifiers.contains(t.text) { tokens[k].intensifier = true }
            if diminishers.contains(t.text) { tokens[k].diminisher = true }
            let cue = t.kind == .word ? negationCues.contains(t.text) : !pairIsModifier && cjkNegationCues.contains(t.text)
            guard cue else { k += 1; continue }
            // "没有" is one cue: its scope starts after 有.
            var m = k + 1
            if t.text == "没", m < tokens.count, tokens[m].text == "有" { m += 1 }
            var covered = 0
            while m < tokens.count, covered < 3, !endsClause(tokens[m]) {
                switch tokens[m].kind {
                case .word, .cjk, .emoji, .emoticon:
                    tokens[m].negated.toggle()
                    covered += 1
                default: break
                }
                m += 1
            }
            k += 1
        }
    }
}
