@testable import ChorusAnalytics
import ChorusModel
import Testing

/// Every rule of the social-text tokenizer, with English, Chinese and emoji cases, and a fuzz test.
@Suite struct SocialTokenizerTests {
    func tokens(_ s: String) -> [SocialTokenizer.Token] { SocialTokenizer.tokenize(s).tokens }
    func texts(_ s: String) -> [String] { tokens(s).map(\.text) }
    func token(_ s: String, _ text: String) -> SocialTokenizer.Token? { tokens(s).first { $0.text == text } }

    @Test func wordsAreLoweredWithCapsAndElongationKept() {
        #expect(texts("I LOVE this Phone") == ["i", "love", "this", "phone"])
        #expect(token("I LOVE it", "love")?.allCaps == true)
        #expect(token("I LOVE it", "i")?.allCaps == false)  // one letter is no emphasis
        let g = token("goooood stuff", "good")
        #expect(g?.elongated == true)
        #expect(token("good stuff", "good")?.elongated == false)
        #expect(texts("soooo happy") == ["soo", "happy"])
        #expect(texts("don't") == ["dont"])
        #expect(tokens("42 times").first?.kind == .number)
    }

    @Test func urlsMentionsAndHashtags() {
        let t = tokens("Check https://t.co/AbC?x=1 and www.shop.com @BrandX #BlackFriday #covid19 #USA")
        #expect(t.filter { $0.kind == .url }.count == 2)
        #expect(t.contains { $0.kind == .mention && $0.text == "@brandx" })
        #expect(t.contains { $0.kind == .hashtag && $0.text == "#blackfriday" })
        // CamelCase and digit changes split into words; a one-word tag adds nothing.
        let words = t.filter { $0.kind == .word }.map(\.text)
        #expect(words.contains("black") && words.contains("friday") && words.contains("covid"))
        #expect(!words.contains("usa"))
        #expect(texts("#NeverAgain") == ["#neveragain", "never", "again"])
        #expect(texts("#HTMLParser") == ["#htmlparser", "html", "parser"])
        #expect(texts("#好评") == ["#好评"])
    }

    @Test func emojiAndEmoticonsAreTokens() {
        let t = tokens("great :) :-( <3 xD 👍🏽 ❤️ 👨‍👩‍👧 a:b")
        #expect(t.filter { $0.kind == .emoticon }.map(\.text) == [":)", ":-(", "<3", "xD"])
        let emoji = t.filter { $0.kind == .emoji }.map(\.text)
        #expect(emoji.count == 3, "\(emoji)")
        #expect(emoji[0].unicodeScalars.count == 2)  // the thumb keeps its skin tone
        #expect(emoji[1] == "❤")  // the variation selector is dropped
        #expect(emoji[2].unicodeScalars.count == 5)  // one ZWJ family
        #expect(!t.contains { $0.kind == .emoticon && $0.text.hasPrefix(":b") })  // "a:b" is no emoticon
        #expect(texts("wow!!!!!") == ["wow", "!!!"])
    }

    @Test func negationScopeEndsAfterThreeWordsOrAtPunctuation() {
        #expect(token("this is not good", "good")?.negated == true)
        #expect(token("never disappointed", "disappointed")?.negated == true)
        #expect(token("I don't like it", "like")?.negated == true)
        let t = tokens("not bad, great")
        #expect(t.first { $0.text == "bad" }?.negated == true)
        #expect(t.first { $0.text == "great" }?.negated == false)  // the comma ends the scope
        let far = tokens("not a very very good idea")
        #expect(far.first { $0.text == "good" }?.negated == false)  // past the three-word scope
        #expect(token("not not good", "good")?.negated == false)  // double negation
        #expect(token("no :)", ":)")?.negated == true)
    }

    @Test func chineseIsSplitIntoCharactersWithItsOwnNegation() {
        #expect(tokens("很好").allSatisfy { $0.kind == .cjk })
        #expect(token("不好", "好")?.negated == true)
        let double = tokens("这个没有不好")
        #expect(double.first { $0.text == "不" }?.negated == true)
        #expect(double.first { $0.text == "好" }?.negated == false)
        #expect(double.first { $0.text == "有" }?.negated == false)  // part of the cue 没有
        // 非常 is "very", not a negation.
        let very = tokens("非常好")
        #expect(very.first { $0.text == "好" }?.negated == false)
        #expect(very.filter(\.intensifier).count == 2)
        #expect(tokens("有点贵").filter(\.diminisher).count == 2)
        #expect(texts("好评！Great") == ["好", "评", "！", "great"])
    }

