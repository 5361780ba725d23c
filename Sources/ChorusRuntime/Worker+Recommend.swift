import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation

/// Float vectors on the wire and in the store: float32 (factors) and float64 (Gram matrices, parameters), little
/// endian.
public enum FloatPacking {
    public static func pack(_ v: [Float]) -> Data {
        #if _endian(little)
        return v.withUnsafeBytes { Data($0) }
        #else
        var d = Data(capacity: v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
        #endif
    }

    public static func unpack(_ d: Data) -> [Float] {
        var out = [Float](repeating: 0, count: d.count / 4)
        d.withUnsafeBytes { raw in
            for i in out.indices { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
        }
        return out
    }

    public static func packDoubles(_ v: [Double]) -> Data {
        var d = Data(capacity: v.count * 8)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    public static func unpackDoubles(_ d: Data) -> [Double] {
        var out = [Double](repeating: 0, count: d.count / 8)
        d.withUnsafeBytes { raw in
            for i in out.indices { out[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))) }
        }
        return out
    }
}

/// Roles of the `als` job's stored outputs, read here by `profile get` and `recommend`.
extension ShardKeys.Derived {
    /// Stored factor roles (float32 LE vector, bias last in explicit mode with biases).
    public static let userFactors: UInt8 = 0x52  // 'R'
    public static let contentFactors: UInt8 = 0x53  // 'S'
    /// The user's stored top-N recommendations (UTF-8 JSON array of {"content_id", "score"}).
    public static let userRecommendations: UInt8 = 0x54  // 'T'
}

extension Worker {
    /// The stored ALS factors of a user and the content ids the user interacted with (for recommendations).
    func userHistory(_ r: Chorus_V1_UserHistoryRequest) async throws -> Chorus_V1_UserHistory {
        try checkPrimary([r.partition], in: state.withLock { $0.map })
        let store = self.store
        return try await computeQueue.run {
            var out = Chorus_V1_UserHistory()
            let id = Array(r.userID.utf8)
            if let f = try store.get(ShardKeys.key(partition: r.partition, role: ShardKeys.Derived.userFactors, id: id)),
               f.count >= 2 {
                out.rank = UInt32(f[0]) | UInt32(f[1]) << 8
                out.factors = FloatPacking.unpack(Data(f.dropFirst(2)))
            }
            var seen = Set<String>()
            try store.scan(prefix: ShardKeys.key(partition: r.partition, role: ShardKeys.role(.interactionByUser), id: id + [0])) { _, v in
                let m = try Chorus_V1_Interaction(borrowing: UnsafeRawBufferPointer(v))
                seen.insert(m.contentID)
                out.interactions += 1
                if m.type == .rating && m.value > 0 { out.valued += 1 }  // what explicit mode learns from
                return true
            }
            out.seen = seen.sorted()
            return out
        }
    }
}
