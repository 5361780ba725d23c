import ArgumentParser
import ChorusJobs
import ChorusData
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization
import Logging

// MARK: generate

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a deterministic synthetic social network in the ingest format.",
        discussion: reflow("""
        Writes users.jsonl, content.jsonl, interactions.jsonl, follows.jsonl and the hidden truth
        (truth/comment_sentiment.csv, truth/user_tastes.csv) to --out. About 20 interactions per user:
        --users 500000 gives ~10 M interactions. Output is streamed, so memory stays flat.
        --comments N also writes interactions-comments.jsonl: N more comments over the same users and content
        (English or Chinese by the user's language) with their hidden labels in truth/extra_comment_sentiment.csv,
        for sentiment benchmarks at scale (`--users 20000 --comments 10000000`).
        --segments K (1–8) gives the users K hidden audience segments (personas that set channel, tastes,
        active hours, engagement and purchase intent), written to truth/user_segments.csv, and plants the
        drivers of conversion listed in truth/conversion_drivers.csv: the data the `segments` and `propensity`
        jobs are checked on (docs/audience.md). --content-effects plants effects of the posting slot (per
        channel) and of media type, hashtags and caption length on each post's engagement rate, written to
        truth/slot_effects.csv and truth/content_effects.csv: the data `best-times` and `content-insights` are
        checked on (docs/forecasting.md). --days N sets the length of the history (default 28).
        --spend-history also writes spend.jsonl: business-as-usual spend, impressions, clicks, conversions and
        revenue per channel and week (on/off flights, ramps and bursts), over --spend-weeks weekly periods
        (default 104) ending where the interaction history's last full week ends, with planted response curves
        (geometric adstock, then Hill saturation) written to truth/spend_curves.csv (docs/data-format.md).
        Without these options the network is that of earlier releases, byte for byte.
        """))

    @Option(help: "Number of users.") var users: Int
    @Option(help: "Random seed; the same seed gives byte-identical files.") var seed: UInt64 = 42
    @Option(help: ArgumentHelp("Output directory.", valueName: "DIR")) var out: String
    @Option(help: "Also write this many extra comments (interactions-comments.jsonl).") var comments = 0
    @Option(help: "Hidden audience segments (1–8; 0: none).") var segments = 0
    @Flag(help: "Plant posting-slot and content-attribute effects on engagement (truth/slot_effects.csv, truth/content_effects.csv).")
    var contentEffects = false
    @Option(help: "Days of history, from 2025-09-01 (a Monday); 7–366.") var days = 28
    @Flag(help: "Also write a weekly spend history per channel with planted response curves (spend.jsonl, truth/spend_curves.csv).")
    var spendHistory = false
    @Option(help: "Weeks of spend history with --spend-history (8–520).") var spendWeeks = SpendHistory.defaultWeeks
    @Flag(help: "Print the counts as JSON.") var json = false

    func validate() throws {
        if users < 2 { throw ValidationError("--users must be at least 2") }
        if comments < 0 { throw ValidationError("--comments must be ≥ 0") }
        if !(7...366).contains(days) { throw ValidationError("--days must be 7–366") }
        if !SpendHistory.weeksRange.contains(spendWeeks) { throw ValidationError("--spend-weeks must be 8–520") }
        if !(0...SyntheticNetwork.personas.count).contains(segments) {
            throw ValidationError("--segments must be 0–\(SyntheticNetwork.personas.count)")
        }
    }

    func run() async throws {
        try await guarded {
            var spendRecords = 0
            var counts = try DataGenerator.write(users: users, seed: seed, segments: segments,
                                                 contentEffects: contentEffects, days: days,
                                                 spendWeeks: spendHistory ? spendWeeks : nil,
                                                 spendRecords: &spendRecords, to: out)
            if comments > 0 {
                let fm = FileManager.default
                let paths = [out + "/interactions-comments.jsonl", out + "/truth/extra_comment_sentiment.csv"]
                guard paths.allSatisfy({ fm.createFile(atPath: $0, contents: nil) }),
                      let h = FileHandle(forWritingAtPath: paths[0]), let t = FileHandle(forWritingAtPath: paths[1]) else {
                    throw ChorusError(.storage, "cannot write \(paths[0])")
                }
                defer { try? h.close(); try? t.close() }
                try t.write(contentsOf: Data("interaction_id,label,language\n".utf8))
                try SyntheticNetwork(users: users, seed: seed, days: days).comments(count: comments) { lines, truth in
                    try h.write(contentsOf: lines)
                    try t.write(contentsOf: truth)
                }
                counts.interactions += comments
                counts.comments += comments
            }
            if json {
                var d = encodeJSON(counts) as! [String: Any]
                if spendHistory { d["spend"] = spendRecords }
                printJSON(d)
            } else {
                print("wrote \(counts.users) users, \(counts.content) content, \(counts.interactions) interactions, "
                      + "\(counts.follows) follows (\(counts.comments) comments)"
                      + (spendHistory ? ", \(spendRecords) weekly spend records" : "") + " to \(out)")
            }
        }
    }
}

