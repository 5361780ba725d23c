import Foundation
import Testing

/// The `best-times` job on real processes: the generator's planted best posting slot of every channel is among
/// the top 3 recommended slots; data without slot effects give no (or almost no) clear best time; segment weeks;
/// 1 and 3 workers give identical weeks; `chorus best-times` errors and the profile section `timing`.
@Suite(.serialized) struct BestTimesTests {
    /// Generates into DIR/gen (with --content-effects when asked) and ingests the four files.
    static func ingest(_ cluster: TestCluster, dir: String, users: Int, seed: Int, effects: Bool, segments: Int = 0) throws {
        if !FileManager.default.fileExists(atPath: dir + "/users.jsonl") {
            let g = try chorus(["generate", "--users", String(users), "--seed", String(seed), "--out", dir,
                                "--segments", String(segments)] + (effects ? ["--content-effects"] : []), timeout: 300)
            #expect(g.status == 0, "\(g.stderr)")
        }
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { dir + "/" + $0 }
        let r = try chorus(["ingest", "--coordinator", cluster.address, "--json"] + files, timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
    }

    static func submit(_ a: String, _ kind: String, _ params: [String] = []) throws -> [String: Any] {
        let r = try chorus(["job", "submit", kind, "--wait", "--json", "--coordinator", a] + params.flatMap { ["--param", $0] },
                           timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json["state"] as? String == "succeeded", "\(r.stdout)")
        return r.json["summary"] as? [String: Any] ?? [:]
    }

    /// `chorus best-times --json` with these arguments.
    static func weeks(_ a: String, _ args: [String] = []) throws -> [[String: Any]] {
        let r = try chorus(["best-times", "--json", "--coordinator", a] + args)
        #expect(r.status == 0, "\(r.stderr)")
        return r.json["weeks"] as? [[String: Any]] ?? []
    }

    /// channel → planted best slot (day × 24 + hour), from truth/slot_effects.csv.
    static func plantedBest(_ dir: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        let text = try String(contentsOfFile: dir + "/truth/slot_effects.csv", encoding: .utf8)
        let lines = text.split(separator: "\n")
        let header = lines.first?.split(separator: ",").map(String.init) ?? []
        guard let c = header.firstIndex(of: "channel"), let d = header.firstIndex(of: "day"), let h = header.firstIndex(of: "hour"),
              let b = header.firstIndex(of: "best") else { throw HarnessError("slot_effects.csv header: \(header)") }
        for line in lines.dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            if f[b] == "true" || f[b] == "1", let day = Int(f[d]), let hour = Int(f[h]) { out[f[c]] = day * 24 + hour }
        }
        return out
    }

    static func recommended(_ w: [String: Any]) -> [Int] {
        (w["recommended"] as? [[String: Any]] ?? []).compactMap { ($0["slot"] as? NSNumber)?.intValue }
    }

    @Test func plantedBestSlotsAreInTheTopThreeOfEveryChannel() throws {
        let cluster = try TestCluster(workers: 3, partitions: 8)
        defer { cluster.shutdown() }
        let a = cluster.address
        let none = try chorus(["best-times", "--coordinator", a])
        #expect(none.status == 66 && none.stderr.contains("chorus job submit best-times"), "\(none.status) \(none.stderr)")
        let dir = cluster.dir + "/gen"
        try Self.ingest(cluster, dir: dir, users: 30000, seed: 11, effects: true)
        let s = try Self.submit(a, "best-times")
        #expect((s["timing_sections"] as? Int ?? 0) > 25000, "\(s)")
        let truth = try Self.plantedBest(dir)
        #expect(truth.count == 5)
        let weeks = try Self.weeks(a)
        #expect(weeks.count == truth.count)
        for w in weeks {
            let channel = w["channel"] as? String ?? "?"
            let rec = Self.recommended(w)
            #expect(rec.count == 3, "\(channel): \(rec)")
            #expect(rec.contains(truth[channel] ?? -1), "\(channel): recommended \(rec), planted \(truth[channel] ?? -1)")
            #expect((w["slots"] as? [Any])?.count == 168)
        }
        // The terminal view: 7 day rows, the recommended slots with their intervals.
        let text = try chorus(["best-times", "--channel", "x", "--coordinator", a])
        #expect(text.status == 0, "\(text.stderr)")
        for day in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] { #expect(text.stdout.contains("\n\(day)  ")) }
        #expect(text.stdout.contains("recommended (90% intervals):") && text.stdout.contains("1. Tue 12:00"), "\(text.stdout)")
        let unknown = try chorus(["best-times", "--channel", "myspace", "--coordinator", a])
        #expect(unknown.status == 66 && unknown.stderr.contains("channels: "), "\(unknown.stderr)")
        let noSeg = try chorus(["best-times", "--segment", "1", "--coordinator", a])
        #expect(noSeg.status == 66 && noSeg.stderr.contains("segments"), "\(noSeg.stderr)")
        // The profile's timing section.
        let p = try chorus(["profile", "get", "u0000001", "--coordinator", a])
        #expect(p.status == 0 && p.stdout.contains("timing (UTC): active at"), "\(p.stdout)")
    }

    /// Without --content-effects the generator gives posts no slot effect: at most one channel may claim a best
    /// time (each has a 10% family-wise error at most). With segments each (channel, segment) gets a week; one
    /// worker and three give the same weeks.
    @Test func flatDataAndSegmentsAndOneVersusThreeWorkers() throws {
        var runs: [String] = []
        let dir = NSTemporaryDirectory() + "chorus-bt-flat-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for workers in [3, 1] {
            let cluster = try TestCluster(workers: workers, partitions: 8)
            defer { cluster.shutdown() }
            let a = cluster.address
            try Self.ingest(cluster, dir: dir, users: 8000, seed: 5, effects: false, segments: 4)
            _ = try Self.submit(a, "features", ["as_of=1759104000"])
            _ = try Self.submit(a, "segments", ["k=4"])
            let s = try Self.submit(a, "best-times")
            #expect(s["segments_used"] as? Bool == true)
            let weeks = try Self.weeks(a)
            #expect(weeks.count == 5)
            let claiming = weeks.filter { !Self.recommended($0).isEmpty }.map { $0["channel"] as? String ?? "?" }
            #expect(claiming.count <= 1, "flat data, yet a best time on \(claiming)")
            let seg = try Self.weeks(a, ["--segment", "0"])
            #expect(!seg.isEmpty && seg.allSatisfy { ($0["segment"] as? Int) == 0 })
            let one = try Self.weeks(a, ["--channel", "x", "--segment", "1"])
            #expect(one.count == 1)
            let bad = try chorus(["best-times", "--segment", "99", "--coordinator", a])
            #expect(bad.status == 66 && bad.stderr.contains("segments with a week"), "\(bad.stderr)")
            let all = weeks + seg + one
            runs.append(String(decoding: try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys]), as: UTF8.self))
        }
        #expect(runs.count == 2 && runs[0] == runs[1], "1 and 3 workers differ")
    }
}
