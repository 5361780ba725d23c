/// Stable, documented hashing for placement.
///
/// Chorus places every record by **FNV-1a 64-bit** of the id's UTF-8 bytes
/// (offset basis 0xcbf29ce484222325, prime 0x100000001b3), then
/// `partition = hash % partitionCount`. The function is fixed forever for a
/// cluster: it is the same in every process, on every restart and on every
/// platform. Swift's `Hasher`/`hashValue` is seeded per process and must never
/// be used for anything that crosses a process boundary.
public enum StableHash {
    public static let name = "fnv1a64"

    @inlinable
    public static func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    @inlinable
    public static func fnv1a64(_ string: String) -> UInt64 {
        var s = string
        return s.withUTF8 { fnv1a64($0) }
    }
}

/// Maps ids to partitions. A partition is the unit of placement and moves between workers as a whole.
public struct Placement: Sendable, Equatable {
    public let partitionCount: UInt32

    public init(partitionCount: UInt32) {
        precondition(partitionCount > 0, "partition count must be positive")
        self.partitionCount = partitionCount
    }

    /// The partition of a user id, content id (or any other id): FNV-1a 64 of the UTF-8 bytes mod P.
    @inlinable
    public func partition(of id: String) -> UInt32 {
        UInt32(StableHash.fnv1a64(id) % UInt64(partitionCount))
    }
}

extension StableHash {
    /// SplitMix64's finalizer (Steele, Lea and Flood 2014): a bijection on 64 bits in which every input bit
    /// flips each output bit with probability about 1/2. FNV-1a alone barely moves its top bits when only the
    /// last input byte changes (seeds 42 and 43 gave the same ALS hold-out split), so every hash whose bits are
    /// used as a random number goes through this.
    @inlinable
    public static func avalanche(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a 64 of the UTF-8 bytes, finished by `avalanche`: for sampling, splits and hash tables, never for
    /// placement (placement stays plain FNV-1a 64 mod P forever).
    @inlinable
    public static func mixed64(_ string: String) -> UInt64 { avalanche(fnv1a64(string)) }

    @inlinable
    public static func mixed64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 { avalanche(fnv1a64(bytes)) }
}
