import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// Experiment design: SipHash-2-4 against the reference vectors, the normal quantile, NormalIndPower's textbook
/// figures, and the holdout design. (The comparison with statsmodels itself is CampaignPowerTests.)
@Suite struct ExperimentTests {
    @Test func sipHashMatchesTheReferenceVectors() {
        // Key 00 01 .. 0f; message 00 01 .. (n-1): the first vectors of the reference implementation's vectors.h.
        let h = SipHash24(key: Array(0..<16))
        #expect(h.hash([UInt8]()) == 0x726fdb47dd0e0e31)
        #expect(h.hash([UInt8(0)]) == 0x74f839c593dc67fd)
        #expect(h.hash(Array(UInt8(0)..<UInt8(8))) == 0x93f5f5799a932462)
        #expect(h.hash(Array(UInt8(0)..<UInt8(15))) == 0xa129ca6149be45e5)
        // Keyed: another key, another hash; the same key, the same hash in every process.
        #expect(SipHash24(deriving: "a").hash("u1") != SipHash24(deriving: "b").hash("u1"))
        #expect(SipHash24(deriving: "a").hash("u1") == SipHash24(deriving: "a").hash("u1"))
    }

    @Test func assignmentSharesAreRight() {
        let key = SipHash24(deriving: "cp-test")
        let n = 100_000
        let held = (0..<n).filter { Experiment.inHoldout("u\($0)", key: key, share: 0.1) }.count
        #expect(abs(Double(held) / Double(n) - 0.1) < 0.005)
    }

    @Test func normalQuantile() {
        #expect(abs(Experiment.normalQuantile(0.975) - 1.959963984540054) < 1e-12)
        #expect(abs(Experiment.normalQuantile(0.5)) < 1e-14)
        #expect(abs(Experiment.normalQuantile(1e-10) + 6.361340902404056) < 1e-9)
        for p in [0.001, 0.2, 0.6, 0.999] { #expect(abs(Experiment.normalCDF(Experiment.normalQuantile(p)) - p) < 1e-14) }
    }

    @Test func textbookPowerFigures() {
        // Cohen's d = 0.2, α = 0.05, power 0.8: 392.4 per group (the familiar 393).
        let n = Experiment.requiredNobs1(effectSize: 0.2, alpha: 0.05, power: 0.8)
        #expect(abs(n - 392.443) < 0.01, "\(n)")
        #expect(abs(Experiment.power(effectSize: 0.2, nobs1: n, alpha: 0.05) - 0.8) < 1e-9)
        let d = Experiment.detectableEffect(nobs1: 392.443, alpha: 0.05, power: 0.8)
        #expect(abs(d - 0.2) < 1e-4)
        // A holdout of a tenth: the smaller group dominates.
        let unequal = Experiment.requiredNobs1(effectSize: 0.2, alpha: 0.05, power: 0.8, ratio: 1.0 / 9)
        #expect(unequal > 9 * 392 / 5)
    }

    @Test func holdoutDesign() {
        // A large segment reaches a 10% lift with a small holdout; a small one cannot, and says so.
        let big = Experiment.holdoutDesign(size: 200_000, baseRate: 0.05, alpha: 0.05, power: 0.8, targetLift: 0.1)
        #expect(big.reachesTarget && big.holdoutShare <= 0.1)
        #expect(big.treated + big.holdout == 200_000)
        #expect(big.mdeRelative <= 0.1)
        let small = Experiment.holdoutDesign(size: 800, baseRate: 0.05, alpha: 0.05, power: 0.8, targetLift: 0.1)
        #expect(!small.reachesTarget && small.holdoutShare == 0.5)
        #expect(small.mdeRelative > 0.1)
        // The MDE inverts Cohen's h.
        let p1 = Experiment.proportion(above: 0.05, h: big.effectSize)
        #expect(abs(Experiment.cohensH(p1, 0.05) - big.effectSize) < 1e-12)
        let fixed = Experiment.holdoutDesign(size: 10_000, baseRate: 0.2, alpha: 0.05, power: 0.8, targetLift: 0.1, fixedShare: 0.2)
        #expect(fixed.holdout == 2000 && fixed.treated == 8000)
    }
}
