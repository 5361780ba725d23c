import ArgumentParser
import ChorusAnalytics
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation

struct ModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Train, evaluate and inspect sentiment models.",
        discussion: reflow("""
        Models are files in the format of docs/sentiment.md (weights trained by Chorus plus a JSON header with the
        data they were trained on, the date and the held-out metrics). The coordinator stores them; workers get them
        with each `sentiment` job. A default model ships in models/sentiment-default.chsm.
        """),
        subcommands: [Train.self, List.self, Show.self, Export.self, Import.self, Eval.self])

    /// Label-file options shared by train and eval.
    struct LabelOptions: ParsableArguments {
        @Option(parsing: .upToNextOption, help: ArgumentHelp(
            "Labelled files: CrowdFlower CSV, VADER *_GroundTruth.txt, pos.txt/neg.txt (one text per line), a "
            + "lexicon (token<TAB>valence), or CSV with label,text columns. Format by file name (docs/sentiment.md).",
            valueName: "PATH"))
        var labels: [String] = []
        @Option(parsing: .upToNextOption, help: ArgumentHelp(
            "Files scored on held-out metrics but never trained on (e.g. VADER's human-rated sets).", valueName: "PATH"))
        var evalOnly: [String] = []
        @Option(help: "Percent of each set held out by the text-hash rule (docs/sentiment.md).") var holdout = 20
        @Option(help: "Training weight of one lexicon entry (a human-labelled text weighs 1).") var lexiconWeight = 0.25
        @Flag(help: "Weigh each labelled set's classes alike in training (removes the sets' class priors).") var balance = false
        @Flag(help: "Keep repeated texts (scoring every comment of a log, e.g. the generator's, rather than distinct texts).")
        var keepDuplicates = false

        func prepare() throws -> PreparedLabels {
            if labels.isEmpty && evalOnly.isEmpty {
                throw ChorusError(.usage, "no labelled files given", hint: "pass --labels PATH... (scripts/fetch-sentiment-data.sh fetches the real sets)")
            }
            guard (0...90).contains(holdout) else { throw ChorusError(.usage, "--holdout must be 0...90") }
            return try PreparedLabels.prepare(paths: labels + evalOnly, heldOutPercent: holdout, evaluationOnly: Set(evalOnly),
                                              lexiconWeight: lexiconWeight, balance: balance,
                                              dedup: !keepDuplicates)
        }
    }

    struct Train: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a sentiment model on labelled texts.",
            discussion: reflow("""
            Multinomial logistic regression (negative / neutral / positive) over hashed word, bigram, CJK character
            and emoji features, fitted by L-BFGS. Prints progress per epoch (loss, held-out accuracy) and the
            held-out metrics per set. Bad records are listed with file:line:reason and counted, never dropped
            silently; duplicate texts are kept once and texts seen with two labels are left out.

            On a cluster (the default): the texts are ingested into dataset --dataset (idempotent: a re-run stores
            nothing twice), each worker computes the loss and gradient of its partitions, and the coordinator adds
            them in partition order and takes the L-BFGS steps, so 1 and 3 workers give the same model. The model is
            stored by the coordinator as the next version of --name (`chorus model list`). --local trains in this
            process instead (no cluster). --out also writes the model file.
            The shipped default model: docs/sentiment.md has the exact command.
            """))
        @Argument(help: "What to train: sentiment.") var kind: String
        @OptionGroup var labelOptions: LabelOptions
        @Option(help: "Model name.") var name = SentimentModelFile.defaultName
        @Option(help: "L2 strength λ of the objective mean loss + λ/2·‖W‖².") var lambda = 2e-5
        @Option(help: "Maximum L-BFGS iterations (epochs).") var iterations = 120
        @Option(help: "Hashed feature buckets (a power of two).") var dimensions = 1 << 18
        @Option(help: "Dataset the labelled texts are stored under on the cluster.") var dataset = "sentiment"
        @Option(help: "Stop when an epoch lowers the objective by less than this fraction.") var tolerance = 1e-7
        @Flag(help: "Train in this process instead of on a cluster.") var local = false
        @Option(help: ArgumentHelp("Also write the model file here.", valueName: "FILE")) var out: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard kind == "sentiment" else { throw ValidationError("only `sentiment` models can be trained") }
            guard dimensions > 0, dimensions & (dimensions - 1) == 0, dimensions <= 1 << 24 else {
                throw ValidationError("--dimensions must be a power of two up to 2^24")
            }
            guard lambda >= 0, iterations > 0 else { throw ValidationError("--lambda must be ≥ 0 and --iterations > 0") }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let json = client.json
                let prepared = try labelOptions.prepare()
                reportPrepared(prepared, json: json)
                let command = "chorus " + CommandLine.arguments.dropFirst().joined(separator: " ")
                let model: SentimentModelFile
                if local {
                    model = LocalSentimentTrainer.train(prepared, name: name, dimensions: dimensions, lambda: lambda,
                                                        iterations: iterations, tolerance: tolerance, command: command) { e in
                        eprint(String(format: "epoch %3d  loss %.5f  held-out accuracy %.4f", e.epoch, e.loss, e.heldOutAccuracy))
                    }
                } else {
                    model = try await trainOnCluster(prepared, command: command)
                }
                if let out { try Data(try model.encoded()).write(to: URL(fileURLWithPath: out)) }
                printModelInfo(model.info, json: json)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the models the coordinator stores (every version).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Only this model name.") var name: String?
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let models = try await c.models(name: name ?? "")
                let infos = try models.map { try JSONDecoder().decode(SentimentModelInfo.self, from: Data($0.infoJson.utf8)) }
                if client.json {
                    let enc = JSONEncoder()
                    enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                    print(String(decoding: try enc.encode(infos), as: UTF8.self))
                    return
                }
                if infos.isEmpty { print("no models stored; train one with `chorus model train sentiment`") }
                for i in infos {
                    let crowd = i.heldOut.first { $0.set == "crowdflower" }.map { String(format: "crowdflower macro-F1 %.3f", $0.macroF1) } ?? ""
                    print("\(i.name) v\(i.version)  \(i.createdAt)  \(i.sources.map(\.set).uniqued().joined(separator: "+"))  \(crowd)")
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a stored model to a file.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Model name.") var name: String
        @Option(help: "Version; 0 is the latest.") var version = 0
        @Option(help: ArgumentHelp("Output file.", valueName: "FILE")) var out: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let m = try await c.model(name: name, version: version, withFile: true)
                try m.file.write(to: URL(fileURLWithPath: out))
                print("wrote \(m.summary.name) v\(m.summary.version) to \(out) (\(m.file.count) bytes)")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a model file on the coordinator as the next version of its name.")
        @OptionGroup var client: ClientOptions
        @Argument(help: ArgumentHelp("Model file.", valueName: "FILE")) var file: String
        @Option(help: "Store under this name instead of the file's own.") var name: String?
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let bytes = try SentimentModelFile.read(path: file).encoded()
                let c = try client.client()
                defer { c.close() }
                let s = try await c.putModel(bytes, name: name ?? "")
                print("stored \(s.name) v\(s.version)")
            }
        }
    }

    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score labelled files with a model file and print held-out metrics and throughput.",
            discussion: reflow("""
            Only held-out texts are scored (the same text-hash rule as training, so a model is never scored on what
            it saw); files given with --eval-only are scored whole. --predictions writes one JSON line per text
            (set, gold, label, score, text) for side-by-side comparisons (bench/sentiment.sh).
            """))
        @Option(help: ArgumentHelp("Model file.", valueName: "FILE")) var model: String
        @OptionGroup var labelOptions: LabelOptions
        @Option(help: ArgumentHelp("Write per-text predictions (JSON lines).", valueName: "FILE")) var predictions: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let file = try SentimentModelFile.read(path: model)
                let scorer = file.scorer()
                let prepared = try labelOptions.prepare()
                reportPrepared(prepared, json: true)
                let held = prepared.items.filter { $0.heldOut }
                // Throughput: one thread, repeated until at least a second has passed.
                let texts = held.map(\.record.text)
                var scored = 0
                let clock = ContinuousClock()
                let t0 = clock.now
                var checksum: Float = 0
                repeat {
                    for t in texts { checksum += scorer.score(t).score }
                    scored += texts.count
                } while clock.now - t0 < .seconds(1) && !texts.isEmpty
                let seconds = (clock.now - t0).seconds
                let conf = SentimentEvaluation.confusions(scorer: scorer, items: prepared.items, binarySets: prepared.binarySets)
                let metrics = SentimentEvaluation.metrics(confusions: conf, binarySets: prepared.binarySets)
                if let predictions {
                    var out = Data()
                    for it in held {
                        let s = scorer.score(it.record.text)
                        let obj: [String: Any] = ["set": it.record.set, "gold": it.record.label.name,
                                                  "label": SentimentLabel(rawValue: s.label)!.name,
                                                  "score": Double(s.score), "text": it.record.text,
                                                  "binary": prepared.binarySets.contains(it.record.set)]
                        out.append(try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]))
                        out.append(0x0A)
                    }
                    try out.write(to: URL(fileURLWithPath: predictions))
                }
                let rate = seconds > 0 ? Double(scored) / seconds : 0
                let ece = SentimentEvaluation.calibration(scorer: scorer, items: prepared.items, binarySets: prepared.binarySets)
                if json {
                    let enc = JSONEncoder()
                    enc.outputFormatting = [.sortedKeys, .prettyPrinted]
                    let obj = try JSONSerialization.jsonObject(with: enc.encode(metrics)) as? [Any] ?? []
                    printJSON(["model": file.info.name, "version": file.info.version, "metrics": obj, "calibration_error": ece,
                               "texts_per_second_one_thread": rate, "texts": texts.count, "checksum": Double(checksum)])
                } else {
                    printMetrics(metrics)
                    print("expected calibration error: " + ece.keys.sorted().map { String(format: "%@ %.3f", $0, ece[$0]!) }.joined(separator: ", "))
                    print(String(format: "throughput: %.0f texts/s on one thread (%d texts)", rate, texts.count))
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a model: the data it was trained on, its date, its held-out metrics.",
            discussion: "NAME is a model stored by the coordinator (latest version unless --version), or a model file path.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Model name or file.") var name: String
        @Option(help: "Version; 0 is the latest.") var version = 0
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                if FileManager.default.fileExists(atPath: name) {
                    printModelInfo(try SentimentModelFile.read(path: name).info, json: client.json)
                    return
                }
                let c = try client.client()
                defer { c.close() }
                let m = try await c.model(name: name, version: version)
                printModelInfo(try JSONDecoder().decode(SentimentModelInfo.self, from: Data(m.summary.infoJson.utf8)), json: client.json)
            }
        }
    }
}

