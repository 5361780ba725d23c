import ChorusWire
import Foundation
import Synchronization

/// Change markers: which users and content items had records written since the last features run.
///
/// The primary adds, per partition that a write batch changes, one or two marker rows in the same RocksDB batch as
/// the records (so a marker exists exactly when its records do), and sends them to the copies with them: one row
/// lists the users and content items whose interactions or follows were written (class `i`), the other those whose
/// user or content record was written (class `r`). Key: `[partition][0x4D 'M'][class][sequence u64 BE]`; value: the
/// entries, each `[kind][id length u16 BE][id]`. The sequence is unique per batch on this worker (nanoseconds since
/// 1970, strictly increasing), so a row written after a job read the markers is a different key: the job deletes
/// exactly the rows it read, and a concurrent write leaves its own row for the next run. One row per partition and
/// class, not one per id, keeps the cost of a bulk load small. Markers are partition data like any other: moves and
/// re-replication copy them.
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

    public struct Entry: Sendable, Hashable {
        public var kind: Kind
        public var id: String
    }

    /// One marker row as read back: its key (to delete it), whether it lists record changes, and its entries.
    public struct Row: Sendable {
        public var key: [UInt8]
        public var isRecord: Bool
        public var entries: [Entry]
    }

    /// Gathers the changes of one write batch, per partition and class.
    struct Collector {
        /// Per partition: the encoded entries of class i and r, and the ones already added.
        private var rows: [UInt32: (i: [UInt8], r: [UInt8])] = [:]
        private var seen = Set<[UInt8]>()

        var isEmpty: Bool { rows.isEmpty }

        /// Notes a written row of `role` with key id `keyID` (its user or content is the id up to the first 0x00).
        mutating func add(partition: UInt32, role: Chorus_V1_PutRole, keyID: Data) {
            guard let kind = ChangeMarkers.kind(for: role) else { return }
            let id = keyID.firstIndex(of: 0).map { keyID[keyID.startIndex..<$0] } ?? keyID[...]
            var entry = [kind.rawValue, UInt8(truncatingIfNeeded: id.count >> 8), UInt8(truncatingIfNeeded: id.count)]
            entry.append(contentsOf: id)
            guard seen.insert(ShardKeys.prefix(partition: partition) + entry).inserted else { return }
            if kind.isRecord { rows[partition, default: ([], [])].r += entry } else { rows[partition, default: ([], [])].i += entry }
        }

        /// The marker rows to write: key and value, with their partition.
        func rows(sequence: UInt64) -> [(key: [UInt8], value: [UInt8], partition: UInt32)] {
            var out: [(key: [UInt8], value: [UInt8], partition: UInt32)] = []
            for (p, v) in rows.sorted(by: { $0.key < $1.key }) {
                if !v.i.isEmpty { out.append((ChangeMarkers.key(partition: p, record: false, sequence: sequence), v.i, p)) }
                if !v.r.isEmpty { out.append((ChangeMarkers.key(partition: p, record: true, sequence: sequence), v.r, p)) }
            }
            return out
        }
    }

    static func key(partition: UInt32, record: Bool, sequence: UInt64) -> [UInt8] {
        var k = ShardKeys.prefix(partition: partition, role: role)
        k.append(record ? 0x72 : 0x69)  // 'r', 'i'
        for s in stride(from: 56, through: 0, by: -8) { k.append(UInt8(truncatingIfNeeded: sequence >> UInt64(s))) }
        return k
    }

    /// Parses a marker row. A malformed one comes back as an interaction row without entries: a job deletes it.
    static func parse(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Row {
        let k = Array(key)
        guard k.count == 14, k[5] == 0x69 || k[5] == 0x72 else { return Row(key: k, isRecord: false, entries: []) }
        var entries: [Entry] = []
        var i = 0
        while i + 3 <= value.count {
            let n = Int(value[i + 1]) << 8 | Int(value[i + 2])
            guard let kind = Kind(rawValue: value[i]), i + 3 + n <= value.count else { return Row(key: k, isRecord: false, entries: []) }
            entries.append(Entry(kind: kind, id: String(decoding: UnsafeRawBufferPointer(rebasing: value[(i + 3)..<(i + 3 + n)]), as: UTF8.self)))
            i += 3 + n
        }
        return Row(key: k, isRecord: k[5] == 0x72, entries: entries)
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
    /// The partition's change marker rows, in key order.
    public func changeMarkers() throws -> [ChangeMarkers.Row] {
        var out: [ChangeMarkers.Row] = []
        try scan(role: ChangeMarkers.role) { key, value in
            out.append(ChangeMarkers.parse(key: key, value: value))
            return true
        }
        return out
    }
}
