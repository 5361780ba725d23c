import ChorusWire

/// Storage layout on a worker: one RocksDB keyspace, every key `[partition u32 BE][role u8][key id]`.
/// A partition is therefore one contiguous key range: it can be scanned, copied or deleted as a unit.
public enum ShardKeys {
    /// Derived data (not ingested) also lives inside the partition range.
    public enum Derived: UInt8 {
        /// The user's global profile (features, JSON).
        case profile = 0x50  // 'P'
        /// Content features (JSON).
        case contentStats = 0x51  // 'Q'
    }

    public static func prefix(partition: UInt32) -> [UInt8] {
        [UInt8(partition >> 24), UInt8(partition >> 16 & 0xFF), UInt8(partition >> 8 & 0xFF), UInt8(partition & 0xFF)]
    }

    public static func prefix(partition: UInt32, role: UInt8) -> [UInt8] {
        prefix(partition: partition) + [role]
    }

    public static func key(partition: UInt32, role: UInt8, id: [UInt8]) -> [UInt8] {
        var k = prefix(partition: partition)
        k.reserveCapacity(5 + id.count)
        k.append(role)
        k.append(contentsOf: id)
        return k
    }

    public static func role(_ r: Chorus_V1_PutRole) -> UInt8 { UInt8(r.rawValue) }

    /// The partition a shard key belongs to (nil for keys shorter than the prefix).
    public static func partition<C: Collection>(ofKey key: C) -> UInt32? where C.Element == UInt8 {
        guard key.count >= 4 else { return nil }
        var p: UInt32 = 0
        for b in key.prefix(4) { p = p << 8 | UInt32(b) }
        return p
    }
}

extension ShardKeys.Derived {
    /// The user's sentiment, written by the `sentiment` job: comments scored, mean score, attitude per topic,
    /// hashtag and brand (JSON; `profile get` splices it into the profile).
    public static let userSentiment: UInt8 = 0x55  // 'U'
    /// A content item's sentiment, written by the `sentiment` job: distribution, mean score, most negative
    /// comments, the post's own score (JSON; `profile get --kind content-sentiment`).
    public static let contentSentiment: UInt8 = 0x56  // 'V'
}