enum DataGenerator {
    /// Writes the network, and with `spendWeeks` its spend history (`SpendHistory`), whose record count goes to
    /// `spendRecords`.
    static func write(users: Int, seed: UInt64, segments: Int = 0, contentEffects: Bool = false, days: Int = 28,
                      spendWeeks: Int? = nil, to dir: String) throws -> SyntheticNetwork.Counts {
        var n = 0
        return try write(users: users, seed: seed, segments: segments, contentEffects: contentEffects, days: days,
                         spendWeeks: spendWeeks, spendRecords: &n, to: dir)
    }

    static func write(users: Int, seed: UInt64, segments: Int = 0, contentEffects: Bool = false, days: Int = 28,
                      spendWeeks: Int?, spendRecords: inout Int, to dir: String) throws -> SyntheticNetwork.Counts {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: dir + "/truth", withIntermediateDirectories: true)
        } catch {
            throw ChorusError(.storage, "cannot create \(dir): \(error.localizedDescription)")
        }
        var handles: [GeneratedFile: FileHandle] = [:]
        for f in GeneratedFile.written(segments: segments, contentEffects: contentEffects, spendHistory: spendWeeks != nil) {
            let path = dir + "/" + f.rawValue
            guard fm.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw ChorusError(.storage, "cannot write \(path)")
            }
            handles[f] = h
        }
        defer { handles.values.forEach { try? $0.close() } }
        let net = SyntheticNetwork(users: users, seed: seed, segments: segments, contentEffects: contentEffects, days: days)
        let counts = try net.generate { file, bytes in try handles[file]!.write(contentsOf: bytes) }
        if let spendWeeks {
            spendRecords = try SpendHistory(network: net, weeks: spendWeeks).write { file, bytes in
                try handles[file]!.write(contentsOf: bytes)
            }
        }
        return counts
    }
}

