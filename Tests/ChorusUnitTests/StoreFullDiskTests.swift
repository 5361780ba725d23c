import ChorusModel
import ChorusStorage
import Foundation
import Testing

/// A full disk under a real RocksDB store, on a small tmpfs (the tests run as root). Before the fix, a WAL sync
/// after the failed append aborted the process inside RocksDB (`Assertion 'sync_without_flush_called_' failed`),
/// which would end this test run.
@Suite(.serialized, .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
struct StoreFullDiskTests {
    /// Mounts a tmpfs of `mib` MiB on a new directory; returns its path.
    static func mountTmpfs(mib: Int) throws -> String {
        let dir = NSTemporaryDirectory() + "chorus-fulldisk-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", "size=\(mib)m", "tmpfs", dir]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw StorageError(message: "mount tmpfs on \(dir) failed") }
        return dir
    }

    static func unmount(_ dir: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = ["-l", dir]
        try? p.run()
        p.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func aFullDiskMakesTheStoreReadOnlyWithoutAbortingAndAReopenResumesWrites() throws {
        let dir = try Self.mountTmpfs(mib: 12)
        defer { Self.unmount(dir) }
        let filler = dir + "/filler"
        #expect(FileManager.default.createFile(atPath: filler, contents: Data(count: 6 << 20)))
        let store = try Store(path: dir + "/shard")
        defer { store.close() }
        let value = [UInt8]((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        var written = 0
        var failure: StorageError?
        // Batches of 64 KiB until the disk is full; each acknowledged one is synced like the worker's group commit.
        for i in 0..<10_000 {
            var wb = WriteBatch()
            for j in 0..<16 { wb.put(Array("k\(i)-\(j)".utf8), value) }
            do {
                try store.write(wb)
                try store.syncWAL()
                written = i + 1
            } catch {
                failure = error
                break
            }
        }
        let f = try #require(failure, "the 6 MiB left on the disk never filled")
        #expect(f.readOnly && f.diskFull, "\(f)")
        #expect(written > 10)
        #expect(store.readOnlyReason?.diskFull == true)
        // Every later write, sync and flush is refused before RocksDB sees it (this used to abort), and says why.
        for _ in 0..<3 {
            #expect(throws: StorageError.self) { try store.put(Array("late".utf8), value) }
            do { try store.syncWAL(); Issue.record("a WAL sync after a failed write was not refused") }
            catch { #expect(error.readOnly && error.diskFull && error.message.contains("read-only")) }
            #expect(throws: StorageError.self) { try store.flush() }
        }
        store.compactRange(from: Array("k".utf8), to: Array("l".utf8))  // skipped, no abort
        // Reads go on: every synced batch is there.
        for i in [0, written / 2, written - 1] { #expect(try store.get(Array("k\(i)-15".utf8)) == value) }
        // Space freed: a reopen replays the WAL and writes work again.
        try FileManager.default.removeItem(atPath: filler)
        try store.reopen()
        #expect(store.readOnlyReason == nil)
        try store.put(Array("after".utf8), value, sync: true)
        #expect(try store.get(Array("after".utf8)) == value)
        for i in [0, written - 1] { #expect(try store.get(Array("k\(i)-0".utf8)) == value) }
        let space = try #require(store.diskSpace())
        #expect(space.total > 10 << 20 && space.free > 4 << 20)
    }

    @Test func readsRunWhileTheStoreIsReopened() throws {
        let dir = NSTemporaryDirectory() + "chorus-reopen-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(path: dir)
        defer { store.close() }
        for i in 0..<1000 { try store.put(Array("k\(i)".utf8), Array("v\(i)".utf8)) }
        let stop = LockedCounter()
        let done = DispatchSemaphore(value: 0)
        let misses = LockedCounter()
        let reader = Thread {
            var n = 0
            while stop.value == 0 {
                n = (n + 7) % 1000
                if (try? store.get(Array("k\(n)".utf8))) != Array("v\(n)".utf8) { misses.add() }
            }
            done.signal()
        }
        reader.start()
        for _ in 0..<5 { try store.reopen() }
        stop.add()
        done.wait()
        #expect(misses.value == 0)
    }
}

final class LockedCounter: @unchecked Sendable {
    // SAFETY: `count` is only touched under `lock`.
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
