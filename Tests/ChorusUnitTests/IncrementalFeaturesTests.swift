import ChorusAnalytics
import ChorusData
@testable import ChorusJobs
import ChorusModel
@testable import ChorusRuntime
import ChorusStorage
import ChorusWire
import Foundation
import Testing

/// The features job's incremental mode on a real store: after new interactions, follows, a changed user record and
/// a changed content record, recomputing only the marked and touched ids gives byte-for-byte the profiles and
/// content features of a full recompute, and every processed change marker is gone.
@Suite struct IncrementalFeaturesTests {
    let asOf: Int64 = 1_790_000_000
    let placement = Placement(partitionCount: 1)

    /// Writes records as the worker does: the rows, and one change marker per id and kind.
    func ingest(_ store: Store, _ lines: [(RecordKind, String)], sequence: UInt64) throws {
        var batch = WriteBatch()
        var changes = ChangeMarkers.Collector()
        for (kind, line) in lines {
            var parser = RecordParser(kind: kind, format: .jsonl)
            guard case let .record(rec) = parser.parse(line) else { Issue.record("not a record: \(line)"); continue }
            for put in try Wire.puts(for: rec, placement: placement) {
                batch.put(ShardKeys.key(partition: put.partition, role: ShardKeys.role(put.role), id: [UInt8](put.keyID)),
                          [UInt8](put.value))
                changes.add(partition: put.partition, role: put.role, keyID: put.keyID)
            }
        }
        for row in changes.rows(sequence: sequence) { batch.put(row.key, row.value) }
        try store.write(batch, sync: true)
    }

    func apply(_ store: Store, _ w: DerivedWrites) throws {
        var batch = WriteBatch()
        for op in w.ops {
            if op.delete { batch.delete([UInt8](op.key)) }
            else if op.rangeEnd.isEmpty { batch.put([UInt8](op.key), [UInt8](op.value)) }
            else { batch.deleteRange(from: [UInt8](op.key), to: [UInt8](op.rangeEnd)) }
        }
        try store.write(batch, sync: true)
    }

