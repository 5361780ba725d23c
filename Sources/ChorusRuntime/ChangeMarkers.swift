import ChorusStorage
import ChorusWire
import Foundation
import Synchronization

/// Change markers: which users and content items had records written since the last features run.
///
/// The primary adds one marker row per user and per content item that a write batch changes, in the same RocksDB
/// batch as the records (so a marker exists exactly when its record does), and sends it to the copies with them.
/// Key: `[partition][0x4D 'M'][kind][id][0x00][sequence u64 BE]`, empty value. The sequence is unique per batch on
/// this worker (nanoseconds since 1970, strictly increasing), so a marker written after a job read the markers is
/// a different key: the job deletes exactly the keys it read, and a concurrent write leaves its own marker for the
/// next run. Markers are partition data like any other: moves and re-replication copy them.
public enum ChangeMarkers {
    public static let role: UInt8 = 0x4D  // 'M'

    public enum Kind: UInt8, Sendable {
        /// Interactions or follows of the user were written.
        case user = 0x75  // 'u'
        /// The user record was written: the user's profile and the features of content it interacted with change.
        case userRecord = 0x55  // 'U'
        /// Interactions on the content item were written.
        case content = 0x63  // 'c'
        /// The content record was written: its features and the profiles of users who interacted with it change.
        case contentRecord = 0x43  // 'C'

        public var isRecord: Bool { self == .userRecord || self == .contentRecord }
        public var isUser: Bool { self == .user || self == .userRecord }
    }

    /// The kind of marker a written row of `role` leaves (nil: the role feeds no features).
    static func kind(for role: Chorus_V1_PutRole) -> Kind? {
        switch role {
        case .user: return .userRecord
        case .content: return .contentRecord
        case .interactionByUser, .followOut, .followIn: return .user
        case .interactionByContent: return .content
        default: return nil
        }
    }

    /// The marker key without its sequence: `[partition][M][kind][id][0x00]`, where id is the key id up to its
    /// first 0x00 (the user or content of a two-part key).
    static func stem(partition: UInt32, role: Chorus_V1_PutRole, keyID: Data) -> [UInt8]? {
        guard let kind = kind(for: role) else { return nil }
        var k = ShardKeys.prefix(partition: partition, role: Self.role)
        k.append(kind.rawValue)
        if let z = keyID.firstIndex(of: 0) { k.append(contentsOf: keyID[keyID.startIndex..<z]) } else { k.append(contentsOf: keyID) }
        k.append(0)
        return k
    }

    static func key(stem: [UInt8], sequence: UInt64) -> [UInt8] {
        var k = stem
        for s in stride(from: 56, through: 0, by: -8) { k.append(UInt8(truncatingIfNeeded: sequence >> UInt64(s))) }
        return k
    }

    /// One marker as read back.
    public struct Marker: Sendable, Hashable {
        public var key: [UInt8]
        public var kind: Kind
        public var id: String
    }

    /// Parses a full marker key (nil for a malformed one, which a job deletes and ignores).
    static func parse(_ key: UnsafeRawBufferPointer) -> Marker? {
        // prefix 5 + kind 1 + id ≥ 0 + 0x00 + 8
        guard key.count >= 15, let kind = Kind(rawValue: key[5]), key[key.count - 9] == 0 else { return nil }
        let id = String(decoding: UnsafeRawBufferPointer(rebasing: key[6..<(key.count - 9)]), as: UTF8.self)
        return Marker(key: Array(key), kind: kind, id: id)
    }
}

/// Strictly increasing sequence numbers for change markers (nanoseconds since 1970 when the clock is ahead).
final class ChangeSequence: Sendable {
    private let last = Mutex<UInt64>(0)
    func next() -> UInt64 {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1e9))
        return last.withLock { v in v = max(v + 1, now); return v }
    }
}

extension PartitionView {
    /// The partition's change markers, in key order (by kind, then id).
    public func changeMarkers() throws -> [ChangeMarkers.Marker] {
        var out: [ChangeMarkers.Marker] = []
        try scan(role: ChangeMarkers.role) { key, _ in
            if let m = ChangeMarkers.parse(key) { out.append(m) } else {
                out.append(ChangeMarkers.Marker(key: Array(key), kind: .user, id: ""))
            }
            return true
        }
        return out
    }
}

extension DerivedWrites {
    /// Deletes one key of the partition (for example a change marker a job has processed).
    public mutating func delete(key: [UInt8]) {
        var op = Chorus_V1_ReplicaOp()
        op.partition = partition
        op.key = Data(key)
        op.delete = true
        ops.append(op)
    }
}
