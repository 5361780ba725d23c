import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// The worker side of `forecast`: the span and the counts of one partition, and the fits of its share of series.
final class ForecastWorker: JobWorker {
    struct Window: Sendable { var start: Int64, end: Int64, step: Int64 }
    let window = Mutex<Window?>(nil)
    let plan = Mutex<Chorus_V1_Jobs_ForecastPlan?>(nil)

    func receive(_ broadcast: JobBroadcast) throws {
        switch broadcast.stage {
        case "series":
            guard let d = (try? JSONSerialization.jsonObject(with: broadcast.payload)) as? [String: String],
                  let start = d["start"].flatMap({ Int64($0) }), let end = d["end"].flatMap({ Int64($0) }),
                  let step = d["step"].flatMap({ Int64($0) }), step == 3600 || step == 86400, end > start,
                  (end - start) / step <= 1_000_000 else {
                throw TaskContext.invalid("broadcast", "forecast: malformed series window")
            }
            window.withLock { $0 = Window(start: start, end: end, step: step) }
        case "fit":
            let p: Chorus_V1_Jobs_ForecastPlan
            do { p = try Chorus_V1_Jobs_ForecastPlan(serializedBytes: broadcast.payload) } catch {
                throw TaskContext.invalid("broadcast", "forecast: the fit plan does not decode")
            }
            let n = Int(p.length)
            guard p.offsets.count == p.keys.count, p.offsets.allSatisfy({ Int($0) + n <= p.values.count }),
                  !p.periods.isEmpty, p.periods.allSatisfy({ (1...10_000).contains($0) }), p.partitions > 0,
                  p.horizon > 0, p.horizon <= 100_000, p.backtestHorizon <= 100_000 else {
                throw TaskContext.invalid("broadcast", "forecast: inconsistent fit plan")
            }
            plan.withLock { $0 = p }
        default:
            throw TaskContext.invalid("broadcast.stage", "forecast has no broadcast for stage '\(broadcast.stage.prefix(40))'")
        }
    }

    func release() {
        plan.withLock { $0 = nil }
    }

    func run(_ task: TaskContext) async throws -> TaskOutput {
        switch task.stage {
        case "span": return try await span(task)
        case "series": return try await series(task)
        case "fit": return try await fit(task)
        default: throw TaskContext.invalid("run_task.stage", "forecast has no stage '\(task.stage.prefix(40))'")
        }
    }

    func span(_ task: TaskContext) async throws -> TaskOutput {
        let data = task.data, flag = task.cancellation
        let s = try await task.compute { () throws -> Chorus_V1_Jobs_ForecastSpan in
            var s = Chorus_V1_Jobs_ForecastSpan()
            s.minTs = .max; s.maxTs = .min
            _ = try data.interactionGroups(role: ShardKeys.role(.interactionByContent)) { _, its in
                if flag.isSet { throw ChorusError(.jobFailed, "cancelled") }
                for i in its {
                    s.minTs = min(s.minTs, i.ts); s.maxTs = max(s.maxTs, i.ts); s.count += 1
                }
            }
            if s.count == 0 { s.minTs = 0; s.maxTs = 0 }
            return s
        }
        return TaskOutput(partition: task.partition, payload: try s.serializedData(), recordsRead: s.count)
    }

    /// Whether interaction kind `kind` counts toward `metric`.
    static func counts(_ kind: InteractionKind, _ metric: String) -> Bool {
        switch metric {
        case "engagements", "engagement_per_post": return kind.isEngagement
        case "views": return kind == .view
        default: return kind.name == metric
        }
    }

