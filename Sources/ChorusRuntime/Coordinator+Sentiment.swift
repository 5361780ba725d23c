import ChorusAnalytics
import ChorusData
import ChorusModel
import ChorusWire
import Foundation

/// What the client sends with a `sentiment-train` job about the labelled files (param `provenance`, JSON).
public struct SentimentProvenance: Codable, Sendable {
    public var sources: [SentimentModelInfo.Source]
    public var duplicates: Int
    public var conflicting: Int
    public var heldOutPercent: Int
    public var binarySets: [String]
    public var command: String
    public init(sources: [SentimentModelInfo.Source], duplicates: Int, conflicting: Int, heldOutPercent: Int,
                binarySets: [String], command: String) {
        self.sources = sources; self.duplicates = duplicates; self.conflicting = conflicting
        self.heldOutPercent = heldOutPercent; self.binarySets = binarySets; self.command = command
    }
    enum CodingKeys: String, CodingKey {
        case sources, duplicates, conflicting, heldOutPercent = "held_out_percent", binarySets = "binary_sets", command
    }
}

/// Keys of stored models in the coordinator's store: "model/<name>/<version, 8 digits>".
enum ModelKeys {
    static func key(_ name: String, _ version: Int) -> [UInt8] { Array("model/\(name)/\(String(format: "%08d", version))".utf8) }
    static func prefix(_ name: String) -> [UInt8] { Array("model/\(name)/".utf8) }
    static let all = Array("model/".utf8)
}

extension Coordinator {
    // MARK: - Model store

