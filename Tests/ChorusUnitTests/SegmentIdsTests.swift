@testable import ChorusJobs
import Testing

/// Segment ids follow the centroids from one run to the next (SegmentsJob.stableIds).
@Suite struct SegmentIdsTests {
    func layout(_ names: [String]) -> SegmentsJob.Layout {
        var l = SegmentsJob.Layout()
        l.names = names
        l.center = names.map { _ in 1 }
        l.scale = names.map { _ in 2 }
        l.impute = names.map { _ in false }
        return l
    }

    @Test func aPermutedRerunKeepsEveryIdAndANewSegmentGetsTheNextOne() {
        let l = layout(["a", "b"])
        // Previous run, in raw units: ids 4, 7, 9 at (0,0), (5,5), (10,0).
        let prev = SegmentsJob.StoredCentroids(names: ["a", "b"], ids: [4, 7, 9], rows: [[0, 0], [5, 5], [10, 0]])
        // This run's rows, standardized ((x − 1) · 2), in another order and moved a little.
        func std(_ x: Double, _ y: Double) -> [Float] { [Float((x - 1) * 2), Float((y - 1) * 2)] }
        let now = std(10.2, 0.1) + std(0.1, -0.2) + std(4.9, 5.2)
        #expect(SegmentsJob.stableIds(now, layout: l, k: 3, previous: prev, sizes: [1, 1, 1]) == [9, 4, 7])
        // One more segment than before: the unmatched one gets the next free id.
        let more = now + std(-8, 9)
        #expect(SegmentsJob.stableIds(more, layout: l, k: 4, previous: prev, sizes: [1, 1, 1, 1]) == [9, 4, 7, 10])
        // A column the previous run did not have counts as the mean (0 standardized) for it.
        let l3 = layout(["a", "b", "c"])
        let now3 = std(10.2, 0.1) + [0] + std(0.1, -0.2) + [0] + std(4.9, 5.2) + [0]
        #expect(SegmentsJob.stableIds(now3, layout: l3, k: 3, previous: prev, sizes: [1, 1, 1]) == [9, 4, 7])
    }

    @Test func aFirstRunNumbersSegmentsBySize() {
        let l = layout(["a"])
        #expect(SegmentsJob.stableIds([0, 1, 2], layout: l, k: 3, previous: nil, sizes: [5, 50, 20]) == [2, 0, 1])
    }
}