// MARK: ingest

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load JSONL or CSV files of users, content, interactions, follows, channel spend and campaign outcomes into the cluster.",
        discussion: reflow("""
        The record kind comes from the file name (users*, content*, interactions*, follows*, spend*, outcomes*), a mapping
        profile, or --kind. Malformed records are written to --rejects with file, line and reason, and
        counted; they never stop the rest of the file. Re-running the same ingest changes nothing and
        counts every record as a duplicate. The final count always reconciles:
        read = stored + duplicates + rejected. When one run holds two versions of a record (the same id),
        the last one wins and the earlier ones count as superseded duplicates. A directory stands for the
        files in it. More rejects than --max-rejects (default 10%) exit 65. Outcomes and a campaign's spend
        must name a stored plan's campaign, version, arm, segment and channel; others are rejected with the
        reason. Schema: docs/data-format.md.

        Example: chorus ingest data/users.jsonl data/interactions.jsonl --json

        --follow keeps reading the files as they grow, and new files that match a quoted glob or appear in a
        directory, like tail -F (rotated and truncated files included). Records are sent in small batches within
        --batch-delay; after each acknowledged batch the position in each file (its device, inode, a fingerprint
        of its first bytes, and the byte offset) is written to --state. A restart resumes there: a kill at any
        point loses nothing, and records sent twice are stored once (counted as duplicates). It submits an
        incremental features job every --features-every seconds while records arrive. SIGINT or SIGTERM stops it
        after the batch in flight is acknowledged (exit 0).

        Example: chorus ingest --follow 'logs/interactions-*.jsonl' --batch-delay 0.5
        """))

    @OptionGroup var client: ClientOptions
    @Argument(help: ArgumentHelp("Input files (.jsonl/.ndjson/.json lines, or .csv with a header).", valueName: "PATH"))
    var paths: [String]
    @Option(help: "Record kind for every file: users, content, interactions, follows, spend or outcomes.") var kind: String?
    @Option(help: ArgumentHelp("Field-mapping file for channel exports (docs/data-format.md).", valueName: "FILE"))
    var mapping: String?
    @Option(help: "Mapping profile to apply to every file (default: chosen by each profile's match globs).")
    var profile: String?
    @Option(help: ArgumentHelp("Where rejected records go (JSONL).", valueName: "FILE"))
    var rejects = "chorus-rejects.jsonl"
    @Option(help: ArgumentHelp("""
        The cluster's pseudonym secret (`chorus privacy secret`), for a cluster of pseudonymous user ids: every user         id is replaced by its keyed hash before it is sent. Unset: $CHORUS_PSEUDONYM_SECRET.
        """, valueName: "FILE"))
    var pseudonymSecret: String?

    /// The pseudonymizer of --pseudonym-secret or CHORUS_PSEUDONYM_SECRET, if either is set.
    func pseudonymizer() throws -> Pseudonymizer? {
        guard let path = pseudonymSecret ?? ProcessInfo.processInfo.environment["CHORUS_PSEUDONYM_SECRET"].flatMap({ $0.isEmpty ? nil : $0 })
        else { return nil }
        return try PseudonymSecret.load(path)
    }
    @Option(help: ArgumentHelp("Fail (exit 65) when more records than this are rejected: a count, or a share of "
                               + "the records read such as 10%. The valid records are stored either way.",
                               valueName: "N|P%"))
    var maxRejects = RejectLimit.defaultLimit.description
    @Option(help: "Records per write batch.") var batchSize = 4000
    @Option(help: "Write batches in flight at once (more hides round trips, but 8 is the fastest on 2 cores).") var inFlight = 8
    @Flag(inversion: .prefixedNo, help: "Show live progress on stderr (default: when stderr is a terminal).")
    var progress: Bool?
    @Flag(help: "Keep following the files as they grow, and new files matching a glob (quote it), like tail -F.")
    var follow = false
    @Option(help: ArgumentHelp("With --follow: the checkpoint file (default: ~/.local/state/chorus/follow-HASH.json, "
                               + "HASH of the input paths).", valueName: "FILE"))
    var state: String?
    @Option(help: ArgumentHelp("With --follow: the longest a record waits before it is sent.", valueName: "SECONDS"))
    var batchDelay = 1.0
    @Option(help: ArgumentHelp("With --follow: submit an incremental features job this often while records arrive "
                               + "(0: never).", valueName: "SECONDS"))
    var featuresEvery = 60.0
    @Option(help: ArgumentHelp("With --follow: stop once every file is read and nothing new came for this long.",
                               valueName: "SECONDS"))
    var idleExit: Double?

    func validate() throws {
        if !follow, state != nil || idleExit != nil {
            throw ValidationError("--state and --idle-exit go with --follow")
        }
        if !(batchDelay >= 0.01 && batchDelay <= 3600) { throw ValidationError("--batch-delay must be 0.01...3600 seconds") }
        if !(featuresEvery >= 0 && featuresEvery <= 86_400) { throw ValidationError("--features-every must be 0...86400 seconds") }
        if let idleExit, !(idleExit > 0 && idleExit <= 86_400) { throw ValidationError("--idle-exit must be more than 0 and at most 86400 seconds") }
        if let kind, RecordKind(rawValue: kind) == nil {
            throw ValidationError("--kind must be users, content, interactions, follows or spend")
        }
        if batchSize < 1 || batchSize > 100_000 { throw ValidationError("--batch-size must be 1...100000") }
        if inFlight < 1 || inFlight > 256 { throw ValidationError("--in-flight must be 1...256") }
        if RejectLimit(maxRejects) == nil {
            throw ValidationError("--max-rejects must be a count (0 or more) or a percentage 0%...100%, "
                                  + "got '\(maxRejects)'")
        }
    }

    func run() async throws {
        setupLogging(level: .warning)
        try await guarded {
            var mappingConfig: MappingConfig?
            if let mapping {
                guard let data = FileManager.default.contents(atPath: mapping) else {
                    throw ChorusError(.notFound, "mapping file not found: \(mapping)")
                }
                mappingConfig = try MappingConfig.decode(data)
            }
            let c = try client.client()
            defer { c.close() }
            if follow {
                try await runFollow(c, mapping: mappingConfig)
                return
            }
            var opts = IngestOptions(paths: paths, kind: kind.flatMap(RecordKind.init(rawValue:)),
                                     mapping: mappingConfig, profile: profile, rejectsPath: rejects)
            opts.batchSize = batchSize
            opts.maxInFlight = inFlight
            opts.maxRejects = RejectLimit(maxRejects) ?? .defaultLimit
            opts.pseudonymizer = try pseudonymizer()
            let line = ProgressLine()
            let showProgress = progress ?? line.terminal
            let report = try await Ingestor(client: c, options: opts).run(progress: showProgress ? line.ingest : nil)
            line.finish()
            if client.json {
                printJSON(encodeJSON(report))
            } else {
                print("read \(report.read): stored \(report.stored), duplicates \(report.duplicates), "
                      + "rejected \(report.rejected) in \(String(format: "%.1f", report.seconds)) s "
                      + "(\(Int(report.recordsPerSecond)) records/s)")
                if report.superseded > 0 {
                    print("\(report.superseded) records were replaced by a later version in the same run "
                          + "(the last one wins; counted in duplicates)")
                }
                if let r = report.rejectsFile {
                    print("rejected records with file, line and reason: \(r) (lines of run \(report.run))")
                }
            }
            for w in report.warnings { eprint("warning: \(w)") }
            if let e = report.rejectLimitError(opts.maxRejects) { throw e }
        }
    }
}

