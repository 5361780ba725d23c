import ChorusAnalytics
import ChorusModel
import Foundation

extension CampaignPlanJob {
    /// The parts of a plan people can lock (`chorus campaign edit --lock PART`): a replan keeps them as they are.
    public static let lockableParts = ["audience", "content", "schedule", "budget", "measurement"]

    /// What a replan takes from the version it replaces: its locks, its edits (docs/campaigns.md "People in the
    /// loop"), and the locked parts themselves.
    struct Edits {
        var locks: Set<String> = []
        var overrides: [String: Any] = [:]
        var droppedSegments: [Int] = []
        var droppedContent: Set<String> = []
        var budget: [String: Double] = [:]
        var previousChosen: [Int]?
        var previousContent: [Int: [CampaignPlanner.ContentPick]] = [:]
        var previousPosts: [CampaignPlanner.Post]?
        var previousSkipped: [String: Int] = [:]
        var previousBudget: [String: Any]?
        var previousMeasurement: [[String: Any]]?
        var previousEvidence: [String: String] = [:]

        init(_ body: [String: Any]?) {
            guard let body else { return }
            locks = Set((body["locks"] as? [String] ?? []).filter { CampaignPlanJob.lockableParts.contains($0) })
            overrides = body["overrides"] as? [String: Any] ?? [:]
            droppedSegments = (overrides["dropped_segments"] as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.intValue }
            droppedContent = Set(overrides["dropped_content"] as? [String] ?? [])
            for (k, v) in overrides["budget"] as? [String: Any] ?? [:] {
                if let d = (v as? NSNumber)?.doubleValue, d.isFinite, d >= 0 { budget[k] = d }
            }
            let segs = (body["audience"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []
            previousChosen = segs.filter { $0["chosen"] as? Bool == true }.compactMap { ($0["segment"] as? NSNumber)?.intValue }
            let dec = JSONDecoder()
            for c in body["content"] as? [[String: Any]] ?? [] {
                guard let g = (c["segment"] as? NSNumber)?.intValue, let items = c["items"],
                      let data = try? JSONSerialization.data(withJSONObject: items),
                      let picks = try? dec.decode([CampaignPlanner.ContentPick].self, from: data) else { continue }
                previousContent[g] = picks
            }
            if let schedule = body["schedule"] as? [String: Any], let posts = schedule["posts"],
               let data = try? JSONSerialization.data(withJSONObject: posts) {
                previousPosts = try? dec.decode([CampaignPlanner.Post].self, from: data)
                previousSkipped = (schedule["skipped"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
            }
            previousBudget = body["budget"] as? [String: Any]
            previousMeasurement = (body["measurement"] as? [String: Any])?["segments"] as? [[String: Any]]
            previousEvidence = (body["evidence"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String }
        }
    }

    /// What moved between two plan documents, in words: the audience, the calendar, the content, the budget split
    /// and the holdouts.
    public static func changes(from old: [String: Any], to new: [String: Any]) -> [String] {
        func chosen(_ b: [String: Any]) -> [Int] {
            (((b["audience"] as? [String: Any])?["segments"] as? [[String: Any]]) ?? [])
                .filter { $0["chosen"] as? Bool == true }.compactMap { ($0["segment"] as? NSNumber)?.intValue }.sorted()
        }
        func posts(_ b: [String: Any]) -> [String] {
            (((b["schedule"] as? [String: Any])?["posts"] as? [[String: Any]]) ?? []).map {
                "\($0["date"] ?? "") \($0["hour"] ?? "") \($0["channel"] ?? "") \($0["segment"] ?? "") \($0["content_id"] ?? "")"
            }
        }
        func items(_ b: [String: Any]) -> Set<String> {
            Set(((b["content"] as? [[String: Any]]) ?? []).flatMap { c in
                ((c["items"] as? [[String: Any]]) ?? []).map { "\(c["segment"] ?? "")/\($0["content_id"] ?? "")" } })
        }
        func spend(_ b: [String: Any]) -> [String: Double] {
            Dictionary((((b["budget"] as? [String: Any])?["channels"] as? [[String: Any]]) ?? []).map {
                ($0["channel"] as? String ?? "", ($0["spend"] as? NSNumber)?.doubleValue ?? 0) }, uniquingKeysWith: { a, _ in a })
        }
        func shares(_ b: [String: Any]) -> [Int: Double] {
            Dictionary((((b["measurement"] as? [String: Any])?["segments"] as? [[String: Any]]) ?? []).compactMap { s in
                (s["segment"] as? NSNumber).map { ($0.intValue, (s["holdout_share"] as? NSNumber)?.doubleValue ?? 0) } },
                       uniquingKeysWith: { a, _ in a })
        }
        var out: [String] = []
        let (a, b) = (chosen(old), chosen(new))
        let added = b.filter { !a.contains($0) }, removed = a.filter { !b.contains($0) }
        if !added.isEmpty { out.append("audience: segment(s) \(added.map(String.init).joined(separator: ", ")) added") }
        if !removed.isEmpty { out.append("audience: segment(s) \(removed.map(String.init).joined(separator: ", ")) removed") }
        let (pa, pb) = (posts(old), posts(new))
        if pa != pb {
            let moved = Set(pa).symmetricDifference(Set(pb)).count
            out.append("schedule: \(pa.count) → \(pb.count) posts, \(moved) post(s) differ")
        }
        let (ia, ib) = (items(old), items(new))
        if ia != ib { out.append("content: \(ib.subtracting(ia).count) item(s) in, \(ia.subtracting(ib).count) out") }
        let (sa, sb) = (spend(old), spend(new))
        for c in Set(sa.keys).union(sb.keys).sorted() where abs((sa[c] ?? 0) - (sb[c] ?? 0)) >= 0.5 {
            out.append(String(format: "budget: %@ %.2f → %.2f", c, sa[c] ?? 0, sb[c] ?? 0))
        }
        let (ha, hb) = (shares(old), shares(new))
        for g in Set(ha.keys).intersection(hb.keys).sorted() where abs(ha[g]! - hb[g]!) > 1e-9 {
            out.append(String(format: "measurement: segment %d holdout %.1f%% → %.1f%%", g, ha[g]! * 100, hb[g]! * 100))
        }
        return out
    }
}
