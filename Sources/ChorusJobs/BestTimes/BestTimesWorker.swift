import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

extension BestTimesJob {
    /// bt-posts: the partition's posts and the engagements by hour of each interaction channel.
    static func posts(_ data: PartitionView, cancellation: CancellationFlag) throws -> (Chorus_V1_Jobs_BestTimesPosts, UInt64) {
        var out = Chorus_V1_Jobs_BestTimesPosts()
        var channelIndex: [String: UInt32] = [:]
        func ch(_ name: String) -> UInt32 {
            if let i = channelIndex[name] { return i }
            let i = UInt32(out.channels.count)
            channelIndex[name] = i; out.channels.append(name); return i
        }
        var segments = false
        try data.scan(role: segmentsRole) { _, _ in segments = true; return false }
        out.segmentsPresent = segments
        var row: [String: Int] = [:]
        var read: UInt64 = 0
        try data.scan(role: ShardKeys.role(.content)) { _, v in
            let c = try Chorus_V1_Content(borrowing: v)
            read += 1
            row[c.id] = out.postChannel.count
            let ci = ch(c.channel)
            out.postChannel.append(ci)
            out.postSlot.append(UInt32(BestTimes.slot(c.createdAt)))
            out.views.append(0)
            out.engagements.append(0)
            if segments { out.postIds.append(c.id) }
            return true
        }
        var hours: [UInt32: [UInt64]] = [:]
        read += UInt64(try data.interactionGroups(role: ShardKeys.role(.interactionByContent)) { content, its in
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            let i = row[content]
            for it in its {
                if it.kind == .view {
                    if let i { out.views[i] += 1 }
                } else if it.kind.isEngagement {
                    if let i { out.engagements[i] += 1 }
                    let ci = ch(it.channel)
                    hours[ci, default: [UInt64](repeating: 0, count: 24)][BestTimes.dayHour(it.ts).hour] += 1
                }
            }
        })
        for (c, h) in hours.sorted(by: { $0.key < $1.key }) {
            out.hourChannel.append(c)
            out.hourEngagements += h
        }
        return (out, read)
    }

    /// The plan a broadcast carries, checked.
    static func plan(_ payload: Data) throws -> Chorus_V1_Jobs_BestTimesPlan {
        let p: Chorus_V1_Jobs_BestTimesPlan
        do { p = try Chorus_V1_Jobs_BestTimesPlan(serializedBytes: payload) } catch {
            throw TaskContext.invalid("job_broadcast.payload", "not a best-times plan: \(error)")
        }
        guard p.hourShare.count == 24 * p.channels.count, p.hourShare.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw TaskContext.invalid("best_times_plan.hour_share", "\(p.hourShare.count) shares for \(p.channels.count) channels (24 each, finite, ≥ 0)")
        }
        return p
    }

    /// bt-users: every user's timing section and, with segments, views and engagements per (post, segment).
    static func users(_ data: PartitionView, plan: Chorus_V1_Jobs_BestTimesPlan, postIndex: [String: UInt32]?,
                      cancellation: CancellationFlag) throws -> (Chorus_V1_Jobs_BestTimesSegmentCounts, DerivedWrites, UInt64) {
        var shares: [String: [Double]] = [:]
        for (i, c) in plan.channels.enumerated() { shares[c] = Array(plan.hourShare[(i * 24)..<((i + 1) * 24)]) }
        let uniform = [Double](repeating: 1.0 / 24, count: 24)
        var w = DerivedWrites(partition: data.partition)
        w.clear(role: role)
        var counts: [UInt64: (views: UInt64, engagements: UInt64)] = [:]  // post << 32 | segment
        var written: UInt64 = 0
        let read = try data.interactionGroups(role: ShardKeys.role(.interactionByUser)) { user, its in
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            var all = [UInt32](repeating: 0, count: 24), eng = [UInt32](repeating: 0, count: 24)
            var byChannel: [String: Int] = [:]
            for it in its {
                let h = BestTimes.dayHour(it.ts).hour
                all[h] += 1
                if it.kind.isEngagement { eng[h] += 1 }
                byChannel[it.channel, default: 0] += 1
            }
            // The user's channel: where most of their interactions are (ties by name).
            let channel = byChannel.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key ?? ""
            let (active, best, bestShare) = BestTimes.userHours(interactions: all, engagements: eng,
                                                                channelShare: shares[channel] ?? uniform)
            let e = eng.reduce(0) { $0 + Int($1) }
            let o: [String: Any] = [
                "active_hours": active, "best_hours": best, "best_share": bestShare.map { round6($0) },
                "active": active.map(String.init).joined(separator: "|"), "best": best.map(String.init).joined(separator: "|"),
                "interactions": its.count, "engagements": e, "channel": channel, "basis": e > 0 ? "own" : "channel",
            ]
            w.put(role: role, id: user, Array(try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])))
            written += 1
            guard let postIndex, let b = try data.get(role: segmentsRole, id: user),
                  let s = (try? JSONSerialization.jsonObject(with: Data(b))) as? [String: Any],
                  (s["state"] as? String) == "assigned", let seg = (s["segment"] as? NSNumber)?.uint32Value else { return }
            for it in its {
                guard let p = postIndex[it.contentId] else { continue }
                let k = UInt64(p) << 32 | UInt64(seg)
                if it.kind == .view { counts[k, default: (0, 0)].views += 1 } else if it.kind.isEngagement { counts[k, default: (0, 0)].engagements += 1 }
            }
        }
        var out = Chorus_V1_Jobs_BestTimesSegmentCounts()
        for (k, c) in counts.sorted(by: { $0.key < $1.key }) {
            out.post.append(UInt32(k >> 32)); out.segment.append(UInt32(k & 0xFFFF_FFFF))
            out.views.append(c.views); out.engagements.append(c.engagements)
        }
        out.usersWritten = written
        return (out, w, UInt64(read))
    }

    final class Worker: JobWorker {
        struct Plan { var plan: Chorus_V1_Jobs_BestTimesPlan; var index: [String: UInt32]? }
        let plan = Mutex<Plan?>(nil)

        func receive(_ broadcast: JobBroadcast) throws {
            guard broadcast.stage == "bt-users" else {
                throw TaskContext.invalid("job_broadcast.stage", "best-times has no broadcast for '\(broadcast.stage.prefix(40))'")
            }
            let p = try BestTimesJob.plan(broadcast.payload)
            var index: [String: UInt32]?
            if p.segments {
                var m: [String: UInt32] = [:]
                m.reserveCapacity(p.postIds.count)
                for (i, id) in p.postIds.enumerated() where !id.isEmpty { m[id] = UInt32(i) }
                index = m
            }
            plan.withLock { $0 = Plan(plan: p, index: index) }
        }

        func release() { plan.withLock { $0 = nil } }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            let data = task.data, flag = task.cancellation
            switch task.stage {
            case "bt-posts":
                let (out, read) = try await task.compute { try BestTimesJob.posts(data, cancellation: flag) }
                return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: read)
            case "bt-users":
                guard let p = plan.withLock({ $0 }) else { throw task.unavailable("the bt-users plan") }
                let (out, writes, read) = try await task.compute {
                    try BestTimesJob.users(data, plan: p.plan, postIndex: p.index, cancellation: flag)
                }
                try await task.write(writes)
                return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: read)
            default:
                throw TaskContext.invalid("run_task.stage", "best-times has no stage '\(task.stage.prefix(40))'")
            }
        }
    }
}