extension Ingest {
    func runFollow(_ c: ChorusClient, mapping: MappingConfig?) async throws {
        let statePath = state ?? FollowOptions.defaultStatePath(paths: paths)
        var opts = FollowOptions(paths: paths, statePath: statePath, rejectsPath: rejects)
        opts.kind = kind.flatMap(RecordKind.init(rawValue:))
        opts.pseudonymizer = try pseudonymizer()
        opts.mapping = mapping
        opts.profile = profile
        opts.batchSize = batchSize
        opts.maxInFlight = inFlight
        opts.batchDelay = .milliseconds(Int64(batchDelay * 1000))
        opts.featuresEvery = featuresEvery > 0 ? .milliseconds(Int64(featuresEvery * 1000)) : nil
        opts.idleExit = idleExit.map { .milliseconds(Int64($0 * 1000)) }
        let follower = FollowIngestor(client: c, options: opts)
        // The first SIGINT or SIGTERM stops after the round in flight; a second one exits at once (the checkpoint
        // is then the last acknowledged round's).
        let line = ProgressLine()
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let signals = SignalCount()
        let sources = SignalSources([SIGINT, SIGTERM]) {
            let n = signals.next()
            if n == 1 {
                line.clear()
                eprint("chorus: stopping after the batch in flight is acknowledged (again to quit at once)")
            }
            else { Glibc.exit(130) }
            follower.stop()
        }
        defer { sources.cancel() }
        let showProgress = progress ?? line.terminal
        eprint("following \(paths.joined(separator: " ")); checkpoint \(statePath)")
        let report = try await follower.run(progress: showProgress ? line.follow : nil, event: { text in
            line.clear()
            eprint("follow: " + text)
        })
        line.finish()
        if client.json {
            printJSON(encodeJSON(report))
        } else {
            print("read \(report.read): stored \(report.stored), duplicates \(report.duplicates), rejected \(report.rejected) "
                  + "in \(report.rounds) acknowledged batches over \(durationText(report.seconds)); "
                  + "\(report.featureRuns) incremental features jobs; checkpoint \(report.stateFile)")
            if let r = report.rejectsFile { print("rejected records with file, line and reason: \(r)") }
        }
    }
}

/// How many stop signals arrived.
final class SignalCount: Sendable {
    private let n = Mutex(0)
    func next() -> Int { n.withLock { $0 += 1; return $0 } }
}

