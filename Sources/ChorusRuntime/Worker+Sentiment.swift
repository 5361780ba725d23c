import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Synchronization

/// A `sentiment-train` job on one worker: each partition's labelled texts, featurized once, and the parameters
/// of the current evaluation (broadcast by the coordinator once per worker per evaluation).
final class SentimentTrainWorkerJob: Sendable {
    struct Shard: Sendable {
        var sets: [String]
        var train: [SoftmaxTraining.Example]
        var held: [(x: SparseVector, label: Int, set: Int)]
        /// Distinct feature buckets of the training examples: the only weights the partition's gradient touches.
        var touched: [Int32]
        var load: Chorus_V1_SentimentLoadResult
        /// The feature buckets the shard was featurized with (`touched` indexes a gradient of this many buckets).
        var dimensions: Int
    }
    let shards = Mutex<[UInt32: Shard]>([:])
    let current = Mutex<(step: UInt32, parameters: [Double])?>(nil)
}

extension Worker {
    func sentimentTrainJob(_ id: String) -> SentimentTrainWorkerJob {
        state.withLock { s in
            if let j = s.sentimentTrain[id] { return j }
            let j = SentimentTrainWorkerJob()
            s.sentimentTrain[id] = j
            return j
        }
    }

    func sentimentBroadcast(_ b: Chorus_V1_JobBroadcast) throws {
        let bytes = b.softmaxParameters
        // Length and finiteness were checked by `RequestValidation.check` (job_broadcast.softmax_parameters).
        guard bytes.count % 8 == 0 else { throw ChorusError(.usage, "softmax parameters are not float64 values") }
        var params = [Double](repeating: 0, count: bytes.count / 8)
        params.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { src in dst.copyMemory(from: src) } }
        #if _endian(big)
        params = params.map { Double(bitPattern: $0.bitPattern.byteSwapped) }
        #endif
        sentimentTrainJob(b.jobID).current.withLock { $0 = (b.sentimentStep, params) }
    }

    func runSentimentTrainTask(_ t: Chorus_V1_RunTask) async throws -> Chorus_V1_TaskResult {
        let job = sentimentTrainJob(t.jobID)
        let store = self.store
        // Validated at the edge (`RequestValidation.check`: a power of two in 1024...2^24) when it is given.
        let dims = Int(t.params["dimensions"] ?? "") ?? (1 << 18)
        let dataset = t.params["dataset"] ?? "sentiment"
        func shard() async throws -> SentimentTrainWorkerJob.Shard {
            if let s = job.shards.withLock({ $0[t.partition] }) {
                // One job, one featurization: a task with other dimensions would index the gradient past its end.
                guard s.dimensions == dims else {
                    throw RequestValidation.invalid("run_task.params.dimensions", "\(dims), but job \(t.jobID) "
                                                    + "featurized partition \(t.partition) with \(s.dimensions)")
                }
                return s
            }
            // First stage, or the partition moved here / this worker restarted: (re)load it from the store.
            let s = try await computeQueue.run { try Self.loadLabelled(store: store, partition: t.partition, dataset: dataset, dimensions: dims) }
            job.shards.withLock { $0[t.partition] = s }
            return s
        }
        var result = Chorus_V1_TaskResult()
        result.jobID = t.jobID
        result.stage = t.stage
        result.partition = t.partition
        if t.stage == "st-load" {
            let s = try await shard()
            result.sentimentLoad = s.load
            result.recordsRead = UInt64(s.train.count + s.held.count)
            return result
        }
        guard t.stage.hasPrefix("st-eval-"), let step = UInt32(t.stage.dropFirst("st-eval-".count)) else {
            throw ChorusError(.usage, "unknown stage '\(t.stage)' for job kind \(t.kind)")
        }
        guard let (have, params) = job.current.withLock({ $0 }), have == step else {
            throw ChorusError(.unavailable, "job \(t.jobID): parameters of evaluation \(step) not received on \(name)")
        }
        guard params.count == 3 * dims + 3 else {
            throw ChorusError(.usage, "job \(t.jobID): \(params.count) parameters do not fit \(dims) dimensions")
        }
        let s = try await shard()
        result.sentimentGradient = try await computeQueue.run { Self.sentimentGradient(s, params: params, dimensions: dims) }
        result.recordsRead = UInt64(s.train.count + s.held.count)
        return result
    }

    /// Reads and featurizes the partition's labelled texts of one dataset.
    static func loadLabelled(store: Store, partition: UInt32, dataset: String, dimensions: Int) throws -> SentimentTrainWorkerJob.Shard {
        let featurizer = SentimentFeaturizer(dimensions: dimensions)
        let prefix = ShardKeys.prefix(partition: partition, role: ShardKeys.role(.labelledText)) + Array(dataset.utf8) + [0]
        var sets: [String] = []
        var setIndex: [String: Int] = [:]
        var train: [SoftmaxTraining.Example] = []
        var held: [(x: SparseVector, label: Int, set: Int)] = []
        var load = Chorus_V1_SentimentLoadResult()
        var touched = Set<Int32>()
        try store.scan(prefix: prefix) { _, value in
            let m = try Chorus_V1_LabelledText(borrowing: UnsafeRawBufferPointer(value))
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
        return .init(sets: sets, train: train, held: held, touched: touched.sorted(), load: load, dimensions: dimensions)
    }

    /// The partition's loss and gradient sums at `params`, as a sparse vector, and its held-out confusion.
    static func sentimentGradient(_ s: SentimentTrainWorkerJob.Shard, params: [Double], dimensions: Int) -> Chorus_V1_SentimentGradient {
        var model = SoftmaxModel(classes: 3, dimensions: dimensions)
        model.parameters = params
        var g = [Double](repeating: 0, count: params.count)
        var out = Chorus_V1_SentimentGradient()
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