    func series(_ task: TaskContext) async throws -> TaskOutput {
        guard let w = window.withLock({ $0 }) else { throw task.unavailable("the series window") }
        let params = task.params, data = task.data, flag = task.cancellation
        let metric = params.string("metric", "engagements")
        let families = Set(ForecastJob.levels(params))
        let keywords = SentimentKeys.keywords(params)
        let perPost = metric == "engagement_per_post"
        let length = Int((w.end - w.start) / w.step)
        let (part, read) = try await task.compute { () throws -> (Chorus_V1_Jobs_ForecastSeriesPart, UInt64) in
            var index: [String: Int] = [:]
            var num: [[Double]] = [], den: [[Double]] = []
            var keys: [String] = []
            func slot(_ k: String) -> Int {
                if let i = index[k] { return i }
                index[k] = keys.count
                keys.append(k)
                num.append([Double](repeating: 0, count: length))
                den.append(perPost ? [Double](repeating: 0, count: length) : [])
                return keys.count - 1
            }
            func bucket(_ ts: Int64) -> Int? {
                guard ts >= w.start, ts < w.end else { return nil }
                return Int((ts - w.start) / w.step)
            }
            var read: UInt64 = 0
            var content: [String: Chorus_V1_Content] = [:]
            try data.scan(role: ShardKeys.role(.content)) { _, v in
                let c = try Chorus_V1_Content(borrowing: v)
                content[c.id] = c
                read += 1
                return true
            }
            // Content side: all, channel, topic, hashtag, brand.
            read += UInt64(try data.interactionGroups(role: ShardKeys.role(.interactionByContent)) { cid, its in
                if flag.isSet { throw ChorusError(.jobFailed, "cancelled") }
                let c = content[cid]
                var base: [String] = []
                if families.contains("all") { base.append("all") }
                if let c {
                    if families.contains("topic") || families.contains("hashtag") {
                        base += SentimentKeys.base(topics: families.contains("topic") ? c.topics : [],
                                                   hashtags: families.contains("hashtag") ? c.hashtags : [])
                    }
                    if families.contains("brand") { base += SentimentKeys.brands(keywords, in: c.text) }
                }
                if perPost {
                    // By the post's publication time: its engagements (up to the end) and one post.
                    guard let c, let b = bucket(c.createdAt) else { return }
                    var keysOfPost = base
                    if families.contains("channel") { keysOfPost.append("channel:" + c.channel) }
                    let e = Double(its.filter { $0.ts < w.end && ForecastWorker.counts($0.kind, metric) }.count)
                    for k in keysOfPost {
                        let i = slot(k)
                        num[i][b] += e
                        den[i][b] += 1
                    }
                    return
                }
                let baseSlots = base.map(slot)
                for it in its where ForecastWorker.counts(it.kind, metric) {
                    guard let b = bucket(it.ts) else { continue }
                    for i in baseSlots { num[i][b] += 1 }
                    if families.contains("channel") { num[slot("channel:" + it.channel)][b] += 1 }
                    if families.contains("brand"), !keywords.isEmpty, !it.text.isEmpty {
                        // A brand mentioned in the interaction's own text (and not already by its post).
                        for k in SentimentKeys.brands(keywords, in: it.text) where !base.contains(k) { num[slot(k)][b] += 1 }
                    }
                }
            })
            // User side: segments (not for engagement_per_post: a post has no segment).
            var parents: [String: [String: Double]] = [:]
            if families.contains("segment"), !perPost {
                var segmentOf: [String: Int] = [:]
                try data.scan(role: SegmentsJob.role) { key, v in
                    if let o = (try? JSONSerialization.jsonObject(with: Data(v))) as? [String: Any],
                       let s = o["segment"] as? Int {
                        segmentOf[PartitionView.id(of: key)] = s
                    }
                    return true
                }
                if !segmentOf.isEmpty {
                    read += UInt64(try data.interactionGroups(role: ShardKeys.role(.interactionByUser)) { uid, its in
                        if flag.isSet { throw ChorusError(.jobFailed, "cancelled") }
                        guard let s = segmentOf[uid] else { return }
                        let key = "segment:\(s)"
                        let i = slot(key)
                        for it in its where ForecastWorker.counts(it.kind, metric) {
                            guard let b = bucket(it.ts) else { continue }
                            num[i][b] += 1
                            parents[key, default: [:]]["channel:" + it.channel, default: 0] += 1
                        }
                    })
                }
            }
            var part = Chorus_V1_Jobs_ForecastSeriesPart()
            for (i, k) in keys.enumerated().sorted(by: { $0.element < $1.element }) {
                var s = Chorus_V1_Jobs_ForecastSeriesCounts()
                s.key = k
                for b in 0..<length where num[i][b] != 0 || (perPost && den[i][b] != 0) {
                    s.bucket.append(UInt32(b))
                    s.num.append(num[i][b])
                    if perPost { s.den.append(den[i][b]) }
                }
                part.series.append(s)
            }
            for (child, byParent) in parents.sorted(by: { $0.key < $1.key }) {
                for (p, n) in byParent.sorted(by: { $0.key < $1.key }) {
                    var pc = Chorus_V1_Jobs_ForecastParentCount()
                    pc.child = child; pc.parent = p; pc.count = n
                    part.parents.append(pc)
                }
            }
            return (part, read)
        }
        return TaskOutput(partition: task.partition, payload: try part.serializedData(), recordsRead: read)
    }

    func fit(_ task: TaskContext) async throws -> TaskOutput {
        guard let p = plan.withLock({ $0 }) else { throw task.unavailable("the fit plan") }
        let partition = task.partition, flag = task.cancellation
        let fits = try await task.compute { () throws -> Chorus_V1_Jobs_ForecastFits in
            var out = Chorus_V1_Jobs_ForecastFits()
            let n = Int(p.length)
            let calendar = Forecasting.Calendar(periods: p.periods.map(Int.init), phase: Int(p.phase))
            for (i, key) in p.keys.enumerated() where UInt32(i % Int(p.partitions)) == partition % p.partitions {
                if flag.isSet { throw ChorusError(.jobFailed, "cancelled") }
                let started = ContinuousClock.now
                let o = Int(p.offsets[i])
                let y = Array(p.values[o..<(o + n)])
                var f = Chorus_V1_Jobs_ForecastFit()
                f.key = key
                if let fit = Forecasting.select(y, calendar) {
                    f.fitted = true
                    f.model = fit.model
                    f.transform = fit.transform.rawValue
                    f.aicc = fit.aicc
                    for (name, v) in fit.parameters.sorted(by: { $0.key < $1.key }) {
                        f.parameterNames.append(name); f.parameterValues.append(v)
                    }
                    let fc = fit.forecast(Int(p.horizon))
                    f.point = fc.point; f.lo80 = fc.lo80; f.hi80 = fc.hi80; f.lo95 = fc.lo95; f.hi95 = fc.hi95
                    if !p.origins.isEmpty {
                        let b = Forecasting.backtest(y, calendar, origins: p.origins.map(Int.init),
                                                     horizon: Int(p.backtestHorizon))
                        var bt = Chorus_V1_Jobs_ForecastBacktest()
                        bt.origins = UInt32(b.origins); bt.points = UInt32(b.points)
                        bt.mase = b.mase; bt.maseSeasonalNaive = b.maseSeasonalNaive
                        bt.absError = b.absError; bt.absErrorSeasonalNaive = b.absErrorSeasonalNaive
                        bt.inside80 = UInt32(b.inside80); bt.inside95 = UInt32(b.inside95)
                        f.backtest = bt
                    }
                }
                let d = ContinuousClock.now - started
                f.seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                out.fits.append(f)
            }
            return out
        }
        return TaskOutput(partition: task.partition, payload: try fits.serializedData(), recordsRead: UInt64(fits.fits.count))
    }
}