extension ProgressLine {
    /// Shows follow-mode progress.
    @Sendable func follow(_ p: FollowProgress) {
        update("follow: \(p.files) files, \(p.read) read, \(p.acknowledged) acknowledged, \(p.rejected) rejected, "
               + "\(p.pending) waiting, \(p.behindBytes) bytes behind, elapsed " + durationText(p.seconds))
    }

    /// Shows ingest progress.
    @Sendable func ingest(_ p: IngestProgress) { update(ingestProgressText(p)) }
}

/// "ingest: 755195 read, 754000 acknowledged, 2 rejected, 112000 records/s, 75%, elapsed 6 s, ETA 2 s".
func ingestProgressText(_ p: IngestProgress) -> String {
    if p.phase == .scanning {
        return "ingest: reading the input once for records given twice (the last version wins), elapsed "
            + durationText(p.seconds)
    }
    let rate = p.seconds > 0 ? Double(p.read) / p.seconds : 0
    var line = "ingest: \(p.read) read, \(p.acknowledged) acknowledged, \(p.rejected) rejected, \(Int(rate)) records/s"
    if p.bytesTotal > 0, p.bytesRead > 0 {
        let frac = Double(p.bytesRead) / Double(p.bytesTotal)
        line += String(format: ", %.0f%%, ", frac * 100) + elapsedAndETA(elapsed: p.seconds, fraction: frac)
    } else {
        line += ", elapsed " + durationText(p.seconds)
    }
    return line
}

// MARK: jobs

func jobState(_ s: Chorus_V1_JobState) -> String {
    switch s {
    case .queued: return "queued"
    case .running: return "running"
    case .succeeded: return "succeeded"
    case .failed: return "failed"
    case .cancelled: return "cancelled"
    default: return "unknown"
    }
}

func jobDict(_ j: Chorus_V1_JobInfo) -> [String: Any] {
    var d: [String: Any] = [
        "id": j.id, "kind": j.kind, "state": jobState(j.state), "progress": j.progress, "stage": j.stage,
        "tasks_total": Int(j.tasksTotal), "tasks_done": Int(j.tasksDone), "task_retries": Int(j.taskRetries), "fenced_results": Int(j.fencedResults),
        "params": j.params, "submitted_at": iso(j.submittedAtMs),
    ]
    if j.startedAtMs > 0 { d["started_at"] = iso(j.startedAtMs) }
    if j.finishedAtMs > 0 {
        d["finished_at"] = iso(j.finishedAtMs)
        if j.startedAtMs > 0 { d["seconds"] = Double(j.finishedAtMs - j.startedAtMs) / 1000 }
    }
    if !j.error.isEmpty { d["error"] = j.error }
    if !j.after.isEmpty { d["after"] = j.after }
    if !j.pipeline.isEmpty { d["pipeline"] = j.pipeline; d["pipeline_step"] = j.pipelineStep }
    if !j.summaryJson.isEmpty, let obj = try? JSONSerialization.jsonObject(with: Data(j.summaryJson.utf8)) {
        d["summary"] = obj
    }
    return d
}

func jobEnded(_ j: Chorus_V1_JobInfo) -> Bool { [.succeeded, .failed, .cancelled].contains(j.state) }

func iso(_ ms: Int64) -> String {
    let f = ISO8601DateFormatter()
    return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

func jobLine(_ j: Chorus_V1_JobInfo) -> String {
    var s = "\(j.id)  \(j.kind)  \(jobState(j.state))  \(String(format: "%5.1f%%", j.progress * 100))  "
        + "\(j.tasksDone)/\(j.tasksTotal) tasks"
    if !j.stage.isEmpty, j.state == .running || (j.state == .queued && !j.after.isEmpty) { s += "  [\(j.stage)]" }
    if !j.error.isEmpty { s += "  error: \(j.error)" }
    return s
}

func printJob(_ j: Chorus_V1_JobInfo, json: Bool) {
    if json { printJSON(jobDict(j)); return }
    print(jobLine(j))
    if !j.after.isEmpty { print("  after: \(j.after.joined(separator: ", "))") }
    if !j.pipeline.isEmpty { print("  pipeline: \(j.pipeline) (step \(j.pipelineStep))") }
    if j.finishedAtMs > 0, j.startedAtMs > 0 {
        print("  wall time: \(String(format: "%.2f", Double(j.finishedAtMs - j.startedAtMs) / 1000)) s")
    }
    if j.kind == "als", let data = j.summaryJson.data(using: .utf8),
       let d = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
        print(alsText(d))
    } else if !j.summaryJson.isEmpty, let text = StandardJobs.registry[j.kind]?.summaryText(j.summaryJson) {
        print(text)  // the kind's own view of its summary
    } else if !j.summaryJson.isEmpty, let data = j.summaryJson.data(using: .utf8),
       let report = try? JSONDecoder().decode(SummaryView.self, from: data) {
        print(report.text)
    }
}

