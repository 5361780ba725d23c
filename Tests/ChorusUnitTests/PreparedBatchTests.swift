import ChorusStorage
import Foundation
import Testing

/// Replication by prepared RocksDB batches: the primary serializes a copy's puts (`WriteBatch.prepared()`), the copy
/// checks the batch whole (`PreparedBatch.check`) and applies it as is (`Store.write(prepared:)`).
@Suite struct PreparedBatchTests {
    func key(_ p: UInt32, _ i: Int) -> [UInt8] {
        [UInt8(p >> 24), UInt8(p >> 16 & 0xFF), UInt8(p >> 8 & 0xFF), UInt8(p & 0xFF), 1] + Array("id-\(i)".utf8)
    }

    func check(_ rep: [UInt8]) throws -> PreparedBatch.Facts {
        try rep.withUnsafeBytes { try PreparedBatch.check($0) }
    }

    func refusal(_ rep: [UInt8]) -> String? {
        do { _ = try check(rep); return nil } catch { return "\(error)" }
    }

    @Test func aPreparedBatchAppliesEveryPutInOrderAndReportsItsPartitions() throws {
        let root = NSTemporaryDirectory() + "chorus-prepared-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try Store(path: root)
        var b = WriteBatch()
        for p: UInt32 in [7, 3, 7] {
            for i in 0..<100 { b.put(key(p, i), Array("v-\(p)-\(i)".utf8)) }
        }
        b.put(key(3, 5), Array("last wins".utf8))  // a later put of the same key wins, as in the batch
        let rep = b.prepared()
        let facts = try check(rep)
        #expect(facts.entries == 301 && facts.partitions == [7, 3])
        var seen: [[UInt8]] = []
        _ = try rep.withUnsafeBytes { try PreparedBatch.check($0) { k, _ in seen.append(Array(k)) } }
        #expect(seen.count == 301)
        #expect(seen.first == key(7, 0) && seen.last == key(3, 5))
        try rep.withUnsafeBytes { try store.write(prepared: $0, sync: true) }
        #expect(try store.get(key(7, 99)) == Array("v-7-99".utf8))
        #expect(try store.get(key(3, 5)) == Array("last wins".utf8))
        #expect(try store.get(key(3, 6)) == Array("v-3-6".utf8))
        var n = 0
        try store.scan(from: [], to: [0xFF]) { _, _ in n += 1; return true }
        #expect(n == 200)
    }

    @Test func aBatchWithAnythingButWellFormedPutsIsRefusedWithTheReason() throws {
        var puts = WriteBatch()
        puts.put(key(1, 1), [1, 2, 3])
        puts.put(key(1, 2), [4])
        let good = puts.prepared()
        #expect(refusal(good) == nil)

        var del = puts
        del.delete(key(1, 3))
        #expect(refusal(del.prepared())?.contains("a delete") == true)
        var range = puts
        range.deleteRange(from: key(1, 0), to: key(2, 0))
        #expect(refusal(range.prepared())?.contains("a range delete") == true)
        var short = WriteBatch()
        short.put([0, 0, 1], [9])
        #expect(refusal(short.prepared())?.contains("shorter than 5 bytes") == true)

        // The header's count (bytes 8..<12, little-endian) must match the records.
        var miscounted = good
        miscounted[8] = 3
        #expect(refusal(miscounted)?.contains("count") == true)
        // Cut short, or only a header, or nothing.
        #expect(refusal(Array(good.dropLast(2))) != nil)
        #expect(refusal(Array(good.prefix(7)))?.contains("header") == true)
        #expect(refusal([]) != nil)
        // Garbage after the header.
        #expect(refusal(Array(good.prefix(12)) + [0x42, 0x00, 0x13]) != nil)

        // Records RocksDB's own iterator asserts on (the installed library keeps its asserts, so these would abort
        // the process if they reached it): a no-op transaction marker, a begin-prepare, a commit.
        var header = [UInt8](repeating: 0, count: 12)
        header[8] = 1
        for tag: UInt8 in [0x0D, 0x09, 0x0B] {
            #expect(refusal(header + [tag]) == "write batch refused: a transaction marker (a replica batch holds puts only)")
        }
        // A log data record (not counted in the header, so a count check alone would let it through).
        #expect(refusal(good + [0x03, 0x02, 0x41, 0x42])?.contains("a log data record") == true)
        // A length past the end, and one that never ends.
        #expect(refusal(header + [0x01, 0x7F, 0x00])?.contains("past the end") == true)
        #expect(refusal(header + [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])?.contains("longer than 5 bytes") == true)
        // A key in a partition no cluster can have.
        var far = WriteBatch()
        far.put([0, 1, 0, 0, 1, 7], [1])
        #expect(refusal(far.prepared())?.contains("partition 65536") == true)
    }

    @Test func aBatchOverManyPartitionsListsThemAll() throws {
        var b = WriteBatch()
        for p: UInt32 in 0..<3000 { b.put(key(p, 0), [1]) }
        let facts = try check(b.prepared())
        #expect(facts.entries == 3000)
        #expect(facts.partitions == Array(0..<3000))
    }
}
