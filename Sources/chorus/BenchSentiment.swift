import ArgumentParser
import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import Foundation

/// Sentiment scoring throughput on one thread: tokenize only, featurize (tokenize + hash) and full score, over a file
/// of texts (one per line). Prints texts/s for each stage and checksums of the stages' outputs, so two builds can
/// be compared for speed and for identical results.
struct BenchSentiment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-sentiment",
        abstract: "Measure sentiment tokenize / featurize / score throughput on one thread (benchmark helper).",
        shouldDisplay: false)

    @Option(help: "Texts, one per line.") var texts: String
    @Option(help: "A sentiment model file (default: random weights, 3 × 2^18 + 3 floats).") var model: String?
    @Option(help: "Minimum seconds per measurement.") var seconds: Double = 1.5
    @Option(help: "Stages to time, comma-separated (tokenize, featurize, score).") var stages = "tokenize,featurize,score"
    @Flag(help: "Print each text's tokens and feature indices instead of timing (for comparing builds).") var dump = false

    func run() async throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: texts))
        // Split on the newline byte (a "\r\n" is one Character, so a String split on "\n" would miss it).
        let lines = data.split(separator: 10, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
        guard !lines.isEmpty else { throw ValidationError("no texts in \(texts)") }
        let scorer: SentimentScorer
        if let model {
            scorer = try SentimentModelFile.read(path: model).scorer()
        } else {
            let d = 1 << 18
            var rng = SplitMix64(seed: 7)
            scorer = SentimentScorer(dimensions: d, classes: 3, parameters: (0..<(3 * d + 3)).map { _ in Float(rng.gaussian() * 0.1) })
        }
        let featurizer = scorer.featurizer
        if dump {
            var out = ""
            for t in lines {
                let v = featurizer.vector(t)
                out += SocialTokenizer.tokenize(t).tokens.map(\.description).joined(separator: " ")
                out += "\t" + v.indices.map(String.init).joined(separator: ",") + "\n"
            }
            FileHandle.standardOutput.write(Data(out.utf8))
            return
        }
        let bytes = lines.reduce(0) { $0 + $1.utf8.count }
        print("texts: \(lines.count), mean \(bytes / lines.count) UTF-8 bytes")
        // Checksums over one pass each (the timed passes only keep their results alive).
        var tokens = 0
        for t in lines { tokens += SocialTokenizer.tokenize(t).tokens.count }
        var check: UInt64 = 0
        for t in lines {
            let v = featurizer.vector(t)
            for (i, x) in zip(v.indices, v.values) { check = (check ^ UInt64(UInt32(bitPattern: i))) &* 0x100000001b3 &+ UInt64(x.bitPattern) }
        }
        var sum: Double = 0
        for t in lines { sum += Double(scorer.score(t).score) }

        let only = Set(stages.split(separator: ",").map(String.init))
        var sink = 0
        if only.contains("tokenize") {
        let tok = measure {
            for t in lines { sink &+= SocialTokenizer.tokenize(t).tokens.count }
        }
        print(String(format: "tokenize:  %10.0f texts/s  (%d tokens)", Double(lines.count) / tok, tokens))
        }
        if only.contains("featurize") {
        let feat = measure {
            for t in lines { sink &+= featurizer.vector(t).indices.count }
        }
        print(String(format: "featurize: %10.0f texts/s  (feature checksum %llu)", Double(lines.count) / feat, check))
        }
        var total: Float = 0
        if only.contains("score") {
        let score = measure {
            for t in lines { total += scorer.score(t).score }
        }
        print(String(format: "score:     %10.0f texts/s  (mean score %.6f)", Double(lines.count) / score, sum / Double(lines.count)))
        }
        if sink == 42 && total == 42 { print("") }  // keeps the results alive
    }

    /// Seconds per pass over the texts: one warm-up pass, then passes until `seconds` have gone by.
    func measure(_ body: () -> Void) -> Double {
        body()
        let start = ContinuousClock.now
        var passes = 0
        var elapsed = 0.0
        repeat {
            body()
            passes += 1
            let d = ContinuousClock.now - start
            elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        } while elapsed < seconds
        return elapsed / Double(passes)
    }
}
