import ChorusStorage
@testable import ChorusRuntime
import Foundation
import Testing

/// `PartitionView.groups` and `groupCounts` (the features job's follow counts) against a per-key reference,
/// on a real store: ids that are distinct bytes but equal Strings (NFC and NFD, invalid UTF-8), prefixes of each
/// other, and the partition and role boundaries.
@Suite struct PartitionGroupsTests {
    @Test func groupCountsEqualOneCountPerKey() throws {
        let root = NSTemporaryDirectory() + "chorus-groups-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try Store(path: root)
        let role = ShardKeys.role(.followOut)
        let ids: [[UInt8]] = [
            Array("u1".utf8), Array("u10".utf8), Array("u1x".utf8), [],
            Array("caf\u{E9}".utf8),            // "café", NFC
            Array("cafe\u{301}".utf8),          // "café", NFD: another key, the same String
            [0x75, 0xFF], [0x75, 0xFE],         // invalid UTF-8: both decode to "u\u{FFFD}"
            Array("名前".utf8),
        ]
        var batch = WriteBatch()
        var want: [String: Int] = [:]
        for (n, id) in ids.enumerated() {
            for j in 0..<(n % 4 + 1) {
                batch.put(ShardKeys.key(partition: 3, role: role, id: id + [0] + Array("t\(j)".utf8)), [1])
                want[String(decoding: id, as: UTF8.self), default: 0] += 1
            }
        }
        // Neighbours that must not be counted: the same role in partitions 2 and 4, another role in partition 3.
        for p: UInt32 in [2, 4] { batch.put(ShardKeys.key(partition: p, role: role, id: Array("u1\0x".utf8)), [1]) }
        batch.put(ShardKeys.key(partition: 3, role: ShardKeys.role(.followIn), id: Array("u1\0x".utf8)), [1])
        try store.write(batch, sync: true)

        let view = PartitionView(partition: 3, store: store)
        let got = try view.groupCounts(role: role)
        #expect(got == want)
        // Ids 4 and 5 (1 and 2 keys) are one String, as are ids 6 and 7 (3 and 4 keys).
        #expect(got["caf\u{E9}"] == 3)
        #expect(got["u\u{FFFD}"] == 7)
        // The same counts from the per-key reference the job used before (a dictionary update per key).
        var reference: [String: Int] = [:]
        try view.scan(role: role) { k, _ in
            reference[PartitionView.groupId(of: k), default: 0] += 1
            return true
        }
        #expect(got == reference)
        // `groups` emits each run of equal bytes once, in key order, and sees every record.
        var runs: [String] = []
        let records = try view.groups(role: role, emit: { runs.append($0) }, record: { _ in })
        #expect(records == ids.indices.reduce(0) { $0 + $1 % 4 + 1 })
        #expect(runs.count == ids.count)
    }
}