    @Test func intensifiersAndDiminishersAreMarked() {
        #expect(token("very good", "very")?.intensifier == true)
        #expect(token("slightly annoying", "slightly")?.diminisher == true)
        #expect(token("good", "good")?.intensifier == false)
    }

    @Test func noInputCrashesAndLongInputIsCapped() {
        var rng = SplitMix64(seed: 99)
        let pool: [Unicode.Scalar] = Array("aA#@:;)(<3 \u{200D}\u{FE0F}👍🏽不没有好😀xDhttp://www.'’_!。，".unicodeScalars)
        for round in 0..<300 {
            var s = ""
            let n = Int(rng.next() % 600)
            for _ in 0..<n {
                if rng.unit() < 0.15, let u = Unicode.Scalar(UInt32(rng.next() % 0x2FFFF)) {
                    s.unicodeScalars.append(u)
                } else {
                    s.unicodeScalars.append(pool[Int(rng.next() % UInt64(pool.count))])
                }
            }
            let r = SocialTokenizer.tokenize(s)
            #expect(r.tokens.count <= s.unicodeScalars.count + s.unicodeScalars.count, "round \(round)")
        }
        // Adversarial shapes stay linear (a cue per word, one long hashtag, one long ZWJ chain) and are capped.
        let cues = String(repeating: "not ", count: 5000)
        let r = SocialTokenizer.tokenize(cues)
        #expect(r.truncated && r.tokens.count == SocialTokenizer.maxScalars / 4)
        let tag = "#" + String(repeating: "aB", count: 10_000)
        #expect(SocialTokenizer.tokenize(tag).truncated)
        let chain = String(repeating: "👍\u{200D}", count: 10_000)
        #expect(SocialTokenizer.tokenize(chain).tokens.count <= 2)
    }

    @Test func asciiClassMasksMatchTheUnicodeProperties() {
        for v in UInt32(0)..<128 {
            let p = Unicode.Scalar(v)!.properties
            #expect(SocialTokenizer.ASCIIClass.whitespace.contains(v) == p.isWhitespace, "\(v)")
            #expect(SocialTokenizer.ASCIIClass.alphabetic.contains(v) == p.isAlphabetic, "\(v)")
            #expect(SocialTokenizer.ASCIIClass.uppercase.contains(v) == p.isUppercase, "\(v)")
            #expect(SocialTokenizer.ASCIIClass.lowercase.contains(v) == p.isLowercase, "\(v)")
            #expect(SocialTokenizer.ASCIIClass.digit.contains(v) == (p.numericType != nil), "\(v)")
            #expect(SocialTokenizer.ASCIIClass.punctuation.contains(v) == SocialTokenizer.isPunctuation(Unicode.Scalar(v)!), "\(v)")
            let word = p.isAlphabetic || p.numericType != nil || v == 0x27 || v == 0x5F
            #expect(SocialTokenizer.ASCIIClass.word.contains(v) == word, "\(v)")
            #expect(!SocialTokenizer.isEmoji(v) && !SocialTokenizer.isCJK(v))
        }
    }

    /// The unrolled emoticon matcher finds the first pattern of `emoticons` (in its order) at every string of up to
    /// three characters over the patterns' characters.
    @Test func emoticonMatcherAgreesWithThePatternList() {
        let alphabet = Array(Set(SocialTokenizer.emoticons.joined().utf8)) + Array("a ".utf8)
        var inputs: [[UInt8]] = [[]]
        for _ in 0..<3 { inputs = inputs + inputs.flatMap { s in alphabet.map { s + [$0] } } }
        var arena = [UInt8](repeating: 0, count: 64)
        var raw = [SocialTokenizer.RawToken](repeating: .init(start: 0, count: 0, kind: .word, flags: []), count: 8)
        for s in Set(inputs) where !s.isEmpty {
            let expected = SocialTokenizer.emoticons.first { s.starts(with: Array($0.utf8)) }?.utf8.count ?? 0
            s.withUnsafeBufferPointer { b in
                arena.withUnsafeMutableBufferPointer { a in
                    raw.withUnsafeMutableBufferPointer { r in
                        let lexicon = [SocialTokenizer.Lexicon.Entry(lo: 0, hi: 0, flags: 0)]
                        lexicon.withUnsafeBufferPointer { l in
                            let scanner = SocialTokenizer.Scanner(p: b.baseAddress!, n: b.count, arena: a.baseAddress!,
                                                                  tokens: r.baseAddress!, lexicon: l.baseAddress!)
                            #expect(scanner.emoticon(at: 0) == expected, "\(String(decoding: s, as: UTF8.self))")
                        }
                    }
                }
            }
        }
    }
}
