import ChorusAnalytics
import ChorusModel
import ChorusWire
import Foundation
import Synchronization

/// The item side of the latest successful `als` job, kept by the coordinator for recommendations.
final class ALSServingModel: Sendable {
    let jobId: String
    let ids: [String]
    let index: [String: Int]
    let factors: ALS.Factors
    let norms: [Float]
    let popularity: [UInt32]
    let explicit: Bool

    init(_ m: Chorus_V1_AlsModel) {
        jobId = m.params["job_id"] ?? ""
        ids = m.ids
        // The ids were assembled from worker replies: the first of a duplicate wins instead of a trap.
        index = Dictionary(m.ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var f = ALS.Factors(rank: Int(m.rank), width: Int(m.width), count: 0)
        f.data = FloatPacking.unpack(m.factors)
        factors = f
        norms = (0..<f.count).map { i in
            var s: Float = 0
            for q in 0..<f.rank { s += f.data[i * f.width + q] * f.data[i * f.width + q] }
            return s.squareRoot()
        }
        popularity = m.popularity
        explicit = m.params["mode"] == "explicit"
    }

    func cosine(_ a: Int, _ b: Int) -> Float {
        var d: Float = 0
        for q in 0..<factors.rank { d += factors.data[a * factors.width + q] * factors.data[b * factors.width + q] }
        return d / max(1e-9, norms[a] * norms[b])
    }

    func popular(_ n: Int, excluding: Set<Int>) -> [Chorus_V1_Recommendation] {
        Evaluation.topN(scores: popularity.map { Float($0) }, n: n, exclude: excluding).map { i in
            var r = Chorus_V1_Recommendation()
            r.contentID = ids[i]
            r.score = Float(popularity[i])
            r.reason = "popular: \(popularity[i]) interactions in training"
            return r
        }
    }
}

extension Coordinator {
    static let alsModelKey = Array("als/model".utf8)

    /// Keeps the item factors of a finished `als` job (persisted, so a restart keeps serving them).
    func keepALSModel(_ m: Chorus_V1_AlsModel) throws {
        try store.put(Self.alsModelKey, try m.serializedBytes(), sync: true)
        servingModel.withLock { $0 = ALSServingModel(m) }
    }

    func latestALSModel() throws -> ALSServingModel {
        if let m = servingModel.withLock({ $0 }) { return m }
        guard let bytes = try store.get(Self.alsModelKey) else {
            throw ChorusError(.notFound, "no ALS model yet", hint: "run `chorus job submit als --wait` first")
        }
        let m = ALSServingModel(try Chorus_V1_AlsModel(serializedBytes: bytes))
        servingModel.withLock { $0 = m }
        return m
    }

    func recommend(_ r: Chorus_V1_RecommendRequest) async throws -> Chorus_V1_Recommendations {
        let model = try latestALSModel()
        let n = Int(r.n == 0 ? 10 : min(r.n, 1000))
        let map = await state.map
        let p = Placement(partitionCount: map.partitionCount).partition(of: r.userID)
        guard let owner = await state.owner(of: p) else {
            throw ChorusError(.unavailable, "partition \(p) of user '\(r.userID)' has no live primary", hint: "see `chorus cluster status`")
        }
        var q = Chorus_V1_UserHistoryRequest()
        q.userID = r.userID
        q.partition = p
        guard case let .userHistory(h) = try await owner.peer.call(.userHistory(q), timeout: .seconds(10)) else {
            throw ChorusError(.internal, "unexpected reply to user_history")
        }
        var out = Chorus_V1_Recommendations()
        out.subject = r.userID
        out.modelJob = model.jobId
        let seen = Set(h.seen.compactMap { model.index[$0] })
        let f = model.factors
        guard h.factors.count >= f.rank, Int(h.rank) == f.rank else {
            out.status = "no_factors_yet"
            out.message = h.seen.isEmpty
                ? "user '\(r.userID)' has no interactions and no factors yet; showing the most popular items"
                : "user '\(r.userID)' had no interactions when \(model.jobId) trained, so no factors yet; "
                    + "showing the most popular items (run `chorus job submit als` again to include them)"
            out.items = model.popular(n, excluding: seen)
            return out
        }
        // Rank by xᵀy (+ the item bias in explicit mode): the order of the predicted ratings for this user.
        var scores = [Float](repeating: 0, count: f.count)
        for i in 0..<f.count {
            var s: Float = 0
            for k in 0..<f.rank { s += h.factors[k] * f.data[i * f.width + k] }
            scores[i] = s + (model.explicit ? f.bias(i) : 0)
        }
        let seenList = seen.sorted()
        out.status = "ok"
        out.items = Evaluation.topN(scores: scores, n: n, exclude: seen).map { i in
            var rec = Chorus_V1_Recommendation()
            rec.contentID = model.ids[i]
            rec.score = scores[i]
            if let best = seenList.max(by: { model.cosine(i, $0) < model.cosine(i, $1) }) {
                rec.because = model.ids[best]
                rec.similarity = model.cosine(i, best)
                rec.reason = String(format: "close to %@ that you interacted with (similarity %.2f), and liked by users with tastes like yours",
                                    model.ids[best], rec.similarity)
            } else {
                rec.reason = "liked by users with tastes like yours"
            }
            return rec
        }
        return out
    }

    func similar(_ r: Chorus_V1_SimilarRequest) throws -> Chorus_V1_Recommendations {
        let model = try latestALSModel()
        let n = Int(r.n == 0 ? 10 : min(r.n, 1000))
        var out = Chorus_V1_Recommendations()
        out.subject = r.contentID
        out.modelJob = model.jobId
        guard let i = model.index[r.contentID] else {
            out.status = "no_factors_yet"
            out.message = "content '\(r.contentID)' had no interactions when \(model.jobId) trained, so no factors yet"
            return out
        }
        let sims = (0..<model.factors.count).map { model.cosine(i, $0) }
        out.status = "ok"
        out.items = Evaluation.topN(scores: sims, n: n, exclude: [i]).map { j in
            var rec = Chorus_V1_Recommendation()
            rec.contentID = model.ids[j]
            rec.score = sims[j]
            rec.similarity = sims[j]
            rec.reason = "engaged by the same users (factor similarity \(String(format: "%.2f", sims[j])))"
            return rec
        }
        return out
    }
}
