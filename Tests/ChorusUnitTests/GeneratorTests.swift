import ChorusData
import ChorusModel
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
