import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Job kind `top-hashtags`: the most engaged-with hashtags per channel. The smallest real job on the SDK, and the
/// worked example of docs/jobs.md: one stage, no broadcast, no worker state, a summary and no stored output.
///
/// Each partition counts, per channel of the interaction, the interactions with content that carries each
/// hashtag (content records and their by-content interactions live in the same partition, so this is local).
/// The coordinator adds the counts in partition order and keeps the top `n` per channel.
public enum TopHashtagsJob: Job {
    public static let kind = "top-hashtags"
    /// Writes only its result on the coordinator: an analyst may run it.
    public static let readOnly = true
    public static let about = "the most engaged-with hashtags per channel (the example job of docs/jobs.md)"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; top-hashtags does not use it"),
        .init("n", .integer(1...1000), "10", "hashtags kept per channel"),
        .init("type", .choice(["all"] + InteractionKind.allCases.map(\.name)), "all",
              "count only interactions of this type"),
    ]

    public static func drive(_ ctx: JobContext) async throws -> String {
        let n = ctx.params.int("n", 10)
        var totals: [String: [String: UInt64]] = [:]
        for out in try await ctx.collect("count") {
            for c in try Chorus_V1_Jobs_HashtagCounts(serializedBytes: out.payload).counts {
                totals[c.channel, default: [:]][c.hashtag, default: 0] += c.count
            }
        }
        // Ties broken by hashtag, so the summary is the same on every run and for any number of workers.
        var report: [String: [[String: String]]] = [:]
        for (channel, counts) in totals {
            report[channel] = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .prefix(n).map { ["hashtag": $0.key, "interactions": String($0.value)] }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(["top_hashtags_by_channel": report]), as: UTF8.self)
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { Worker() }

    public static var fuzzSeeds: [FuzzSeed] { [FuzzSeed(stage: "count", params: ["n": "3"])] }

    /// One line per channel: "  x: #ai (120), #tech (98), ...".
    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let d = try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8)) as? [String: Any],
              let by = d["top_hashtags_by_channel"] as? [String: [[String: String]]] else { return nil }
        if by.isEmpty { return "  no interactions with hashtagged content" }
        return by.sorted { $0.key < $1.key }.map { channel, tags in
            "  \(channel): " + tags.map { "\($0["hashtag"] ?? "") (\($0["interactions"] ?? ""))" }.joined(separator: ", ")
        }.joined(separator: "\n")
    }

    final class Worker: JobWorker {
        func run(_ task: TaskContext) async throws -> TaskOutput {
            guard task.stage == "count" else {
                throw TaskContext.invalid("run_task.stage", "top-hashtags has no stage '\(task.stage.prefix(40))'")
            }
            let type = task.params.string("type", "all")
            let data = task.data
            let (counts, read) = try await task.compute { () throws -> (Chorus_V1_Jobs_HashtagCounts, UInt64) in
                var hashtags: [String: [String]] = [:]
                try data.scan(role: ShardKeys.role(.content)) { _, v in
                    let c = try Chorus_V1_Content(borrowing: v)
                    if !c.hashtags.isEmpty { hashtags[c.id] = c.hashtags }
                    return true
                }
                var counts: [String: [String: UInt64]] = [:]
                let read = try data.interactionGroups(role: ShardKeys.role(.interactionByContent)) { content, its in
                    guard let tags = hashtags[content] else { return }
                    for it in its where type == "all" || it.kind.name == type {
                        for t in tags { counts[it.channel, default: [:]][t, default: 0] += 1 }
                    }
                }
                var out = Chorus_V1_Jobs_HashtagCounts()
                for (channel, byTag) in counts.sorted(by: { $0.key < $1.key }) {
                    for (tag, n) in byTag.sorted(by: { $0.key < $1.key }) {
                        var c = Chorus_V1_Jobs_HashtagCount()
                        c.channel = channel; c.hashtag = tag; c.count = n
                        out.counts.append(c)
                    }
                }
                return (out, UInt64(read + hashtags.count))
            }
            return TaskOutput(partition: task.partition, payload: try counts.serializedData(), recordsRead: read)
        }
    }
}
