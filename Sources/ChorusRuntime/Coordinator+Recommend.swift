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
            r.reason = "popular: \(popularity[i]) interactions in training (a fallback, not personal)"
            return r
        }
    }
}

extension Coordinator {
    static let alsModelKey = Array("als/model".utf8)

    /// Keeps the item factors of a finished `als` job (persisted, so a restart keeps serving them).
    func keepALSModel(_ m: Chorus_V1_AlsModel) async throws {
        let bytes: [UInt8] = try m.serializedBytes()
        try await storeQueue.run { [store] in try store.put(Self.alsModelKey, bytes, sync: true) }
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
        // Shorter than the client's default --timeout (3 s), so a stuck worker gives its own error, not the client's.
        guard case let .userHistory(h) = try await owner.peer.call(.userHistory(q), timeout: .seconds(2)) else {
            throw ChorusError(.internal, "unexpected reply to user_history")
        }
        var out = Chorus_V1_Recommendations()
        out.subject = r.userID
        out.modelJob = model.jobId
        let seen = Set(h.seen.compactMap { model.index[$0] })
        let f = model.factors
        guard h.factors.count >= f.rank, Int(h.rank) == f.rank else {
            out.status = "no_factors_yet"
            out.message = Self.noFactorsMessage(user: r.userID, history: h, model: model)
            out.items = model.popular(n, excluding: seen)
            return out
        }
        // Rank by xᵀy (+ the item bias in explicit mode): the order of the predicted ratings for this user.
        var dots = [Float](repeating: 0, count: f.count)
        for i in 0..<f.count {
            var s: Float = 0
            for k in 0..<f.rank { s += h.factors[k] * f.data[i * f.width + k] }
            dots[i] = s
        }
        let scores = model.explicit ? (0..<f.count).map { dots[$0] + f.bias($0) } : dots
        let seenList = seen.sorted()
        out.status = "ok"
        out.items = Evaluation.topN(scores: scores, n: n, exclude: seen).map { i in
            var rec = Chorus_V1_Recommendation()
            rec.contentID = model.ids[i]
            rec.score = scores[i]
            if let best = seenList.max(by: { model.cosine(i, $0) < model.cosine(i, $1) }) {
                rec.because = model.ids[best]
                rec.similarity = model.cosine(i, best)
            }
            rec.reason = Self.reason(for: rec, dot: dots[i], bias: model.explicit ? f.bias(i) : nil,
                                     seenCount: seenList.count)
            return rec
        }
        return out
    }

    /// Similarity to the user's own closest item above which that item is named as the reason.
    static let closeEnough: Float = 0.5

    /// What drove one recommendation's score, in words: the user's own item closest to it when that one is close;
    /// else, in explicit mode, the item's bias when it is most of the score (rated highly by everyone); else the
    /// tastes the model learned from all of the user's items together.
    static func reason(for rec: Chorus_V1_Recommendation, dot: Float, bias: Float?, seenCount: Int) -> String {
        if !rec.because.isEmpty, rec.similarity >= closeEnough {
            return String(format: "close to %@, which you interacted with (similarity %.2f)", rec.because, rec.similarity)
        }
        if let bias, bias > 0, bias >= abs(dot) {
            return String(format: "rated highly by users overall (item bias %+.2f of the predicted %.2f), "
                          + "more than by your tastes (%+.2f)", bias, rec.score, dot)
        }
        let closest = rec.because.isEmpty ? ""
            : String(format: " (none of them is close: the closest, %@, has similarity %.2f)", rec.because, rec.similarity)
        return "fits the tastes the model learned from your \(seenCount) item\(seenCount == 1 ? "" : "s") and from users like you"
            + closest
    }

    /// Why a user has no factors, from what the worker holds: no interactions at all; interactions, but none with
    /// a rating, and the model is explicit (it learns from ratings only); or interactions the model never saw.
    static func noFactorsMessage(user: String, history h: Chorus_V1_UserHistory, model: ALSServingModel) -> String {
        let fallback = "showing the most popular items"
        let n = Int(max(h.interactions, UInt32(h.seen.count)))
        if n == 0 {
            return "user '\(user)' has no interactions yet, so no factors yet; \(fallback)"
        }
        let has = "user '\(user)' has \(n) interaction\(n == 1 ? "" : "s")"
        if model.explicit, h.valued == 0 {
            return "\(has), but none with a rating (type rating), and \(model.jobId) trained in explicit mode, which learns "
                + "only from ratings: no factors yet; \(fallback) (implicit mode learns from every interaction: "
                + "`chorus job submit als --param mode=implicit`)"
        }
        let usable = model.explicit ? " (\(h.valued) with a rating)" : ""
        return "\(has)\(usable), but none of them was in \(model.jobId)'s training data (they arrived after it trained, "
            + "or all were held out for evaluation), so no factors yet; \(fallback) "
            + "(run `chorus job submit als` again to include them)"
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
            rec.reason = sims[j] >= Self.closeEnough
                ? String(format: "engaged by the same users (factor similarity %.2f)", sims[j])
                : String(format: "only loosely related (factor similarity %.2f): the closest the model has", sims[j])
            return rec
        }
        return out
    }
}
