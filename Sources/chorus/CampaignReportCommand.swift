import ArgumentParser
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

extension Campaign {
    /// `chorus campaign report`: the plan as one self-contained HTML page (ChorusData/CampaignReport.swift).
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The plan as one self-contained HTML page with its charts and history.",
            discussion: reflow("""
            One file that opens offline: inline CSS and SVG charts, no script, nothing fetched. It has the
            audience, the content per segment, a weekday × hour heatmap of the schedule, the budget split and,
            when the budget has them, the response curves and the KPI forecast, the measurement design, the results
            of the latest evaluation (`chorus campaign evaluate`: verdicts per segment, the lift per segment and
            channel with its intervals, pacing against the plan, the channels' efficiency), the risks, what was not
            decided from data, and the version and approval history. The report is recorded in the plan's log
            (action report). Without --version the latest version. JSON with --json: {path, bytes}.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String?
        @Option(help: ArgumentHelp("The HTML file to write.", valueName: "FILE")) var out: String
        @Option(help: "A version (default: the latest).") var version: UInt32?
        @Option(help: ArgumentHelp("Who makes the report (recorded in the log).", valueName: "NAME")) var by: String = Campaign.defaultAuthor
        @Option(help: ArgumentHelp("For tests and offline use: render this file (what `campaign show --json` prints, optionally with "
                                   + "`versions` and `audit` arrays) without a cluster; nothing is logged.",
                                   valueName: "FILE", visibility: .hidden))
        var fromJson: String?
        @Option(help: ArgumentHelp("With --from-json: the evaluation to show in the results (what `campaign evaluate --show --json` "
                                   + "prints).", valueName: "FILE", visibility: .hidden))
        var evaluationJson: String?

        func validate() throws {
            guard (id == nil) != (fromJson == nil) else {
                throw ValidationError(id == nil ? "give the plan's ID (or --from-json FILE)" : "give either an ID or --from-json, not both")
            }
            if evaluationJson != nil && fromJson == nil {
                throw ValidationError("--evaluation-json goes with --from-json (with an ID the latest stored evaluation is shown)")
            }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                if let fromJson {
                    let bytes = try write(try Report.offline(fromJson, evaluation: evaluationJson))
                    if client.json { printJSON(["path": out, "bytes": bytes]) } else { print(out) }
                    return
                }
                let c = try client.client()
                defer { c.close() }
                let d = try await c.document(collection: CampaignPlanJob.collection, id: id!, version: version ?? 0, withHistory: true)
                let bytes = try write(try Report.html(d, evaluation: try await Report.latestEvaluation(c, id: d.id)))
                _ = try await c.documentEvent(collection: CampaignPlanJob.collection, id: d.id, version: d.meta.version, who: by,
                                              action: "report", detail: "html, \(bytes) bytes to \(out)")
                if client.json { printJSON(["path": out, "bytes": bytes]) } else { print(out) }
            }
        }

        /// Writes the page to --out; its size in bytes.
        func write(_ html: String) throws -> Int {
            let data = Data(html.utf8)
            do { try data.write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
                throw ChorusError(.storage, "cannot write \(out): \(error.localizedDescription)")
            }
            return data.count
        }

        /// The page of a plan version read with its history, and the campaign's latest evaluation when there is one.
        static func html(_ d: Chorus_V1_DocumentReply, evaluation: [String: Any]? = nil) throws -> String {
            let audit = d.audit.map {
                CampaignReport.AuditRow(at: iso($0.atMs), who: $0.who, action: $0.action, version: Int($0.version), detail: $0.detail)
            }
            return CampaignReport.html(plan: try Campaign.body(d), meta: meta(d), versions: d.versions.map(row), audit: audit,
                                       evaluation: evaluation)
        }

        /// The latest look of the `campaign-eval` job at the campaign (`campaign-evaluations/<id>`); nil when it has not
        /// been evaluated yet.
        static func latestEvaluation(_ c: ChorusClient, id: String) async throws -> [String: Any]? {
            let d: Chorus_V1_DocumentReply
            do {
                d = try await c.document(collection: CampaignEvalJob.collection, id: id)
            } catch let error as ChorusError where error.code == .notFound {
                return nil
            }
            guard let e = (try? JSONSerialization.jsonObject(with: d.body)) as? [String: Any] else {
                throw ChorusError(.internal, "look \(d.meta.version) of campaign-evaluations/\(id) is not an evaluation")
            }
            return e
        }

        static func meta(_ d: Chorus_V1_DocumentReply) -> CampaignReport.Meta {
            let m = d.meta
            return CampaignReport.Meta(id: d.id, title: m.title, version: Int(m.version), latestVersion: Int(d.latestVersion),
                                       author: m.author, action: m.action, createdAt: iso(m.createdAtMs), approvedBy: m.approvedBy,
                                       approvedAt: m.approvedBy.isEmpty ? "" : iso(m.approvedAtMs), jobID: m.jobID,
                                       generatedAt: iso(Int64(Date().timeIntervalSince1970 * 1000)))
        }

        static func row(_ v: Chorus_V1_DocumentVersion) -> CampaignReport.VersionRow {
            CampaignReport.VersionRow(version: Int(v.version), createdAt: iso(v.createdAtMs), author: v.author, action: v.action,
                                      summary: v.summary, approvedBy: v.approvedBy,
                                      approvedAt: v.approvedBy.isEmpty ? "" : iso(v.approvedAtMs), jobID: v.jobID)
        }

        /// The page for a file as `campaign show --json` prints it, plus optional `versions` ({version, created_at,
        /// author, action, summary, approved_by, approved_at, job_id}) and `audit` (as `campaign log --json`).
        static func offline(_ path: String, evaluation evaluationPath: String? = nil) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ChorusError(.notFound, "plan file not found: \(path)", hint: "`chorus campaign show ID --json > FILE` writes one")
            }
            guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], let plan = o["plan"] as? [String: Any] else {
                throw ChorusError(.invalidInput, "\(path) is not a plan as `chorus campaign show --json` prints it (no \"plan\" object)")
            }
            func s(_ v: Any?) -> String { (v as? String) ?? (v as? NSNumber)?.stringValue ?? "" }
            func i(_ v: Any?) -> Int { (v as? NSNumber)?.intValue ?? 0 }
            let version = i(o["version"])
            let meta = CampaignReport.Meta(
                id: s(o["campaign_id"]).isEmpty ? s(plan["campaign_id"]) : s(o["campaign_id"]),
                title: s((plan["brief"] as? [String: Any])?["name"]), version: version,
                latestVersion: max(version, i(o["latest_version"])), author: s(o["author"]), action: s(o["action"]),
                createdAt: s(o["created_at"]), approvedBy: s(o["approved_by"]), approvedAt: s(o["approved_at"]), jobID: s(o["job_id"]))
            let versions = (o["versions"] as? [[String: Any]] ?? []).map {
                CampaignReport.VersionRow(version: i($0["version"]), createdAt: s($0["created_at"]), author: s($0["author"]),
                                          action: s($0["action"]), summary: s($0["summary"]), approvedBy: s($0["approved_by"]),
                                          approvedAt: s($0["approved_at"]), jobID: s($0["job_id"]))
            }
            let audit = (o["audit"] as? [[String: Any]] ?? []).map {
                CampaignReport.AuditRow(at: s($0["at"]), who: s($0["who"]), action: s($0["action"]), version: i($0["version"]),
                                        detail: s($0["detail"]))
            }
            var evaluation: [String: Any]?
            if let evaluationPath {
                guard let data = FileManager.default.contents(atPath: evaluationPath) else {
                    throw ChorusError(.notFound, "evaluation file not found: \(evaluationPath)",
                                      hint: "`chorus campaign evaluate ID --show --json > FILE` writes one")
                }
                guard let e = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                    throw ChorusError(.invalidInput, "\(evaluationPath) is not an evaluation (a JSON object)")
                }
                evaluation = e
            }
            return CampaignReport.html(plan: plan, meta: meta, versions: versions, audit: audit, evaluation: evaluation)
        }
    }
}
