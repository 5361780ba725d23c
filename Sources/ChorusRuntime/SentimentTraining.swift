import ChorusAnalytics
import ChorusData
import ChorusModel
import ChorusWire
import Foundation

/// Labelled files read, de-duplicated and split, ready to ingest or to train on.
public struct PreparedLabels: Sendable {
    public struct Item: Sendable {
        public var record: LabelledText
        public var heldOut: Bool
        public var file: String
    }
    public var items: [Item]
    public var sources: [SentimentModelInfo.Source]
    public var rejects: [LabelledReject]
    public var duplicates: Int
    public var conflicting: Int
    public var heldOutPercent: Int
    /// Sets evaluated as binary polarity (VADER's human-rated sets): gold neutral left out, macro-F1 over
    /// negative and positive.
    public var binarySets: Set<String>

    /// Reads every file (format by name, or `formats[path]`), drops duplicate texts (first copy kept) and texts
    /// seen with two labels, and splits by `LabelledText.isHeldOut`. Lexicon entries are always training examples.
    /// `evaluationOnly` files are held out whole (e.g. VADER's sets: scored, never trained on).
    public static func prepare(paths: [String], formats: [String: LabelledFormat] = [:], heldOutPercent: Int,
                               evaluationOnly: Set<String> = [], lexiconWeight: Double = 0.25,
                               balance: Bool = false, dedup: Bool = true) throws -> PreparedLabels {
        var all: [(LabelledText, String, LabelledFormat)] = []
        var sources: [SentimentModelInfo.Source] = []
        var rejects: [LabelledReject] = []
        var binary = Set<String>()
        for path in paths {
            let fmt = formats[path] ?? LabelledFormat.detect(path: path)
            let f = try LabelledReader.read(path: path, format: fmt, lexiconWeight: lexiconWeight)
            rejects += f.rejects
            let set = LabelledFormat.setName(path: path, format: fmt)
            if fmt == .vader { binary.insert(set) }
            sources.append(.init(file: (path as NSString).lastPathComponent, set: set,
                                 format: fmt.rawValue, read: f.records.count + f.rejects.count, rejected: f.rejects.count,
                                 train: 0, heldOut: 0))
            all += f.records.map { ($0, path, fmt) }
        }
        let d = dedup ? LabelledDedup.dedup(all.map(\.0))
            : LabelledDedup.Result(records: all.map(\.0), duplicates: 0, conflicting: 0)
        // Map kept records back to their file (dedup keeps order and first copies).
        var fileOf: [UInt64: (String, LabelledFormat)] = [:]
        for (r, p, fmt) in all where fileOf[r.key] == nil { fileOf[r.key] = (p, fmt) }
        var items: [Item] = []
        items.reserveCapacity(d.records.count)
        for r in d.records {
            let (path, fmt) = fileOf[r.key]!
            let held = fmt != .lexicon
                && (evaluationOnly.contains(path) || LabelledText.isHeldOut(r.text, percent: heldOutPercent))
            items.append(Item(record: r, heldOut: held, file: path))
            if let i = sources.firstIndex(where: { $0.file == (path as NSString).lastPathComponent && $0.set == r.set }) {
                if held { sources[i].heldOut += 1 } else { sources[i].train += 1 }
            }
        }
        if balance {
            // Each labelled set's classes weigh alike in training: weight × n / (classes × n_class).
            var counts: [String: [Int]] = [:]
            for it in items where !it.heldOut && it.record.set != "lexicon" {
                counts[it.record.set, default: [0, 0, 0]][it.record.label.rawValue] += 1
            }
            for i in items.indices where !items[i].heldOut && items[i].record.set != "lexicon" {
                let c = counts[items[i].record.set]!
                let present = c.filter { $0 > 0 }.count
                items[i].record.weight *= Double(c.reduce(0, +)) / Double(present * c[items[i].record.label.rawValue])
            }
        }
        return PreparedLabels(items: items, sources: sources, rejects: rejects, duplicates: d.duplicates,
                              conflicting: d.conflicting, heldOutPercent: heldOutPercent, binarySets: binary)
    }
}

public enum SentimentEvaluation {
    /// Scores held-out texts and returns metrics per set (binary sets: gold neutral left out, macro-F1 over the
    /// polar classes, a neutral prediction counts as a miss).
    public static func metrics(confusions: [String: ConfusionMatrix], binarySets: Set<String>) -> [SentimentModelInfo.SetMetrics] {
        confusions.keys.sorted().map { set in
            let m = confusions[set]!
            let binary = binarySets.contains(set)
            let classes = binary ? [0, 2] : (0..<m.classes).filter { m.support($0) > 0 }
            var f1: [String: Double] = [:]
            for c in classes { f1[SentimentLabel(rawValue: c)!.name] = m.f1(c) }
            return .init(set: set, examples: m.total, accuracy: m.accuracy, macroF1: m.macroF1(over: classes), f1: f1)
        }
    }

