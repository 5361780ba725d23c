import CRocksDB
import Foundation

/// Errors from the embedded RocksDB store.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
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
/// batches are not, so they are created and consumed inside one call and never escape. The handle is freed only in
/// `close()`/`deinit`, after which no method may be called (callers stop using the store first).
public final class Store: @unchecked Sendable {
    private let db: OpaquePointer
    private let options: OpaquePointer
    private let writeOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    private let readOptions: OpaquePointer
    public let path: String
    private var closed = false

    public init(path: String) throws(StorageError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StorageError(message: "cannot create \(path): \(error.localizedDescription)")
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
        var err: UnsafeMutablePointer<CChar>? = nil
        let handle = rocksdb_open(opts, path, &err)
        do {
            try check(err, "cannot open RocksDB at \(path) (is another chorus process using this --data dir?)")
        } catch {
            rocksdb_options_destroy(opts)
            throw error
        }
        guard let handle else {
            rocksdb_options_destroy(opts)
            throw StorageError(message: "cannot open RocksDB at \(path)")
        }
        db = handle
        options = opts
        writeOptions = rocksdb_writeoptions_create()
        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        readOptions = rocksdb_readoptions_create()
        self.path = path
    }

    deinit { close() }

    public func close() {
        if closed { return }
        closed = true
        rocksdb_close(db)
        rocksdb_options_destroy(options)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_readoptions_destroy(readOptions)
    }

    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        var err: UnsafeMutablePointer<CChar>? = nil
        var len = 0
        let value = key.withUnsafeBufferPointer { k in
            k.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(k.count, 1)) {
                rocksdb_get(db, readOptions, $0, k.count, &len, &err)
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
        let wb = rocksdb_writebatch_create()
        defer { rocksdb_writebatch_destroy(wb) }
        for op in batch.ops {
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
        var err: UnsafeMutablePointer<CChar>? = nil
        rocksdb_write(db, sync ? syncWriteOptions : writeOptions, wb, &err)
        try check(err, "write")
    }

    /// Visits every key in [from, to) in order. `body` returns false to stop early.
    public func scan(from: [UInt8], to: [UInt8]?,
                     _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
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

    /// Estimated live bytes on disk plus memtables.
    public func approximateBytes() -> UInt64 {
        func prop(_ name: String) -> UInt64 {
            guard let v = rocksdb_property_value(db, name) else { return 0 }
            defer { rocksdb_free(v) }
            return UInt64(String(cString: v)) ?? 0
        }
        return prop("rocksdb.total-sst-files-size") + prop("rocksdb.cur-size-all-mem-tables")
    }

    /// Writes the WAL buffer out and fsyncs it: every write that returned before this call is durable after it.
    public func syncWAL() throws(StorageError) {
        var err: UnsafeMutablePointer<CChar>? = nil
        rocksdb_flush_wal(db, 1, &err)
        try check(err, "sync WAL")
    }

    /// Compacts the key range [from, to) so the space of deleted ranges is given back to the disk. Slow: run it on
    /// a maintenance thread, never on the write path.
    public func compactRange(from: [UInt8], to: [UInt8]) {
        from.withUnsafeBytes { f in
            to.withUnsafeBytes { t in
                rocksdb_compact_range(db, f.baseAddress?.assumingMemoryBound(to: CChar.self), f.count,
                                      t.baseAddress?.assumingMemoryBound(to: CChar.self), t.count)
            }
        }
    }

    public func flush() throws(StorageError) {
        let fo = rocksdb_flushoptions_create()
        defer { rocksdb_flushoptions_destroy(fo) }
        rocksdb_flushoptions_set_wait(fo, 1)
        var err: UnsafeMutablePointer<CChar>? = nil
        rocksdb_flush(db, fo, &err)
        try check(err, "flush")
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
}
