import ArgumentParser
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Logging

struct Local: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole pipeline on an embedded local cluster (the default way to try Chorus).",
        discussion: reflow("""
        Starts a coordinator and N workers on loopback in this process, generates the bundled sample
        network (deterministic: --users, --seed; 6 hidden audience segments and planted content effects),
        ingests it, runs the features, als, segments, influence, propensity, forecast, best-times,
        content-insights and sentiment jobs as one pipeline (sentiment when the shipped model is found; see
        CHORUS_MODELS in docs/cli.md), exports the profiles, and prints a summary that says where the results
        are: the segment table, the top influencers, the conversion model, the forecasts with their backtest,
        the best times to post and the top content drivers. With --keep-running the cluster keeps
        serving so you can try the client commands against it; stop it with Ctrl-C.
        """))

    @Option(help: "Number of workers.") var workers = 3
    @Option(help: ArgumentHelp("Data directory for the cluster, the sample and the results.", valueName: "DIR"))
    var data = "chorus-data/local"
    @Option(help: "Sample size in users (about 20 interactions each).") var users = 2000
    @Option(help: "Sample seed.") var seed: UInt64 = 7
    @Option(help: "Partition count for a new local cluster.") var partitions: UInt32 = 64
    @Option(help: ArgumentHelp("Coordinator endpoint to bind.", valueName: "ADDR"))
    var bind = "tcp://127.0.0.1:*"
    @Flag(help: "Keep the cluster running after the pipeline.") var keepRunning = false
    @Flag(help: "Print the summary as JSON.") var json = false
    @Flag(help: "Plaintext transport instead of throwaway CurveZMQ keys (DIR/keys).") var insecure = false

    /// Where the throwaway keys live: made once per data directory.
    var keysDir: String { (data as NSString).standardizingPath + "/keys" }

    func validate() throws {
        if workers < 1 || workers > 32 { throw ValidationError("--workers must be 1...32") }
        if users < 2 { throw ValidationError("--users must be at least 2") }
    }

    func run() async throws {
        setupLogging(level: .warning)
        try await guarded {
            let root = (data as NSString).standardizingPath
            func say(_ s: String) { if !json { print(s); fflush(nil) } }
            say("chorus local: \(workers) workers, data in \(root)")
            // Security is on in the default path too: throwaway keys, made once per data directory.
            var security = (coordinator: NodeSecurity.insecure, worker: NodeSecurity.insecure, client: NodeSecurity.insecure)
            if insecure {
                FileHandle.standardError.write(Data("warning: --insecure: plaintext, unauthenticated transport\n".utf8))
            } else {
                _ = try CurveKeys.initCluster(dir: keysDir)
                security = (try NodeSecurity.load(keysDir: keysDir, name: "coordinator"),
                            try NodeSecurity.load(keysDir: keysDir, name: "worker"),
                            try NodeSecurity.load(keysDir: keysDir, name: "admin"))
            }
            var coordOptions = CoordinatorOptions(bind: bind, dataDir: root + "/coordinator", partitions: partitions)
            coordOptions.jobs = StandardJobs.registry
            coordOptions.security = security.coordinator
            let coord = try Coordinator(options: coordOptions,
                                        logger: Logger(label: "chorus.coordinator"))
            let coordTask = Task { await coord.run() }
            var ws: [Worker] = []
            var tasks: [Task<Void, Never>] = []
            for i in 1...workers {
                let cores = max(1, ProcessInfo.processInfo.activeProcessorCount / workers)
                var workerOptions = WorkerOptions(coordinator: coord.endpoint, bind: "tcp://127.0.0.1:*",
                                                  dataDir: root + "/worker-\(i)", name: "worker-\(i)", cores: max(cores, 1))
                workerOptions.jobs = StandardJobs.registry
                workerOptions.security = security.worker
                // One machine, one disk, small data: a smaller reserve than a production worker's 512 MiB.
                workerOptions.minFreeBytes = 64 << 20
                let w = try Worker(options: workerOptions,
                                   logger: Logger(label: "chorus.worker"))
                ws.append(w)
                tasks.append(Task { await w.run() })
            }
            let client = try ChorusClient(coordinator: coord.endpoint, security: security.client)
            do {
                try await pipeline(coord: coord, client: client, root: root, say: say)
            } catch {
                await stop(coord, coordTask, ws, tasks, client)
                throw error
            }
            await stop(coord, coordTask, ws, tasks, client)
        }
    }

    /// Orderly shutdown: stop serving, wait for in-flight requests, then close the stores.
    func stop(_ coord: Coordinator, _ coordTask: Task<Void, Never>, _ ws: [Worker], _ tasks: [Task<Void, Never>],
              _ client: ChorusClient) async {
        client.close()
        ws.forEach { $0.shutdown() }
        tasks.forEach { $0.cancel() }
        for t in tasks { await t.value }
        ws.forEach { $0.closeStore() }
        coord.shutdown()
        coordTask.cancel()
        await coordTask.value
        coord.closeStore()
    }

    func pipeline(coord: Coordinator, client: ChorusClient, root: String, say: (String) -> Void) async throws {
        do {
            // Wait until every worker registered and every partition has an owner.
            let deadline = ContinuousClock.now + .seconds(20)
            while true {
                let s = try await client.clusterStatus()
                if s.nodes.filter({ $0.state == .active }).count >= workers, s.unassignedPartitions == 0 {
                    let m = try await client.partitionMap()
                    let counts = Dictionary(grouping: m.assignments, by: \.owner).mapValues(\.count)
                    if counts.count >= min(workers, Int(m.partitionCount)) { break }
                }
                if ContinuousClock.now > deadline {
                    throw ChorusError(.unavailable, "local workers did not register within 20 s")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            say("cluster up: coordinator \(coord.endpoint)")

            let sample = root + "/sample"
            if !FileManager.default.fileExists(atPath: sample + "/interactions.jsonl")
                || !FileManager.default.fileExists(atPath: sample + "/spend.jsonl") {
                // Six hidden audience segments, which the segments job should find (docs/audience.md), the
                // planted posting-slot and content effects of docs/forecasting.md, and two years of weekly
                // channel spend with planted response curves (docs/data-format.md).
                let counts = try DataGenerator.write(users: users, seed: seed, segments: 6, contentEffects: true,
                                                     spendWeeks: SpendHistory.defaultWeeks, to: sample)
                say("generated sample: \(counts.users) users, \(counts.content) content, "
                    + "\(counts.interactions) interactions, \(counts.follows) follows in \(sample)")
            }
            let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl", "spend.jsonl"]
                .map { sample + "/" + $0 }
            let report = try await Ingestor(client: client, options: IngestOptions(
                paths: files, rejectsPath: root + "/rejects.jsonl")).run()
            say("ingested: read \(report.read), stored \(report.stored), duplicates \(report.duplicates), "
                + "rejected \(report.rejected) (\(Int(report.recordsPerSecond)) records/s)")

            // The jobs run as one pipeline, the one docs/examples/local-pipeline.yaml ships (PipelineSpec.local):
            // features, then ALS on the sample's implicit feedback (embeddings, recommendations, similar
            // content), then sentiment with the shipped model when it is there: per content, per user, per topic
            // over time, and alerts (the sample has one planted incident about the "Nova" phone's battery).
            let withSentiment = try await !client.models(name: SentimentModelFile.defaultName).isEmpty
            let submitted = try await client.submitPipeline(
                PipelineSpec.local(users: users, seed: seed, sentiment: withSentiment))
            func step(_ name: String) async throws -> Chorus_V1_JobInfo {
                guard let id = submitted.steps.first(where: { $0.name == name })?.jobID else {
                    throw ChorusError(.internal, "pipeline \(submitted.id) has no step \(name)")
                }
                var j = try await watchJob(client, id, json: json)
                guard j.state == .succeeded else {
                    throw ChorusError(.jobFailed, "\(name) job \(j.id) \(jobState(j.state)): \(j.error)")
                }
                // The summary reads as it did before the steps ran as a pipeline: no after:/pipeline: lines.
                j.after = []
                j.pipeline = ""
                j.pipelineStep = ""
                return j
            }
            let job = try await step("features")
            let alsJob = try await step("als")
            let segmentsJob = try await step("segments")
            let influenceJob = try await step("influence")
            let propensityJob = try await step("propensity")
            let forecastJob = try await step("forecast")
            let bestTimesJob = try await step("best-times")
            let insightsJob = try await step("content-insights")
            var sentimentJob: Chorus_V1_JobInfo?
            if withSentiment {
                sentimentJob = try await step("sentiment")
            } else {
                say("sentiment skipped: no model \(SentimentModelFile.defaultName) (models/sentiment-default.chsm was not found; "
                    + "set CHORUS_MODELS to its directory, or `chorus model import FILE`)")
            }
            // A campaign plan for the sample: the brief below, from every output above (docs/campaigns.md).
            let campaignJob = try await Self.planSampleCampaign(client, json: json)
            // Its measurement: simulated outcomes with a planted lift, ingested and evaluated (docs/campaigns.md).
            let measured = try await Self.measureSampleCampaign(client, root: root, json: json)
            try FileManager.default.createDirectory(atPath: root + "/results", withIntermediateDirectories: true)
            let reportPath = root + "/results/campaign-\(Self.sampleCampaignID).html"
            let campaignDoc = try await client.document(collection: CampaignPlanJob.collection, id: Self.sampleCampaignID, withHistory: true)
            let evaluation = try await Campaign.Report.latestEvaluation(client, id: Self.sampleCampaignID)
            let reportHTML = Data(try Campaign.Report.html(campaignDoc, evaluation: evaluation).utf8)
            do { try reportHTML.write(to: URL(fileURLWithPath: reportPath), options: .atomic) } catch {
                throw ChorusError(.storage, "cannot write \(reportPath): \(error.localizedDescription)")
            }
            _ = try await client.documentEvent(collection: CampaignPlanJob.collection, id: Self.sampleCampaignID,
                                               version: campaignDoc.meta.version, who: "chorus-local", action: "report",
                                               detail: "html, \(reportHTML.count) bytes to \(reportPath)")
            let export = root + "/results/profiles.jsonl"
            let n = try await exportProfiles(client, format: .jsonl, out: export)
            let status = try await client.clusterStatus()
            let exampleUser = SyntheticNetwork.userId(0)
            let recs = try await client.recommend(userId: exampleUser, n: 3)
            let similarTo = recs.items.first?.contentID
            var sims: Chorus_V1_Recommendations?
            if let similarTo { sims = try await client.similar(contentId: similarTo, n: 3) }
            if json {
                var d = jobDict(job)
                d["als"] = jobDict(alsJob)
                d["segments"] = jobDict(segmentsJob)
                d["influence"] = jobDict(influenceJob)
                d["propensity"] = jobDict(propensityJob)
                d["forecast"] = jobDict(forecastJob)
                d["best_times"] = jobDict(bestTimesJob)
                d["content_insights"] = jobDict(insightsJob)
                if let sentimentJob { d["sentiment"] = jobDict(sentimentJob) }
                d["campaign_plan"] = jobDict(campaignJob)
                d["campaign_report"] = reportPath
                d["campaign_evaluation"] = jsonObject(measured.job.summaryJson) ?? [:]
                d["campaign_planted_lift"] = measured.planted
                d["recommendations_example"] = recommendationsDict(recs)
                d["ingest"] = encodeJSON(report)
                d["profiles_exported"] = n
                d["profiles_file"] = export
                d["data_dir"] = root
                d["coordinator"] = coord.endpoint
                printJSON(d)
            } else {
                printJob(job, json: false)
                print("")
                print("results:")
                print("  \(n) user profiles exported to \(export)")
                print("  profiles and content features are stored in the workers' shards under \(root)/worker-*/shard")
                print("  cluster state and job history: \(root)/coordinator")
                print("")
                printJob(alsJob, json: false)
                print("  recommendations for \(exampleUser) (`chorus recommend \(exampleUser)`):")
                let contents = (try? await client.contents(recs.items.flatMap { [$0.contentID, $0.because] }
                    .filter { !$0.isEmpty })) ?? [:]
                for (i, r) in recs.items.enumerated() {
                    print("    \(i + 1). \(contentLabel(r.contentID, contents))")
                    print("       why: \(r.reason)")
                }
                if let sims, let similarTo {
                    print("  content similar to \(similarTo) (`chorus similar \(similarTo)`): "
                          + sims.items.map { String(format: "%@ (%.2f)", $0.contentID, $0.similarity) }.joined(separator: ", "))
                }
                print("")
                print("segments (job \(segmentsJob.id); `chorus segments list`, `chorus segments show ID`):")
                if let text = SegmentsJob.summaryText(segmentsJob.summaryJson) { print(indentBlock(text)) }
                print("")
                print("influence (job \(influenceJob.id); `chorus influencers [--topic T]`):")
                if let (bytes, jobID) = try await client.jobResult(kind: InfluenceJob.kind, key: "top"),
                   let list = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] {
                    let users = (list["users"] as? [[String: Any]] ?? []).prefix(5)
                    for line in Influencers.table(list: list, users: Array(users), jobID: jobID, topic: nil, asked: 5) { print("  " + line) }
                }
                print("")
                print("conversion propensity (job \(propensityJob.id); `chorus propensity top --n 20 [--segment ID]`):")
                if let text = PropensityJob.summaryText(propensityJob.summaryJson) { print(indentBlock(text)) }
                print("")
                print("forecasts (job \(forecastJob.id); `chorus forecast list`, `chorus forecast show all`):")
                if let text = ForecastJob.summaryText(forecastJob.summaryJson) { print(indentBlock(text)) }
                print("")
                print("best times to post (job \(bestTimesJob.id); `chorus best-times --channel C`):")
                if let text = BestTimesJob.summaryText(bestTimesJob.summaryJson) { print(indentBlock(text)) }
                print("")
                print("what makes content engage (job \(insightsJob.id); `chorus insights content`):")
                if let text = ContentInsightsJob.summaryText(insightsJob.summaryJson) { print(indentBlock(text)) }
                if let sentimentJob {
                    print("")
                    printSentimentSummary(jsonObject(sentimentJob.summaryJson) as? [String: Any] ?? [:])
                    print("  try `chorus alerts`, `chorus sentiment keys`, `chorus sentiment themes brand:nova` with --keep-running")
                }
                print("")
                print("campaign plan (job \(campaignJob.id); `chorus campaign show \(Self.sampleCampaignID)`, docs/campaigns.md):")
                if let d = try? await client.document(collection: CampaignPlanJob.collection, id: Self.sampleCampaignID),
                   let plan = try? Campaign.body(d) {
                    for line in Campaign.brief(plan) { print("  " + line) }
                }
                print("  report: \(reportPath) (open it in a browser; `chorus campaign report ID --out FILE`)")
                print("")
                print("campaign measurement (simulated outcomes, job \(measured.job.id); `chorus campaign evaluate \(Self.sampleCampaignID) --show`):")
                print("  planted: " + measured.planted)
                if let text = CampaignEvalJob.summaryText(measured.job.summaryJson) { print(indentBlock(text)) }
                print("")
                print("  \(status.nodes.count) workers, \(status.partitionCount) partitions, map version \(status.mapVersion)")
                if let line = try? String(contentsOfFile: export, encoding: .utf8).split(separator: "\n").first,
                   let d = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] {
                    print("  example: user \(d["user_id"] ?? "") has \(d["interactions"] ?? 0) interactions; "
                          + "try `chorus profile get \(d["user_id"] ?? "") --coordinator ADDR` with --keep-running")
                }
            }
            if keepRunning {
                say("serving on \(coord.endpoint); press Ctrl-C to stop")
                say(insecure ? "  plaintext (--insecure): client commands need --insecure"
                    : "  client commands: export CHORUS_COORDINATOR=\(coord.endpoint) CHORUS_KEYS=\(keysDir) CHORUS_KEY_NAME=admin")
                await waitForTermination()
            }
        }
    }
}

