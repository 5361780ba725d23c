import ChorusAnalytics
@testable import ChorusJobs
import ChorusModel
@testable import ChorusRuntime
import Foundation
import Testing

/// The propensity job's worker side without a cluster: rows per period, the profile sections it writes (never
/// NaN; "insufficient data" for a user without interactions) and the segment it reads from a `segments` section.
@Suite struct PropensityWorkerTests {
    static let day: Int64 = 86400
    static let t0: Int64 = 1_756_684_800

    static func plan() -> Chorus_V1_Jobs_PropensityPlan {
        var p = Chorus_V1_Jobs_PropensityPlan()
        p.trainCutoff = t0 + 10 * day; p.testCutoff = t0 + 17 * day; p.scoreAt = t0 + 24 * day
        p.horizonS = 7 * day; p.windowS = 14 * day; p.channels = ["x"]
        return p
    }

    static func users() -> [PropensityUser] {
        [PropensityUser(id: "a", channel: "x", followers: 2, events: [
            PropensityEvent(ts: t0 + day, kind: .view), PropensityEvent(ts: t0 + day + 5, kind: .click),
            PropensityEvent(ts: t0 + 12 * day, kind: .conversion, value: 20),
            PropensityEvent(ts: t0 + 20 * day, kind: .view)]),
         PropensityUser(id: "b", channel: "weibo", followers: 0, events: [PropensityEvent(ts: t0 + 15 * day, kind: .view)]),
         PropensityUser(id: "c", channel: "x", followers: 0, events: [])]
    }

    @Test func rowsPerPeriodAndProfilesWithoutNaN() throws {
        let r = try PropensityWorker.rows(Self.users(), plan: Self.plan(), cancellation: CancellationFlag())
        // a: in its training slice (converts in (day 10, day 17]); a and b in the test period; a and b scored.
        #expect(r.x[0].count + r.x[1].count + r.x[2].count == 1)
        #expect(r.labels[0] + r.labels[1] + r.labels[2] == [true])
        #expect(r.ids[3] == ["a", "b"] && r.labels[3] == [false, false])
        #expect(r.ids[4] == ["a", "b"])
        #expect(r.insufficient == [2, 1, 1] && r.unscored == ["c"])
        var b = Chorus_V1_Jobs_PropensityBroadcast()
        b.plan = Self.plan()
        let d = PropensityFeatures.names(channels: ["x"]).count
        b.mean = [Double](repeating: 0, count: d); b.scale = [Double](repeating: 1, count: d)
        b.parameters = (0...d).map { Double($0 % 3) * 0.1 - 0.1 }
        b.plattA = 1; b.plattB = 0
        b.decileCuts = [Double](repeating: 0.5, count: 9)
        try PropensityWorker.check(b, stage: "pr-write")
        let (w, written) = try PropensityWorker.profiles(r, b, partition: 0)
        #expect(written.scored == 2 && written.insufficient == 1 && written.deciles.reduce(0, +) == 2)
        var states: [String: [String: Any]] = [:]
        for op in w.ops where !op.value.isEmpty {
            let o = try #require(try JSONSerialization.jsonObject(with: op.value) as? [String: Any])
            states[String(decoding: op.key.dropFirst(5), as: UTF8.self)] = o
        }
        #expect(states["c"]?["state"] as? String == "insufficient_data" && states["c"]?["probability"] == nil)
        for id in ["a", "b"] {
            let p = (states[id]?["probability"] as? NSNumber)?.doubleValue ?? .nan
            #expect(states[id]?["state"] as? String == "scored" && p.isFinite && p > 0 && p < 1)
        }
        // A broadcast whose vectors do not fit the plan's features is refused (BAD_REQUEST), not trapped on.
        var bad = b
        bad.parameters.removeLast()
        #expect(throws: ChorusError.self) { try PropensityWorker.check(bad, stage: "pr-eval-1") }
        bad = b
        bad.plan.trainCutoff = Int64.min
        #expect(throws: ChorusError.self) { try PropensityWorker.check(bad, stage: "pr-features") }
    }

    @Test func segmentIsReadFromASegmentsSectionOrIgnored() {
        #expect(PropensityWorker.segment(json: Array(#"{"segment": 3, "persona": "bargain hunters"}"#.utf8)) == 3)
        #expect(PropensityWorker.segment(json: Array(#"{"segment": "three"}"#.utf8)) == nil)
        #expect(PropensityWorker.segment(json: Array(#"{"segment": 2.5}"#.utf8)) == nil)
        #expect(PropensityWorker.segment(json: Array("not json".utf8)) == nil)
        #expect(PropensityWorker.segment(json: Array("[1]".utf8)) == nil)
    }
}