    public static func confusions(scorer: SentimentScorer, items: [PreparedLabels.Item],
                                  binarySets: Set<String>) -> [String: ConfusionMatrix] {
        var out: [String: ConfusionMatrix] = [:]
        for it in items where it.heldOut {
            if binarySets.contains(it.record.set) && it.record.label == .neutral { continue }
            out[it.record.set, default: ConfusionMatrix(classes: 3)]
                .add(gold: it.record.label.rawValue, predicted: scorer.score(it.record.text).label)
        }
        return out
    }
}

extension SentimentEvaluation {
    /// Expected calibration error of the most probable class over held-out texts, per set: texts are binned by
    /// that class's probability (10 equal bins), and ECE = Σ (bin size / n) · |accuracy − mean probability| in the
    /// bin. 0 is perfectly calibrated. Binary sets leave out gold neutral texts.
    public static func calibration(scorer: SentimentScorer, items: [PreparedLabels.Item], binarySets: Set<String>) -> [String: Double] {
        var bins: [String: [(n: Int, correct: Int, conf: Double)]] = [:]
        for it in items where it.heldOut {
            if binarySets.contains(it.record.set) && it.record.label == .neutral { continue }
            let s = scorer.score(it.record.text)
            let p = Double(s.probabilities[s.label])
            guard p.isFinite else { continue }   // Int(NaN) would trap; a NaN probability has no bin
            let b = min(9, max(0, Int(p * 10)))
            var set = bins[it.record.set] ?? Array(repeating: (0, 0, 0.0), count: 10)
            set[b].n += 1
            set[b].correct += s.label == it.record.label.rawValue ? 1 : 0
            set[b].conf += p
            bins[it.record.set] = set
        }
        return bins.mapValues { set in
            let n = Double(set.reduce(0) { $0 + $1.n })
            return n == 0 ? 0 : set.reduce(0.0) { acc, b in
                b.n == 0 ? acc : acc + Double(b.n) / n * abs(Double(b.correct) / Double(b.n) - b.conf / Double(b.n))
            }
        }
    }
}

/// Trains in this process (the reference the cluster trainer must match, and `--local`).
public enum LocalSentimentTrainer {
    public static func train(_ prepared: PreparedLabels, name: String, dimensions: Int, lambda: Double, iterations: Int,
                             tolerance: Double = 1e-7, command: String, progress: (SentimentModelInfo.Epoch) -> Void) -> SentimentModelFile {
        let start = ContinuousClock.now
        let featurizer = SentimentFeaturizer(dimensions: dimensions)
        var train: [SoftmaxTraining.Example] = []
        var held: [(SparseVector, Int, String)] = []
        for it in prepared.items {
            let x = featurizer.vector(it.record.text)
            if it.heldOut {
                if prepared.binarySets.contains(it.record.set) && it.record.label == .neutral { continue }
                held.append((x, it.record.label.rawValue, it.record.set))
            } else {
                train.append(.init(x: x, label: it.record.label.rawValue, weight: it.record.weight))
            }
        }
        var history: [SentimentModelInfo.Epoch] = []
        var lastConfusions: [String: ConfusionMatrix] = [:]
        var finalLoss = 0.0
        let model = SoftmaxTraining.fit(train, classes: 3, dimensions: dimensions, lambda: lambda, iterations: iterations,
                                            tolerance: tolerance) { it, f, params in
            let scorer = SentimentScorer(dimensions: dimensions, classes: 3, parameters: params.map { Float($0) })
            var conf: [String: ConfusionMatrix] = [:]
            for (x, gold, set) in held { conf[set, default: ConfusionMatrix(classes: 3)].add(gold: gold, predicted: scorer.score(x).label) }
            var total = ConfusionMatrix(classes: 3)
            conf.values.forEach { total.merge($0) }
            let e = SentimentModelInfo.Epoch(epoch: it, loss: f, heldOutAccuracy: total.accuracy)
            history.append(e)
            lastConfusions = conf
            finalLoss = f
            progress(e)
        }
        let info = SentimentModelInfo(
            name: name, version: 1, createdAt: ISO8601DateFormatter().string(from: Date()), dimensions: dimensions,
            lambda: lambda, epochs: history.count, finalLoss: finalLoss, heldOutPercent: prepared.heldOutPercent,
            duplicates: prepared.duplicates, conflicting: prepared.conflicting, sources: prepared.sources,
            heldOut: SentimentEvaluation.metrics(confusions: lastConfusions, binarySets: prepared.binarySets),
            history: history, workers: 0, partitions: 0, trainingSeconds: (ContinuousClock.now - start).seconds,
            command: command, notes: "trained in one process (--local)")
        return SentimentModelFile(info: info, parameters: model.parameters.map { Float($0) })
    }
}

/// Figures of a labelled-text ingest. They reconcile: read = stored + duplicates + rejected + skipped.
public struct LabelledIngestReport: Codable, Sendable {
    public var read: Int
    public var stored: Int
    /// Texts already stored byte for byte (re-running an ingest), plus repeated texts inside the files.
    public var duplicates: Int
    public var rejected: Int
    /// Texts left out because they appeared with two labels.
    public var conflicting: Int
    public var dataset: String
    public var seconds: Double
}