extension Local {
    static let sampleCampaignID = "sample-launch"

    /// The sample campaign: a conversions push on every channel of the sample in the three weeks after its clock
    /// ends, with limits on two channels, a frequency cap and the planted incident's brand watched.
    static var sampleBrief: CampaignBrief {
        var b = CampaignBrief(name: "Sample launch", objective: .conversions, budget: 90_000, currency: "USD",
                              start: "2025-10-06", end: "2025-10-26", channels: ["weibo", "wechat", "x", "instagram", "tiktok"])
        b.constraints.spend = ["tiktok": .init(min: 15_000, max: 45_000), "wechat": .init(max: 12_000)]
        b.constraints.postsPerDay = 4
        b.constraints.postsPerChannelPerDay = 2
        b.constraints.frequencyCap = .init(impressions: 3, days: 7)
        b.constraints.watch = ["brand:nova"]
        b.measurement.key = "sample-launch"
        return b
    }

    /// Plans the sample campaign (a new version when the plan exists from an earlier run on this data dir).
    static func planSampleCampaign(_ client: ChorusClient, json: Bool) async throws -> Chorus_V1_JobInfo {
        let existing = (try? await client.document(collection: CampaignPlanJob.collection, id: sampleCampaignID))?.latestVersion ?? 0
        return try await Campaign.runPlanJob(client, brief: sampleBrief, id: sampleCampaignID, by: "chorus-local",
                                             expectedVersion: existing, json: json)
    }
}

