import CRocksDBSst

/// Checks of a serialized RocksDB write batch before a replica applies it (see `WriteBatch.prepared()`).
public enum PreparedBatch {
    /// What a checked batch holds.
    public struct Facts: Sendable, Equatable {
        /// Number of puts.
        public var entries: Int
        /// The distinct partitions of its keys (the keys' first 4 bytes, big-endian), in first-seen order.
        public var partitions: [UInt32]
    }

    /// The most partitions one batch may span (a cluster has at most this many).
    public static let maxPartitions = 65_536

    /// Parses the whole batch: it must hold only puts in the default column family, every key at least 5 bytes
    /// long, and as many puts as its header counts. `each`, if given, sees every put in order (a replica uses it to
    /// record the writes a partition move has to replay). Throws a message that says what is wrong.
    public static func check(_ rep: UnsafeRawBufferPointer,
                             each: ((_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void)? = nil)
        throws(StorageError) -> Facts {
        guard let base = rep.baseAddress, rep.count > 0 else {
            throw StorageError(message: "malformed write batch: empty")
        }
        var partitions = [UInt32](repeating: 0, count: 1024)
        var count = 0, entries: UInt64 = 0
        func run() -> String? {
            let capacity = partitions.count
            var err: UnsafeMutablePointer<CChar>? = nil
            let rc = partitions.withUnsafeMutableBufferPointer { buf in
                chorus_writebatch_check(base.assumingMemoryBound(to: CChar.self), rep.count, buf.baseAddress, capacity,
                                        &count, &entries, nil, nil, &err)
            }
            if rc == 0 { return nil }
            defer { chorus_sst_free(err) }
            return err.map { String(cString: $0) } ?? "unknown error"
        }
        var failure = run()
        if let msg = failure, msg.contains("too many partitions") {
            // Rare: more partitions than the buffer holds; once more with room for every partition there can be.
            partitions = [UInt32](repeating: 0, count: maxPartitions)
            failure = run()
        }
        if let failure { throw StorageError(message: failure) }
        return try visit(rep, each, count, entries, partitions)
    }

    /// The second pass, over a batch already checked: hands every put to `each`.
    private static func visit(_ rep: UnsafeRawBufferPointer,
                              _ each: ((UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void)?,
                              _ count: Int, _ entries: UInt64, _ partitions: [UInt32]) throws(StorageError) -> Facts {
        let facts = Facts(entries: Int(entries), partitions: Array(partitions.prefix(count)))
        guard let each, let base = rep.baseAddress else { return facts }
        final class Visitor {
            let body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void
            init(_ body: @escaping (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) { self.body = body }
        }
        let visitor = Visitor(each)
        let callback: chorus_writebatch_put_fn = { context, key, keyLen, value, valueLen in
            let v = Unmanaged<Visitor>.fromOpaque(context!).takeUnretainedValue()
            v.body(UnsafeRawBufferPointer(start: key, count: keyLen), UnsafeRawBufferPointer(start: value, count: valueLen))
        }
        var scratch = [UInt32](repeating: 0, count: max(count, 1))
        var n = 0, e: UInt64 = 0
        var err: UnsafeMutablePointer<CChar>? = nil
        let rc = withExtendedLifetime(visitor) {
            scratch.withUnsafeMutableBufferPointer { buf in
                chorus_writebatch_check(base.assumingMemoryBound(to: CChar.self), rep.count, buf.baseAddress, buf.count,
                                        &n, &e, Unmanaged.passUnretained(visitor).toOpaque(), callback, &err)
            }
        }
        if rc != 0 {
            defer { chorus_sst_free(err) }
            throw StorageError(message: err.map { String(cString: $0) } ?? "unknown error")
        }
        return facts
    }
}