extension ModelCommand.Train {
    func trainOnCluster(_ prepared: PreparedLabels, command: String) async throws -> SentimentModelFile {
        let c = try client.client()
        defer { c.close() }
        let ingest = try await c.ingestLabelled(prepared, dataset: dataset)
        eprint("ingested into dataset \(dataset): read \(ingest.read), stored \(ingest.stored), duplicates \(ingest.duplicates), "
               + "rejected \(ingest.rejected), conflicting \(ingest.conflicting) (\(String(format: "%.1f", ingest.seconds)) s)")
        let provenance = SentimentProvenance(sources: prepared.sources, duplicates: prepared.duplicates,
                                             conflicting: prepared.conflicting, heldOutPercent: prepared.heldOutPercent,
                                             binarySets: prepared.binarySets.sorted(), command: command)
        let params: [String: String] = [
            "dataset": dataset, "dimensions": String(dimensions), "lambda": String(lambda),
            "iterations": String(iterations), "tolerance": String(tolerance), "name": name,
            "provenance": String(decoding: try JSONEncoder().encode(provenance), as: UTF8.self),
        ]
        let job = try await c.submit(kind: SentimentTrainJob.kind, params: params)
        eprint("job \(job.id) submitted")
        var lastStage = ""
        var printedEpoch = 0
        let done = try await c.watch(job.id) { j in
            // Epoch lines (the per-evaluation stage names are noise here).
            if j.stage != lastStage, j.stage.hasPrefix("sentiment-train") {
                eprint(j.stage)
                lastStage = j.stage
                if let r = j.stage.range(of: "epoch ") {
                    printedEpoch = Int(j.stage[r.upperBound...].prefix { $0.isNumber }) ?? printedEpoch
                }
            }
        }
        guard done.state == .succeeded else {
            throw ChorusError(.jobFailed, "training job \(done.id) \(done.state == .cancelled ? "was cancelled" : "failed"): \(done.error)")
        }
        let report = try JSONSerialization.jsonObject(with: Data(done.summaryJson.utf8)) as? [String: Any] ?? [:]
        let version = report["version"] as? Int ?? 0
        let m = try await c.model(name: name, version: version, withFile: true)
        let file = try SentimentModelFile.decode([UInt8](m.file))
        // Epochs that ended between two polls are printed from the model's history.
        for e in file.info.history where e.epoch > printedEpoch {
            eprint(String(format: "sentiment-train: epoch %d/%d, loss %.5f, held-out accuracy %.4f (from the history)",
                          e.epoch, iterations, e.loss, e.heldOutAccuracy))
        }
        return file
    }
}