extension Local {
    /// Simulates the sample campaign's outcomes (a planted lift in its first segment, none in the others), ingests
    /// them and evaluates them as of the day after the window: the verdicts should find the one and not the others.
    static func measureSampleCampaign(_ client: ChorusClient, root: String, json: Bool) async throws
        -> (job: Chorus_V1_JobInfo, planted: String) {
        let (version, members) = try await Campaign.listAudience(client, id: sampleCampaignID, version: 0, json: json)
        let d = try await client.document(collection: CampaignPlanJob.collection, id: sampleCampaignID, version: version)
        let plan = try Campaign.body(d)
        let segments = Array(Set(members.map(\.segment))).sorted()
        // The plan's first measured segment gets the lift.
        let designed = (plan["measurement"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []
        let first = designed.first?["segment"] as? Int ?? segments.first ?? 0
        var liftFor = ["\(first):*=4"]
        for g in segments where g != first { liftFor.append("\(g):*=0") }
        let sim = try Campaign.simulator(plan, id: sampleCampaignID, version: version, lift: 0, liftFor: liftFor,
                                         dropHoldout: 0, seed: 16)
        let dir = root + "/sample/campaign-\(sampleCampaignID)"
        let paths = try sim.write(sim.simulate(members), to: dir)
        var opts = IngestOptions(paths: paths, rejectsPath: root + "/rejects.jsonl")
        let r = try await Ingestor(client: client, options: opts).run()
        guard r.rejected == 0 else {
            throw ChorusError(.internal, "\(r.rejected) simulated outcome records were rejected", hint: "see \(root)/rejects.jsonl")
        }
        // The look: the day after the window ends (the sample's clock is in the past).
        let end = (CivilDate.parse(sampleBrief.end, years: 1990...2099) ?? 0) + 1
        let job = try await Campaign.runJob(client, kind: CampaignEvalJob.kind, params: [
            "campaign_id": sampleCampaignID, "author": "chorus-local", "as_of": String(Int64(end + 35) * 86_400)], json: json)
        let planted = "relative lift +400% in segment \(first), none in " + segments.filter { $0 != first }.map { "segment \($0)" }.joined(separator: ", ")
            + " (\(members.count) users; truth in \(dir)/truth/campaign_outcomes.csv)"
        return (job, planted)
    }
}

/// Indents a kind's summary text by two spaces under its heading. Some kinds already indent their lines
/// (they are printed as-is by `chorus job status`), so the common leading indentation is removed first.
func indentBlock(_ text: String, by indent: String = "  ") -> String {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let common = lines.filter { !$0.allSatisfy { $0 == " " } }
        .map { $0.prefix { $0 == " " }.count }.min() ?? 0
    return lines.map { $0.allSatisfy { $0 == " " } ? "" : indent + $0.dropFirst(common) }.joined(separator: "\n")
}
