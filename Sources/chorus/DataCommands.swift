import ArgumentParser
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

struct Profile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read global user profiles.",
        subcommands: [Get.self, Export.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one user's global profile (read from the owner of the user's partition).",
            discussion: "Exit code 66 when the user has no profile yet (run `chorus job submit features`).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "User id.") var userId: String
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                // Ingest trims ids, so "  u1  " names the user stored as "u1".
                let userId = self.userId.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !userId.isEmpty else { throw ChorusError(.usage, "the user id is empty") }
                let c = try client.client()
                defer { c.close() }
                let started = ContinuousClock.now
                let r = try await c.profile(userId: userId)
                var obj: Any
                if r.found, let o = try? JSONSerialization.jsonObject(with: Data(r.profileJson.utf8)) {
                    obj = o
                } else if !r.embedding.isEmpty || !r.sentimentJson.isEmpty || !r.sectionsJson.isEmpty {
                    obj = ["user_id": userId]
                } else {
                    throw ChorusError(.notFound, "no profile for user '\(userId)'",
                                      hint: r.userJson.isEmpty ? "the user is unknown; ingest it first"
                                          : "run `chorus job submit features --wait` first")
                }
                // The ALS embedding, when an `als` job has run since the user had interactions.
                if var d = obj as? [String: Any] {
                    if r.embedding.isEmpty {
                        d["embedding"] = NSNull()
                        d["embedding_status"] = "no factors yet (run `chorus job submit als`)"
                    } else {
                        d["embedding"] = r.embedding.map { Double($0) }
                        d["embedding_bias"] = Double(r.bias)
                    }
                    // The top-N stored by the last `als` job (seen items excluded); `chorus recommend` explains them.
                    if let list = try? JSONSerialization.jsonObject(with: Data(r.recommendationsJson.utf8)) {
                        d["recommendations"] = list
                    }
                    // Attitude per topic, hashtag and brand from the last `sentiment` job.
                    if let sentiment = try? JSONSerialization.jsonObject(with: Data(r.sentimentJson.utf8)) {
                        d["sentiment"] = sentiment
                    }
                    // Segment, influence, propensity...: the parts the job kinds declare (Job.profileSections).
                    for (name, json) in r.sectionsJson {
                        if let v = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]) {
                            d[name] = v
                        }
                    }
                    // Which job wrote each part, so a plan can cite its evidence.
                    d["produced_by"] = r.producedBy
                    obj = d
                }
                if client.json {
                    printJSON(obj)
                } else if let d = obj as? [String: Any] {
                    let recs = (d["recommendations"] as? [[String: Any]] ?? []).compactMap { $0["content_id"] as? String }
                    var contents: [String: ContentRecord] = [:]
                    let left = c.timeout - (ContinuousClock.now - started)
                    if !recs.isEmpty, left > .milliseconds(50) { contents = (try? await c.contents(recs, within: left)) ?? [:] }
                    print(profileText(d, contents: contents))
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export every profile as JSONL or CSV.",
            discussion: reflow("""
            JSONL: one profile object per line (keys in docs/cli.md), with the user's sentiment and stored
            recommendations. CSV: one row per user, columns in the order of docs/cli.md ("CSV columns"): the
            profile's scalars, histograms as 24/7 '|'-separated counts, top topics/hashtags as name:weight lists,
            then the sentiment columns, attitudes and recommendations.
            """))
        enum Format: String, ExpressibleByArgument { case jsonl, csv }
        @OptionGroup var client: ClientOptions
        @Option(help: "jsonl or csv.") var format: Format = .jsonl
        @Option(help: ArgumentHelp("Output file (default: stdout).", valueName: "FILE")) var out: String?

        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let n = try await exportProfiles(c, format: format, out: out)
                if let out {
                    if client.json { printJSON(["exported": n, "out": out, "format": format.rawValue]) }
                    else { print("exported \(n) profiles to \(out)") }
                }
            }
        }
    }
}