    func rows(_ view: PartitionView, _ role: UInt8) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        try view.scan(role: role) { k, v in out[PartitionView.id(of: k)] = Array(v); return true }
        return out
    }

    /// One run of the job on the single partition, as the coordinator drives it: catalog, compute, forget.
    func run(_ view: PartitionView, incremental: Bool) throws -> GlobalSummary {
        var (catalog, _) = try FeaturesJob.catalogWithChanges(view, incremental: incremental)
        catalog.partitionCount = 1
        let index = FeatureIndex(catalog)
        let (summary, writes, _): (GlobalSummary, DerivedWrites, UInt64)
        if incremental {
            #expect(!catalog.full)
            (summary, writes, _) = try FeaturesJob.computeIncremental(
                view, catalog: index, touchedUsers: catalog.touchedUsers, touchedContents: catalog.touchedContents,
                asOf: asOf, cancellation: CancellationFlag())
        } else {
            (summary, writes, _) = try FeaturesJob.compute(view, catalog: index, asOf: asOf, cancellation: CancellationFlag())
        }
        try apply(view.store, writes)
        var forget = DerivedWrites(partition: view.partition)
        for k in catalog.recordMarkers { forget.delete(key: [UInt8](k)) }
        try apply(view.store, forget)
        return summary
    }

    static func interaction(_ n: Int, user: Int, content: Int, type: String = "like", day: Int = 10) -> (RecordKind, String) {
        (.interactions, #"{"interaction_id":"i\#(n)","user_id":"u\#(user)","content_id":"c\#(content)","type":"\#(type)","channel":"instagram","ts":"2026-09-\#(day < 10 ? "0" : "")\#(day)T12:00:00Z"}"#)
    }

    @Test func incrementalEqualsFullRecompute() throws {
        let root = NSTemporaryDirectory() + "chorus-incr-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try Store(path: root)
        let view = PartitionView(partition: 0, store: store)
        var base: [(RecordKind, String)] = []
        for u in 0..<40 {
            base.append((.users, #"{"user_id":"u\#(u)","channel":"\#(u % 2 == 0 ? "tiktok" : "x")","country":"GB"}"#))
        }
        for c in 0..<12 {
            base.append((.content, ##"{"content_id":"c\##(c)","author_id":"u1","channel":"x","topics":["t\##(c % 3)"],"hashtags":["#h\##(c % 4)"]}"##))
        }
        for n in 0..<400 { base.append(Self.interaction(n, user: n % 40, content: n % 12, type: n % 3 == 0 ? "view" : "like", day: 1 + n % 20)) }
        base.append((.follows, #"{"follower_id":"u1","followee_id":"u2","channel":"x","ts":1733594591}"#))
        try ingest(store, base, sequence: 1)
        _ = try run(view, incremental: false)
        #expect(try view.changeMarkers().isEmpty, "a full run deletes the markers it read")

        // Changes: interactions of a few users (one new user, one unknown content), a follow, a user record that
        // moves u3 to another channel (changes the audience of the content u3 interacted with), a content record
        // with new topics (changes the interests of every user who interacted with c5).
        var changes: [(RecordKind, String)] = []
        for n in 400..<430 { changes.append(Self.interaction(n, user: [7, 8, 99][n % 3], content: [1, 2, 77][n % 3], day: 25)) }
        changes.append((.follows, #"{"follower_id":"u9","followee_id":"u10","channel":"x","ts":1733594591}"#))
        changes.append((.users, #"{"user_id":"u3","channel":"youtube","country":"FR"}"#))
        changes.append((.content, ##"{"content_id":"c5","author_id":"u1","channel":"x","topics":["brand-new"],"hashtags":["#new"]}"##))
        try ingest(store, changes, sequence: 2)

        let incremental = try run(view, incremental: true)
        let afterIncremental = (try rows(view, FeaturesJob.profileRole), try rows(view, FeaturesJob.contentRole))
        #expect(try view.changeMarkers().isEmpty)
        // Recomputed: u7, u8, u99, u9, u10, u3 and the users of c5 (every 12th interaction) — not all 41.
        #expect(incremental.users > 6 && incremental.users < 20, "\(incremental.users) users recomputed")
        #expect(incremental.contents >= 4 && incremental.contents < 12, "\(incremental.contents) contents recomputed")

        _ = try run(view, incremental: false)
        let afterFull = (try rows(view, FeaturesJob.profileRole), try rows(view, FeaturesJob.contentRole))
        #expect(afterIncremental.0.count == 41)
        #expect(afterIncremental.0 == afterFull.0, "profiles differ: \(Set(afterFull.0.filter { afterIncremental.0[$0.key] != $0.value }.keys).sorted())")
        #expect(afterIncremental.1 == afterFull.1, "content features differ: \(Set(afterFull.1.filter { afterIncremental.1[$0.key] != $0.value }.keys).sorted())")

        // Nothing changed since: an incremental run recomputes nothing.
        let idle = try run(view, incremental: true)
        #expect(idle.users == 0 && idle.contents == 0)
    }

    /// A marker written after the job read the markers is a different key: it survives the job's deletes.
    @Test func aChangeDuringTheRunKeepsItsMarker() throws {
        let root = NSTemporaryDirectory() + "chorus-incr-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try Store(path: root)
        let view = PartitionView(partition: 0, store: store)
        try ingest(store, [Self.interaction(1, user: 1, content: 1)], sequence: 10)
        let (catalog, _) = try FeaturesJob.catalogWithChanges(view, incremental: true)
        let markersRead = try view.changeMarkers()
        let (_, writes, _) = try FeaturesJob.computeIncremental(
            view, catalog: FeatureIndex(catalog), touchedUsers: [], touchedContents: [], asOf: asOf,
            cancellation: CancellationFlag())
        // The same user's next interaction lands after the job read the partition, before its results are written.
        try ingest(store, [Self.interaction(2, user: 1, content: 1)], sequence: 11)
        try apply(store, writes)
        let left = try view.changeMarkers()
        #expect(markersRead.count == 1 && markersRead[0].entries.count == 2)
        #expect(left.count == 1 && Set(left.map(\.key)).isDisjoint(with: markersRead.map(\.key)))
        #expect(Set(left.flatMap(\.entries).map(\.id)) == ["u1", "c1"])
        let seq = ChangeSequence()
        let a = seq.next(), b = seq.next()
        #expect(b > a)
    }
}
