import ArgumentParser
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

// `chorus campaign audience | simulate | evaluate`: a plan's users for the delivery, simulated outcomes, and the
// measurement of the outcomes (docs/campaigns.md "Measurement").
extension Campaign {
    /// Submits a job and waits for it (progress on stderr); the finished job, or a jobFailed error naming it.
    static func runJob(_ c: ChorusClient, kind: String, params: [String: String], json: Bool) async throws -> Chorus_V1_JobInfo {
        var j = try await c.submit(kind: kind, params: params)
        j = try await watchJob(c, j.id, json: json)
        guard j.state == .succeeded else {
            throw ChorusError(.jobFailed, "the \(kind) job \(j.id) did not succeed: \(j.error)",
                              hint: "`chorus job status \(j.id)` has the details")
        }
        return j
    }

    /// The audience of a plan version, from a finished campaign-audience job's stored results.
    static func members(_ c: ChorusClient, id: String, version: UInt32) async throws -> [CampaignSimulator.Member] {
        guard let totals = try await c.jobResult(kind: CampaignAudienceJob.kind, key: CampaignAudienceJob.totalsKey(campaign: id, version: version)),
              let o = try? JSONSerialization.jsonObject(with: Data(totals.value)) as? [String: Any] else {
            throw ChorusError(.notFound, "no audience list of \(id) v\(version)", hint: "run `chorus campaign audience \(id)`")
        }
        let partitions = (try await c.partitionMap()).partitionCount
        var out: [CampaignSimulator.Member] = []
        for p in 0..<partitions {
            guard let r = try await c.jobResult(kind: CampaignAudienceJob.kind,
                                                key: CampaignAudienceJob.membersKey(campaign: id, version: version, partition: p)) else { continue }
            for m in try Chorus_V1_Jobs_CampaignAudienceMembers(serializedBytes: Data(r.value)).members {
                out.append(.init(user: m.user, segment: Int(m.segment), channel: m.channel, holdout: m.holdout))
            }
        }
        let expected = (o["users"] as? NSNumber)?.intValue ?? out.count
        guard out.count == expected else {
            throw ChorusError(.unavailable, "the audience list of \(id) v\(version) has \(out.count) of its \(expected) users",
                              hint: "run `chorus campaign audience \(id)` again (the partition count changed since?)")
        }
        return out.sorted { $0.user < $1.user }
    }

    /// Runs campaign-audience for a plan version (0: the latest); the version listed and its members.
    static func listAudience(_ c: ChorusClient, id: String, version: UInt32, json: Bool) async throws -> (UInt32, [CampaignSimulator.Member]) {
        let d = try await c.document(collection: CampaignPlanJob.collection, id: id, version: version)
        _ = try await runJob(c, kind: CampaignAudienceJob.kind, params: ["campaign_id": id, "version": String(d.meta.version)], json: json)
        return (d.meta.version, try await members(c, id: id, version: d.meta.version))
    }

    struct Audience: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The users of a plan's segments with their channel and arm, for the delivery system.",
            discussion: reflow("""
            Runs the `campaign-audience` job: the plan's filters and keyed-hash holdout applied to the users as they
            are now. Writes CSV (user_id,segment,channel,arm) to --out or stdout. The delivery should log an
            `assigned` outcome for every listed user of both arms (docs/data-format.md "Campaign outcomes").
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: "A version (default: the latest).") var version: UInt32?
        @Option(help: ArgumentHelp("Write the CSV here instead of stdout.", valueName: "FILE")) var out: String?

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let (v, members) = try await Campaign.listAudience(c, id: id, version: version ?? 0, json: client.json)
                let csv = "user_id,segment,channel,arm\n" + members.map {
                    "\($0.user),\($0.segment),\($0.channel),\($0.holdout ? "holdout" : "treatment")\n"
                }.joined()
                if let out {
                    do { try Data(csv.utf8).write(to: URL(fileURLWithPath: out)) } catch {
                        throw ChorusError(.storage, "cannot write \(out): \(error.localizedDescription)")
                    }
                    let holdout = members.filter(\.holdout).count
                    if client.json {
                        printJSON(["campaign_id": id, "version": Int(v), "users": members.count, "holdout": holdout, "out": out])
                    } else {
                        print("\(members.count) users of \(id) v\(v) (\(members.count - holdout) treatment, \(holdout) holdout) to \(out)")
                    }
                } else {
                    print(csv, terminator: "")
                }
            }
        }
    }

    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Simulate a campaign's outcomes with a planted lift, for tests and demos.",
            discussion: reflow("""
            Lists the plan's audience (the `campaign-audience` job), then writes what a delivery would report:
            outcomes.jsonl (assignments of both arms, impressions, clicks, conversions), interactions-campaign.jsonl
            (pre-period conversions, the CUPED covariate, and return visits, for retention), spend-campaign.jsonl
            (the treatment's daily spend per channel) and truth/campaign_outcomes.csv (the planted lift and the
            expected rates per segment and channel). With --ingest they are loaded right away. The model is in
            docs/campaigns.md "Simulated outcomes".

            Example: chorus campaign simulate winter-launch --out sim --lift 0.4 --lift-for 3:tiktok=0 --ingest
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: "A version (default: the latest).") var version: UInt32?
        @Option(help: ArgumentHelp("Where the files go.", valueName: "DIR")) var out: String
        @Option(help: "The planted relative lift of the conversion probability (0.3 = +30%).") var lift: Double = 0.3
        @Option(help: ArgumentHelp("A lift for some cells: SEGMENT:CHANNEL=LIFT, '*' for any (repeatable).", valueName: "CELL=LIFT"))
        var liftFor: [String] = []
        @Option(help: "Share of the holdout's assignments the delivery loses (plants a sample-ratio mismatch).")
        var dropHoldout: Double = 0
        @Option(help: "The random seed.") var seed: UInt64 = 16
        @Flag(help: "Ingest the files after writing them.") var ingest = false

