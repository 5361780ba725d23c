import CRocksDB
import Foundation

/// Errors from the embedded RocksDB store.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// The store refuses writes (an earlier write, WAL sync or flush failed); reads still work.
    public var readOnly = false
    /// The failure was (or the read-only state comes from) a full disk: ENOSPC / RocksDB `NoSpace`.
    public var diskFull = false
    public var description: String { message }
    public init(message: String, readOnly: Bool = false, diskFull: Bool = false) {
        self.message = message; self.readOnly = readOnly; self.diskFull = diskFull
    }

    /// True for RocksDB's and the OS's words for a full disk.
    public static func isNoSpace(_ text: String) -> Bool {
        text.contains("No space left") || text.contains("NoSpace") || text.contains("no space")
    }
}

/// Takes ownership of a RocksDB error string and turns it into a thrown error.
@inline(__always)
private func check(_ err: UnsafeMutablePointer<CChar>?, _ what: String) throws(StorageError) {
    if let err {
        let msg = String(cString: err)
        rocksdb_free(err)
        throw StorageError(message: "\(what): \(msg)")
    }
}

/// One RocksDB database. All calls block: run them on a dedicated thread or `BlockingQueue`, never on the
/// Swift cooperative pool.
///
/// SAFETY: RocksDB's `rocksdb_t` is documented thread-safe for concurrent reads and writes. Iterators and write
/// batches are not, so they are created and consumed inside one call and never escape. `db` is read under the
/// shared side of `handleLock` and replaced (by `reopen()`) or freed (by `close()`) only under its exclusive side.
///
/// **Failed writes.** Once a write, a WAL sync or a flush fails (a full disk, an I/O error), RocksDB's WAL writer
/// remembers the error, and the Debian build asserts (SIGABRT) if the same WAL is then appended to, flushed or
/// synced again. So the first failure puts the store in a read-only state: every later write, sync and flush is
/// refused here, before RocksDB sees it, and reads go on. `ioLock` serialises writes with WAL syncs and flushes,
/// so a sync never starts while a write fails, nor after it. `reopen()` (once space is free again) opens a
/// fresh handle, which replays the WAL and clears the state.
public final class Store: @unchecked Sendable {
    private var db: OpaquePointer?
    let options: OpaquePointer
    private let writeOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    private let readOptions: OpaquePointer
    public let path: String
    private var closed = false
    let handleLock: UnsafeMutablePointer<pthread_rwlock_t>
    let ioLock = NSLock()
    /// Why the store refuses writes (nil: writable). Guarded by `stateLock`.
    private var failure: StorageError?
    let stateLock = NSLock()
    /// `approximateBytes()`'s last answer, returned while a reopen holds the handle.
    private var lastBytes: UInt64 = 0