/// The readable `profile get`: who the user is, activity, interests, sentiment, recommendations and the embedding
/// (summarized: rank, norm, the first values), with ISO times and rounded numbers. `--json` has everything.
func profileText(_ d: [String: Any], contents: [String: ContentRecord]) -> String {
    func num(_ k: String, in m: [String: Any]? = nil) -> Double { ((m ?? d)[k] as? NSNumber)?.doubleValue ?? 0 }
    func int(_ k: String, in m: [String: Any]? = nil) -> Int { Int(num(k, in: m)) }
    func str(_ k: String) -> String { d[k] as? String ?? "" }
    func time(_ k: String) -> String { num(k) > 0 ? iso(Int64(num(k) * 1000)) : "-" }
    func row(_ label: String, _ value: String) -> String { "  " + pad(label, 15) + value }
    var out: [String] = []
    let who = [str("channel"), str("country"), str("language"), str("age_band").isEmpty ? "" : "age " + str("age_band")]
        .filter { !$0.isEmpty }.joined(separator: ", ")
    out.append("user \(str("user_id"))" + (who.isEmpty ? "" : "  (\(who))")
               + ((d["known_user"] as? Bool) == false ? "  [no user record: seen only in interactions or follows]" : ""))

    if d["interactions"] != nil {
        out.append("")
        out.append("activity" + (num("as_of") > 0 ? " (features as of \(time("as_of")))" : ""))
        let types = (d["counts_by_type"] as? [String: Any] ?? [:]).map { ($0.key, int($0.key, in: d["counts_by_type"] as? [String: Any])) }
            .filter { $0.1 > 0 }.sorted { ($0.1, $1.0) > ($1.1, $0.0) }
        out.append(row("interactions", "\(int("interactions"))" + (types.isEmpty ? "" : ": " + types.map { "\($0.0) \($0.1)" }.joined(separator: ", "))))
        let channels = (d["counts_by_channel"] as? [String: Any] ?? [:]).map { ($0.key, int($0.key, in: d["counts_by_channel"] as? [String: Any])) }
            .sorted { ($0.1, $1.0) > ($1.1, $0.0) }
        if !channels.isEmpty { out.append(row("by channel", channels.map { "\($0.0) \($0.1)" }.joined(separator: ", "))) }
        out.append(row("engagements", "\(int("engagements")) (" + String(format: "%.2f", num("engagement_rate")) + " per view)"))
        out.append(row("first seen", time("first_ts")))
        out.append(row("last seen", time("last_ts") + String(format: " (%.1f days before as_of)", num("recency_days"))))
        out.append(row("active days", "\(int("active_days")), " + String(format: "%.1f", num("frequency")) + " interactions per active day"))
        let bars = Array(" ▁▂▃▄▅▆▇█")
        let hours = (d["active_hours"] as? [NSNumber] ?? []).map(\.intValue)
        if hours.count == 24, let mx = hours.max(), mx > 0 {
            let peak = hours.firstIndex(of: mx) ?? 0
            out.append(row("hours (UTC)", "0h |" + String(hours.map { bars[min(8, ($0 * 8 + mx - 1) / mx)] }) + "| 23h, peak "
                           + String(format: "%02d:00", peak)))
        }
        let days = (d["weekdays"] as? [NSNumber] ?? []).map(\.intValue)
        if days.count == 7 {
            let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            out.append(row("weekdays", zip(names, days).map { "\($0) \($1)" }.joined(separator: "  ")))
        }
        out.append(row("followers", "\(int("followers")), following \(int("following"))"))
        func terms(_ k: String) -> String {
            (d[k] as? [[String: Any]] ?? []).prefix(8).map { "\($0["name"] as? String ?? "") \(Int(num("weight", in: $0)))" }
                .joined(separator: ", ")
        }
        out.append("")
        out.append("interests")
        out.append(row("top topics", terms("top_topics").isEmpty ? "-" : terms("top_topics")))
        out.append(row("top hashtags", terms("top_hashtags").isEmpty ? "-" : terms("top_hashtags")))
    }

    out.append("")
    if let sent = d["sentiment"] as? [String: Any] {
        let dist = sent["distribution"] as? [String: Any] ?? [:]
        out.append("sentiment (last `sentiment` job)")
        out.append(row("comments", "\(int("comments", in: sent)): negative \(int("negative", in: dist)), neutral "
                       + "\(int("neutral", in: dist)), positive \(int("positive", in: dist)); mean score "
                       + String(format: "%+.2f", num("mean_score", in: sent))))
        let atts = (sent["attitudes"] as? [String: [String: Any]] ?? [:])
            .sorted { (int("comments", in: $0.value), $1.key) > (int("comments", in: $1.value), $0.key) }
        for (i, (key, a)) in atts.prefix(8).enumerated() {
            out.append(row(i == 0 ? "attitudes" : "", pad(key, 24) + pad(a["attitude"] as? String ?? "?", 9)
                           + String(format: "%+.2f over %d comment%@", num("mean_score", in: a), int("comments", in: a),
                                    int("comments", in: a) == 1 ? "" : "s")))
        }
        if atts.count > 8 { out.append(row("", "… \(atts.count - 8) more (--json)")) }
    } else {
        out.append("sentiment: none yet (run `chorus sentiment run`)")
    }

    out.append("")
    let recs = d["recommendations"] as? [[String: Any]] ?? []
    if recs.isEmpty {
        out.append("recommendations: none stored (an `als` job stores each user's top 10; `chorus recommend` explains)")
    } else {
        out.append("recommendations (stored by the last `als` job; `chorus recommend \(str("user_id"))` explains them)")
        for (i, r) in recs.prefix(5).enumerated() {
            out.append(String(format: "  %2d. ", i + 1) + contentLabel(r["content_id"] as? String ?? "", contents)
                       + String(format: "  score %.3f", num("score", in: r)))
        }
        if recs.count > 5 { out.append("      … \(recs.count - 5) more (--json)") }
    }

    for sec in StandardJobs.registry.profileSections {
        guard let o = d[sec.name] as? [String: Any] else { continue }
        out.append("")
        out.append(contentsOf: sec.describe(o))
    }

    out.append("")
    if let e = d["embedding"] as? [NSNumber], !e.isEmpty {
        let v = e.map(\.doubleValue)
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        out.append("embedding: rank \(v.count), norm " + String(format: "%.3f", norm) + ", bias "
                   + String(format: "%+.3f", num("embedding_bias")) + ", first values "
                   + v.prefix(4).map { String(format: "%+.3f", $0) }.joined(separator: " ") + (v.count > 4 ? " … (--json)" : ""))
    } else {
        out.append("embedding: " + (d["embedding_status"] as? String ?? "none"))
    }
    return out.joined(separator: "\n")
}

