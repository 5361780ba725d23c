import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation

// The coordinator's sentiment query service (`chorus sentiment series|keys`, `chorus alerts`): it reads what the
// `sentiment` job (Sources/ChorusJobs/Sentiment) stores as its JobContext results, under "jobdata/sentiment/"
// (`JobContext.putResults`): "keys" (every key's totals), "series/<key>" (a key's hourly series) and
// "alert/<unix hour, 12 digits>/<key>/<kind>" (one alert). Before the job moved onto the job SDK these were
// "sentiment/keys", "sentiment/series/<key>" and "alert/...".
enum SentimentResultKeys {
    static let prefix = "jobdata/sentiment/"
    static let keys = Array((prefix + "keys").utf8)
    static func series(_ key: String) -> [UInt8] { Array((prefix + "series/" + key).utf8) }
    static let alerts = Array((prefix + "alert/").utf8)

    /// Moves a coordinator's results from the keys of the release before the job SDK ("sentiment/keys",
    /// "sentiment/series/<key>", "alert/...") to today's, in one synced batch, so an upgraded cluster keeps its
    /// series and its alerts (which would otherwise fire again). Runs once at start, before anything is served;
    /// returns how many records moved (0 on every later start).
    static func migrate(_ store: Store) throws -> Int {
        var batch = WriteBatch()
        var moved = 0
        for (old, new) in [("sentiment/", prefix), ("alert/", prefix + "alert/")] {
            try store.scan(prefix: Array(old.utf8)) { key, value in
                batch.put(Array(new.utf8) + Array(key[old.utf8.count...]), Array(value))
                batch.delete(Array(key))
                moved += 1
                return true
            }
        }
        if moved > 0 { try store.write(batch, sync: true) }
        return moved
    }
}

extension Coordinator {
    /// Whether a model is stored under `name` (version 0: any version), for a job's submit checks.
    func modelExists(name: String, version requested: UInt32) throws -> Bool {
        let version = requested > 0 ? Int(requested) : try latestModelVersion(name)
        guard let version else { return false }
        return try store.get(ModelKeys.key(name, version)) != nil
    }

    /// `chorus sentiment series|keys` and `chorus alerts`.
    func sentimentQuery(_ q: Chorus_V1_SentimentQuery) throws -> Chorus_V1_SentimentReply {
        var reply = Chorus_V1_SentimentReply()
        switch q.what {
        case "keys":
            reply.json = try store.get(SentimentResultKeys.keys).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        case "series":
            guard let v = try store.get(SentimentResultKeys.series(q.key)) else {
                throw ChorusError(.notFound, "no series for '\(q.key)'", hint: "run a sentiment job first; `chorus sentiment keys` lists the keys")
            }
            guard q.daily, let obj = try JSONSerialization.jsonObject(with: Data(v)) as? [String: Any],
                  let hours = obj["hours"] as? [Int], let buckets = obj["buckets"] as? [[Double]] else {
                reply.json = String(decoding: v, as: UTF8.self)
                return reply
            }
            var days: [Int: [Double]] = [:]
            for (h, b) in zip(hours, buckets) {
                var d = days[h / 24] ?? [0, 0, 0, 0, 0]
                for i in 0..<min(5, b.count) { d[i] += b[i] }
                days[h / 24] = d
            }
            let sorted = days.keys.sorted()
            reply.json = String(decoding: try JSONSerialization.data(withJSONObject: [
                "key": q.key, "job": obj["job"] ?? "", "days": sorted, "buckets": sorted.map { days[$0]! },
            ] as [String: Any]), as: UTF8.self)
        case "alerts":
            var alerts: [String] = []
            try store.scan(prefix: SentimentResultKeys.alerts) { _, v in
                alerts.append(String(decoding: v, as: UTF8.self))
                return true
            }
            let limit = Int(q.limit == 0 ? 100 : q.limit)
            reply.json = "[" + alerts.reversed().prefix(limit).joined(separator: ",") + "]"
        default:
            throw ChorusError(.usage, "unknown sentiment query '\(q.what)' (series, keys or alerts)")
        }
        return reply
    }
}
