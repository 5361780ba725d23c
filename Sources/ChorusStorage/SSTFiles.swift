import CRocksDB
import CRocksDBSst
import Foundation

/// One SST file written by `Store.exportSST`.
public struct ExportedSST: Sendable {
    /// Entries in the file.
    public var keys: UInt64
    /// Bytes of keys and values (before compression).
    public var rawBytes: UInt64
    /// The file's size on disk.
    public var fileBytes: UInt64
    public var firstKey: [UInt8]
    public var lastKey: [UInt8]
    /// Keys remain in the range after `lastKey` (the file stopped at its size limit).
    public var more: Bool
}

/// What `Store.inspectSST` read from a file, after verifying its block checksums.
public struct SSTFacts: Sendable, Equatable {
    public var entries: UInt64
    public var firstKey: [UInt8]
    public var lastKey: [UInt8]
    public init(entries: UInt64, firstKey: [UInt8], lastKey: [UInt8]) {
        self.entries = entries; self.firstKey = firstKey; self.lastKey = lastKey
    }
}

/// Partition moves by files: the source writes a key range into SST files (`exportSST`), the receiver checks each
/// file (`inspectSST`) and links them into its own database (`ingest`). RocksDB neither decodes nor re-sorts
/// the rows, and they skip the receiver's memtable, WAL and flushes.
extension Store {
    /// Writes the keys of [from, to) in order into a new SST file at `path`, stopping once `maxBytes` of keys and
    /// values are in it. The file uses the store's own table options (compression, Bloom filters), so the
    /// receiver reads it as fast as its own files. Returns nil, and writes no file, when the range is empty.
    public func exportSST(to path: String, from: [UInt8], to end: [UInt8]?, maxBytes: Int) throws(StorageError) -> ExportedSST? {
        try withDB { db throws(StorageError) in
            let ro = rocksdb_readoptions_create()
            defer { rocksdb_readoptions_destroy(ro) }
            rocksdb_readoptions_set_fill_cache(ro, 0)
            rocksdb_readoptions_set_readahead_size(ro, 2 << 20)
            let it = rocksdb_create_iterator(db, ro)
            defer { rocksdb_iter_destroy(it) }
            let env = rocksdb_envoptions_create()
            defer { rocksdb_envoptions_destroy(env) }
            let writer = rocksdb_sstfilewriter_create(env, options)
            defer { rocksdb_sstfilewriter_destroy(writer) }
            var opened = false
            var out = ExportedSST(keys: 0, rawBytes: 0, fileBytes: 0, firstKey: [], lastKey: [], more: false)
            var failure: StorageError?
            from.withUnsafeBytes { rocksdb_iter_seek(it, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
            while rocksdb_iter_valid(it) != 0 {
                var klen = 0
                let kp = rocksdb_iter_key(it, &klen)
                let key = UnsafeRawBufferPointer(start: kp, count: klen)
                if let end, Self.compare(key, end) >= 0 { break }
                if out.rawBytes >= UInt64(maxBytes) { out.more = true; break }
                var vlen = 0
                let vp = rocksdb_iter_value(it, &vlen)
                var err: UnsafeMutablePointer<CChar>? = nil
                if !opened {
                    rocksdb_sstfilewriter_open(writer, path, &err)
                    if let e = err { failure = Self.error("cannot create \(path)", e); break }
                    opened = true
                    out.firstKey = Array(key)
                }
                rocksdb_sstfilewriter_put(writer, kp, klen, vp, vlen, &err)
                if let e = err { failure = Self.error("writing \(path)", e); break }
                out.keys += 1
                out.rawBytes += UInt64(klen + vlen)
                out.lastKey = Array(key)
                rocksdb_iter_next(it)
            }
            if failure == nil {
                var err: UnsafeMutablePointer<CChar>? = nil
                rocksdb_iter_get_error(it, &err)
                if let e = err { failure = Self.error("reading the range for \(path)", e) }
            }
            if failure == nil, opened {
                var err: UnsafeMutablePointer<CChar>? = nil
                rocksdb_sstfilewriter_finish(writer, &err)
                if let e = err { failure = Self.error("finishing \(path)", e) }
                rocksdb_sstfilewriter_file_size(writer, &out.fileBytes)
            }
            if let failure {
                try? FileManager.default.removeItem(atPath: path)
                throw failure
            }
            return opened ? out : nil
        }
    }

    /// Opens an SST file outside any database, verifies every block checksum, and reads its entry count and key
    /// range. Throws for a missing, truncated or corrupt file, and for a file that holds deletions.
    public static func inspectSST(_ path: String) throws(StorageError) -> SSTFacts {
        var info = chorus_sst_info()
        var err: UnsafeMutablePointer<CChar>? = nil
        guard chorus_sst_inspect(path, &info, &err) == 0 else {
            let msg = err.map { String(cString: $0) } ?? "unknown error"
            chorus_sst_free(err)
            throw StorageError(message: "\(path): \(msg)", diskFull: StorageError.isNoSpace(msg))
        }
        defer {
            chorus_sst_free(info.first_key)
            chorus_sst_free(info.last_key)
        }
        func bytes(_ p: UnsafeMutablePointer<CChar>?, _ n: Int) -> [UInt8] {
            guard let p, n > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: p, count: n))
        }
        return SSTFacts(entries: info.entries, firstKey: bytes(info.first_key, info.first_key_len),
                        lastKey: bytes(info.last_key, info.last_key_len))
    }