/// The CSV export's columns, in this order (documented in docs/cli.md; new columns are only ever appended within
/// a major version). Profile columns first, then the sentiment of the last `sentiment` job, then the ALS outputs.
let csvColumns = baseCSVColumns + StandardJobs.registry.profileSections.flatMap { sec in
    sec.csvFields.map { "\(sec.name)_\($0)" }
}
let baseCSVColumns = ["user_id", "channel", "country", "language", "age_band", "known_user", "as_of", "interactions",
                  "view", "like", "comment", "share", "click", "conversion", "rating", "engagements", "engagement_rate",
                  "first_ts", "last_ts", "recency_days", "active_days", "frequency", "followers", "following",
                  "active_hours", "weekdays", "top_topics", "top_hashtags", "counts_by_channel",
                  "sentiment_comments", "sentiment_mean_score", "sentiment_negative", "sentiment_neutral",
                  "sentiment_positive", "attitudes", "recommendations"]

func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
        ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

/// One CSV row (the columns of `csvColumns`) from an exported profile object.
func csvRow(_ json: String) -> String {
    guard let d = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else { return "" }
    let types = d["counts_by_type"] as? [String: Any] ?? [:]
    let sentiment = d["sentiment"] as? [String: Any] ?? [:]
    let dist = sentiment["distribution"] as? [String: Any] ?? [:]
    func s(_ v: Any?) -> String {
        switch v {
        case let b as Bool where type(of: v!) == type(of: true as Any): return b ? "true" : "false"
        case let n as NSNumber: return n.stringValue
        case let x as String: return x
        case nil, is NSNull: return ""
        default: return "\(v!)"
        }
    }
    func terms(_ v: Any?) -> String {
        (v as? [[String: Any]] ?? []).map { "\(s($0["name"])):\(s($0["weight"]))" }.joined(separator: "|")
    }
    func ints(_ v: Any?) -> String { (v as? [Any] ?? []).map { s($0) }.joined(separator: "|") }
    let channels = (d["counts_by_channel"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }
        .map { "\($0.key):\(s($0.value))" }.joined(separator: "|")
    // key:attitude:comments:mean_score, most-commented first.
    let attitudes = (sentiment["attitudes"] as? [String: [String: Any]] ?? [:])
        .sorted { (($0.value["comments"] as? Int) ?? 0, $1.key) > (($1.value["comments"] as? Int) ?? 0, $0.key) }
        .map { "\($0.key):\(s($0.value["attitude"])):\(s($0.value["comments"])):\(s($0.value["mean_score"]))" }
        .joined(separator: "|")
    let recommendations = (d["recommendations"] as? [[String: Any]] ?? [])
        .map { "\(s($0["content_id"])):" + String(format: "%.4f", ($0["score"] as? NSNumber)?.doubleValue ?? 0) }
        .joined(separator: "|")
    var values: [String: String] = [
        "user_id": s(d["user_id"]), "channel": s(d["channel"]), "country": s(d["country"]),
        "language": s(d["language"]), "age_band": s(d["age_band"]), "known_user": (d["known_user"] as? Bool).map { $0 ? "true" : "false" } ?? "",
        "as_of": s(d["as_of"]), "interactions": s(d["interactions"]),
        "view": s(types["view"]), "like": s(types["like"]), "comment": s(types["comment"]), "share": s(types["share"]),
        "click": s(types["click"]), "conversion": s(types["conversion"]), "rating": s(types["rating"]),
        "engagements": s(d["engagements"]), "engagement_rate": s(d["engagement_rate"]), "first_ts": s(d["first_ts"]),
        "last_ts": s(d["last_ts"]), "recency_days": s(d["recency_days"]), "active_days": s(d["active_days"]),
        "frequency": s(d["frequency"]), "followers": s(d["followers"]), "following": s(d["following"]),
        "active_hours": ints(d["active_hours"]), "weekdays": ints(d["weekdays"]), "top_topics": terms(d["top_topics"]),
        "top_hashtags": terms(d["top_hashtags"]), "counts_by_channel": channels,
        "sentiment_comments": s(sentiment["comments"]), "sentiment_mean_score": s(sentiment["mean_score"]),
        "sentiment_negative": s(dist["negative"]), "sentiment_neutral": s(dist["neutral"]),
        "sentiment_positive": s(dist["positive"]), "attitudes": attitudes, "recommendations": recommendations,
    ]
    for sec in StandardJobs.registry.profileSections {
        let o = d[sec.name] as? [String: Any] ?? [:]
        for f in sec.csvFields { values["\(sec.name)_\(f)"] = s(o[f]) }
    }
    return csvColumns.map { csvField(values[$0] ?? "") }.joined(separator: ",")
}

func exportProfiles(_ c: ChorusClient, format: Profile.Export.Format, out: String?) async throws -> Int {
    let handle: FileHandle
    if let out {
        guard FileManager.default.createFile(atPath: out, contents: nil), let h = FileHandle(forWritingAtPath: out) else {
            throw ChorusError(.storage, "cannot write \(out)")
        }
        handle = h
    } else {
        handle = FileHandle.standardOutput
    }
    defer { if out != nil { try? handle.close() } }
    var buffer = Data()
    if format == .csv { buffer.append(Data((csvColumns.joined(separator: ",") + "\n").utf8)) }
    let n = try await c.exportProfiles { json in
        buffer.append(Data(((format == .csv ? csvRow(json) : json) + "\n").utf8))
        if buffer.count > 1 << 20 { handle.write(buffer); buffer.removeAll(keepingCapacity: true) }
    }
    handle.write(buffer)
    return n
}

func nodeState(_ s: Chorus_V1_NodeState) -> String {
    switch s {
    case .active: return "active"
    case .suspect: return "suspect"
    case .dead: return "dead"
    case .joining: return "joining"
    case .draining: return "draining"
    case .drained: return "drained"
    default: return "unknown"
    }
}

func nodeDict(_ n: Chorus_V1_NodeInfo) -> [String: Any] {
    ["id": n.id, "name": n.name, "address": n.address, "state": nodeState(n.state), "partitions": Int(clamping: n.partitions),
     "primaries": Int(clamping: n.primaries), "replicas": Int(clamping: n.replicas), "learners": Int(clamping: n.learners),
     "draining": n.draining, "heartbeat_age_ms": Int(clamping: n.heartbeatAgeMs), "bytes_held": Int(clamping: n.bytesHeld),
     "cores": Int(clamping: n.cores), "running_tasks": Int(clamping: n.runningTasks), "job_states": n.jobStates, "fenced": Int(clamping: n.fenced),
     "rejected": Int(clamping: n.rejected), "stray_partitions": Int(clamping: n.strayPartitions),
     "storage": ["state": storageState(n.storage.state), "free_bytes": Int(clamping: n.storage.freeBytes),
                 "total_bytes": Int(clamping: n.storage.totalBytes), "reserve_bytes": Int(clamping: n.storage.reserveBytes),
                 "reason": n.storage.reason, "path": n.storage.path] as [String: Any]]
}

/// `ok`, `low` (free space below the worker's reserve: no new copies) or `read-only` (a full disk: writes refused).
func storageState(_ s: Chorus_V1_StorageState) -> String {
    switch s {
    case .ok: return "ok"
    case .low: return "low"
    case .readOnly: return "read-only"
    default: return "unknown"
    }
}

/// `read-only (disk full), 0 B of 40.0 MiB free` for the lines under the node table.
func storageLine(_ n: Chorus_V1_NodeInfo) -> String {
    let h = n.storage
    var line = "\(n.name): storage " + storageState(h.state)
    if h.state == .readOnly { line += h.reason.hasPrefix("disk full") ? " (disk full)" : " (storage error)" }
    if h.state == .low { line += " (below its reserve of \(humanBytes(h.reserveBytes)): takes no new partition copies)" }
    if h.totalBytes > 0 { line += ", \(humanBytes(h.freeBytes)) of \(humanBytes(h.totalBytes)) free on \(h.path)" }
    if h.state == .readOnly {
        line += "; writes are refused, reads go on. " + h.reason
            + "\n  fix: free space on that disk; the worker resumes writes by itself above \(humanBytes(h.reserveBytes)) free"
    }
    return line
}

/// A move's progress from bytes copied (keys when the byte total is unknown) and the rate so far.
func moveEstimate(_ m: Chorus_V1_MoveInfo) -> MoveEstimate {
    let elapsed = Double(nowMillis() - m.startedAtMs) / 1000
    return m.bytesTotal > 0 || m.keysTotal == 0
        ? MoveEstimate(copied: m.bytesCopied, total: m.bytesTotal, elapsedSeconds: elapsed)
        : MoveEstimate(copied: m.keysCopied, total: m.keysTotal, elapsedSeconds: elapsed)
}

/// Node names by id, for showing moves.
func nodeNames(_ s: Chorus_V1_ClusterStatus) -> [String: String] {
    Dictionary(s.nodes.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
}

func moveDict(_ m: Chorus_V1_MoveInfo, names: [String: String]) -> [String: Any] {
    let e = moveEstimate(m)
    return ["partition": Int(clamping: m.partition), "from": m.from, "to": m.to, "leaving": m.leaving, "reason": m.reason,
            "from_name": names[m.from] ?? m.from, "to_name": names[m.to] ?? m.to,
            "leaving_name": m.leaving.isEmpty ? "" : names[m.leaving] ?? m.leaving,
            "keys_copied": Int(clamping: m.keysCopied), "bytes_copied": Int(clamping: m.bytesCopied),
            "keys_total": Int(clamping: m.keysTotal), "bytes_total": Int(clamping: m.bytesTotal),
            "percent": e.fraction.map { ($0 * 1000).rounded() / 10 as Any } ?? NSNull(),
            "eta_seconds": e.etaSeconds.map { ($0 * 10).rounded() / 10 as Any } ?? NSNull(),
            "seconds": Double(nowMillis() - m.startedAtMs) / 1000]
}

/// `partition 17: worker-1 -> worker-4 (drain, worker-2 leaves), 42%, 5200 keys / 1.3 MiB of 3.1 MiB copied,
/// 1.0 MiB/s, ETA 2 s, 1.3 s so far`.
func moveLine(_ m: Chorus_V1_MoveInfo, names: [String: String]) -> String {
    func n(_ id: String) -> String { names[id] ?? id }
    let e = moveEstimate(m)
    let byBytes = m.bytesTotal > 0 || m.keysTotal == 0
    var line = "partition \(m.partition): \(n(m.from)) -> \(n(m.to)) (\(m.reason)"
        + (m.leaving.isEmpty ? "" : ", \(n(m.leaving)) leaves") + "), "
    if let f = e.fraction { line += String(format: "%.0f%%, ", f * 100) }
    line += "\(m.keysCopied) keys / \(humanBytes(m.bytesCopied))"
    if m.bytesTotal > 0 { line += " of \(humanBytes(m.bytesTotal))" } else if m.keysTotal > 0 { line += " of \(m.keysTotal) keys" }
    line += " copied"
    if e.rate > 0 { line += ", " + (byBytes ? "\(humanBytes(UInt64(min(e.rate, 1e18))))/s" : String(format: "%.0f keys/s", e.rate)) }
    if let eta = e.etaSeconds { line += String(format: ", ETA %.0f s", eta.rounded(.up)) }
    else if e.fraction == nil && m.keysCopied > 0 { line += ", ETA unknown (the partition was too big to count)" }
    return line + String(format: ", %.1f s so far", Double(nowMillis() - m.startedAtMs) / 1000)
}

/// The cluster can take ingest, reads and jobs: a worker is live and every partition has a live primary.
func isReady(_ s: Chorus_V1_ClusterStatus) -> Bool {
    s.unassignedPartitions == 0 && s.nodes.contains { $0.state != .dead }
}

func statusDict(_ s: Chorus_V1_ClusterStatus) -> [String: Any] {
    let names = nodeNames(s)
    return [
        "ready": isReady(s),
        "coordinator_id": s.coordinatorID, "map_version": Int(clamping: s.mapVersion),
        "partition_count": Int(clamping: s.partitionCount), "replication_factor": Int(clamping: s.replicationFactor),
        "unassigned_partitions": Int(clamping: s.unassignedPartitions),
        "under_replicated": s.underReplicated.map { Int($0) },
        "moves": s.moves.map { moveDict($0, names: names) }, "moves_planned": Int(clamping: s.movesPlanned),
        "last_recovered_ms": Int(clamping: s.lastRecoveredMs), "rejected": Int(clamping: s.rejected),
        "nodes": s.nodes.map(nodeDict), "jobs_running": Int(clamping: s.jobsRunning), "jobs_total": Int(clamping: s.jobsTotal),
        "uptime_seconds": Double(s.uptimeMs) / 1000,
    ]
}

func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

func humanBytes(_ b: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}

/// Left-aligns `s` in `n` columns (Foundation's `%-Ns` padding is not reliable for Swift strings on Linux).
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

func printNodes(_ nodes: [Chorus_V1_NodeInfo]) {
    print(pad("ID", 17) + pad("NAME", 13) + pad("STATE", 9) + lpad("PRIMARY", 8) + lpad("REPLICA", 8)
          + lpad("COPYING", 8) + lpad("BYTES", 11) + "  " + pad("STORAGE", 10) + lpad("HEARTBEAT", 10) + "  ADDRESS")
    for n in nodes {
        let hb = n.heartbeatAgeMs < 0 ? "never" : String(format: "%.1fs ago", Double(n.heartbeatAgeMs) / 1000)
        print(pad(n.id, 17) + pad(n.name, 13) + pad(nodeState(n.state), 9) + lpad(String(n.primaries), 8)
              + lpad(String(n.replicas), 8) + lpad(String(n.learners), 8) + lpad(humanBytes(n.bytesHeld), 11)
              + "  " + pad(n.state == .dead ? "-" : storageState(n.storage.state), 10) + lpad(hb, 10) + "  " + n.address)
    }
    for n in nodes where n.state != .dead && n.storage.state != .ok { print(storageLine(n)) }
}

struct Node: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and manage cluster members.",
        discussion: reflow("""
        States: joining (receiving its first partitions), active, suspect (missed heartbeats for 2 s), dead (silent
        for 5 s: its partitions failed over), draining (handing its partitions off), drained (holds nothing; safe to
        stop). Runbook: docs/operations.md.
        """),
        subcommands: [List.self, Drain.self, Undrain.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List workers: state, partitions as primary and replica, bytes held, heartbeat age.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var watch: WatchOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                try await watching(watch, format: client.format) {
                    let s = try await c.clusterStatus()
                    if client.json { printJSON(["nodes": s.nodes.map(nodeDict)]); return }
                    if s.nodes.isEmpty { print("no workers registered yet: start one with `chorus worker`"); return }
                    printNodes(s.nodes)
                }
            }
        }
    }

    static func admin(_ client: ClientOptions, _ node: String, _ action: Chorus_V1_NodeAction, force: Bool = false) async throws {
        try await guarded {
            let c = try client.client()
            defer { c.close() }
            let r = try await c.nodeAdmin(node, action, force: force)
            if client.json {
                printJSON(["message": r.message, "nodes": r.status.nodes.map(nodeDict)])
            } else {
                print(r.message)
            }
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move every partition off a worker, in the background, while reads, ingest and jobs go on.",
            discussion: reflow("""
            The worker keeps serving until each of its partitions has R copies elsewhere; then it gives the
            partition up. `chorus node list` shows it as draining, then drained: only then is stopping it safe.
            Refused (exit 64) when fewer than R other workers are live and not draining, since its partitions
            could not keep R copies without it; --force drains anyway, and the node keeps the copies that have
            nowhere to go (it stays draining, not drained) until another worker joins.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "Node id or name.") var node: String
        @Flag(help: "Wait until the node is drained, printing progress.") var wait = false
        @Flag(help: "Drain even though fewer than R other workers can take its partitions.") var force = false
        func run() async throws {
            setupLogging(level: .warning)
            try await Node.admin(client, node, .drain, force: force)
            if wait {
                try await guarded {
                    let c = try client.client()
                    defer { c.close() }
                    while true {
                        let s: Chorus_V1_ClusterStatus
                        do {
                            s = try await c.clusterStatus()
                        } catch let e as ChorusError where e.code == .unreachable || e.code == .unavailable {
                            // A coordinator restarting (a rescheduled pod) does not end the wait: the drain goes
                            // on once it is back, and a stop hook must not give up half-way.
                            FileHandle.standardError.write(Data("\rwaiting for the coordinator: \(e.message)   ".utf8))
                            try await Task.sleep(for: .seconds(1))
                            continue
                        }
                        guard let n = s.nodes.first(where: { $0.id == node || $0.name == node }) else { return }
                        let left = n.partitions + n.learners
                        // Nothing moving and nothing planned, yet copies left: they have nowhere to go (forced).
                        let stuck = left > 0 && s.moves.isEmpty && s.movesPlanned == 0
                        if !client.json {
                            FileHandle.standardError.write(Data(("\r\(n.name): \(nodeState(n.state)), \(left) partition copies left, \(s.moves.count) moves in flight"
                                + (stuck ? "; waiting for room: start another worker" : "") + "   ").utf8))
                        }
                        if n.state == .drained {
                            if !client.json { FileHandle.standardError.write(Data("\n".utf8)) }
                            return
                        }
                        if n.state == .dead { throw ChorusError(.unavailable, "\(n.name) died while draining") }
                        try await Task.sleep(for: .milliseconds(500))
                    }
                }
            }
        }
    }

    struct Undrain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a drained or draining worker take partitions again.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Node id or name.") var node: String
        func run() async throws {
            setupLogging(level: .warning)
            try await Node.admin(client, node, .undrain)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget a stopped worker.",
            discussion: reflow("""
            Refused while the node is running or still holds partitions. For a dead node that still holds
            partitions (it will not come back), --force drops its copies: replicas elsewhere take over and the
            cluster re-replicates. A partition whose only copy was on that node is lost.
            """))
        @OptionGroup var client: ClientOptions
        @Argument(help: "Node id or name.") var node: String
        @Flag(help: "Remove a dead node even though the map still lists it as a holder.") var force = false
        @Flag(help: ArgumentHelp("Wait (up to --timeout) until a just-stopped node is declared dead, then remove it.",
                                 discussion: "A stopped worker is declared dead 5 s after its last heartbeat."))
        var wait = false
        func run() async throws {
            setupLogging(level: .warning)
            if wait {
                try await guarded {
                    let c = try client.client()
                    defer { c.close() }
                    let due = Date().addingTimeInterval(client.timeout)
                    // Until the coordinator declares it dead; the remove below then says what is still in the way.
                    while Date() < due {
                        let s = try await c.clusterStatus()
                        guard let n = s.nodes.first(where: { $0.id == node || $0.name == node }), n.state != .dead
                        else { break }
                        if !client.json {
                            FileHandle.standardError.write(Data(("\rwaiting for \(n.name) to be declared dead: last heartbeat "
                                + String(format: "%.1f", Double(n.heartbeatAgeMs) / 1000) + " s ago   ").utf8))
                        }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    if !client.json { FileHandle.standardError.write(Data("\n".utf8)) }
                }
            }
            try await Node.admin(client, node, .remove, force: force)
        }
    }
}

struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cluster-wide views and actions.",
                                                    subcommands: [Status.self, Map.self, Rebalance.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the map version, replication health, moves in flight, members and jobs.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var watch: WatchOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                try await watching(watch, format: client.format) {
                    let s = try await c.clusterStatus()
                    if client.json { printJSON(statusDict(s)); return }
                    let live = s.nodes.filter { $0.state != .dead }.count
                    let names = nodeNames(s)
                    print("coordinator \(s.coordinatorID) at \(client.coordinator), up \(Int(s.uptimeMs / 1000)) s")
                    print(isReady(s) ? "ready: yes (every partition has a live primary)"
                          : live == 0 ? "ready: no (no live worker: start one with `chorus worker`)"
                          : "ready: no (\(s.unassignedPartitions) partitions without a live primary yet)")
                    print("partitions: \(s.partitionCount), replication factor \(s.replicationFactor), map version \(s.mapVersion)")
                    print("without a live primary: \(s.unassignedPartitions)")
                    if s.underReplicated.isEmpty {
                        print("under-replicated: none (every partition has \(s.replicationFactor) live copies)")
                    } else {
                        let shown = s.underReplicated.prefix(16).map(String.init).joined(separator: ",")
                        print("under-replicated: \(s.underReplicated.count) partition(s) [\(shown)\(s.underReplicated.count > 16 ? ",..." : "")]"
                              + (live < Int(s.replicationFactor) ? " (only \(live) live workers for R=\(s.replicationFactor))" : ""))
                    }
                    print("moves in flight: \(s.moves.count), more planned: \(s.movesPlanned)")
                    for m in s.moves { print("  " + moveLine(m, names: names)) }
                    print("workers: \(live) live of \(s.nodes.count)")
                    if !s.nodes.isEmpty { printNodes(s.nodes) }
                    print("jobs: \(s.jobsRunning) running, \(s.jobsTotal) total")
                }
            }
        }
    }

    struct Map: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the partition map: each partition's primary, replicas, learners and epoch.")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let m = try await c.partitionMap()
                let names = Dictionary(m.nodes.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
                if client.json {
                    printJSON(["version": Int(m.version), "partition_count": Int(m.partitionCount),
                               "replication_factor": Int(m.replicationFactor), "hash": m.hash,
                               "partitions": m.assignments.map { a in
                                   ["partition": Int(a.partition), "primary": a.owner, "replicas": a.replicas,
                                    "learners": a.learners, "epoch": Int(a.epoch)] as [String: Any] },
                               "nodes": m.nodes.map(nodeDict)])
                    return
                }
                print("map version \(m.version), \(m.partitionCount) partitions, R=\(m.replicationFactor), hash \(m.hash)")
                for a in m.assignments {
                    func n(_ id: String) -> String { names[id] ?? (id.isEmpty ? "-" : id) }
                    print(lpad(String(a.partition), 6) + "  primary " + pad(n(a.owner), 13) + "replicas "
                          + pad(a.replicas.map(n).joined(separator: ","), 25) + "epoch \(a.epoch)"
                          + (a.learners.isEmpty ? "" : "  copying to \(a.learners.map(n).joined(separator: ","))"))
                }
            }
        }
    }

    struct Rebalance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Plan now and start the moves that balance partitions over the workers.",
            discussion: reflow("""
            The coordinator also does this on its own after every join, drain and death; use this after an undrain
            or to see at once what it would do. Moves run in the background, throttled (see `chorus coordinator
            --move-rate-mib`); follow them with `chorus cluster status`.
            """))
        @OptionGroup var client: ClientOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let r = try await c.rebalance()
                if client.json {
                    let names = nodeNames(r.status)
                    printJSON(["message": r.message, "moves": r.status.moves.map { moveDict($0, names: names) },
                               "moves_planned": Int(r.status.movesPlanned)])
                } else {
                    print(r.message)
                }
            }
        }
    }
}
