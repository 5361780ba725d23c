import ChorusData
import ChorusModel
import Foundation
import Testing

@Suite struct GeneratorTests {
    func run(_ users: Int, _ seed: UInt64) throws -> ([GeneratedFile: [UInt8]], SyntheticNetwork.Counts) {
        var out: [GeneratedFile: [UInt8]] = [:]
        let counts = try SyntheticNetwork(users: users, seed: seed).generate { out[$0, default: []] += $1 }
        return (out, counts)
    }

    @Test func deterministic() throws {
        let (a, ca) = try run(300, 5)
        let (b, cb) = try run(300, 5)
        #expect(a == b && ca == cb)
        let (c, _) = try run(300, 6)
        #expect(a[.interactions] != c[.interactions])
    }

    @Test func everyLineParsesAndCountsMatch() throws {
        let (files, counts) = try run(400, 9)
        func parseAll(_ f: GeneratedFile, _ kind: RecordKind) -> [Record] {
            var p = RecordParser(kind: kind, format: .jsonl)
            return String(decoding: files[f]!, as: UTF8.self).split(separator: "\n").map { line -> Record? in
                if case let .record(r) = p.parse(String(line)) { return r }
                Issue.record("generated line rejected: \(line)")
                return nil
            }.compactMap { $0 }
        }
        #expect(parseAll(.users, .users).count == counts.users)
        #expect(parseAll(.content, .content).count == counts.content)
        #expect(parseAll(.follows, .follows).count == counts.follows)
        let its = parseAll(.interactions, .interactions)
        #expect(its.count == counts.interactions)
        #expect(counts.interactions > 400 * 10)  // about 20 per user
        // Comments carry text and a truth label.
        let comments = its.compactMap { r -> InteractionRecord? in
            if case let .interaction(i) = r, i.kind == .comment { return i } else { return nil }
        }
        #expect(comments.count == counts.comments && comments.allSatisfy { !$0.text.isEmpty })
        let truthLines = String(decoding: files[.commentSentiment]!, as: UTF8.self).split(separator: "\n")
        #expect(truthLines.count == counts.comments + 1)
        // Ids are unique.
        let ids = its.compactMap { r -> String? in if case let .interaction(i) = r { return i.id } else { return nil } }
        #expect(Set(ids).count == ids.count)
    }

    @Test func followDegreeIsHeavyTailed() throws {
        let (files, _) = try run(2000, 3)
        var p = RecordParser(kind: .follows, format: .jsonl)
        var inDegree: [String: Int] = [:]
        for line in String(decoding: files[.follows]!, as: UTF8.self).split(separator: "\n") {
            if case let .record(.follow(f)) = p.parse(String(line)) { inDegree[f.followeeId, default: 0] += 1 }
        }
        let sorted = inDegree.values.sorted(by: >)
        let median = sorted[sorted.count / 2]
        #expect(sorted[0] > 20 * max(median, 1))  // a few accounts have far more followers than the typical one
    }
}

extension GeneratorTests {
    /// `contentEffects` writes its truth files, captions of both lengths, and engagement rates that follow the
    /// planted media effect (video vs image, per view, over the whole network).
    @Test func contentEffectsArePlanted() throws {
        var out: [GeneratedFile: [UInt8]] = [:]
        let net = SyntheticNetwork(users: 3000, seed: 4, contentEffects: true)
        _ = try net.generate { out[$0, default: []] += $1 }
        #expect(out[.slotEffects] != nil && out[.contentEffects] != nil)
        let slotLines = String(decoding: out[.slotEffects]!, as: UTF8.self).split(separator: "\n")
        #expect(slotLines.count == 1 + 5 * 168 && slotLines.filter { $0.hasSuffix(",1") }.count == 5)
        var media: [String: String] = [:]
        var lengths: [Int] = []
        var p = RecordParser(kind: .content, format: .jsonl)
        for line in String(decoding: out[.content]!, as: UTF8.self).split(separator: "\n") {
            guard case let .record(.content(c)) = p.parse(String(line)) else { Issue.record("bad \(line)"); continue }
            media[c.id] = c.mediaType
            lengths.append(c.text.count)
        }
        #expect(media.count == 1500)
        #expect(lengths.allSatisfy { $0 < 80 || $0 >= 140 } && lengths.contains { $0 >= 140 } && lengths.contains { $0 < 80 })
        var views: [String: Double] = [:], engaged: [String: Double] = [:]
        var q = RecordParser(kind: .interactions, format: .jsonl)
        for line in String(decoding: out[.interactions]!, as: UTF8.self).split(separator: "\n") {
            guard case let .record(.interaction(i)) = q.parse(String(line)), let m = media[i.contentId] else { continue }
            if i.kind == .view { views[m, default: 0] += 1 } else if i.kind != .conversion { engaged[m, default: 0] += 1 }
        }
        let ratio = (engaged["video"]! / views["video"]!) / (engaged["image"]! / views["image"]!)
        #expect(abs(Foundation.log(ratio) - 0.35) < 0.12, "video/image rate ratio \(ratio)")
        // Without the option nothing of this is written.
        #expect(GeneratedFile.written(segments: 0) == GeneratedFile.written(segments: 0, contentEffects: false))
        #expect(!GeneratedFile.written(segments: 0).contains(.slotEffects))
    }
}