    /// Stores a model file as the next version of its name; returns that version.
    /// The version is chosen and written in one job of the serial `storeQueue`, off the cooperative pool.
    func storeModel(_ file: SentimentModelFile, name: String? = nil, shipped: Bool = false) async throws -> Chorus_V1_ModelSummary {
        var named = file
        let n = name ?? named.info.name
        guard !n.isEmpty, n.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ChorusError(.usage, "model name '\(n)' must be letters, digits, '-', '_' or '.'")
        }
        named.info.name = n
        if shipped { named.info.notes = (named.info.notes.isEmpty ? "" : named.info.notes + "; ") + "shipped with Chorus" }
        let unnumbered = named
        let (f, bytes) = try await storeQueue.run { () throws -> (SentimentModelFile, [UInt8]) in
            var f = unnumbered
            // Versions are numbered per coordinator: a file exported elsewhere as version 2 may be version 1 here.
            // The number it carried is kept in the notes, so `model show` explains the difference.
            let carried = f.info.version
            f.info.version = (try self.latestModelVersion(n) ?? 0) + 1
            if carried > 0, carried != f.info.version, !f.info.notes.contains("was version \(carried) ") {
                f.info.notes = (f.info.notes.isEmpty ? "" : f.info.notes + "; ")
                    + "was version \(carried) where it was exported; versions are numbered per coordinator"
            }
            let bytes = try f.encoded()
            do { try self.store.put(ModelKeys.key(n, f.info.version), bytes, sync: true) } catch { throw ChorusError(.storage, "\(error)") }
            return (f, bytes)
        }
        logger.info("model stored", metadata: ["model": "\(n)", "version": "\(f.info.version)", "bytes": "\(bytes.count)"])
        return try summary(f.info, bytes: bytes.count)
    }

    func latestModelVersion(_ name: String) throws -> Int? {
        var latest: Int?
        try store.scan(prefix: ModelKeys.prefix(name)) { key, _ in
            let s = String(decoding: key, as: UTF8.self)
            if let v = Int(s.split(separator: "/").last ?? "") { latest = max(latest ?? 0, v) }
            return true
        }
        return latest
    }

    func summary(_ info: SentimentModelInfo, bytes: Int) throws -> Chorus_V1_ModelSummary {
        var s = Chorus_V1_ModelSummary()
        s.name = info.name
        s.version = UInt32(info.version)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        s.infoJson = String(decoding: try enc.encode(info), as: UTF8.self)
        s.bytes = UInt64(bytes)
        s.shipped = info.notes.contains("shipped with Chorus")
        if let d = ISO8601DateFormatter().date(from: info.createdAt) { s.storedAtMs = Int64(d.timeIntervalSince1970 * 1000) }
        return s
    }

    func listModels(_ r: Chorus_V1_ModelRequest) throws -> Chorus_V1_ModelList {
        var list = Chorus_V1_ModelList()
        try store.scan(prefix: r.name.isEmpty ? ModelKeys.all : ModelKeys.prefix(r.name)) { _, value in
            let f = try SentimentModelFile.decode([UInt8](value))
            list.models.append(try summary(f.info, bytes: value.count))
            return true
        }
        return list
    }

    func getModel(_ r: Chorus_V1_ModelRequest) throws -> Chorus_V1_ModelReply {
        let name = r.name.isEmpty ? SentimentModelFile.defaultName : r.name
        guard let version = r.version > 0 ? Int(r.version) : try latestModelVersion(name),
              let bytes = try store.get(ModelKeys.key(name, version)) else {
            throw ChorusError(.notFound, "no model '\(name)'\(r.version > 0 ? " version \(r.version)" : "")",
                              hint: "see `chorus model list`")
        }
        let f = try SentimentModelFile.decode(bytes)
        var reply = Chorus_V1_ModelReply()
        reply.summary = try summary(f.info, bytes: bytes.count)
        if r.withFile { reply.file = Data(bytes) }
        return reply
    }

    /// At start: stores the shipped default model if no model of that name is stored yet.
    func loadShippedModel() async {
        do {
            guard try latestModelVersion(SentimentModelFile.defaultName) == nil else { return }
            guard let path = SentimentModelFile.shippedPath() else {
                logger.notice("no shipped sentiment model found (models/sentiment-default.chsm); train one with `chorus model train sentiment`")
                return
            }
            let s = try await storeModel(try SentimentModelFile.read(path: path), shipped: true)
            logger.info("shipped sentiment model loaded", metadata: ["path": "\(path)", "version": "\(s.version)"])
        } catch {
            logger.warning("could not load the shipped sentiment model", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Training

    /// Runs a `sentiment-train` job: st-load (each partition featurizes its labelled texts once), then L-BFGS where
    /// every evaluation of the objective is a stage "st-eval-N". Partition results are added in partition order,
    /// so the sums, and the model, do not depend on how many workers there are.
    func runSentimentTrain(_ job: Chorus_V1_JobInfo) async throws -> String {
        let start = ContinuousClock.now
        let p = job.params
        let dims = Int(p["dimensions"] ?? "") ?? (1 << 18)
        let lambda = Double(p["lambda"] ?? "") ?? 2e-5
        let iterations = max(1, Int(p["iterations"] ?? "") ?? 120)
        let tolerance = Double(p["tolerance"] ?? "") ?? 1e-7
        let name = p["name"] ?? SentimentModelFile.defaultName
        let provenance = try p["provenance"].map { try JSONDecoder().decode(SentimentProvenance.self, from: Data($0.utf8)) }
        let binary = Set(provenance?.binarySets ?? [])
        let partitions = Int(await state.map.partitionCount)

        _ = try await state.update(job.id) { $0.stage = "sentiment-train: loading and featurizing labelled texts" }
        var loads: [UInt32: Chorus_V1_SentimentLoadResult] = [:]
        try await runStage(job: job, stage: "st-load", broadcast: nil, tracker: BroadcastTracker()) { r in
            loads[r.partition] = r.sentimentLoad
        }
        var trainWeight = 0.0, trainCount = 0, heldCount = 0
        for l in loads.values {
            trainWeight += l.trainWeight
            trainCount += l.train.reduce(0) { $0 + Int($1) }
            heldCount += l.heldOut.reduce(0) { $0 + Int($1) }
        }
        guard trainCount > 0 else {
            throw JobFailure(message: "dataset '\(p["dataset"] ?? "sentiment")' has no training texts; ingest labelled files first")
        }
        let workers = await state.nodeInfos().filter { $0.state == .active }.count

        var step: UInt32 = 0
        var lastConfusion: [String: ConfusionMatrix] = [:]
        let model = SoftmaxModel(classes: 3, dimensions: dims)
        func evaluate(_ x: [Double]) async throws -> (Double, [Double]) {
            step += 1
            var b = Chorus_V1_JobBroadcast()
            b.jobID = job.id
            b.sentimentStep = step
            b.softmaxParameters = x.withUnsafeBytes { Data($0) }
            var results: [UInt32: Chorus_V1_SentimentGradient] = [:]
            try await runStage(job: job, stage: "st-eval-\(step)", broadcast: b, tracker: BroadcastTracker()) { r in
                // A worker's reply is remote input: indices inside the parameters, parallel lengths, finite sums.
                let g = r.sentimentGradient
                guard g.indices.count == g.values.count, g.confusion.count == 9 * g.sets.count,
                      g.indices.allSatisfy({ Int($0) < x.count }), g.values.allSatisfy(\.isFinite) else {
                    throw ChorusError(.internal, "partition \(r.partition): malformed gradient from the worker "
                                      + "(\(g.indices.count) indices, \(g.values.count) values, \(g.sets.count) sets, "
                                      + "\(g.confusion.count) confusion counts)")
                }
                results[r.partition] = g
            }
            var loss = 0.0
            var g = [Double](repeating: 0, count: x.count)
            var conf: [String: ConfusionMatrix] = [:]
            for part in results.keys.sorted() {  // fixed order: the same sums with 1 or N workers
                guard let r = results[part] else { continue }
                loss += r.loss
                for (i, v) in zip(r.indices, r.values) { g[Int(i)] += v }
                for (si, set) in r.sets.enumerated() {
                    var m = conf[set] ?? ConfusionMatrix(classes: 3)
                    for k in 0..<9 {
                        let gold = k / 3
                        if binary.contains(set) && gold == 1 { continue }  // binary sets: gold neutral left out
                        m.counts[k] += Int(r.confusion[si * 9 + k])
                    }
                    conf[set] = m
                }
            }
            lastConfusion = conf.filter { $0.value.total > 0 }
            var m = model
            m.parameters = x
            return SoftmaxTraining.objective(model: m, lossSum: loss, gradientSum: g, count: max(trainWeight, 1), lambda: lambda)
        }

        var opt = LBFGS(memory: 8)
        var x = model.parameters
        var (f, g) = try await evaluate(x)
        var history: [SentimentModelInfo.Epoch] = []
        for epoch in 1...iterations {
            guard let decrease = try await opt.step(x: &x, f: &f, g: &g, evaluate: evaluate) else { break }
            var total = ConfusionMatrix(classes: 3)
            lastConfusion.values.forEach { total.merge($0) }
            history.append(.init(epoch: epoch, loss: f, heldOutAccuracy: total.accuracy))
            let line = String(format: "sentiment-train: epoch %d/%d, loss %.5f, held-out accuracy %.4f", epoch, iterations, f, total.accuracy)
            _ = try await state.update(job.id) { j in
                j.stage = line
                j.tasksDone = UInt32(partitions * (1 + epoch))
            }
            if decrease < tolerance { break }
        }
        let metrics = SentimentEvaluation.metrics(confusions: lastConfusion, binarySets: binary)
        let info = SentimentModelInfo(
            name: name, version: 0, createdAt: ISO8601DateFormatter().string(from: Date()), dimensions: dims,
            lambda: lambda, epochs: history.count, finalLoss: f, heldOutPercent: provenance?.heldOutPercent ?? 0,
            duplicates: provenance?.duplicates ?? 0, conflicting: provenance?.conflicting ?? 0,
            sources: provenance?.sources ?? [], heldOut: metrics, history: history, workers: workers,
            partitions: partitions, trainingSeconds: (ContinuousClock.now - start).seconds,
            command: provenance?.command ?? "", notes: "trained on the cluster (job \(job.id), dataset \(p["dataset"] ?? "sentiment"))")
        let stored = try await storeModel(SentimentModelFile(info: info, parameters: x.map { Float($0) }))
        _ = try await state.update(job.id) { $0.tasksDone = $0.tasksTotal }
        let report: [String: Any] = [
            "model": stored.name, "version": Int(stored.version), "epochs": history.count, "final_loss": f,
            "train_texts": trainCount, "held_out_texts": heldCount, "workers": workers, "partitions": partitions,
            "seconds": (ContinuousClock.now - start).seconds, "evaluations": Int(step),
            "held_out": metrics.map { ["set": $0.set, "examples": $0.examples, "accuracy": $0.accuracy, "macro_f1": $0.macroF1] as [String: Any] },
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)
    }
}
