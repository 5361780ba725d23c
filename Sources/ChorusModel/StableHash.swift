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
