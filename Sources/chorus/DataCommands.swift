import ArgumentParser
import ChorusData
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
                let c = try client.client()
                defer { c.close() }
                let r = try await c.profile(userId: userId)
                guard r.found, let obj = try? JSONSerialization.jsonObject(with: Data(r.profileJson.utf8)) else {
                    throw ChorusError(.notFound, "no profile for user '\(userId)'",
                                      hint: r.userJson.isEmpty ? "the user is unknown; ingest it first"
                                          : "run `chorus job submit features --wait` first")
                }
                if client.json {
                    printJSON(obj)
                } else if let d = obj as? [String: Any] {
                    for k in d.keys.sorted() {
                        let v = d[k]!
                        let text: String
                        if JSONSerialization.isValidJSONObject([v]),
                           let data = try? JSONSerialization.data(withJSONObject: [v], options: [.sortedKeys]) {
                            text = String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
                        } else { text = "\(v)" }
                        print("\(k): \(text)")
                    }
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export every profile as JSONL or CSV.",
            discussion: """
            JSONL: one profile object per line (keys in docs/cli.md). CSV: one row per user with scalar
            features; histograms as 24/7 '|'-separated counts; top topics/hashtags as name:weight lists.
            """)
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

let csvColumns = ["user_id", "channel", "country", "language", "age_band", "known_user", "interactions",
                  "view", "like", "comment", "share", "click", "conversion", "engagements", "engagement_rate",
                  "first_ts", "last_ts", "recency_days", "active_days", "frequency", "followers", "following",
                  "active_hours", "weekdays", "top_topics", "top_hashtags", "counts_by_channel"]

func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

func csvRow(_ json: String) -> String {
    guard let d = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else { return "" }
    let types = d["counts_by_type"] as? [String: Any] ?? [:]
    func s(_ v: Any?) -> String {
        switch v {
        case let b as Bool where type(of: v!) == type(of: true as Any): return b ? "true" : "false"
        case let n as NSNumber: return n.stringValue
        case let x as String: return x
        case nil: return ""
        default: return "\(v!)"
        }
    }
    func terms(_ v: Any?) -> String {
        (v as? [[String: Any]] ?? []).map { "\(s($0["name"])):\(s($0["weight"]))" }.joined(separator: "|")
    }
    func ints(_ v: Any?) -> String { (v as? [Any] ?? []).map { s($0) }.joined(separator: "|") }
    let channels = (d["counts_by_channel"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }
        .map { "\($0.key):\(s($0.value))" }.joined(separator: "|")
    let row: [String] = [s(d["user_id"]), s(d["channel"]), s(d["country"]), s(d["language"]), s(d["age_band"]),
                         s(d["known_user"]), s(d["interactions"]), s(types["view"]), s(types["like"]),
                         s(types["comment"]), s(types["share"]), s(types["click"]), s(types["conversion"]),
                         s(d["engagements"]), s(d["engagement_rate"]), s(d["first_ts"]), s(d["last_ts"]),
                         s(d["recency_days"]), s(d["active_days"]), s(d["frequency"]), s(d["followers"]),
                         s(d["following"]), ints(d["active_hours"]), ints(d["weekdays"]), terms(d["top_topics"]),
                         terms(d["top_hashtags"]), channels]
    return row.map(csvField).joined(separator: ",")
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
    default: return "unknown"
    }
}

func nodeDict(_ n: Chorus_V1_NodeInfo) -> [String: Any] {
    ["id": n.id, "name": n.name, "address": n.address, "state": nodeState(n.state), "partitions": Int(n.partitions),
     "heartbeat_age_ms": Int(n.heartbeatAgeMs), "bytes_held": Int(n.bytesHeld), "cores": Int(n.cores),
     "running_tasks": Int(n.runningTasks)]
}

struct Node: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect cluster members.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List workers: id, name, state (active, suspect, dead), partitions, heartbeat age.")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let s = try await c.clusterStatus()
                if client.json { printJSON(["nodes": s.nodes.map(nodeDict)]); return }
                if s.nodes.isEmpty { print("no workers registered yet: start one with `chorus worker`") }
                print(String(format: "%-16@ %-14@ %-8@ %10@ %12@ %12@  %@", "ID" as NSString, "NAME" as NSString,
                             "STATE" as NSString, "PARTITIONS" as NSString, "HEARTBEAT" as NSString,
                             "BYTES" as NSString, "ADDRESS" as NSString))
                for n in s.nodes {
                    let hb = n.heartbeatAgeMs < 0 ? "never" : String(format: "%.1fs ago", Double(n.heartbeatAgeMs) / 1000)
                    print(String(format: "%-16@ %-14@ %-8@ %10d %12@ %12d  %@", n.id as NSString, n.name as NSString,
                                 nodeState(n.state) as NSString, Int(n.partitions), hb as NSString,
                                 Int(n.bytesHeld), n.address as NSString))
                }
            }
        }
    }
}

struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cluster-wide views.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the coordinator, the partition map version, members and jobs.")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            setupLogging(level: .warning)
            try await guarded {
                let c = try client.client()
                defer { c.close() }
                let s = try await c.clusterStatus()
                let d: [String: Any] = [
                    "coordinator_id": s.coordinatorID, "map_version": Int(s.mapVersion),
                    "partition_count": Int(s.partitionCount), "unassigned_partitions": Int(s.unassignedPartitions),
                    "nodes": s.nodes.map(nodeDict), "jobs_running": Int(s.jobsRunning), "jobs_total": Int(s.jobsTotal),
                    "uptime_seconds": Double(s.uptimeMs) / 1000,
                ]
                if client.json { printJSON(d); return }
                let live = s.nodes.filter { $0.state != .dead }.count
                print("coordinator \(s.coordinatorID) at \(client.coordinator), up \(Int(s.uptimeMs / 1000)) s")
                print("partitions: \(s.partitionCount), map version \(s.mapVersion), "
                      + "without a live owner: \(s.unassignedPartitions)")
                print("workers: \(live) live of \(s.nodes.count)")
                for n in s.nodes {
                    print("  \(n.name) (\(n.id)) \(nodeState(n.state)), \(n.partitions) partitions, \(n.address)")
                }
                print("jobs: \(s.jobsRunning) running, \(s.jobsTotal) total")
            }
        }
    }
}