    public init(path: String) throws(StorageError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StorageError(message: "cannot create \(path): \(error.localizedDescription)",
                               diskFull: StorageError.isNoSpace("\(error)"))
        }
        guard let opts = rocksdb_options_create() else { throw StorageError(message: "rocksdb_options_create failed") }
        rocksdb_options_set_create_if_missing(opts, 1)
        rocksdb_options_increase_parallelism(opts, 2)
        rocksdb_options_set_compression(opts, Int32(rocksdb_lz4_compression))
        rocksdb_options_set_write_buffer_size(opts, 64 << 20)
        rocksdb_options_set_max_open_files(opts, 512)
        // Bloom filters make the duplicate check (a point lookup that usually misses) cheap.
        let table = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom_full(10))
        rocksdb_block_based_options_set_block_cache(table, rocksdb_cache_create_lru(64 << 20))
        // Index and filter blocks stay pinned in the table readers (not in the sharded block cache, whose
        // 1 MiB shards cannot hold the multi-megabyte full filters of large SST files).
        rocksdb_options_set_block_based_table_factory(opts, table)
        rocksdb_block_based_options_destroy(table)  // the options keep their own copy
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(opts, 0.05)
        rocksdb_options_set_memtable_whole_key_filtering(opts, 1)
        // RocksDB's own info log (the LOG file in the store) is off by default: on a full disk its writer fails
        // once, and the next line it logs (the error handler logs the full disk) aborts the process inside
        // RocksDB (`Assertion 'sync_without_flush_called_' failed`, seen with librocksdb 7.8). Level 6 is above
        // every level RocksDB logs at, headers included. CHORUS_ROCKSDB_LOG_LEVEL=0…5 (debug…header) turns it on
        // for debugging, on a disk that will not fill (docs/operations.md "Full disks").
        let level = ProcessInfo.processInfo.environment["CHORUS_ROCKSDB_LOG_LEVEL"].flatMap { Int32($0) }
        rocksdb_options_set_info_log_level(opts, min(max(level ?? 6, 0), 6))
        let handle: OpaquePointer
        do {
            handle = try Self.open(opts, path)
        } catch {
            rocksdb_options_destroy(opts)
            throw error
        }
        db = handle
        options = opts
        writeOptions = rocksdb_writeoptions_create()
        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        readOptions = rocksdb_readoptions_create()
        self.path = path
        handleLock = .allocate(capacity: 1)
        pthread_rwlock_init(handleLock, nil)
    }

    private static func open(_ opts: OpaquePointer, _ path: String) throws(StorageError) -> OpaquePointer {
        var err: UnsafeMutablePointer<CChar>? = nil
        let handle = rocksdb_open(opts, path, &err)
        if let err {
            let msg = String(cString: err)
            rocksdb_free(err)
            throw StorageError(message: "cannot open RocksDB at \(path) (is another chorus process using this --data dir?): "
                               + msg, diskFull: StorageError.isNoSpace(msg))
        }
        guard let handle else { throw StorageError(message: "cannot open RocksDB at \(path)") }
        return handle
    }

    deinit {
        close()
        pthread_rwlock_destroy(handleLock)
        handleLock.deallocate()
    }

    public func close() {
        pthread_rwlock_wrlock(handleLock)
        defer { pthread_rwlock_unlock(handleLock) }
        if closed { return }
        closed = true
        if let db { rocksdb_close(db) }
        db = nil
        rocksdb_options_destroy(options)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_readoptions_destroy(readOptions)
    }

    /// Runs `body` with the open handle, under the shared side of `handleLock`.
    @inline(__always)
    func withDB<T>(_ body: (OpaquePointer) throws(StorageError) -> T) throws(StorageError) -> T {
        pthread_rwlock_rdlock(handleLock)
        defer { pthread_rwlock_unlock(handleLock) }
        guard let db else {
            throw StorageError(message: closed ? "the store at \(path) is closed"
                               : "the store at \(path) is not open (a reopen failed); see the log")
        }
        return try body(db)
    }

    // MARK: read-only state

    /// Why writes are refused, or nil while the store is writable.
    public var readOnlyReason: StorageError? { stateLock.withLock { failure } }

    /// Records the first failure of a write, sync or flush; later writes are refused with it.
    func fail(_ what: String, _ msg: String) -> StorageError {
        let full = StorageError.isNoSpace(msg)
        let e = StorageError(message: "\(what): \(msg)", readOnly: true, diskFull: full)
        stateLock.withLock { if failure == nil { failure = e } }
        return e
    }

    /// Runs a call that writes the WAL or switches it (a write, a WAL sync, a flush) under `ioLock`: refused
    /// while read-only, and its failure makes the store read-only.
    private func mutate(_ what: String,
                        _ call: (OpaquePointer, inout UnsafeMutablePointer<CChar>?) -> Void) throws(StorageError) {
        try withDB { db throws(StorageError) in
            ioLock.lock()
            defer { ioLock.unlock() }
            if let f = stateLock.withLock({ failure }) {
                throw StorageError(message: "\(what) refused: the store is read-only since \(f.message)",
                                   readOnly: true, diskFull: f.diskFull)
            }
            var err: UnsafeMutablePointer<CChar>? = nil
            call(db, &err)
            if let err {
                let msg = String(cString: err)
                rocksdb_free(err)
                throw fail(what, msg)
            }
        }
    }

    /// Free and total bytes of the file system that holds the store (statvfs; nil if it cannot be read).
    public func diskSpace() -> (free: UInt64, total: UInt64)? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        let unit = UInt64(st.f_frsize == 0 ? st.f_bsize : st.f_frsize)
        return (UInt64(st.f_bavail) * unit, UInt64(st.f_blocks) * unit)
    }

    /// Closes the handle and opens the store again, which replays the WAL and clears the read-only state. Waits
    /// for the calls in flight (scans included). On failure the store stays closed for I/O until the next
    /// successful reopen, and every call says so.
    public func reopen() throws(StorageError) {
        pthread_rwlock_wrlock(handleLock)
        defer { pthread_rwlock_unlock(handleLock) }
        guard !closed else { throw StorageError(message: "the store at \(path) is closed") }
        ioLock.lock()
        defer { ioLock.unlock() }
        if let db { rocksdb_close(db) }
        db = nil
        db = try Self.open(options, path)
        stateLock.withLock { failure = nil }
    }

    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        var err: UnsafeMutablePointer<CChar>? = nil
        var len = 0
        let value = try withDB { db in
            key.withUnsafeBufferPointer { k in
                k.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(k.count, 1)) {
                    rocksdb_get(db, readOptions, $0, k.count, &len, &err)
                }
            }
        }
        try check(err, "get")
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return Array(UnsafeRawBufferPointer(start: value, count: len))
    }

    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool = false) throws(StorageError) {
        var batch = WriteBatch()
        batch.put(key, value)
        try write(batch, sync: sync)
    }

    /// Applies a batch atomically. `sync` waits for the WAL to reach the disk.
    public func write(_ batch: WriteBatch, sync: Bool = false) throws(StorageError) {
        if batch.ops.isEmpty { return }
        let wb = batch.makeRocksBatch()
        defer { rocksdb_writebatch_destroy(wb) }
        try mutate("write") { db, err in rocksdb_write(db, sync ? syncWriteOptions : writeOptions, wb, &err) }
    }

    /// Applies a serialized RocksDB write batch (`WriteBatch.prepared()`, checked with `PreparedBatch.check`)
    /// atomically, as is.
    public func write(prepared rep: UnsafeRawBufferPointer, sync: Bool = false) throws(StorageError) {
        guard let base = rep.baseAddress, rep.count >= 12 else { return }
        let wb = rocksdb_writebatch_create_from(base.assumingMemoryBound(to: CChar.self), rep.count)
        defer { rocksdb_writebatch_destroy(wb) }
        try mutate("write") { db, err in rocksdb_write(db, sync ? syncWriteOptions : writeOptions, wb, &err) }
    }

    /// Visits every key in [from, to) in order. `body` returns false to stop early.
    public func scan(from: [UInt8], to: [UInt8]?,
                     _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        pthread_rwlock_rdlock(handleLock)
        defer { pthread_rwlock_unlock(handleLock) }
        guard let db else { throw StorageError(message: "the store at \(path) is not open; see the log") }
        let ro = rocksdb_readoptions_create()
        defer { rocksdb_readoptions_destroy(ro) }
        rocksdb_readoptions_set_fill_cache(ro, 0)
        let it = rocksdb_create_iterator(db, ro)
        defer { rocksdb_iter_destroy(it) }
        from.withUnsafeBytes { rocksdb_iter_seek(it, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        while rocksdb_iter_valid(it) != 0 {
            var klen = 0
            let kp = rocksdb_iter_key(it, &klen)
            let key = UnsafeRawBufferPointer(start: kp, count: klen)
            if let to, Self.compare(key, to) >= 0 { break }
            var vlen = 0
            let vp = rocksdb_iter_value(it, &vlen)
            if try !body(key, UnsafeRawBufferPointer(start: vp, count: vlen)) { break }
            rocksdb_iter_next(it)
        }
        var err: UnsafeMutablePointer<CChar>? = nil
        rocksdb_iter_get_error(it, &err)
        try check(err, "scan")
    }

    /// Visits every key that starts with `prefix`.
    public func scan(prefix: [UInt8],
                     _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        try scan(from: prefix, to: Self.prefixEnd(prefix), body)
    }

    /// The smallest key greater than every key with this prefix (nil when the prefix is all 0xFF).
    public static func prefixEnd(_ prefix: [UInt8]) -> [UInt8]? {
        var end = prefix
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return nil
    }

    static func compare(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Int {
        let n = min(a.count, b.count)
        for i in 0..<n where a[i] != b[i] { return a[i] < b[i] ? -1 : 1 }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// Estimated live bytes on disk plus memtables. Never waits: while a reopen holds the handle it returns the
    /// last answer (the heartbeat calls it from async code).
    public func approximateBytes() -> UInt64 {
        guard pthread_rwlock_tryrdlock(handleLock) == 0 else { return stateLock.withLock { lastBytes } }
        defer { pthread_rwlock_unlock(handleLock) }
        guard let db else { return stateLock.withLock { lastBytes } }
        func prop(_ name: String) -> UInt64 {
            guard let v = rocksdb_property_value(db, name) else { return 0 }
            defer { rocksdb_free(v) }
            return UInt64(String(cString: v)) ?? 0
        }
        let bytes = prop("rocksdb.total-sst-files-size") + prop("rocksdb.cur-size-all-mem-tables")
        stateLock.withLock { lastBytes = bytes }
        return bytes
    }

    /// RocksDB's own health figures, for metrics.
    public struct EngineStats: Sendable {
        public var pendingCompactionBytes: UInt64 = 0
        public var runningCompactions: UInt64 = 0
        public var writeStopped = false
        /// The rate writes are throttled to while RocksDB delays them, else 0 (bytes/s).
        public var delayedWriteRate: UInt64 = 0
        /// Seconds writes were stalled or delayed since the store opened ("Cumulative stall" of rocksdb.dbstats).
        public var stallSeconds: Double?
    }

    /// Never waits: nil while a reopen holds the handle, or when the store is closed.
    public func engineStats() -> EngineStats? {
        guard pthread_rwlock_tryrdlock(handleLock) == 0 else { return nil }
        defer { pthread_rwlock_unlock(handleLock) }
        guard let db else { return nil }
        func text(_ name: String) -> String? {
            guard let v = rocksdb_property_value(db, name) else { return nil }
            defer { rocksdb_free(v) }
            return String(cString: v)
        }
        func int(_ name: String) -> UInt64 { text(name).flatMap { UInt64($0) } ?? 0 }
        var s = EngineStats()
        s.pendingCompactionBytes = int("rocksdb.estimate-pending-compaction-bytes")
        s.runningCompactions = int("rocksdb.num-running-compactions")
        s.writeStopped = int("rocksdb.is-write-stopped") != 0
        s.delayedWriteRate = int("rocksdb.actual-delayed-write-rate")
        s.stallSeconds = text("rocksdb.dbstats").flatMap(Self.cumulativeStallSeconds)
        return s
    }

    /// Parses "Cumulative stall: 00:01:02.500 H:M:S, ..." from rocksdb.dbstats into seconds.
    static func cumulativeStallSeconds(_ dbstats: String) -> Double? {
        guard let r = dbstats.range(of: "Cumulative stall: ") else { return nil }
        let hms = dbstats[r.upperBound...].prefix { !$0.isWhitespace }.split(separator: ":")
        guard hms.count == 3, let h = Double(hms[0]), let m = Double(hms[1]), let sec = Double(hms[2]) else { return nil }
        return h * 3600 + m * 60 + sec
    }

    /// Writes the WAL buffer out and fsyncs it: every write that returned before this call is durable after it.
    /// Refused once any write failed (RocksDB must never sync a WAL after a failed append).
    public func syncWAL() throws(StorageError) {
        try mutate("WAL sync") { db, err in rocksdb_flush_wal(db, 1, &err) }
    }

    /// Compacts the key range [from, to) so the space of deleted ranges is given back to the disk. Slow: run it on
    /// a maintenance thread, never on the write path. Skipped while the store is read-only. The memtable is flushed
    /// first under `ioLock`, so the compaction itself does not need to switch the WAL.
    public func compactRange(from: [UInt8], to: [UInt8]) {
        guard (try? flush()) != nil else { return }
        try? withDB { db in
            from.withUnsafeBytes { f in
                to.withUnsafeBytes { t in
                    rocksdb_compact_range(db, f.baseAddress?.assumingMemoryBound(to: CChar.self), f.count,
                                          t.baseAddress?.assumingMemoryBound(to: CChar.self), t.count)
                }
            }
        }
    }

    /// Flushes the memtables to SST files and waits. Refused while the store is read-only.
    public func flush() throws(StorageError) {
        let fo = rocksdb_flushoptions_create()
        defer { rocksdb_flushoptions_destroy(fo) }
        rocksdb_flushoptions_set_wait(fo, 1)
        try mutate("flush") { db, err in rocksdb_flush(db, fo, &err) }
    }
}

/// Operations collected for one atomic `Store.write`.
public struct WriteBatch: Sendable {
    enum Op: Sendable {
        case put([UInt8], [UInt8])
        case delete([UInt8])
        case deleteRange([UInt8], [UInt8])
    }
    var ops: [Op] = []
    public init() {}
    public var count: Int { ops.count }
    public mutating func put(_ key: [UInt8], _ value: [UInt8]) { ops.append(.put(key, value)) }
    public mutating func delete(_ key: [UInt8]) { ops.append(.delete(key)) }
    public mutating func deleteRange(from: [UInt8], to: [UInt8]) { ops.append(.deleteRange(from, to)) }

    /// The batch serialized as RocksDB's own write batch (the rep of `rocksdb::WriteBatch`), which a replica
    /// checks with `PreparedBatch.check` and applies with `Store.write(prepared:)` without decoding a record.
    public func prepared() -> [UInt8] {
        let wb = makeRocksBatch()
        defer { rocksdb_writebatch_destroy(wb) }
        var size = 0
        guard let data = rocksdb_writebatch_data(wb, &size), size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// A RocksDB batch holding the operations; the caller destroys it.
    func makeRocksBatch() -> OpaquePointer {
        let wb = rocksdb_writebatch_create()!
        for op in ops {
            switch op {
            case let .put(k, v):
                k.withUnsafeBytes { kp in
                    v.withUnsafeBytes { vp in
                        rocksdb_writebatch_put(wb, kp.baseAddress?.assumingMemoryBound(to: CChar.self), kp.count,
                                               vp.baseAddress?.assumingMemoryBound(to: CChar.self), vp.count)
                    }
                }
            case let .delete(k):
                k.withUnsafeBytes { kp in
                    rocksdb_writebatch_delete(wb, kp.baseAddress?.assumingMemoryBound(to: CChar.self), kp.count)
                }
            case let .deleteRange(from, to):
                from.withUnsafeBytes { fp in
                    to.withUnsafeBytes { tp in
                        rocksdb_writebatch_delete_range(wb, fp.baseAddress?.assumingMemoryBound(to: CChar.self), fp.count,
                                                        tp.baseAddress?.assumingMemoryBound(to: CChar.self), tp.count)
                    }
                }
            }
        }
        return wb
    }
}
