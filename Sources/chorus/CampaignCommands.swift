import ArgumentParser
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// `chorus campaign`: plans computed from a brief, kept as versioned documents on the coordinator
/// (docs/campaigns.md).
struct Campaign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Campaign plans: make one from a brief, read it, approve it, export its calendar, measure it.",
        discussion: reflow("""
        A plan is computed by the `campaign-plan` job from a brief (YAML or JSON; docs/campaigns.md, and
        docs/examples/campaign-brief.yaml) and the outputs of the other jobs: segments, propensity, ALS, best-times,
        content-insights and sentiment. Each plan is a document with versions: every change writes a new version,
        an approved version never changes, and every create, approve and export is in its log.

        Examples:
          chorus campaign plan --brief docs/examples/campaign-brief.yaml --by ana
          chorus campaign list
          chorus campaign show winter-launch
          chorus campaign edit winter-launch --set budget.tiktok=12000 --lock schedule --by ana
          chorus campaign replan winter-launch --by ana
          chorus campaign approve winter-launch --by ben
          chorus campaign export winter-launch --format ics --out launch.ics
          chorus campaign log winter-launch
          chorus campaign audience winter-launch --out audience.csv
          chorus campaign evaluate winter-launch
        """),
        subcommands: [Plan.self, List.self, Show.self, Diff.self, Edit.self, Replan.self, Approve.self, Log.self, Export.self,
                      Report.self, Audience.self, Simulate.self, Evaluate.self])

    static var defaultAuthor: String { ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "cli" }

    /// The id a plan gets from its brief's name: lower-case letters and digits, '-' between words.
    static func slug(_ name: String) -> String {
        var out = ""
        for ch in name.lowercased().unicodeScalars {
            if ch.isASCII && CharacterSet.alphanumerics.contains(ch) { out.unicodeScalars.append(ch) } else if !out.hasSuffix("-") { out += "-" }
        }
        let s = out.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return s.isEmpty ? "campaign" : String(s.prefix(100))
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a plan from a brief (runs the campaign-plan job and waits for it).",
            discussion: reflow("""
            The brief is checked first: every problem is listed with its field, the reason and what to do, and
            the command exits 65 without submitting anything. The plan is stored as version 1 of the document ID
            (default: the brief's name in lower case with '-' between words); an existing ID is refused (exit 3)
            unless --replace is given, which writes the next version. Progress goes to stderr.
            JSON with --json: {campaign_id, version, job_id, summary}.
            """))
        @OptionGroup var client: ClientOptions
        @Option(help: ArgumentHelp("The brief (YAML or JSON).", valueName: "FILE")) var brief: String
        @Option(help: ArgumentHelp("The plan's id (letters, digits, '-', '_', '.').", valueName: "ID")) var id: String?
        @Option(help: ArgumentHelp("Who asks for the plan (recorded in its history).", valueName: "NAME")) var by: String = Campaign.defaultAuthor
        @Flag(help: "Write the next version of an existing plan instead of refusing.") var replace = false

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                guard let data = FileManager.default.contents(atPath: brief) else {
                    throw ChorusError(.notFound, "brief not found: \(brief)", hint: "docs/examples/campaign-brief.yaml is an example")
                }
                let b = try CampaignBriefFile.parse(data, source: brief)
                let campaignID = id ?? Campaign.slug(b.name)
                let c = try client.client()
                defer { c.close() }
                var expected: UInt32 = 0
                if let existing = try? await c.document(collection: CampaignPlanJob.collection, id: campaignID) {
                    guard replace else {
                        throw ChorusError(.conflict, "a plan '\(campaignID)' exists already (version \(existing.latestVersion))",
                                          hint: "give another --id, or --replace to write its next version")
                    }
                    expected = existing.latestVersion
                }
                let j = try await Campaign.runPlanJob(c, brief: b, id: campaignID, by: by, expectedVersion: expected, json: client.json)
                let summary = (try? JSONSerialization.jsonObject(with: Data(j.summaryJson.utf8))) as? [String: Any] ?? [:]
                if client.json {
                    printJSON(["campaign_id": campaignID, "version": summary["version"] ?? 0, "job_id": j.id, "summary": summary])
                } else {
                    print(CampaignPlanJob.summaryText(j.summaryJson) ?? j.summaryJson)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The plans, newest first, with their latest and approved versions.",
            discussion: "JSON with --json: [{id, title, version, author, action, created_at, approved_version}].")
        @OptionGroup var client: ClientOptions
        @Option(help: "At most this many.") var limit: Int = 50
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let docs = try await c.documents(collection: CampaignPlanJob.collection, limit: limit)
                let rows: [[String: Any]] = docs.map {
                    ["id": $0.id, "title": $0.latest.title, "version": Int($0.latest.version), "author": $0.latest.author,
                     "action": $0.latest.action, "created_at": iso($0.latest.createdAtMs), "approved_version": Int($0.approvedVersion)]
                }
                if client.json { printJSON(rows); return }
                if rows.isEmpty { print("no campaign plans yet: `chorus campaign plan --brief FILE` makes one"); return }
                print(pad("ID", 24) + pad("VERSION", 9) + pad("APPROVED", 10) + pad("UPDATED", 22) + "NAME")
                for r in rows {
                    let approved = (r["approved_version"] as? Int ?? 0) == 0 ? "-" : "v\(r["approved_version"]!)"
                    print(pad(r["id"] as? String ?? "", 24) + pad("v\(r["version"]!)", 9) + pad(approved, 10)
                          + pad(r["created_at"] as? String ?? "", 22) + (r["title"] as? String ?? ""))
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A plan: audience, content, schedule, budget, measurement, risks and what it could not decide.",
            discussion: reflow("""
            Without --version the latest version. JSON with --json: {campaign_id, version, latest_version,
            author, approved_by, created_at, plan} where plan is the stored document (docs/campaigns.md "The plan
            document").
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: "A version (default: the latest).") var version: UInt32?
        @Option(help: "Calendar rows shown (the rest are counted).") var rows: Int = 14
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let d = try await c.document(collection: CampaignPlanJob.collection, id: id, version: version ?? 0)
                let plan = try Campaign.body(d)
                if client.json {
                    printJSON(["campaign_id": id, "version": Int(d.meta.version), "latest_version": Int(d.latestVersion),
                               "author": d.meta.author, "approved_by": d.meta.approvedBy, "created_at": iso(d.meta.createdAtMs), "plan": plan])
                    return
                }
                print(Campaign.render(plan, meta: d.meta, latest: d.latestVersion, rows: rows).joined(separator: "\n"))
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What changed between two versions of a plan, value by value.",
            discussion: "Each line: the path in the plan document, the old value and the new one. JSON with --json: [{path, from, to}].")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Argument(help: "The older version.") var from: UInt32
        @Argument(help: "The newer version.") var to: UInt32
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                guard from > 0, to > 0 else { throw ChorusError(.usage, "versions start at 1") }
                let c = try client.client()
                defer { c.close() }
                let a = Campaign.flatten(try Campaign.body(try await c.document(collection: CampaignPlanJob.collection, id: id, version: from)))
                let b = Campaign.flatten(try Campaign.body(try await c.document(collection: CampaignPlanJob.collection, id: id, version: to)))
                let paths = Set(a.keys).union(b.keys).filter { a[$0] != b[$0] && !$0.hasPrefix("evidence") }.sorted()
                if client.json {
                    printJSON(paths.map { ["path": $0, "from": a[$0] ?? NSNull(), "to": b[$0] ?? NSNull()] as [String: Any] })
                    return
                }
                if paths.isEmpty { print("versions \(from) and \(to) of \(id) are the same plan"); return }
                print("\(paths.count) value(s) differ between v\(from) and v\(to) of \(id):")
                for p in paths { print("  \(p): \(a[p] ?? "(none)") → \(b[p] ?? "(none)")") }
            }
        }
    }

    struct Edit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a plan by hand and write it as a new version (it needs approval again).",
            discussion: reflow("""
            --set budget.CHANNEL=AMOUNT fixes a channel's spend; when the total would pass the budget, the channels
            not fixed by hand give way in proportion, down to their minimums. The expected KPI is not recomputed
            until a replan, which keeps the fixed amount as a constraint and splits the rest again.
            --drop segment:ID takes a chosen segment out with its content, posts and holdout; --drop content:ID
            takes an item out of the content and the calendar. A replan keeps both as constraints. --lock PART
            (audience, content, schedule, budget, measurement) keeps that part as it is in every replan; --unlock
            PART frees it. Each option may be repeated. Exit 65 for an edit that does not apply, 3 when someone
            wrote a version since this one was read. JSON with --json: {campaign_id, version, changes}.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(name: .customLong("set"), help: ArgumentHelp("budget.CHANNEL=AMOUNT", valueName: "PATH=VALUE")) var sets: [String] = []
        @Option(name: .customLong("drop"), help: ArgumentHelp("segment:ID or content:ID", valueName: "ITEM")) var drops: [String] = []
        @Option(name: .customLong("lock"), help: ArgumentHelp("A part kept by replans.", valueName: "PART")) var locks: [String] = []
        @Option(name: .customLong("unlock"), help: ArgumentHelp("A part freed for replans.", valueName: "PART")) var unlocks: [String] = []
        @Option(help: ArgumentHelp("Who edits (recorded in the log).", valueName: "NAME")) var by: String = Campaign.defaultAuthor

        func validate() throws {
            if sets.isEmpty && drops.isEmpty && locks.isEmpty && unlocks.isEmpty {
                throw ValidationError("nothing to change: give --set, --drop, --lock or --unlock")
            }
            for p in locks + unlocks where !CampaignPlanJob.lockableParts.contains(p) {
                throw ValidationError("'\(p)' is not a part: use \(CampaignPlanJob.lockableParts.joined(separator: ", "))")
            }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let d = try await c.document(collection: CampaignPlanJob.collection, id: id)
                var plan = try Campaign.body(d)
                let changes = try Campaign.apply(&plan, sets: sets, drops: drops, locks: locks, unlocks: unlocks, by: by)
                var put = Chorus_V1_DocumentPut()
                put.collection = CampaignPlanJob.collection; put.id = id; put.expectedVersion = d.latestVersion
                put.body = try JSONSerialization.data(withJSONObject: plan, options: [.sortedKeys])
                put.author = by; put.action = "edit"; put.summary = changes.joined(separator: "; ")
                let r = try await c.putDocument(put)
                if client.json { printJSON(["campaign_id": id, "version": Int(r.meta.version), "changes": changes]); return }
                print("\(id) version \(r.meta.version) (not approved):")
                for ch in changes { print("  " + ch) }
            }
        }
    }

    struct Replan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute a plan from its brief and today's data, keeping what is locked and edited.",
            discussion: reflow("""
            Runs the campaign-plan job on the latest version's brief. Locked parts are copied; fixed budgets, dropped
            segments and dropped content are constraints; everything else is decided again. The new version lists
            what moved (`changes`). JSON with --json: {campaign_id, version, job_id, changes}.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: ArgumentHelp("Who replans (recorded in the log).", valueName: "NAME")) var by: String = Campaign.defaultAuthor

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let d = try await c.document(collection: CampaignPlanJob.collection, id: id)
                let plan = try Campaign.body(d)
                guard let b = plan["brief"], let data = try? JSONSerialization.data(withJSONObject: b),
                      let brief = try? JSONDecoder().decode(CampaignBrief.self, from: data) else {
                    throw ChorusError(.internal, "version \(d.meta.version) of \(id) has no readable brief")
                }
                let j = try await Campaign.runPlanJob(c, brief: brief, id: id, by: by, expectedVersion: d.latestVersion, json: client.json)
                let summary = (try? JSONSerialization.jsonObject(with: Data(j.summaryJson.utf8))) as? [String: Any] ?? [:]
                let changes = summary["changes"] as? [String] ?? []
                if client.json {
                    printJSON(["campaign_id": id, "version": summary["version"] ?? 0, "job_id": j.id, "changes": changes]); return
                }
                print(CampaignPlanJob.summaryText(j.summaryJson) ?? j.summaryJson)
                let locks = summary["locks"] as? [String] ?? []
                if !locks.isEmpty { print("  kept (locked): " + locks.joined(separator: ", ")) }
                print(changes.isEmpty ? "  nothing moved" : "  what moved:")
                for ch in changes { print("    " + ch) }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve the latest version of a plan (it can then never change).",
            discussion: reflow("""
            Only the latest version can be approved, and only once; a later change writes a new version, which needs
            its own approval. A coordinator started with --block-self-approval refuses an approval by the version's
            author (exit 64). Exit 3 when the version is not the latest or is approved already.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: ArgumentHelp("Who approves.", valueName: "NAME")) var by: String
        @Option(help: "The version reviewed (default: the latest).") var version: UInt32?
        @Option(help: "A note for the log.") var note: String = ""
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                var v = version ?? 0
                if v == 0 { v = try await c.document(collection: CampaignPlanJob.collection, id: id).latestVersion }
                let r = try await c.approveDocument(collection: CampaignPlanJob.collection, id: id, version: v, by: by, note: note)
                if client.json { printJSON(["campaign_id": id, "version": Int(r.meta.version), "approved_by": r.meta.approvedBy]); return }
                print("approved \(id) version \(r.meta.version) by \(r.meta.approvedBy)")
            }
        }
    }

    struct Log: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Who did what to a plan, and when (create, replan, approve, export).",
            discussion: "JSON with --json: [{at, who, action, version, detail}].")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let d = try await c.document(collection: CampaignPlanJob.collection, id: id, withHistory: true)
                let rows: [[String: Any]] = d.audit.map {
                    ["at": iso($0.atMs), "who": $0.who, "action": $0.action, "version": Int($0.version), "detail": $0.detail]
                }
                if client.json { printJSON(rows); return }
                for r in rows {
                    print(pad(r["at"] as? String ?? "", 22) + pad(r["who"] as? String ?? "", 12) + pad(r["action"] as? String ?? "", 9)
                          + pad("v\(r["version"]!)", 6) + (r["detail"] as? String ?? ""))
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The calendar and its content for a scheduling tool: json, csv or ics.",
            discussion: reflow("""
            csv: date,time_utc,channel,segment,content_id,expected_engagement (one row per post). ics: one event
            per post (UTC, 30 minutes, UID from the plan, version and post). json: {campaign_id, version, approved,
            posts}. The export is recorded in the plan's log. Without --out it goes to stdout.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "The plan's id.") var id: String
        @Option(help: "json, csv or ics.") var format: String = "json"
        @Option(help: ArgumentHelp("Write here instead of stdout.", valueName: "FILE")) var out: String?
        @Option(help: "A version (default: the latest).") var version: UInt32?
        @Option(help: ArgumentHelp("Who exports (recorded in the log).", valueName: "NAME")) var by: String = Campaign.defaultAuthor

        func validate() throws {
            guard ["json", "csv", "ics"].contains(format) else { throw ValidationError("--format must be json, csv or ics (got \(format))") }
        }

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let d = try await c.document(collection: CampaignPlanJob.collection, id: id, version: version ?? 0)
                let plan = try Campaign.body(d)
                let posts = ((plan["schedule"] as? [String: Any])?["posts"] as? [[String: Any]]) ?? []
                let text = Campaign.export(posts, format: format, id: id, version: Int(d.meta.version),
                                           approved: !d.meta.approvedBy.isEmpty, name: d.meta.title)
                if let out {
                    do { try Data(text.utf8).write(to: URL(fileURLWithPath: out)) } catch {
                        throw ChorusError(.storage, "cannot write \(out): \(error.localizedDescription)")
                    }
                } else {
                    print(text, terminator: "")
                }
                _ = try await c.documentEvent(collection: CampaignPlanJob.collection, id: id, version: d.meta.version, who: by,
                                              action: "export", detail: "\(format), \(posts.count) posts" + (out.map { " to \($0)" } ?? ""))
                if out != nil, !client.json {
                    FileHandle.standardError.write(Data("wrote \(posts.count) posts of \(id) v\(d.meta.version) as \(format) to \(out!)\n".utf8))
                }
            }
        }
    }

    // MARK: - shared

    /// Runs the campaign-plan job for a brief and waits for it (progress on stderr); the finished job, or a
    /// jobFailed error naming it.
    static func runPlanJob(_ c: ChorusClient, brief: CampaignBrief, id: String, by: String, expectedVersion: UInt32,
                           json: Bool) async throws -> Chorus_V1_JobInfo {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try await runJob(c, kind: CampaignPlanJob.kind, params: [
            "brief": String(decoding: try enc.encode(brief), as: UTF8.self), "campaign_id": id, "author": by,
            "expected_version": String(expectedVersion), "action": expectedVersion == 0 ? "create" : "replan",
            "as_of": String(Int64(Date().timeIntervalSince1970))], json: json)
    }

    /// Applies `campaign edit` changes to a plan document; what changed, in words. Throws on an edit that does
    /// not apply (exit 65).
    static func apply(_ plan: inout [String: Any], sets: [String], drops: [String], locks: [String], unlocks: [String],
                      by: String) throws -> [String] {
        func bad(_ what: String, _ hint: String) -> ChorusError { ChorusError(.invalidInput, what, hint: hint) }
        var out: [String] = []
        var overrides = plan["overrides"] as? [String: Any] ?? [:]
        var budget = plan["budget"] as? [String: Any] ?? [:]
        var channels = budget["channels"] as? [[String: Any]] ?? []
        for kv in sets {
            let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].hasPrefix("budget."), let amount = Double(parts[1]), amount.isFinite, amount >= 0 else {
                throw bad("--set \(kv): not budget.CHANNEL=AMOUNT", "e.g. --set budget.tiktok=12000")
            }
            let ch = String(parts[0].dropFirst("budget.".count))
            guard let i = channels.firstIndex(where: { $0["channel"] as? String == ch }) else {
                throw bad("--set \(kv): '\(ch)' is not a channel of this plan", "channels: " + channels.compactMap { $0["channel"] as? String }.joined(separator: ", "))
            }
            let old = (channels[i]["spend"] as? NSNumber)?.doubleValue ?? 0
            if let mx = (channels[i]["max"] as? NSNumber)?.doubleValue, amount > mx + 1e-9 {
                throw bad("--set \(kv): above the brief's max \(mx) for \(ch)", "change the brief's limit and replan, or set at most \(mx)")
            }
            if let mn = (channels[i]["min"] as? NSNumber)?.doubleValue, amount < mn - 1e-9 {
                throw bad("--set \(kv): below the brief's min \(mn) for \(ch)", "set at least \(mn)")
            }
            channels[i]["spend"] = amount
            channels[i]["set_by"] = by
            channels[i].removeValue(forKey: "expected_kpi"); channels[i].removeValue(forKey: "marginal_return")
            var b = overrides["budget"] as? [String: Any] ?? [:]
            b[ch] = amount
            overrides["budget"] = b
            out.append(String(format: "budget: %@ %.2f → %.2f (set by %@)", ch, old, amount, by))
        }
        if !sets.isEmpty {
            let total = (budget["total"] as? NSNumber)?.doubleValue ?? 0
            func spendOf(_ o: [String: Any]) -> Double { (o["spend"] as? NSNumber)?.doubleValue ?? 0 }
            var spent = channels.reduce(0.0) { $0 + spendOf($1) }
            if spent > total + 0.005 {
                // The channels not fixed by hand give way, in proportion, down to their minimums.
                let fixed = Set(((overrides["budget"] as? [String: Any]) ?? [:]).keys)
                let free = channels.indices.filter { !fixed.contains(channels[$0]["channel"] as? String ?? "") }
                let floor = free.reduce(0.0) { $0 + ((channels[$1]["min"] as? NSNumber)?.doubleValue ?? 0) }
                let room = free.reduce(0.0) { $0 + spendOf(channels[$1]) } - floor
                let excess = spent - total
                guard room >= excess - 0.005 else {
                    throw bad(String(format: "the channels would spend %.2f, more than the budget %.2f, even with the others at their minimums", spent, total),
                              "set a smaller amount, or lower another channel with --set")
                }
                for i in free {
                    let mn = (channels[i]["min"] as? NSNumber)?.doubleValue ?? 0
                    let old = spendOf(channels[i])
                    let new = ((old - (old - mn) * excess / room) * 100).rounded(.down) / 100
                    channels[i]["spend"] = new
                    channels[i].removeValue(forKey: "expected_kpi"); channels[i].removeValue(forKey: "marginal_return")
                    if abs(new - old) >= 0.005 {
                        out.append(String(format: "budget: %@ %.2f → %.2f (gives way to stay within the budget)", channels[i]["channel"] as? String ?? "", old, new))
                    }
                }
                spent = channels.reduce(0.0) { $0 + spendOf($1) }
            }
            budget["channels"] = channels
            budget["unspent"] = ((total - spent) * 100).rounded() / 100
            budget["unspent_why"] = total - spent > 0.005 ? "left over by an edit" : ""
            budget["expected_kpi"] = NSNull()
            budget["edited"] = "changed by hand by \(by): the expected KPI is not recomputed until `chorus campaign replan`"
            plan["budget"] = budget
        }
        for item in drops {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw bad("--drop \(item): not segment:ID or content:ID", "e.g. --drop segment:3") }
            switch parts[0] {
            case "segment":
                guard let g = Int(parts[1]) else { throw bad("--drop \(item): '\(parts[1])' is not a segment id", "e.g. --drop segment:3") }
                var audience = plan["audience"] as? [String: Any] ?? [:]
                var segs = audience["segments"] as? [[String: Any]] ?? []
                guard let i = segs.firstIndex(where: { ($0["segment"] as? NSNumber)?.intValue == g && $0["chosen"] as? Bool == true }) else {
                    throw bad("--drop \(item): segment \(g) is not chosen in this plan", "`chorus campaign show` lists the chosen segments")
                }
                segs[i]["chosen"] = false
                segs[i]["reason"] = "dropped by \(by) (edit)"
                audience["segments"] = segs
                plan["audience"] = audience
                plan["content"] = (plan["content"] as? [[String: Any]] ?? []).filter { ($0["segment"] as? NSNumber)?.intValue != g }
                var schedule = plan["schedule"] as? [String: Any] ?? [:]
                let before = (schedule["posts"] as? [[String: Any]] ?? []).count
                schedule["posts"] = (schedule["posts"] as? [[String: Any]] ?? []).filter { ($0["segment"] as? NSNumber)?.intValue != g }
                plan["schedule"] = schedule
                var m = plan["measurement"] as? [String: Any] ?? [:]
                m["segments"] = (m["segments"] as? [[String: Any]] ?? []).filter { ($0["segment"] as? NSNumber)?.intValue != g }
                plan["measurement"] = m
                var list = overrides["dropped_segments"] as? [Any] ?? []
                list.append(g)
                overrides["dropped_segments"] = list
                out.append("audience: segment \(g) dropped by \(by), with its content, holdout and \(before - ((schedule["posts"] as? [Any])?.count ?? 0)) posts")
            case "content":
                let cid = parts[1]
                var content = plan["content"] as? [[String: Any]] ?? []
                var found = false
                for i in content.indices {
                    let items = content[i]["items"] as? [[String: Any]] ?? []
                    let kept = items.filter { $0["content_id"] as? String != cid }
                    if kept.count != items.count { found = true }
                    content[i]["items"] = kept
                }
                guard found else { throw bad("--drop \(item): \(cid) is not in this plan's content", "`chorus campaign show ID --json` lists it") }
                plan["content"] = content
                var schedule = plan["schedule"] as? [String: Any] ?? [:]
                let before = (schedule["posts"] as? [[String: Any]] ?? []).count
                schedule["posts"] = (schedule["posts"] as? [[String: Any]] ?? []).filter { $0["content_id"] as? String != cid }
                plan["schedule"] = schedule
                var list = overrides["dropped_content"] as? [Any] ?? []
                list.append(cid)
                overrides["dropped_content"] = list
                out.append("content: \(cid) dropped by \(by), with \(before - ((schedule["posts"] as? [Any])?.count ?? 0)) posts")
            default:
                throw bad("--drop \(item): not segment:ID or content:ID", "e.g. --drop segment:3 or --drop content:c0000123")
            }
        }
        var lockSet = Set(plan["locks"] as? [String] ?? [])
        for p in locks where lockSet.insert(p).inserted { out.append("\(p): locked by \(by)") }
        for p in unlocks where lockSet.remove(p) != nil { out.append("\(p): unlocked by \(by)") }
        plan["locks"] = lockSet.sorted()
        plan["overrides"] = overrides
        plan.removeValue(forKey: "changes")
        if out.isEmpty { throw bad("the edit changes nothing", "the parts are locked or unlocked already") }
        return out
    }

    static func body(_ d: Chorus_V1_DocumentReply) throws -> [String: Any] {
        guard let o = (try? JSONSerialization.jsonObject(with: d.body)) as? [String: Any] else {
            throw ChorusError(.internal, "version \(d.meta.version) of campaign \(d.id) is not a plan document")
        }
        return o
    }

    /// Every leaf of a JSON value by its path ("budget.channels[0].spend").
    static func flatten(_ v: Any, _ path: String = "", into out: inout [String: String]) {
        switch v {
        case let o as [String: Any]: for (k, x) in o { flatten(x, path.isEmpty ? k : path + "." + k, into: &out) }
        case let a as [Any]: for (i, x) in a.enumerated() { flatten(x, path + "[\(i)]", into: &out) }
        case let n as NSNumber: out[path] = n.stringValue
        case let s as String: out[path] = s
        case is NSNull: out[path] = "null"
        default: out[path] = "\(v)"
        }
    }
    static func flatten(_ v: Any) -> [String: String] { var out: [String: String] = [:]; flatten(v, into: &out); return out }

    static func export(_ posts: [[String: Any]], format: String, id: String, version: Int, approved: Bool, name: String) -> String {
        func s(_ v: Any?) -> String { (v as? String) ?? (v as? NSNumber)?.stringValue ?? "" }
        switch format {
        case "csv":
            var lines = ["date,time_utc,channel,segment,content_id,expected_engagement"]
            for p in posts {
                let hour = (p["hour"] as? NSNumber)?.intValue ?? 0
                lines.append([s(p["date"]), String(format: "%02d:00", hour), csvField(s(p["channel"])), s(p["segment"]),
                              csvField(s(p["content_id"])), s(p["expected_engagement"])].joined(separator: ","))
            }
            return lines.joined(separator: "\n") + "\n"
        case "ics":
            func stamp(_ t: Int64) -> String {
                let f = DateFormatter()
                f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "UTC"); f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
                return f.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
            }
            func escape(_ t: String) -> String {
                t.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ";", with: "\\;")
                    .replacingOccurrences(of: ",", with: "\\,").replacingOccurrences(of: "\n", with: "\\n")
            }
            var lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Chorus//campaign plan//EN", "CALSCALE:GREGORIAN",
                         "X-WR-CALNAME:" + escape("\(name) (\(id) v\(version)\(approved ? ", approved" : ", not approved"))")]
            for (i, p) in posts.enumerated() {
                let at = (p["at"] as? NSNumber)?.int64Value ?? 0
                lines += ["BEGIN:VEVENT", "UID:\(id)-v\(version)-\(i)@chorus", "DTSTAMP:" + stamp(at), "DTSTART:" + stamp(at),
                          "DTEND:" + stamp(at + 1800),
                          "SUMMARY:" + escape("Post \(s(p["content_id"])) on \(s(p["channel"])) for segment \(s(p["segment"]))"),
                          "DESCRIPTION:" + escape(s(p["why"])), "END:VEVENT"]
            }
            lines.append("END:VCALENDAR")
            return lines.joined(separator: "\r\n") + "\r\n"
        default:
            let o: [String: Any] = ["campaign_id": id, "version": version, "approved": approved, "posts": posts]
            let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// A plan in a few lines (for `chorus local`): audience, posts, budget split, measurement, gaps.
    static func brief(_ plan: [String: Any]) -> [String] {
        func num(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? 0 }
        let segs = ((plan["audience"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []).filter { $0["chosen"] as? Bool == true }
        let posts = ((plan["schedule"] as? [String: Any])?["posts"] as? [[String: Any]] ?? [])
        let budget = plan["budget"] as? [String: Any] ?? [:]
        var out = ["audience: " + (segs.isEmpty ? "none chosen" : segs.map { "\($0["segment"] ?? "") \($0["name"] ?? "")" }.joined(separator: "; "))]
        out.append("schedule: \(posts.count) posts, " + Dictionary(grouping: posts, by: { $0["channel"] as? String ?? "" })
            .sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.count)" }.joined(separator: ", "))
        out.append("budget (\(budget["method"] ?? "")): " + (budget["channels"] as? [[String: Any]] ?? [])
            .map { "\($0["channel"] ?? "") \(String(format: "%.0f", num($0["spend"])))" }.joined(separator: ", ") + " \(budget["currency"] ?? "")")
        if let e = budget["expected_kpi"] as? [String: Any] {
            out.append(String(format: "expected %@: %.4g [%.4g, %.4g]", budget["kpi"] as? String ?? "KPI", num(e["value"]), num(e["low"]), num(e["high"])))
        }
        let m = ((plan["measurement"] as? [String: Any])?["segments"] as? [[String: Any]] ?? [])
        out.append("holdouts: " + m.map { String(format: "segment %@ %.0f%% (detects +%.0f%%)", "\($0["segment"] ?? "")", num($0["holdout_share"]) * 100, num($0["mde_relative"]) * 100) }.joined(separator: ", "))
        let gaps = plan["gaps"] as? [String] ?? []
        if !gaps.isEmpty { out.append("not decided from data: \(gaps.count) item(s) (`chorus campaign show`)") }
        return out
    }

    /// The plan for people: one block per part.
    static func render(_ plan: [String: Any], meta: Chorus_V1_DocumentVersion, latest: UInt32, rows: Int) -> [String] {
        func num(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? 0 }
        func g(_ v: Any?) -> String { String(format: "%.4g", num(v)) }
        let brief = plan["brief"] as? [String: Any] ?? [:]
        var out: [String] = []
        out.append("\(meta.title) — \(plan["campaign_id"] ?? "") version \(meta.version) of \(latest)"
                   + (meta.approvedBy.isEmpty ? ", not approved" : ", approved by \(meta.approvedBy) at \(iso(meta.approvedAtMs))"))
        out.append("  \(brief["objective"] ?? "") (KPI \(brief["kpi"] ?? "")), \(brief["start"] ?? "") … \(brief["end"] ?? ""), "
                   + "budget \(brief["currency"] ?? "") \(String(format: "%.2f", num(brief["budget"]))), channels \((brief["channels"] as? [String] ?? []).joined(separator: ", "))")
        out.append("  written by \(meta.author) (\(meta.action)) at \(iso(meta.createdAtMs))")
        if let locks = plan["locks"] as? [String], !locks.isEmpty { out.append("  locked (kept by replans): " + locks.joined(separator: ", ")) }
        if let changes = plan["changes"] as? [String] {
            out.append("  since the previous version: " + (changes.isEmpty ? "nothing moved" : changes.joined(separator: "; ")))
        }
        let audience = plan["audience"] as? [String: Any] ?? [:]
        out.append("")
        out.append("AUDIENCE (\(audience["rule"] ?? ""))")
        for s in audience["segments"] as? [[String: Any]] ?? [] {
            let mark = (s["chosen"] as? Bool) == true ? "✓" : "·"
            out.append("  \(mark) \(pad("\(s["segment"] ?? "")", 4)) \(pad(s["name"] as? String ?? "", 28)) \(pad("\(s["users"] ?? 0) users", 14)) \(s["reason"] ?? "")")
        }
        out.append("")
        out.append("CONTENT (per chosen segment and channel, best first)")
        for c in plan["content"] as? [[String: Any]] ?? [] {
            let items = c["items"] as? [[String: Any]] ?? []
            out.append("  segment \(c["segment"] ?? ""): \(items.count) items")
            for it in items.prefix(6) {
                let flags = (it["flags"] as? [String] ?? [])
                out.append("    \(pad(it["content_id"] as? String ?? "", 12)) \(pad(it["channel"] as? String ?? "", 10)) score \(g(it["score"]))  \(it["reason"] ?? "")"
                           + (flags.isEmpty ? "" : "  ⚠ " + flags.joined(separator: "; ")))
            }
            if items.count > 6 { out.append("    … \(items.count - 6) more (--json shows all)") }
        }
        let schedule = plan["schedule"] as? [String: Any] ?? [:]
        let posts = schedule["posts"] as? [[String: Any]] ?? []
        out.append("")
        out.append("SCHEDULE (\(posts.count) posts, UTC)")
        for p in posts.prefix(rows) {
            out.append("  \(p["date"] ?? "") \(String(format: "%02d:00", (p["hour"] as? NSNumber)?.intValue ?? 0))  \(pad(p["channel"] as? String ?? "", 10)) segment \(pad("\(p["segment"] ?? "")", 3)) \(p["content_id"] ?? "")")
        }
        if posts.count > rows { out.append("  … \(posts.count - rows) more posts (`chorus campaign export \(plan["campaign_id"] ?? "") --format csv`)") }
        if let skipped = schedule["skipped"] as? [String: Any], !skipped.isEmpty {
            out.append("  slots skipped by the rules: " + skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        let budget = plan["budget"] as? [String: Any] ?? [:]
        out.append("")
        out.append("BUDGET (\(budget["method"] ?? ""): \(budget["why"] ?? ""))")
        if let edited = budget["edited"] as? String { out.append("  ⚠ " + edited) }
        for ch in budget["channels"] as? [[String: Any]] ?? [] {
            let binds = ch["binding"] as? [String] ?? []
            var line = "  \(pad(ch["channel"] as? String ?? "", 12)) \(budget["currency"] ?? "") \(pad(String(format: "%.2f", num(ch["spend"])), 11))"
            if ch["expected_kpi"] != nil { line += " → \(g(ch["expected_kpi"])) \(budget["kpi"] ?? "")" }
            if ch["marginal_return"] != nil { line += ", \(g(ch["marginal_return"])) more per extra \(budget["currency"] ?? "")" }
            if !binds.isEmpty { line += "  (at its \(binds.joined(separator: " and ")))" }
            if (ch["extrapolated"] as? Bool) == true { line += "  ⚠ beyond the history" }
            if let why = ch["not_modelled"] as? String { line += "  (not modelled: \(why))" }
            out.append(line)
        }
        if let e = budget["expected_kpi"] as? [String: Any] {
            out.append("  expected \(budget["kpi"] ?? "") from the media in the window: \(g(e["value"]))"
                       + (e["low"] != nil ? " [\(g(e["low"])), \(g(e["high"]))] (\(Int(num(e["level"]) * 100))% interval)" : ""))
        }
        if num(budget["unspent"]) > 0.005 { out.append("  unspent \(String(format: "%.2f", num(budget["unspent"]))): \(budget["unspent_why"] ?? "")") }
        if let w = budget["extrapolation_warning"] as? String { out.append("  ⚠ " + w) }
        let m = plan["measurement"] as? [String: Any] ?? [:]
        out.append("")
        out.append("MEASUREMENT (\(m["power_formula"] ?? ""))")
        for s in m["segments"] as? [[String: Any]] ?? [] {
            out.append("  segment \(pad("\(s["segment"] ?? "")", 3)) holdout \(g(num(s["holdout_share"]) * 100))% (\(s["holdout_users"] ?? 0) of \(s["users"] ?? 0) users), "
                       + "base rate \(g(s["base_rate"])), detects \(s["mde_relative"] is NSNull ? "nothing" : "+" + g(num(s["mde_relative"]) * 100) + "%") "
                       + "at power \(g(s["power"])) over \(s["duration_days"] ?? 0) days" + ((s["reaches_target"] as? Bool) == true ? "" : "  ⚠ below the target lift"))
        }
        let risks = plan["risks"] as? [[String: Any]] ?? []
        out.append("")
        out.append("RISKS" + (risks.isEmpty ? ": no active alert on the watched keys or the chosen content" : ""))
        for r in risks {
            if r["kind"] as? String == "complaint_themes" {
                out.append("  \(r["key"] ?? "") complaint themes: \(r["why"] ?? "")")
            } else {
                out.append("  \(r["key"] ?? "") \(r["kind"] ?? "") at \(r["at"] ?? "")")
            }
        }
        let gaps = plan["gaps"] as? [String] ?? []
        if !gaps.isEmpty {
            out.append("")
            out.append("NOT DECIDED FROM DATA")
            for gp in gaps { out.append("  - " + gp) }
        }
        let ev = plan["evidence"] as? [String: Any] ?? [:]
        out.append("")
        out.append("EVIDENCE: " + ev.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        return out
    }
}
