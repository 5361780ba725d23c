import ChorusData
import ChorusModel
import Foundation
import Testing

/// `chorus generate --spend-history`: the weekly spend file parses, and truth/spend_curves.csv holds the curves
/// that produced it (recomputed from the file alone).
@Suite struct SpendHistoryTests {
    static func files(seed: UInt64, weeks: Int = 104) throws -> [GeneratedFile: [UInt8]] {
        var out: [GeneratedFile: [UInt8]] = [:]
        let net = SyntheticNetwork(users: 100, seed: seed)
        try SpendHistory(network: net, weeks: weeks).write { out[$0, default: []] += $1 }
        return out
    }

    static func parse(_ bytes: [UInt8]) -> [SpendRecord] {
        var p = RecordParser(kind: .spend, format: .jsonl)
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line -> SpendRecord? in
            if case let .record(.spend(s)) = p.parse(String(line)) { return s }
            Issue.record("generated spend line rejected: \(line) \(p.parse(String(line)))")
            return nil
        }
    }

    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count), ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
        return sab / (saa * sbb).squareRoot()
    }

    @Test func deterministicAndSeeded() throws {
        let a = try Self.files(seed: 7), b = try Self.files(seed: 7), c = try Self.files(seed: 8)
        #expect(a == b)
        #expect(a[.spend] != c[.spend] && a[.spendCurves] == c[.spendCurves])
        // Without a spend history a network writes neither file.
        #expect(!GeneratedFile.written(segments: 6, contentEffects: true).contains(.spend))
        #expect(!GeneratedFile.written(segments: 0).contains(.spendCurves))
        #expect(GeneratedFile.written(segments: 0, spendHistory: true).contains(.spendCurves))
    }

    @Test func weeklyPeriodsEndWhereTheInteractionHistoryEnds() throws {
        let records = Self.parse(try Self.files(seed: 3, weeks: 104)[.spend]!)
        #expect(records.count == 104 * SpendHistory.curves.count)
        #expect(Set(records.map(\.channel)) == Set(SyntheticNetwork.channels))
        #expect(records.allSatisfy { $0.period == .week && $0.currency == "USD" && $0.campaign.isEmpty })
        let days = Set(records.compactMap { SpendRecord.day(of: $0.date) })
        #expect(days.count == 104 && days.allSatisfy { ($0 + 3) % 7 == 0 })  // Mondays (1970-01-01 was a Thursday)
        // The default network runs 28 days from 2025-09-01: the last week starts on 2025-09-22.
        #expect(days.max() == SpendRecord.day(of: "2025-09-22") && days.min() == SpendRecord.day(of: "2023-10-02"))
        // Identities are unique: one record per channel and week.
        #expect(Set(records.map(\.identityKey)).count == records.count)
    }

    @Test func theTruthFileExplainsTheGeneratedOutcomes() throws {
        let files = try Self.files(seed: 11)
        let truth = try #require(SpendHistory.parseTruth(String(decoding: files[.spendCurves]!, as: UTF8.self)))
        #expect(truth.weeks == 104 && truth.firstDate == "2023-10-02")
        #expect(truth.curves.map(\.channel) == SyntheticNetwork.channels)
        // The planted variety: at least one S-shaped channel and one with strong carry-over.
        #expect(truth.curves.contains { $0.n > 1.5 } && truth.curves.contains { $0.alpha >= 0.7 })
        #expect(truth.curves.contains { $0.n <= 1 })
        let records = Self.parse(files[.spend]!)
        for c in truth.curves {
            let rows = records.filter { $0.channel == c.channel }.sorted { $0.date < $1.date }
            #expect(rows.count == truth.weeks)
            // Recompute adstock and Hill from the truth row and the spend column alone.
            var a = 0.0
            var adstock: [Double] = [], expected: [[Double]] = [[], [], []]
            for r in rows {
                a = r.spend + c.alpha * a
                adstock.append(a)
                expected[0].append(c.response(adstock: a, beta: c.betaImpressions))
                expected[1].append(c.response(adstock: a, beta: c.betaClicks))
                expected[2].append(c.response(adstock: a, beta: c.betaConversions))
            }
            let observed = [rows.map(\.impressions), rows.map(\.clicks), rows.map(\.conversions)]
            for k in 0..<3 {
                let r = Self.correlation(expected[k], observed[k])
                #expect(r > 0.9, "\(c.channel) outcome \(k): correlation \(r)")
                // Mean-one noise: the totals agree within a few percent.
                let ratio = observed[k].reduce(0, +) / expected[k].reduce(0, +)
                #expect(abs(ratio - 1) < 0.06, "\(c.channel) outcome \(k): observed/expected \(ratio)")
            }
            // The planted carry-over matters: without it (α = 0) the same Hill curve explains the data worse.
            if c.alpha >= 0.3 {
                let noCarry = rows.map { c.response(adstock: $0.spend, beta: c.betaConversions) }
                let r = Self.correlation(expected[2], observed[2]), r0 = Self.correlation(noCarry, observed[2])
                #expect(r > r0 + 0.05, "\(c.channel): correlation \(r) with its adstock, \(r0) without")
            }
            // The log residuals' spread is the planted noise (over weeks with enough conversions to ignore rounding).
            let logs = zip(observed[0], expected[0]).filter { $1 > 1000 }.map { Foundation.log($0 / $1) }
            let mean = logs.reduce(0, +) / Double(logs.count)
            let sd = (logs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(logs.count - 1)).squareRoot()
            #expect(abs(sd - c.noiseSD) < 0.35 * c.noiseSD, "\(c.channel): residual sd \(sd) vs \(c.noiseSD)")
            for r in rows {
                #expect(abs(r.revenue - (r.conversions * c.valuePerConversion * 100).rounded() / 100) < 1e-6)
            }
            // Identifiable: spend has dark or low weeks and bursts, and the adstock spans the half-saturation point.
            let spend = rows.map(\.spend)
            #expect(spend.max()! > 3 * max(spend.min()!, 1), "\(c.channel): spend does not vary enough")
            #expect(adstock.min()! < 0.6 * c.k && adstock.max()! > 1.4 * c.k, "\(c.channel): adstock misses K")
        }
        // Strong carry-over shows in the data: after a flight ends, the channel still converts for weeks.
        let wechat = records.filter { $0.channel == "wechat" }.sorted { $0.date < $1.date }
        let afterFlight = zip(wechat.dropFirst(), wechat).filter { $0.0.spend == 0 && $0.1.spend > 0 }.map(\.0)
        #expect(!afterFlight.isEmpty && afterFlight.allSatisfy { $0.conversions > 0 })
    }
}
