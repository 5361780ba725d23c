import ChorusModel
import Testing

@Suite struct HashAndPlacementTests {
    @Test func fnv1aKnownVectors() {
        // Reference values of FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
        #expect(StableHash.fnv1a64("") == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a64("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.fnv1a64("foobar") == 0x8594_4171_f739_67e8)
    }

    @Test func hashesUTF8Bytes() {
        #expect(StableHash.fnv1a64("用户") == StableHash.fnv1a64(Array("用户".utf8)))
        #expect(StableHash.fnv1a64("é") != StableHash.fnv1a64("e\u{301}"))  // bytes, not canonical equivalence
    }

    @Test func placementIsStableAndInRange() {
        let p = Placement(partitionCount: 64)
        #expect(p.partition(of: "u0000001") == UInt32(StableHash.fnv1a64("u0000001") % 64))
        var counts = [Int](repeating: 0, count: 64)
        for i in 0..<64_000 {
            let part = p.partition(of: "u\(i)")
            #expect(part < 64)
            counts[Int(part)] += 1
        }
        // Roughly uniform: every partition within ±20% of the mean (1000).
        #expect(counts.allSatisfy { $0 > 800 && $0 < 1200 })
    }

    @Test func plannerBalancesFreshCluster() {
        let owners = PartitionPlanner.plan(owners: Array(repeating: nil, count: 64), live: ["a", "b", "c"]) { _ in true }
        let counts = Dictionary(grouping: owners.compactMap { $0 }, by: { $0 }).mapValues(\.count)
        #expect(counts.values.sorted() == [21, 21, 22])
        #expect(owners.allSatisfy { $0 != nil })
    }

    @Test func newNodeGetsAShareWithMinimalMoves() {
        let before = PartitionPlanner.plan(owners: Array(repeating: nil, count: 64), live: ["a", "b", "c"]) { _ in true }
        let after = PartitionPlanner.plan(owners: before, live: ["a", "b", "c", "d"]) { _ in true }
        let counts = Dictionary(grouping: after.compactMap { $0 }, by: { $0 }).mapValues(\.count)
        #expect(counts.values.sorted() == [16, 16, 16, 16])
        let moves = zip(before, after).filter { $0 != $1 }.count
        #expect(moves == 16)  // exactly the new node's share, nothing else
        #expect(zip(before, after).allSatisfy { $0 == $1 || $1 == "d" })
    }

    @Test func sealedPartitionsDoNotMove() {
        let before: [String?] = Array(repeating: "a", count: 8)
        let sealed: Set<UInt32> = [0, 1, 2, 3, 4, 5]
        let after = PartitionPlanner.plan(owners: before, live: ["a", "b"]) { !sealed.contains($0) }
        for p in sealed { #expect(after[Int(p)] == "a") }
        #expect(after[6] == "b" && after[7] == "b")
    }

    @Test func deadOwnerKeepsDataPartitions() {
        let before: [String?] = ["a", "a", "x", "x"]
        let after = PartitionPlanner.plan(owners: before, live: ["a", "b"]) { $0 != 2 }
        #expect(after[2] == "x")  // holds data on the dead node x: waits for x to come back
        #expect(after[3] == "b")  // empty: reassigned
    }

    @Test func planIsDeterministic() {
        let a = PartitionPlanner.plan(owners: Array(repeating: nil, count: 100), live: ["n2", "n1", "n3"]) { _ in true }
        let b = PartitionPlanner.plan(owners: Array(repeating: nil, count: 100), live: ["n2", "n1", "n3"]) { _ in true }
        #expect(a == b)
    }
}
