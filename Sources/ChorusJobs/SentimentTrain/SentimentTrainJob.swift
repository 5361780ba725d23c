import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

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

/// Job kind `sentiment-train`: trains a sentiment model (softmax regression on hashed features) on the labelled
/// texts of a dataset, and stores it as the next version of its name (`chorus model train sentiment` wraps it).
///
/// Stages: `st-load` (each partition featurizes its labelled texts once, kept in the job's worker state), then
/// L-BFGS where every evaluation of the objective is a stage `st-eval-N` with the parameters as its broadcast.
/// Partition results are added in partition order, so the sums, and the model, do not depend on how many workers
/// there are.
public enum SentimentTrainJob: Job {
    public static let kind = "sentiment-train"

    /// The stages, and one evaluation's parameters for 1024 dimensions (3 × 1024 + 3 float64).
    public static var fuzzSeeds: [FuzzSeed] {
        var b = Chorus_V1_Jobs_SentimentTrainParameters()
        b.step = 1
        b.parameters = FloatPacking.packDoubles([Double](repeating: 0.01, count: 3 * 1024 + 3))
        let params = ["dimensions": "1024"]
        return [FuzzSeed(stage: "st-load", params: params),
                FuzzSeed(stage: "st-eval-1", params: params, broadcast: try? b.serializedData())]
    }
    public static let about = "trains a sentiment model (`chorus model train sentiment` wraps it)"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; training does not use it"),
        .init("dataset", .text(maxBytes: 128), "sentiment", "the labelled dataset (`chorus model train` loads it)"),
        // The featurizer hashes into a power-of-two table; any other size would trap every worker.
        .init("dimensions", .powerOfTwo(1024...(1 << 24)), String(1 << 18), "hashed feature buckets (a power of two)"),
        .init("lambda", .number(0...1), "2e-5", "L2 regularisation"),
        .init("iterations", .integer(1...10_000), "120", "L-BFGS iterations at most"),
        .init("tolerance", .number(0...1), "1e-7", "stop when the loss improves less than this"),
        .init("name", .text(maxBytes: 128), SentimentModelFile.defaultName, "the name the model is stored under"),
        .init("provenance", .text(maxBytes: 1 << 20), "", "JSON written by `chorus model train`", internalUse: true),
    ]

    /// st-load + one evaluation per epoch (line-search retries are not counted ahead).
    public static func tasksPerPartition(_ params: JobParams) -> Int {
        1 + max(1, params.int("iterations", 120))
    }

    /// The largest parameter vector a broadcast may carry: 3 classes × 2^24 buckets + 3 biases.
    static let maxParameters = 3 * (1 << 24) + 3

    // MARK: driver

    public static func drive(_ ctx: JobContext) async throws -> String {
        let start = ContinuousClock.now
        let p = ctx.params
        let dims = p.int("dimensions", 1 << 18)
        let lambda = p.double("lambda", 2e-5)
        let iterations = max(1, p.int("iterations", 120))
        let tolerance = p.double("tolerance", 1e-7)
        let name = p.string("name", SentimentModelFile.defaultName)
        let dataset = p.string("dataset", "sentiment")
        let provenance = try p["provenance"].map { try JSONDecoder().decode(SentimentProvenance.self, from: Data($0.utf8)) }
        let binary = Set(provenance?.binarySets ?? [])
        let partitions = Int(ctx.partitionCount)

        try await ctx.setStage("sentiment-train: loading and featurizing labelled texts")
        var trainWeight = 0.0, trainCount = 0, heldCount = 0
        for out in try await ctx.collect("st-load") {
            let l = try Chorus_V1_Jobs_SentimentTrainLoad(serializedBytes: out.payload)
            trainWeight += l.trainWeight
            trainCount += l.train.reduce(0) { $0 + Int($1) }
            heldCount += l.heldOut.reduce(0) { $0 + Int($1) }
        }
        guard trainCount > 0 else {
            throw ctx.failure("dataset '\(dataset)' has no training texts; ingest labelled files first")
        }
        let workers = await ctx.activeWorkerCount()

        var step: UInt32 = 0
        var lastConfusion: [String: ConfusionMatrix] = [:]
        let model = SoftmaxModel(classes: 3, dimensions: dims)
        func evaluate(_ x: [Double]) async throws -> (Double, [Double]) {
            step += 1
            var b = Chorus_V1_Jobs_SentimentTrainParameters()
            b.step = step
            b.parameters = x.withUnsafeBytes { Data($0) }
            let outs = try await ctx.collect("st-eval-\(step)", broadcast: Broadcast(try b.serializedData()))
            var loss = 0.0
            var g = [Double](repeating: 0, count: x.count)
            var conf: [String: ConfusionMatrix] = [:]
            for out in outs {  // partition order: the same sums with 1 or N workers
                // A worker's reply is remote input: indices inside the parameters, parallel lengths, finite sums.
                let r = try Chorus_V1_Jobs_SentimentTrainGradient(serializedBytes: out.payload)
                guard r.indices.count == r.values.count, r.confusion.count == 9 * r.sets.count,
                      r.indices.allSatisfy({ Int($0) < x.count }), r.values.allSatisfy(\.isFinite) else {
                    throw ChorusError(.internal, "partition \(out.partition): malformed gradient from the worker "
                                      + "(\(r.indices.count) indices, \(r.values.count) values, \(r.sets.count) sets, "
                                      + "\(r.confusion.count) confusion counts)")
                }
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
            try await ctx.setStage(String(format: "sentiment-train: epoch %d/%d, loss %.5f, held-out accuracy %.4f",
                                          epoch, iterations, f, total.accuracy))
            // Line searches run extra evaluations: progress counts epochs, not tasks.
            try await ctx.setTasksDone(partitions * (1 + epoch))
            if decrease < tolerance { break }
        }
        let metrics = SentimentEvaluation.metrics(confusions: lastConfusion, binarySets: binary)
        let info = SentimentModelInfo(
            name: name, version: 0, createdAt: ISO8601DateFormatter().string(from: Date()), dimensions: dims,
            lambda: lambda, epochs: history.count, finalLoss: f, heldOutPercent: provenance?.heldOutPercent ?? 0,
            duplicates: provenance?.duplicates ?? 0, conflicting: provenance?.conflicting ?? 0,
            sources: provenance?.sources ?? [], heldOut: metrics, history: history, workers: workers,
            partitions: partitions, trainingSeconds: (ContinuousClock.now - start).seconds,
            command: provenance?.command ?? "", notes: "trained on the cluster (job \(ctx.jobID), dataset \(dataset))")
        let stored = try await ctx.storeModel(try SentimentModelFile(info: info, parameters: x.map { Float($0) }).encoded())
        try await ctx.setTasksDone(nil)
        let report: [String: Any] = [
            "model": stored.name, "version": Int(stored.version), "epochs": history.count, "final_loss": f,
            "train_texts": trainCount, "held_out_texts": heldCount, "workers": workers, "partitions": partitions,
            "seconds": (ContinuousClock.now - start).seconds, "evaluations": Int(step),
            "held_out": metrics.map { ["set": $0.set, "examples": $0.examples, "accuracy": $0.accuracy, "macro_f1": $0.macroF1] as [String: Any] },
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)
    }

    // MARK: worker

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker {
        // The params were checked against `parameters` (a power of two) by the worker runtime.
        Worker(dimensions: info.params.int("dimensions", 1 << 18), dataset: info.params.string("dataset", "sentiment"))
    }

    /// One partition's labelled texts, featurized once.
    struct Shard: Sendable {
        var sets: [String]
        var train: [SoftmaxTraining.Example]
        var held: [(x: SparseVector, label: Int, set: Int)]
        /// Distinct feature buckets of the training examples: the only weights the partition's gradient touches.
        var touched: [Int32]
        var load: Chorus_V1_Jobs_SentimentTrainLoad
    }

    /// The job on one worker: each partition's featurized texts, and the parameters of the current evaluation
    /// (broadcast once per worker per evaluation).
    final class Worker: JobWorker {
        let dimensions: Int
        let dataset: String
        let shards = Mutex<[UInt32: Shard]>([:])
        let current = Mutex<(step: UInt32, parameters: [Double])?>(nil)

        init(dimensions: Int, dataset: String) {
            self.dimensions = dimensions
            self.dataset = dataset
        }

        func receive(_ broadcast: JobBroadcast) throws {
            let b: Chorus_V1_Jobs_SentimentTrainParameters
            do {
                b = try Chorus_V1_Jobs_SentimentTrainParameters(serializedBytes: broadcast.payload)
            } catch {
                throw TaskContext.invalid("job_broadcast.payload", "not sentiment-train parameters: \(error)")
            }
            let params = try SentimentTrainJob.parameters(b.parameters, "job_broadcast.payload.parameters")
            current.withLock { $0 = (b.step, params) }
        }

        func release() {
            shards.withLock { $0 = [:] }
            current.withLock { $0 = nil }
        }

        func shard(_ task: TaskContext) async throws -> Shard {
            if let s = shards.withLock({ $0[task.partition] }) { return s }
            // First stage, or the partition moved here / this worker restarted: (re)load it from the store.
            let (data, dataset, dims) = (task.data, self.dataset, self.dimensions)
            let s = try await task.compute {
                try SentimentTrainJob.loadLabelled(data, dataset: dataset, dimensions: dims, cancellation: task.cancellation)
            }
            shards.withLock { $0[task.partition] = s }
            return s
        }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            if task.stage == "st-load" {
                let s = try await shard(task)
                return TaskOutput(partition: task.partition, payload: try s.load.serializedData(),
                                  recordsRead: UInt64(s.train.count + s.held.count))
            }
            guard task.stage.hasPrefix("st-eval-"), let step = UInt32(task.stage.dropFirst("st-eval-".count)) else {
                throw TaskContext.invalid("run_task.stage", "sentiment-train has no stage '\(task.stage.prefix(40))'")
            }
            guard let (have, params) = current.withLock({ $0 }), have == step else {
                throw task.unavailable("the parameters of evaluation \(step)")
            }
            let dims = dimensions
            guard params.count == 3 * dims + 3 else {
                throw TaskContext.invalid("job_broadcast.payload.parameters",
                                          "\(params.count) parameters do not fit \(dims) dimensions")
            }
            let s = try await shard(task)
            let g = try await task.compute { SentimentTrainJob.gradient(s, params: params, dimensions: dims) }
            return TaskOutput(partition: task.partition, payload: try g.serializedData(),
                              recordsRead: UInt64(s.train.count + s.held.count))
        }
    }

    /// Parameters from a broadcast (remote input): float64 LE values, at most `maxParameters`, all finite.
    static func parameters(_ bytes: Data, _ field: String) throws -> [Double] {
        guard bytes.count % 8 == 0 else { throw TaskContext.invalid(field, "\(bytes.count) bytes: not float64 values") }
        let n = bytes.count / 8
        guard n <= maxParameters else { throw TaskContext.invalid(field, "\(n) values, more than 3 × 2^24 + 3") }
        var params = [Double](repeating: 0, count: n)
        params.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { src in dst.copyMemory(from: src) } }
        #if _endian(big)
        params = params.map { Double(bitPattern: $0.bitPattern.byteSwapped) }
        #endif
        if let i = params.firstIndex(where: { !$0.isFinite }) { throw TaskContext.invalid(field, "value \(i) is not finite") }
        return params
    }

    /// Reads and featurizes the partition's labelled texts of one dataset.
    static func loadLabelled(_ data: PartitionView, dataset: String, dimensions: Int,
                             cancellation: CancellationFlag) throws -> Shard {
        let featurizer = SentimentFeaturizer(dimensions: dimensions)
        var sets: [String] = []
        var setIndex: [String: Int] = [:]
        var train: [SoftmaxTraining.Example] = []
        var held: [(x: SparseVector, label: Int, set: Int)] = []
        var load = Chorus_V1_Jobs_SentimentTrainLoad()
        var touched = Set<Int32>()
        var rows = 0
        try data.scan(role: ShardKeys.role(.labelledText), idPrefix: Array(dataset.utf8) + [0]) { _, value in
            rows += 1
            if rows % 4096 == 0, cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            let m = try Chorus_V1_LabelledText(borrowing: value)
            guard m.label < 3 else { return true }
            let si: Int
            if let i = setIndex[m.set] { si = i } else {
                si = sets.count
                setIndex[m.set] = si
                sets.append(m.set)
                load.train += [0, 0, 0]
                load.heldOut += [0, 0, 0]
            }
            let x = featurizer.vector(m.text)
            if m.heldOut {
                held.append((x, Int(m.label), si))
                load.heldOut[si * 3 + Int(m.label)] += 1
            } else {
                train.append(.init(x: x, label: Int(m.label), weight: m.weight))
                load.train[si * 3 + Int(m.label)] += 1
                load.trainWeight += m.weight
                touched.formUnion(x.indices)
            }
            return true
        }
        load.sets = sets
        return Shard(sets: sets, train: train, held: held, touched: touched.sorted(), load: load)
    }

    /// The partition's loss and gradient sums at `params`, as a sparse vector, and its held-out confusion.
    static func gradient(_ s: Shard, params: [Double], dimensions: Int) -> Chorus_V1_Jobs_SentimentTrainGradient {
        var model = SoftmaxModel(classes: 3, dimensions: dimensions)
        model.parameters = params
        var g = [Double](repeating: 0, count: params.count)
        var out = Chorus_V1_Jobs_SentimentTrainGradient()
        out.loss = SoftmaxTraining.lossAndGradient(model, s.train, into: &g)
        out.indices.reserveCapacity(3 * s.touched.count + 3)
        out.values.reserveCapacity(3 * s.touched.count + 3)
        for c in 0..<3 {
            for i in s.touched {
                let k = c * dimensions + Int(i)
                if g[k] != 0 { out.indices.append(UInt32(k)); out.values.append(g[k]) }
            }
        }
        for c in 0..<3 where g[3 * dimensions + c] != 0 {
            out.indices.append(UInt32(3 * dimensions + c)); out.values.append(g[3 * dimensions + c])
        }
        out.sets = s.sets
        var confusion = [UInt32](repeating: 0, count: 9 * s.sets.count)
        for h in s.held {
            let z = model.logits(h.x)
            var best = 0
            for c in 1..<3 where z[c] > z[best] { best = c }
            confusion[h.set * 9 + h.label * 3 + best] += 1
        }
        out.confusion = confusion
        return out
    }
}