/// A readable rendering of an `als` job's summary.
func alsText(_ d: [String: Any]) -> String {
    func n(_ k: String) -> String {
        guard let v = d[k] else { return "-" }
        if let x = v as? Double { return x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(format: "%.4f", x) }
        return "\(v)"
    }
    var out = "  ALS \(n("mode")): rank \(n("rank")), \(n("iterations")) iterations, lambda \(n("lambda"))"
        + (d["mode"] as? String == "implicit"
            ? ", alpha \(n("alpha"))" + (d["confidence"] as? String == "linear" ? " (confidence alpha·w)" : "") : "")
        + ", seed \(n("seed"))\n"
    out += "  \(n("users")) users × \(n("items")) items, \(n("observations")) training pairs, \(n("held_out")) held out; "
        + "\(String(format: "%.3f", d["seconds_per_iteration"] as? Double ?? 0)) s per iteration\n"
    if d["rmse"] != nil {
        out += "  held-out RMSE \(n("rmse")), MAE \(n("mae"))"
        if d["rmse_with_neighbours"] != nil { out += "; RMSE with the neighbourhood correction \(n("rmse_with_neighbours"))" }
    }
    if d["precision_at_k"] != nil {
        let k = n("k")
        out += "  held-out P@\(k) \(n("precision_at_k")), recall@\(k) \(n("recall_at_k")), NDCG@\(k) \(n("ndcg_at_k")), MAP@\(k) \(n("map_at_k"))"
        if let b = d["baseline"] as? [String: Any] {
            func f(_ k: String) -> String { String(format: "%.4f", b[k] as? Double ?? 0) }
            out += "\n  popularity baseline: P@\(k) \(f("precision_at_k")), recall@\(k) \(f("recall_at_k")), "
                + "NDCG@\(k) \(f("ndcg_at_k")), MAP@\(k) \(f("map_at_k"))"
        }
    }
    return out
}

/// A readable rendering of the features job's global summary.
struct SummaryView: Decodable {
    struct Term: Decodable { var name: String; var weight: Double }
    var users: Int, contents: Int, interactions: Int, follows: Int
    var users_by_channel: [String: Int]
    var interactions_by_channel: [String: Int]
    var interactions_by_type: [String: Int]
    var top_topics: [Term]
    var top_hashtags: [Term]
    var active_hours: [Int]

    var text: String {
        var out = "  users \(users), content \(contents), interactions \(interactions), follows \(follows)\n"
        out += "  interactions by channel: " + interactions_by_channel.sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        out += "  interactions by type: " + interactions_by_type.sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        out += "  top topics: " + top_topics.prefix(8).map { "\($0.name) (\(Int($0.weight)))" }.joined(separator: ", ") + "\n"
        out += "  top hashtags: " + top_hashtags.prefix(8).map { "\($0.name) (\(Int($0.weight)))" }.joined(separator: ", ") + "\n"
        let bars = Array(" ▁▂▃▄▅▆▇█")
        let mx = max(active_hours.max() ?? 1, 1)
        out += "  active hours (UTC 0-23): " + String(active_hours.map { bars[min(8, $0 * 8 / mx)] })
        return out
    }
}

