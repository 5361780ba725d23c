import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// A `content-insights` job on one worker: the authors broadcast of stage `ci-authors`.
final class ContentInsightsWorker: JobWorker {
    let authors = Mutex<Chorus_V1_Jobs_ContentInsightsAuthors?>(nil)

    /// The role a `sentiment` job writes each content item's sentiment under (JSON with `post.label`).
    static let sentimentRole = ShardKeys.Derived.contentSentiment
    static let segmentRole: UInt8 = 0x60
    static let influenceRole: UInt8 = 0x61

    func receive(_ broadcast: JobBroadcast) throws {
        guard broadcast.stage == "ci-authors" else {
            throw TaskContext.invalid("broadcast.stage", "content-insights has no broadcast for '\(broadcast.stage.prefix(40))'")
        }
        let b: Chorus_V1_Jobs_ContentInsightsAuthors
        do { b = try Chorus_V1_Jobs_ContentInsightsAuthors(serializedBytes: broadcast.payload) } catch {
            throw TaskContext.invalid("broadcast.payload", "not a ContentInsightsAuthors message")
        }
        guard b.partitionCount > 0 else { throw TaskContext.invalid("broadcast.partition_count", "must be positive") }
        authors.withLock { $0 = b }
    }

    func run(_ task: TaskContext) async throws -> TaskOutput {
        switch task.stage {
        case "ci-posts":
            let (out, read) = try await task.compute { try Self.posts(task) }
            return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: read)
        case "ci-authors":
            guard let b = authors.withLock({ $0 }) else { throw task.unavailable("the authors broadcast") }
            let (out, read) = try await task.compute { try Self.authorScores(task, b) }
            return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: read)
        default:
            throw TaskContext.invalid("run_task.stage", "content-insights has no stage '\(task.stage.prefix(40))'")
        }
    }

    /// The partition's posts with their attributes and counts, and per (post, segment) counts of its segmented users.
    static func posts(_ task: TaskContext) throws -> (Chorus_V1_Jobs_ContentInsightsPosts, UInt64) {
        let data = task.data
        var out = Chorus_V1_Jobs_ContentInsightsPosts()
        var read: UInt64 = 0
        var index: [String: Int] = [:]
        try data.scan(role: ShardKeys.role(.content)) { _, v in
            let c = try Chorus_V1_Content(borrowing: v)
            var p = Chorus_V1_Jobs_ContentInsightsPost()
            p.id = c.id; p.channel = c.channel; p.topic = c.topics.first ?? ""; p.hashtags = c.hashtags
            p.mediaType = c.mediaType; p.authorID = c.authorID
            let slot = PostAttributes.slot(of: c.createdAt)
            p.hour = UInt32(slot.hour); p.day = UInt32(slot.day)
            p.textLength = c.text.isEmpty ? -1 : Int32(clamping: c.text.count)
            index[c.id] = out.posts.count
            out.posts.append(p)
            read += 1
            if read % 4096 == 0 { try task.checkCancelled() }
            return true
        }
        for i in out.posts.indices {
            guard let v = try data.get(role: sentimentRole, id: out.posts[i].id),
                  let o = try? JSONSerialization.jsonObject(with: Data(v)) as? [String: Any],
                  let post = o["post"] as? [String: Any], let label = post["label"] as? String else { continue }
            out.posts[i].sentiment = label
        }
        read += UInt64(try data.interactionGroups(role: ShardKeys.role(.interactionByContent)) { content, its in
            guard let i = index[content] else { return }
            var views: UInt64 = 0, eng: UInt64 = 0
            for it in its {
                if it.kind == .view { views += 1 } else if it.kind.isEngagement { eng += 1 }
            }
            out.posts[i].views += views
            out.posts[i].engagements += eng
        })
        // Segments of this partition's users (when a segments job has run), then their interactions per post.
        var segments: [String: Int64] = [:]
        try data.scan(role: segmentRole) { k, v in
            if let o = try? JSONSerialization.jsonObject(with: Data(v)) as? [String: Any],
               let s = o["segment"] as? NSNumber, let n = Int64(exactly: s.doubleValue) {
                segments[PartitionView.id(of: k)] = n
            }
            return true
        }
        out.segmentedUsers = UInt64(segments.count)
        if !segments.isEmpty {
            struct Key: Hashable { var content: String; var segment: Int64 }
            var counts: [Key: (UInt64, UInt64)] = [:]
            read += UInt64(try data.interactionGroups(role: ShardKeys.role(.interactionByUser)) { user, its in
                guard let s = segments[user] else { return }
                for it in its {
                    let k = Key(content: it.contentId, segment: s)
                    var c = counts[k] ?? (0, 0)
                    if it.kind == .view { c.0 += 1 } else if it.kind.isEngagement { c.1 += 1 }
                    counts[k] = c
                }
            })
            for (k, c) in counts.sorted(by: { $0.key.content != $1.key.content ? $0.key.content < $1.key.content
                                                                                : $0.key.segment < $1.key.segment }) {
                var m = Chorus_V1_Jobs_ContentInsightsSegmentCount()
                m.contentID = k.content; m.segment = k.segment; m.views = c.0; m.engagements = c.1
                out.segmentCounts.append(m)
            }
        }
        var influence: UInt64 = 0
        try data.scan(role: influenceRole) { _, _ in influence += 1; return true }
        out.influenceUsers = influence
        out.posts.sort { $0.id < $1.id }
        return (out, read)
    }

    /// The PageRank percentile of the broadcast authors that live in this partition and have an influence section.
    static func authorScores(_ task: TaskContext, _ b: Chorus_V1_Jobs_ContentInsightsAuthors)
        throws -> (Chorus_V1_Jobs_ContentInsightsAuthorScores, UInt64) {
        let placement = Placement(partitionCount: b.partitionCount)
        var out = Chorus_V1_Jobs_ContentInsightsAuthorScores()
        var read: UInt64 = 0
        for id in b.authorIds where placement.partition(of: id) == task.partition {
            guard let v = try task.data.get(role: influenceRole, id: id) else { continue }
            read += 1
            guard let o = try? JSONSerialization.jsonObject(with: Data(v)) as? [String: Any] else { continue }
            out.authorIds.append(id)
            out.percentile.append((o["percentile"] as? NSNumber)?.doubleValue ?? 0)
        }
        return (out, read)
    }
}