extension Sequence where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}

func eprint(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

func reportPrepared(_ p: PreparedLabels, json: Bool) {
    for r in p.rejects.prefix(20) { eprint("rejected: \(r)") }
    if p.rejects.count > 20 { eprint("rejected: … \(p.rejects.count - 20) more") }
    let train = p.items.filter { !$0.heldOut }.count
    eprint("labelled texts: \(p.items.count) used (\(train) training, \(p.items.count - train) held out), "
           + "\(p.duplicates) duplicate copies skipped, \(p.conflicting) texts with conflicting labels left out, "
           + "\(p.rejects.count) rejected")
}

func printMetrics(_ metrics: [SentimentModelInfo.SetMetrics]) {
    print("set                                      texts  accuracy  macro-F1")
    for m in metrics {
        print(m.set.padding(toLength: 38, withPad: " ", startingAt: 0)
              + String(format: " %7d  %8.4f  %8.4f", m.examples, m.accuracy, m.macroF1))
    }
}

func printModelInfo(_ info: SentimentModelInfo, json: Bool) {
    if json {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        print(String(decoding: (try? enc.encode(info)) ?? Data(), as: UTF8.self))
        return
    }
    print("model \(info.name) v\(info.version), created \(info.createdAt)")
    print("  \(info.classes.joined(separator: "/")), \(info.dimensions) hashed buckets, λ \(info.lambda), "
          + "\(info.epochs) epochs, final loss \(String(format: "%.5f", info.finalLoss)), \(String(format: "%.1f", info.trainingSeconds)) s")
    print("  trained on (held out \(info.heldOutPercent)% by text hash; \(info.duplicates) duplicates, "
          + "\(info.conflicting) conflicting texts left out):")
    for s in info.sources {
        print("    \(s.file) [\(s.format)]: read \(s.read), rejected \(s.rejected), train \(s.train), held out \(s.heldOut)")
    }
    print("  held-out metrics:")
    printMetrics(info.heldOut)
    if !info.command.isEmpty { print("  command: \(info.command)") }
}