struct Job: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit, watch, list and cancel jobs.",
        subcommands: [Submit.self, Status.self, Watch.self, List.self, Cancel.self, Kinds.self])

    struct Kinds: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the job kinds, or one kind's parameters.",
            discussion: reflow("""
            Generated from each kind's own declarations (the job SDK, docs/jobs.md): what the kind
            computes and every parameter with its default, its values and a line of help.
            """))
        @Argument(help: "Show this kind's parameters.") var kind: String?
        @Flag(help: "Print as JSON.") var json = false
        func run() async throws {
            try await guarded {
                let registry = StandardJobs.registry
                let kinds = kind.map { [$0] } ?? JobParameters.allKinds(registry)
                for k in kinds where JobParameters.declared(k, registry: registry) == nil {
                    throw ChorusError(.usage, "unknown job kind '\(k)'",
                                      hint: "known kinds: \(JobParameters.allKinds(registry).joined(separator: ", "))")
                }
                if json {
                    printJSON(["kinds": kinds.map { k -> [String: Any] in
                        let decl = JobParameters.declared(k, registry: registry) ?? []
                        return ["kind": k, "about": JobParameters.about(k, registry: registry),
                                "parameters": decl.filter { !$0.internalUse }.map {
                                    ["name": $0.name, "default": $0.defaultValue, "values": $0.shape, "help": $0.help]
                                }]
                    }])
                } else if let k = kind {
                    print("\(k): \(JobParameters.about(k, registry: registry))\n")
                    print(JobParameters.helpText(registry, kinds: [k]))
                } else {
                    let width = (kinds.map(\.count).max() ?? 0) + 2
                    for k in kinds {
                        print(k.padding(toLength: width, withPad: " ", startingAt: 0) + JobParameters.about(k, registry: registry))
                    }
                    print("\nparameters of one kind: chorus job kinds KIND")
                }
            }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a job. Kinds: \(JobParameters.allKinds(StandardJobs.registry).joined(separator: ", ")).",
            discussion: """
            features: per-user profiles (counts by type and channel, engagement rate,
            active hours and weekdays, recency and frequency, top topics and
            hashtags, followers and following) and per-content features.
            als: matrix factorization of the user × content interactions (embeddings,
            stored recommendations, a held-out evaluation in the summary).
            sentiment: scores posts and comments, stores per content, user and key
            sentiment, and raises alerts (`chorus alerts`).
            themes: complaint themes of the negative comments about one key.
            sentiment-train: trains a model (`chorus model train sentiment` wraps it).
            top-hashtags: the most engaged-with hashtags per channel.
            `chorus job kinds` lists every kind; `chorus job kinds KIND` its parameters.

            Unknown parameters and bad values are refused at submit (exit 64).
            With --after ID[,ID] the job stays queued until those jobs succeeded, and
            fails (or is cancelled) if one of them does; an unknown id exits 64.

            \(JobParameters.helpText(StandardJobs.registry))

            Examples:
              chorus job submit features --as-of 2025-09-29T00:00:00Z --wait
              chorus job submit als --param mode=explicit --param rank=20 \\
                --param lambda=0.5 --param lambda_exponent=0.75 --wait
              chorus job submit als --param mode=implicit --param solver=cg --wait
            """)
        /// The help of `job submit KIND --help`: the kind, what it computes and its parameters; nil for any other
        /// command line (or an unknown kind, which gets the general help).
        static func kindHelp(_ args: [String]) -> String? {
            guard args.count >= 4, args[0] == "job", args[1] == "submit",
                  args.contains("--help") || args.contains("-h") else { return nil }
            let kind = args[2]
            let registry = StandardJobs.registry
            guard JobParameters.declared(kind, registry: registry) != nil else { return nil }
            return """
            USAGE: chorus job submit \(kind) [--param KEY=VALUE ...] [--as-of TIME]
                                 [--after ID[,ID]] [--wait] [--json] [--coordinator ADDR]

            \(kind): \(JobParameters.about(kind, registry: registry)).

            \(JobParameters.helpText(registry, kinds: [kind]))
            Unknown parameters and bad values are refused at submit (exit 64). All options and kinds:
            chorus job submit --help; every kind: chorus job kinds.
            """
        }

        @OptionGroup var client: ClientOptions
        @Argument(help: "Job kind.") var kind: String
        @Option(help: "Reference time for recency (ISO 8601 or unix seconds; default: now).") var asOf: String?
        @Option(name: .customLong("param"), help: ArgumentHelp("Extra job parameter.", valueName: "KEY=VALUE"))
        var params: [String] = []
        @Flag(help: "Wait for the job to finish, showing progress.") var wait = false
        @Option(help: ArgumentHelp("Start only once these jobs succeeded (comma-separated ids); fail if one fails.",
                                   valueName: "ID[,ID]"))
        var after: [String] = []

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                var p: [String: String] = [:]
                for kv in params {
                    let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw ChorusError(.usage, "--param wants KEY=VALUE, got '\(kv)'") }
                    p[parts[0]] = parts[1]
                }
                if let asOf {
                    guard let t = Timestamp.parse(asOf) else {
                        throw ChorusError(.usage, "--as-of: bad time '\(asOf)'", hint: "use ISO 8601 or unix seconds")
                    }
                    p["as_of"] = String(t)
                } else if p["as_of"] == nil {
                    p["as_of"] = String(Int64(Date().timeIntervalSince1970))
                }
                let c = try client.client()
                defer { c.close() }
                let deps = after.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty }
                var j = try await c.submit(kind: kind, params: p, after: deps)
                if wait {
                    j = try await watchJob(c, j.id, json: client.json)
                    printJob(j, json: client.json)
                    if j.state != .succeeded { throw ExitCode(1) }
                } else {
                    printJob(j, json: client.json)
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a job's state, progress and merged summary.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Job id, e.g. job-000001.") var id: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                printJob(try await c.jobStatus(id), json: client.json)
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow a job's progress until it ends.",
                                                        discussion: "Exit code 0 when it succeeded, 1 otherwise.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Job id.") var id: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let j = try await watchJob(c, id, json: client.json)
                printJob(j, json: client.json)
                if j.state != .succeeded { throw ExitCode(1) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List recent jobs, newest first.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var watch: WatchOptions
        @Option(help: "How many.") var limit = 50
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                try await watching(watch, format: client.format) {
                    let jobs = try await c.jobs(limit: limit)
                    if client.json { printJSON(["jobs": jobs.map(jobDict)]) } else {
                        if jobs.isEmpty { print("no jobs yet: submit one with `chorus job submit features`") }
                        jobs.forEach { print(jobLine($0)) }
                    }
                }
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a queued or running job.",
            discussion: reflow("""
            No new tasks start; tasks already running finish and their results are discarded. A job that had
            already ended (succeeded, failed or cancelled) is left as it was: the command says so, in which state
            and when, and exits with 3.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "Job id.") var id: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let before = try await c.jobStatus(id)
                if jobEnded(before) { throw alreadyEnded(before) }
                let after = try await c.cancel(id)
                // It ended on its own between the two requests.
                if after.state != .cancelled { throw alreadyEnded(after) }
                printJob(after, json: client.json)
            }
        }

        func alreadyEnded(_ j: Chorus_V1_JobInfo) -> ChorusError {
            let when = j.finishedAtMs > 0 ? " at \(iso(j.finishedAtMs))" : ""
            return ChorusError(.conflict, "job \(j.id) (\(j.kind)) already ended: \(jobState(j.state))\(when); nothing to cancel",
                               hint: "see `chorus job status \(j.id)`")
        }
    }
}

/// Follows a job until it ends. Progress goes to stderr: with --json one compact job object per change; otherwise
/// a `ProgressLine` (live on a terminal, one line per change elsewhere) with the elapsed time and an ETA. The final
/// state is left to the caller, which prints it once.
func watchJob(_ c: ChorusClient, _ id: String, json: Bool, every: Duration = .milliseconds(300)) async throws
    -> Chorus_V1_JobInfo {
    let line = ProgressLine()
    var last: Chorus_V1_JobInfo?
    defer { line.finish() }
    while true {
        let j = try await c.jobStatus(id)
        let ended = jobEnded(j)
        if json {
            if j != last {
                var d = jobDict(j)
                d.removeValue(forKey: "summary")
                if let data = try? JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]) {
                    FileHandle.standardError.write(data + Data("\n".utf8))
                }
            }
        } else if !ended {
            // On a terminal every poll (the clock moves); elsewhere only when the job changed.
            if line.terminal || j != last { line.update(watchLine(j)) }
        }
        last = j
        if ended { return j }
        try await Task.sleep(for: every)
    }
}

/// The job line plus the time since the job started and, from its progress, an estimate of the time left.
func watchLine(_ j: Chorus_V1_JobInfo) -> String {
    var s = jobLine(j)
    if j.startedAtMs > 0 {
        let elapsed = Double(max(0, nowMillis() - j.startedAtMs)) / 1000
        s += "  " + elapsedAndETA(elapsed: elapsed, fraction: Double(j.progress))
    }
    return s
}
