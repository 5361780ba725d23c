/// Checks of a serialized RocksDB write batch before a replica applies it (see `WriteBatch.prepared()`).
///
/// The batch comes from the network, so it is parsed here, in Swift, before any of it reaches RocksDB: RocksDB's own
/// iterator asserts on some record kinds (transaction markers, a commit without a timestamp), and the installed
/// library keeps its asserts, so a crafted batch would abort the process. The format is RocksDB's write batch rep
/// (db/write_batch.cc): a 12-byte header (sequence number, fixed64; record count, fixed32; little-endian), then
/// records. A put in the default column family is the tag byte 1, then the key and the value, each a varint32
/// length and its bytes. A replica batch holds nothing else.
public enum PreparedBatch {
    /// What a checked batch holds.
    public struct Facts: Sendable, Equatable {
        /// Number of puts.
        public var entries: Int
        /// The distinct partitions of its keys (the keys' first 4 bytes, big-endian), in first-seen order.
        public var partitions: [UInt32]
    }

    /// Partitions are below this (a cluster has at most this many; see `RequestValidation.maxPartitions`).
    public static let maxPartitions = 65_536

    /// Parses the whole batch: it must hold only puts in the default column family, every key at least 5 bytes
    /// long and in a partition below `maxPartitions`, and as many puts as its header counts. `each`, if given,
    /// sees every put in order as it is parsed (a replica uses it, after a first check, to record the writes a
    /// partition move has to replay). Throws a message that says what is wrong.
    public static func check(_ rep: UnsafeRawBufferPointer,
                             each: ((_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void)? = nil)
        throws(StorageError) -> Facts {
        func refuse(_ why: String) -> StorageError { StorageError(message: "write batch refused: " + why) }
        guard rep.count >= 12 else { throw refuse("shorter than its 12-byte header") }
        var declared = 0
        for k in 0..<4 { declared |= Int(rep[8 + k]) << (8 * k) }
        var seen = [UInt64](repeating: 0, count: maxPartitions / 64)
        var partitions: [UInt32] = []
        var at = 12
        var puts = 0
        /// A varint32 length at `at`, which must fit in what is left of the batch.
        func length() throws(StorageError) -> Int {
            var value = 0
            var shift = 0
            while true {
                guard at < rep.count else { throw refuse("cut short in a length (record \(puts + 1))") }
                let b = Int(rep[at])
                at += 1
                value |= (b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
                guard shift < 35 else { throw refuse("a length longer than 5 bytes (record \(puts + 1))") }
            }
            guard value <= UInt32.max, value <= rep.count - at else {
                throw refuse("a length of \(value) bytes past the end of the batch (record \(puts + 1))")
            }
            return value
        }
        while at < rep.count {
            let tag = rep[at]
            at += 1
            guard tag == 1 else { throw refuse(recordName(tag) + " (a replica batch holds puts only)") }
            let keyLength = try length()
            let key = UnsafeRawBufferPointer(rebasing: rep[at..<(at + keyLength)])
            at += keyLength
            let valueLength = try length()
            let value = UnsafeRawBufferPointer(rebasing: rep[at..<(at + valueLength)])
            at += valueLength
            guard keyLength >= 5 else { throw refuse("a key shorter than 5 bytes (record \(puts + 1))") }
            let p = Int(key[0]) << 24 | Int(key[1]) << 16 | Int(key[2]) << 8 | Int(key[3])
            guard p < maxPartitions else { throw refuse("a key of partition \(p), beyond any cluster's partitions") }
            if seen[p >> 6] & (1 << (p & 63)) == 0 {
                seen[p >> 6] |= 1 << (p & 63)
                partitions.append(UInt32(p))
            }
            puts += 1
            each?(key, value)
        }
        guard puts == declared else { throw refuse("\(puts) puts but a header count of \(declared)") }
        return Facts(entries: puts, partitions: partitions)
    }

    /// RocksDB's record kinds (`ValueType` in db/dbformat.h), for the message that refuses one.
    static func recordName(_ tag: UInt8) -> String {
        switch tag {
        case 0x0: return "a delete"
        case 0x2, 0x6: return "a merge"
        case 0x3: return "a log data record"
        case 0x4: return "a delete in a column family"
        case 0x5: return "a put in a column family other than the default"
        case 0x7, 0x8: return "a single delete"
        case 0x9, 0xA, 0xB, 0xC, 0xD: return "a transaction marker"
        case 0xE, 0xF: return "a range delete"
        default: return "a record of unknown type 0x" + String(tag, radix: 16)
        }
    }
}