    /// Links SST files into the database in one atomic step (all or none); the files are moved, not copied, so
    /// they must be on the store's file system. Their keys get a sequence number newer than every write so far:
    /// they overwrite what the store holds in their range. RocksDB syncs the files and the MANIFEST before it
    /// returns. Refused while the store is read-only; a full disk or an I/O error makes it read-only.
    public func ingest(files: [String]) throws(StorageError) {
        guard !files.isEmpty else { return }
        let io = rocksdb_ingestexternalfileoptions_create()
        defer { rocksdb_ingestexternalfileoptions_destroy(io) }
        rocksdb_ingestexternalfileoptions_set_move_files(io, 1)
        rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(io, 1)
        try withDB { db throws(StorageError) in
            ioLock.lock()
            defer { ioLock.unlock() }
            if let f = readOnlyReason {
                throw StorageError(message: "ingest refused: the store is read-only since \(f.message)",
                                   readOnly: true, diskFull: f.diskFull)
            }
            let cPaths = files.map { strdup($0) }
            defer { cPaths.forEach { free($0) } }
            var err: UnsafeMutablePointer<CChar>? = nil
            cPaths.map { UnsafePointer($0) }.withUnsafeBufferPointer { list in
                rocksdb_ingest_external_file(db, list.baseAddress, list.count, io, &err)
            }
            if let err {
                let msg = String(cString: err)
                rocksdb_free(err)
                // The ingest may have flushed the memtable first: a failed flush leaves the WAL in the state
                // `mutate` guards against. A refused file (bad range, corruption) does not.
                if StorageError.isNoSpace(msg) || msg.hasPrefix("IO error") { throw fail("ingest", msg) }
                throw StorageError(message: "ingest: \(msg)")
            }
        }
    }

    /// RocksDB's estimate of the bytes the range [from, to) takes on disk (SST files only).
    public func approximateSize(from: [UInt8], to: [UInt8]) -> UInt64 {
        (try? withDB { db in
            var size: UInt64 = 0
            var err: UnsafeMutablePointer<CChar>? = nil
            from.withUnsafeBytes { f in
                to.withUnsafeBytes { t in
                    var starts: [UnsafePointer<CChar>?] = [f.baseAddress?.assumingMemoryBound(to: CChar.self)]
                    var startLens = [f.count]
                    var limits: [UnsafePointer<CChar>?] = [t.baseAddress?.assumingMemoryBound(to: CChar.self)]
                    var limitLens = [t.count]
                    rocksdb_approximate_sizes(db, 1, &starts, &startLens, &limits, &limitLens, &size, &err)
                }
            }
            if let err { rocksdb_free(err); return 0 }
            return size
        }) ?? 0
    }

    private static func error(_ what: String, _ err: UnsafeMutablePointer<CChar>) -> StorageError {
        let msg = String(cString: err)
        rocksdb_free(err)
        return StorageError(message: "\(what): \(msg)", diskFull: StorageError.isNoSpace(msg))
    }
}

/// The RocksDB library this process runs on.
public enum RocksDBLibrary {
    /// Its version at run time, e.g. "7.8.3" (what `chorus version` prints).
    public static var version: String {
        guard let v = chorus_rocksdb_version() else { return "unknown" }
        defer { chorus_sst_free(v) }
        return String(cString: v)
    }
}