extension ChorusClient {
    /// Writes prepared labelled texts into the cluster (role labelled-text, placed by the text hash). Idempotent:
    /// a second run stores nothing and counts every text as a duplicate.
    public func ingestLabelled(_ prepared: PreparedLabels, dataset: String) async throws -> LabelledIngestReport {
        let start = ContinuousClock.now
        guard !dataset.isEmpty, !dataset.utf8.contains(0) else { throw ChorusError(.usage, "the dataset name must be non-empty") }
        let m = try await partitionMapWithOwners()
        let map = Locked(m)
        let ingestor = Ingestor(client: self, options: IngestOptions(paths: [], rejectsPath: "/dev/null"))
        var byNode: [String: [Chorus_V1_Put]] = [:]
        for it in prepared.items {
            let key = it.record.key
            var msg = Chorus_V1_LabelledText()
            msg.text = it.record.text
            msg.label = UInt32(it.record.label.rawValue)
            msg.weight = it.record.weight
            msg.set = it.record.set
            msg.heldOut = it.heldOut
            msg.file = (it.file as NSString).lastPathComponent
            msg.line = UInt32(it.record.line)
            var put = Chorus_V1_Put()
            put.partition = UInt32(key % UInt64(m.partitionCount))
            put.role = .labelledText
            var id = Array(dataset.utf8) + [0]
            withUnsafeBytes(of: key.bigEndian) { id.append(contentsOf: $0) }
            put.keyID = Data(id)
            put.value = try msg.serializedData()
            put.counted = true
            byNode[m.assignments[Int(put.partition)].owner, default: []].append(put)
        }
        var stored = 0, duplicates = 0
        try await withThrowingTaskGroup(of: Chorus_V1_WriteReply.self) { group in
            var inFlight = 0
            for (node, puts) in byNode {
                for chunk in stride(from: 0, to: puts.count, by: 2000) {
                    let batch = Ingestor.Outbound(node: node, puts: Array(puts[chunk..<min(chunk + 2000, puts.count)]),
                                                  counted: min(2000, puts.count - chunk))
                    if inFlight >= 8, let r = try await group.next() {
                        stored += Int(r.stored); duplicates += Int(r.duplicates); inFlight -= 1
                    }
                    group.addTask { try await ingestor.send(batch, map: map) }
                    inFlight += 1
                }
            }
            for try await r in group { stored += Int(r.stored); duplicates += Int(r.duplicates) }
        }
        let read = prepared.sources.reduce(0) { $0 + $1.read }
        return LabelledIngestReport(read: read, stored: stored, duplicates: duplicates + prepared.duplicates,
                                    rejected: prepared.rejects.count, conflicting: prepared.conflicting, dataset: dataset,
                                    seconds: (ContinuousClock.now - start).seconds)
    }

    public func models(name: String = "") async throws -> [Chorus_V1_ModelSummary] {
        var r = Chorus_V1_ModelRequest()
        r.name = name
        guard case let .modelList(l) = try await coordinator.call(.modelList(r), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return l.models
    }

    public func model(name: String, version: Int = 0, withFile: Bool = false) async throws -> Chorus_V1_ModelReply {
        var r = Chorus_V1_ModelRequest()
        r.name = name
        r.version = UInt32(version)
        r.withFile = withFile
        guard case let .model(m) = try await coordinator.call(.modelGet(r), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return m
    }

    public func putModel(_ bytes: [UInt8], name: String = "") async throws -> Chorus_V1_ModelSummary {
        var r = Chorus_V1_ModelPut()
        r.file = Data(bytes)
        r.name = name
        guard case let .model(m) = try await coordinator.call(.modelPut(r), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return m.summary
    }
}

extension ChorusClient {
    /// Series, keys or alerts kept by the coordinator after a `sentiment` job (JSON text).
    public func sentimentQuery(_ what: String, key: String = "", daily: Bool = false, limit: Int = 0) async throws -> String {
        var q = Chorus_V1_SentimentQuery()
        q.what = what
        q.key = key
        q.daily = daily
        q.limit = UInt32(max(0, limit))
        guard case let .sentiment(r) = try await coordinator.call(.sentimentQuery(q), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r.json
    }

    /// One content item's sentiment (from the primary of its partition), or nil before a `sentiment` job.
    public func contentSentiment(_ contentId: String) async throws -> String? {
        let deadline = Deadline(timeout)
        let map = try await partitionMap(deadline)
        let p = Placement(partitionCount: map.partitionCount).partition(of: contentId)
        var g = Chorus_V1_ProfileGet()
        g.userID = contentId
        g.partition = p
        g.kind = "content-sentiment"
        guard case let .profile(r) = try await onPrimary(p, .profileGet(g), deadline: deadline) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r.found ? r.profileJson : nil
    }
}