        func validate() throws {
            guard lift.isFinite, lift > -1 else { throw ValidationError("--lift must be above -1 (got \(lift))") }
            guard (0...1).contains(dropHoldout) else { throw ValidationError("--drop-holdout must be in 0...1") }
            for l in liftFor {
                let p = l.split(separator: "=", maxSplits: 1)
                guard p.count == 2, p[0].contains(":"), let v = Double(p[1]), v > -1 else {
                    throw ValidationError("--lift-for \(l): expected SEGMENT:CHANNEL=LIFT, e.g. 3:tiktok=0.5 or *:x=0")
                }
            }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let (v, members) = try await Campaign.listAudience(c, id: id, version: version ?? 0, json: client.json)
                let d = try await c.document(collection: CampaignPlanJob.collection, id: id, version: v)
                let plan = try Campaign.body(d)
                let sim = try Campaign.simulator(plan, id: id, version: v, lift: lift, liftFor: liftFor,
                                                 dropHoldout: dropHoldout, seed: seed)
                let output = sim.simulate(members)
                let paths = try sim.write(output, to: out)
                var report: [String: Any] = ["campaign_id": id, "version": Int(v), "users": members.count,
                                             "outcomes": output.outcomes.count, "interactions": output.interactions.count,
                                             "spend": output.spend.count, "files": paths, "truth": out + "/truth/campaign_outcomes.csv"]
                if ingest {
                    var opts = IngestOptions(paths: paths, rejectsPath: out + "/rejects.jsonl")
                    let r = try await Ingestor(client: c, options: opts).run()
                    report["ingested"] = ["read": r.read, "stored": r.stored, "duplicates": r.duplicates, "rejected": r.rejected]
                    if r.rejected > 0 {
                        throw ChorusError(.invalidInput, "\(r.rejected) simulated records were rejected", hint: "see \(out)/rejects.jsonl")
                    }
                }
                if client.json { printJSON(report); return }
                print("simulated \(id) v\(v): \(members.count) users, \(output.outcomes.count) outcome, "
                      + "\(output.interactions.count) interaction and \(output.spend.count) spend records in \(out)")
                if let i = report["ingested"] as? [String: Int] {
                    print("ingested: read \(i["read"]!), stored \(i["stored"]!), duplicates \(i["duplicates"]!), rejected \(i["rejected"]!)")
                } else {
                    print("ingest them with: chorus ingest " + paths.joined(separator: " "))
                }
            }
        }
    }

    /// The simulator for a stored plan: its window, budget, base rates and a content id.
    static func simulator(_ plan: [String: Any], id: String, version: UInt32, lift: Double, liftFor: [String],
                          dropHoldout: Double, seed: UInt64) throws -> CampaignSimulator {
        let brief = plan["brief"] as? [String: Any] ?? [:]
        guard let s = (brief["start"] as? String).flatMap({ CivilDate.parse($0, years: 1990...2099) }),
              let e = (brief["end"] as? String).flatMap({ CivilDate.parse($0, years: 1990...2099) }) else {
            throw ChorusError(.internal, "plan \(id) v\(version) has no readable window")
        }
        var sim = CampaignSimulator(campaign: id, version: version, firstDay: s, lastDay: e)
        sim.currency = brief["currency"] as? String ?? "USD"
        for ch in (plan["budget"] as? [String: Any])?["channels"] as? [[String: Any]] ?? [] {
            if let name = ch["channel"] as? String { sim.budget[name] = (ch["spend"] as? NSNumber)?.doubleValue ?? 0 }
        }
        for seg in (plan["measurement"] as? [String: Any])?["segments"] as? [[String: Any]] ?? [] {
            if let g = (seg["segment"] as? NSNumber)?.intValue, let r = (seg["base_rate"] as? NSNumber)?.doubleValue, r > 0 {
                sim.baseRates[g] = r
            }
        }
        if let first = ((plan["content"] as? [[String: Any]])?.first?["items"] as? [[String: Any]])?.first?["content_id"] as? String {
            sim.contentID = first
        }
        sim.defaultLift = lift
        for l in liftFor {
            let p = l.split(separator: "=", maxSplits: 1).map(String.init)
            sim.lifts[p[0]] = Double(p[1])
        }
        sim.dropHoldoutShare = dropHoldout
        sim.seed = seed
        return sim
    }

    struct Evaluate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure a campaign: lift over the holdout per segment and channel, SRM check, pacing and verdicts.",
            discussion: reflow("""
            Runs the `campaign-eval` job on the campaign's outcomes (docs/data-format.md "outcomes") and stores
            the evaluation as the next look of campaign-evaluations/ID. During the campaign the verdicts read
            always-valid intervals (look as often as you like); after its end, the fixed-horizon test with the
            correction over the segments' verdicts. A segment whose arms do not match the design (SRM, p < 0.001) is
            flagged and its results are not presented as valid. --show prints a stored look without running
            anything. Exit 0 also when a segment loses: read the verdicts (or --json). docs/campaigns.md
            "Measurement".

            Examples:
              chorus campaign evaluate winter-launch
              chorus campaign evaluate winter-launch --as-of 2026-01-15T00:00:00Z
              chorus campaign evaluate winter-launch --show --json
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: "The plan version to measure against (default: the latest).") var version: UInt32?
        @Option(help: ArgumentHelp("The look's time: later events are not seen (unix seconds or ISO 8601).", valueName: "TIME"))
        var asOf: String?
        @Option(help: "Significance level (default: the brief's measurement.alpha).") var alpha: Double?
        @Option(help: "Multiple-comparison correction: holm, benjamini-hochberg or none.") var correction: String = "holm"
        @Flag(help: "Print a stored look (the latest, or --look) instead of evaluating.") var show = false
        @Option(help: "With --show: which look.") var look: UInt32?
        @Option(help: ArgumentHelp("Who asks (recorded in the history).", valueName: "NAME")) var by: String = Campaign.defaultAuthor

        func validate() throws {
            guard ["holm", "benjamini-hochberg", "none"].contains(correction) else {
                throw ValidationError("--correction must be holm, benjamini-hochberg or none (got \(correction))")
            }
            if let alpha, !(alpha > 0 && alpha <= 0.5) { throw ValidationError("--alpha must be in (0, 0.5]") }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                if !show {
                    var params = ["campaign_id": id, "correction": correction, "author": by]
                    if let version { params["version"] = String(version) }
                    if let alpha { params["alpha"] = String(alpha) }
                    params["as_of"] = asOf ?? String(Int64(Date().timeIntervalSince1970))
                    _ = try await Campaign.runJob(c, kind: CampaignEvalJob.kind, params: params, json: client.json)
                }
                let d = try await c.document(collection: CampaignEvalJob.collection, id: id, version: show ? (look ?? 0) : 0)
                guard let e = try? JSONSerialization.jsonObject(with: d.body) as? [String: Any] else {
                    throw ChorusError(.internal, "look \(d.meta.version) of \(id) is not an evaluation")
                }
                if client.json { printJSON(e); return }
                print(Campaign.renderEvaluation(e).joined(separator: "\n"))
            }
        }
    }

    /// The evaluation for people: the window, the SRM check, a verdict per segment, the channels and pacing.
    static func renderEvaluation(_ e: [String: Any]) -> [String] {
        func f(_ v: Any?, _ digits: Int = 3) -> String {
            guard let n = (v as? NSNumber)?.doubleValue else { return "–" }
            return String(format: "%.\(digits)g", n)
        }
        func pct(_ v: Any?) -> String {
            guard let n = (v as? NSNumber)?.doubleValue else { return "–" }
            return String(format: "%+.1f%%", n * 100)
        }
        let w = e["window"] as? [String: Any] ?? [:]
        let totals = e["totals"] as? [String: Any] ?? [:]
        var out = ["campaign \(e["campaign_id"] ?? "?") (plan v\(e["plan_version"] ?? "?")), look \(e["look"] ?? "?"), "
                   + "data to \(e["data_end"] ?? "?"): \((w["finished"] as? Bool) == true ? "finished" : "running, day \(f(w["elapsed_days"])) of \(f(w["days"]))")",
                   "users: \(totals["users"] ?? 0) (\(totals["treatment"] ?? 0) treatment, \(totals["holdout"] ?? 0) holdout); "
                   + "KPI \(e["kpi"] ?? "?") → \(e["primary_metric"] ?? "?"); α = \(f(e["alpha"])), \(e["correction"] ?? "?") over the \(e["decision_tests"] ?? 0) verdicts (and apart over the \(((e["tests"] as? Int) ?? 0) - ((e["decision_tests"] as? Int) ?? 0)) secondary tests)"]
        out.append("")
        out.append("sample ratio (chi-square, mismatch at p < 0.001):")
        for s in e["srm"] as? [[String: Any]] ?? [] {
            out.append("  segment \(s["segment"] ?? "?"): \(s["treatment"] ?? 0) / \(s["holdout"] ?? 0), holdout share \(f(s["observed_holdout_share"])) "
                       + "(designed \(f(s["expected_holdout_share"]))), p = \(f(s["p_value"]))" + ((s["mismatch"] as? Bool) == true ? "  MISMATCH" : ""))
        }
        out.append("")
        out.append("verdicts (\(e["primary_metric"] ?? "?")):")
        let lifts = e["lifts"] as? [[String: Any]] ?? []
        for s in e["segments"] as? [[String: Any]] ?? [] {
            let seg = (s["segment"] as? NSNumber)?.intValue ?? 0
            out.append("  segment \(seg): \(s["verdict"] ?? "?")")
            if let l = lifts.first(where: { ($0["segment"] as? NSNumber)?.intValue == seg && ($0["primary"] as? Bool) == true }) {
                out.append("    treatment \(f(l["treatment_mean"])) vs holdout \(f(l["holdout_mean"])): \(pct(l["relative"])) "
                           + "[\(pct(l["relative_low"])), \(pct(l["relative_high"]))], \(l["estimator"] ?? "?"), "
                           + "p = \(f(l["p_value"])), adjusted \(f(l["p_adjusted"]))")
            }
            out.append("    " + (s["why"] as? String ?? ""))
        }
        out.append("")
        out.append("channels:")
        for ch in e["channels"] as? [[String: Any]] ?? [] {
            let t = ch["treatment"] as? [String: Any] ?? [:]
            let inc = (ch["incremental_conversions"] ?? ch["incremental_revenue"]) as? [String: Any]
            out.append("  \(ch["channel"] ?? "?"): spend \(f(t["spend"], 6)), CTR \(f(t["ctr"])), conversion rate \(f(t["conversion_rate"])), "
                       + "CPA \(f(t["cpa"])), ROAS \(f(t["roas"])), ROI \(f(t["roi"]))"
                       + (inc.map { ", incremental \(f($0["value"])) [\(f($0["low"])), \(f($0["high"]))]" } ?? "")
                       + (ch["cost_per_incremental_conversion"].map { ", cost per incremental conversion \(f($0))" } ?? ""))
        }
        out.append("")
        out.append("pacing (spend against the approved plan, to date):")
        for p in e["pacing"] as? [[String: Any]] ?? [] {
            out.append("  \(p["channel"] ?? "?"): \(f(p["spend"], 6)) of \(f(p["planned_to_date"], 6)) planned to date (\(p["status"] ?? "?")), "
                       + "\(p["planned_posts_to_date"] ?? 0)/\(p["planned_posts"] ?? 0) posts due, \(f(p["impressions"], 6)) impressions")
        }
        let problems = e["problems"] as? [String] ?? []
        if !problems.isEmpty {
            out.append("")
            out.append("problems:")
            for p in problems { out.append("  - " + p) }
        }
        return out
    }
}
