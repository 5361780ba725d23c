import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Checks of the ALS messages a worker receives (they come from a socket). A side that fails is refused with
/// BAD_REQUEST naming the field, before anything is applied.
enum ALSPayloads {
    static func invalid(_ field: String, _ why: String) -> ChorusError { TaskContext.invalid(field, why) }

    /// A side on its own: a known side name, a rank in range, width rank or rank + 1, unique ids, and lengths that
    /// match (factors = ids × width × 4 bytes, gram = rank² × 8 bytes), all finite.
    static func checkShape(_ m: Chorus_V1_Jobs_AlsSide, _ f: String) throws {
        guard m.side == "users" || m.side == "items" else {
            throw invalid(f + ".side", "'\(m.side.prefix(40))' is not users or items")
        }
        let maxRank = RequestValidation.maxRank
        guard (1...maxRank).contains(m.rank) else { throw invalid(f + ".rank", "\(m.rank) is not in 1...\(maxRank)") }
        guard m.width == m.rank || m.width == m.rank + 1 else {
            throw invalid(f + ".width", "\(m.width) for rank \(m.rank) (must be rank or rank + 1)")
        }
        let rowBytes = Int(m.width) * 4
        if !m.ids.isEmpty {
            guard m.factors.count == m.ids.count * rowBytes else {
                throw invalid(f + ".factors", "\(m.factors.count) bytes for \(m.ids.count) ids × width \(m.width) × 4")
            }
            for (i, s) in m.ids.enumerated() where s.utf8.count > RequestValidation.maxIdBytes {
                throw invalid("\(f).ids[\(i)]", "\(s.utf8.count) bytes, more than \(RequestValidation.maxIdBytes)")
            }
            try RequestValidation.unique(m.ids, f + ".ids", what: "id")
            if !m.popularity.isEmpty, m.popularity.count != m.ids.count {
                throw invalid(f + ".popularity", "\(m.popularity.count) counts for \(m.ids.count) ids")
            }
        } else {
            guard m.factors.count % rowBytes == 0 else {
                throw invalid(f + ".factors", "\(m.factors.count) bytes is not a multiple of width \(m.width) × 4")
            }
        }
        try RequestValidation.finite(m.factors, stride: 4, f + ".factors")
        guard m.mean.isFinite else { throw invalid(f + ".mean", "not finite") }
        if !m.gram.isEmpty {
            guard m.gram.count == Int(m.rank) * Int(m.rank) * 8 else {
                throw invalid(f + ".gram", "\(m.gram.count) bytes for rank \(m.rank) (must be rank² × 8)")
            }
            try RequestValidation.finite(m.gram, stride: 8, f + ".gram")
        }
    }

    /// A side against its job: the job's rank and width, the mode's gram, and (without ids) as many rows as the
    /// ids this worker already holds for the side (nil: none yet). `items` also checks the popularity length.
    static func check(_ m: Chorus_V1_Jobs_AlsSide, field f: String, rank: Int, width: Int, implicit: Bool,
                      knownIds: Int?) throws {
        try checkShape(m, f)
        guard Int(m.rank) == rank, Int(m.width) == width else {
            throw invalid(f + ".rank", "rank \(m.rank) width \(m.width), but the job has rank \(rank) width \(width)")
        }
        if implicit && m.gram.isEmpty { throw invalid(f + ".gram", "missing (implicit mode needs the Gram matrix)") }
        let rows = m.factors.count / (width * 4)
        if m.ids.isEmpty, let knownIds, rows != knownIds {
            throw invalid(f + ".factors", "\(rows) rows, but \(knownIds) \(m.side) ids were sent earlier")
        }
        if m.ids.isEmpty, !m.popularity.isEmpty, m.popularity.count != rows {
            throw invalid(f + ".popularity", "\(m.popularity.count) counts for \(rows) rows")
        }
    }
}
