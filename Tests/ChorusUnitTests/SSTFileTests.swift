import ChorusStorage
@testable import ChorusRuntime
import Foundation
import Testing

/// Partition moves by files, at the storage level: export a key range into SST files, check them, ingest them.
@Suite struct SSTFileTests {
    func key(_ p: UInt8, _ i: Int) -> [UInt8] { [0, 0, 0, p, 1] + Array(String(format: "id-%06d", i).utf8) }

    @Test func aRangeExportedInFilesIngestsIntoAnotherStoreWithEveryKeyAndNothingElse() throws {
        let root = NSTemporaryDirectory() + "chorus-sst-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let src = try Store(path: root + "/src")
        var b = WriteBatch()
        for p: UInt8 in 0..<3 {
            for i in 0..<3000 { b.put(key(p, i), Array(repeating: UInt8(i & 0xFF), count: 40 + i % 50)) }
        }
        try src.write(b, sync: true)
        try src.flush()
        // Partition 1 in files of at most ~64 KiB of rows each.
        var files: [String] = []
        var from = [UInt8]([0, 0, 0, 1])
        var total: UInt64 = 0
        while true {
            let path = root + "/out-\(files.count).sst"
            guard let f = try src.exportSST(to: path, from: from, to: [0, 0, 0, 2], maxBytes: 64 << 10) else { break }
            let facts = try Store.inspectSST(path)
            #expect(facts == SSTFacts(entries: f.keys, firstKey: f.firstKey, lastKey: f.lastKey))
            #expect(f.fileBytes == UInt64(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? -1))
            total += f.keys
            files.append(path)
            if !f.more { break }
            from = f.lastKey + [0]
        }
        #expect(total == 3000)
        #expect(files.count > 3)
        // An empty range writes nothing.
        #expect(try src.exportSST(to: root + "/none.sst", from: [0, 0, 0, 7], to: [0, 0, 0, 8], maxBytes: 1 << 20) == nil)
        #expect(!FileManager.default.fileExists(atPath: root + "/none.sst"))

        // The receiver holds a newer value for one key of the range, and other partitions' data.
        let dst = try Store(path: root + "/dst")
        var d = WriteBatch()
        d.put(key(0, 5), [7])
        d.put(key(1, 10), [42])
        try dst.write(d)
        try dst.ingest(files: files)
        for f in files { #expect(!FileManager.default.fileExists(atPath: f), "moved, not copied: \(f)") }
        var n = 0
        try dst.scan(from: [0, 0, 0, 1], to: [0, 0, 0, 2]) { _, _ in n += 1; return true }
        #expect(n == 3000)
        // Ingested keys are newer than what the store held: the caller re-applies writes made during the copy.
        #expect(try dst.get(key(1, 10)) == Array(repeating: 10, count: 50))
        #expect(try dst.get(key(0, 5)) == [7])
        #expect(try dst.get(key(2, 1)) == nil)
        dst.close()
        let again = try Store(path: root + "/dst")
        #expect(try again.get(key(1, 2999)) == Array(repeating: UInt8(2999 & 0xFF), count: 40 + 2999 % 50))
    }

    @Test func aTruncatedOrCorruptFileIsRefusedBeforeIngest() throws {
        let root = NSTemporaryDirectory() + "chorus-sst-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let src = try Store(path: root + "/src")
        var b = WriteBatch()
        for i in 0..<2000 { b.put(key(4, i), Array(String(repeating: "value-\(i) ", count: 5).utf8)) }
        try src.write(b)
        let path = root + "/p4.sst"
        let f = try #require(try src.exportSST(to: path, from: [0, 0, 0, 4], to: [0, 0, 0, 5], maxBytes: 1 << 30))
        #expect(!f.more && f.keys == 2000)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        // Truncated (a transfer cut short).
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: root + "/short.sst"))
        #expect(throws: StorageError.self) { try Store.inspectSST(root + "/short.sst") }
        // One flipped byte inside a data block.
        var bad = data
        bad[100] ^= 0x5A
        try bad.write(to: URL(fileURLWithPath: root + "/bad.sst"))
        #expect(throws: StorageError.self) { try Store.inspectSST(root + "/bad.sst") }
        #expect(throws: StorageError.self) { try Store.inspectSST(root + "/missing.sst") }
        #expect(try Store.inspectSST(path).entries == 2000)
    }
}

/// Dropped partitions are compacted as runs of consecutive partitions (Worker.compactAway).
@Suite struct CompactionRunTests {
    @Test func consecutivePartitionsMergeIntoOneRange() {
        #expect(Worker.runs([]).isEmpty)
        #expect(Worker.runs([1, 2, 3, 7, 9, 10]).map { [$0.0, $0.1] } == [[1, 3], [7, 7], [9, 10]])
        #expect(Worker.runs([UInt32.max - 1, UInt32.max]).map { [$0.0, $0.1] } == [[UInt32.max - 1, UInt32.max]])
    }
}
