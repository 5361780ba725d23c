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

    // MARK: replica planner

    static func loads(_ plan: [[String]]) -> [String: Int] {
        var l: [String: Int] = [:]
        for h in plan { for n in h { l[n, default: 0] += 1 } }
        return l
    }

    static func primaries(_ plan: [[String]]) -> [String: Int] {
        var l: [String: Int] = [:]
        for h in plan { if let f = h.first { l[f, default: 0] += 1 } }
        return l
    }

    static func spread(_ l: [String: Int], over nodes: [String]) -> Int {
        let v = nodes.map { l[$0] ?? 0 }
        return v.max()! - v.min()!
    }

    @Test func freshClusterIsBalancedWithDistinctHolders() {
        let nodes = ["a", "b", "c"]
        let plan = ReplicaPlanner.plan(current: Array(repeating: [], count: 64), eligible: nodes, replicationFactor: 2)
        #expect(plan.allSatisfy { $0.count == 2 && Set($0).count == 2 })
        #expect(Self.spread(Self.loads(plan), over: nodes) <= 1)
        #expect(Self.spread(Self.primaries(plan), over: nodes) <= 1)
    }

    @Test func joinMovesOnlyTheNewNodesShare() {
        let before = ReplicaPlanner.plan(current: Array(repeating: [], count: 64), eligible: ["a", "b", "c"],
                                         replicationFactor: 2)
        let nodes = ["a", "b", "c", "d"]
        let after = ReplicaPlanner.plan(current: before, eligible: nodes, replicationFactor: 2)
        let l = Self.loads(after)
        #expect(Self.spread(l, over: nodes) <= 1)
        #expect(after.allSatisfy { Set($0).count == 2 })
        // 128 holdings over 4 nodes: d must receive 32, and nothing else moves.
        #expect(l["d"] == 32)
        #expect(ReplicaPlanner.copies(from: before, to: after) == 32)
        #expect(Self.spread(Self.primaries(after), over: nodes) <= 1)
    }

    @Test func deadNodeIsReplacedWithOneCopyPerLostHolding() {
        let nodes = ["a", "b", "c", "d"]
        let before = ReplicaPlanner.plan(current: Array(repeating: [], count: 64), eligible: nodes, replicationFactor: 2)
        let lost = Self.loads(before)["c"]!
        // The coordinator first drops the dead node (promoting the next holder), then plans.
        let survivors = before.map { $0.filter { $0 != "c" } }
        let after = ReplicaPlanner.plan(current: survivors, eligible: ["a", "b", "d"], replicationFactor: 2)
        #expect(after.allSatisfy { $0.count == 2 && !$0.contains("c") })
        #expect(ReplicaPlanner.copies(from: survivors, to: after) == lost)
        #expect(Self.spread(Self.loads(after), over: ["a", "b", "d"]) <= 1)
        // Surviving primaries stay primary (no needless leadership change for partitions that kept theirs)
        for p in before.indices where before[p][0] != "c" { #expect(after[p].contains(before[p][0])) }
    }

    @Test func drainMovesExactlyTheDrainedHoldings() {
        let nodes = ["a", "b", "c", "d"]
        let before = ReplicaPlanner.plan(current: Array(repeating: [], count: 64), eligible: nodes, replicationFactor: 2)
        let held = Self.loads(before)["b"]!
        let after = ReplicaPlanner.plan(current: before, eligible: ["a", "c", "d"], replicationFactor: 2)
        #expect(after.allSatisfy { $0.count == 2 && !$0.contains("b") })
        #expect(ReplicaPlanner.copies(from: before, to: after) == held)
        #expect(Self.spread(Self.loads(after), over: ["a", "c", "d"]) <= 1)
    }

    @Test func replicationIsCappedByTheNumberOfNodes() {
        let plan = ReplicaPlanner.plan(current: Array(repeating: [], count: 8), eligible: ["a"], replicationFactor: 3)
        #expect(plan.allSatisfy { $0 == ["a"] })
        let grown = ReplicaPlanner.plan(current: plan, eligible: ["a", "b"], replicationFactor: 3)
        #expect(grown.allSatisfy { $0.count == 2 && $0.first == "a" || $0.count == 2 && $0.last == "a" })
        #expect(ReplicaPlanner.copies(from: plan, to: grown) == 8)
    }

    @Test func balancedInputIsAFixedPoint() {
        let nodes = ["n1", "n2", "n3", "n4", "n5"]
        let plan = ReplicaPlanner.plan(current: Array(repeating: [], count: 64), eligible: nodes, replicationFactor: 3)
        #expect(ReplicaPlanner.plan(current: plan, eligible: nodes, replicationFactor: 3) == plan)
        #expect(ReplicaPlanner.plan(current: plan, eligible: nodes.reversed(), replicationFactor: 3) == plan)
    }

    // MARK: disks low on space

    @Test func aFrozenNodeKeepsWhatItHoldsAndTakesNothingNew() {
        let nodes = ["a", "b", "c"]
        let before = ReplicaPlanner.plan(current: Array(repeating: [], count: 48), eligible: nodes, replicationFactor: 2)
        // c is low on disk: no change while the cluster is balanced.
        #expect(ReplicaPlanner.plan(current: before, eligible: nodes, replicationFactor: 2, frozen: ["c"]) == before)
        // A new node joins: c may give holdings to it but takes none.
        let joined = ReplicaPlanner.plan(current: before, eligible: nodes + ["d"], replicationFactor: 2, frozen: ["c"])
        for p in joined.indices {
            #expect(Set(joined[p]).count == 2)
            if joined[p].contains("c") { #expect(before[p].contains("c")) }
        }
        // b dies: its holdings are re-replicated on a and d only, never on c.
        let survivors = joined.map { $0.filter { $0 != "b" } }
        let healed = ReplicaPlanner.plan(current: survivors, eligible: ["a", "c", "d"], replicationFactor: 2, frozen: ["c"])
        for p in healed.indices {
            #expect(healed[p].count == 2 && !healed[p].contains("b"))
            if healed[p].contains("c") { #expect(survivors[p].contains("c")) }
        }
        // Applying the plan and planning again changes nothing (no churn back and forth).
        #expect(ReplicaPlanner.plan(current: healed, eligible: ["a", "c", "d"], replicationFactor: 2, frozen: ["c"]) == healed)
        // Fresh partitions skip a frozen node; with no other node they stay unplaced.
        let fresh = ReplicaPlanner.plan(current: Array(repeating: [], count: 8), eligible: ["a", "c"], replicationFactor: 2,
                                        frozen: ["c"])
        #expect(fresh.allSatisfy { $0 == ["a"] })
        let none = ReplicaPlanner.plan(current: Array(repeating: [], count: 4), eligible: ["c"], replicationFactor: 1,
                                       frozen: ["c"])
        #expect(none.allSatisfy { $0.isEmpty })
    }

    // MARK: drains below R

    @Test func aDrainingNodeKeepsWhatCannotHaveRCopiesWithoutIt() {
        let before = ReplicaPlanner.plan(current: Array(repeating: [], count: 64), eligible: ["a", "b", "c"],
                                         replicationFactor: 2)
        // b and c both draining, only a eligible: every partition keeps 2 copies, a holds all of them, and b or
        // c keeps one only where a partition needs it.
        let after = ReplicaPlanner.plan(current: before, eligible: ["a"], replicationFactor: 2, retiring: ["b", "c"])
        #expect(after.allSatisfy { $0.count == 2 && $0.first == "a" })
        for p in after.indices { #expect(before[p].contains(after[p][1]) || after[p][1] == "a") }
        // Only the copies a lacked are made; partitions a already held keep their draining partner.
        #expect(ReplicaPlanner.copies(from: before, to: after) == before.filter { !$0.contains("a") }.count)
        // With room elsewhere, a draining node keeps nothing.
        let roomy = ReplicaPlanner.plan(current: before, eligible: ["a", "c", "d"], replicationFactor: 2, retiring: ["b"])
        #expect(roomy.allSatisfy { $0.count == 2 && !$0.contains("b") })
        #expect(roomy == ReplicaPlanner.plan(current: before, eligible: ["a", "c", "d"], replicationFactor: 2))
    }

    @Test func drainBlockedNamesThePartitionsThatWouldFallBelowR() {
        let plan = ReplicaPlanner.plan(current: Array(repeating: [], count: 16), eligible: ["a", "b", "c"],
                                       replicationFactor: 2)
        #expect(ReplicaPlanner.drainBlocked(node: "b", current: plan, eligible: ["a", "b", "c"], replicationFactor: 2).isEmpty)
        // b already draining: draining c would leave only a.
        let blocked = ReplicaPlanner.drainBlocked(node: "c", current: plan, eligible: ["a", "c"], replicationFactor: 2)
        #expect(blocked == plan.indices.filter { plan[$0].contains("c") })
        #expect(!blocked.isEmpty)
        // A node that holds nothing can always be drained.
        #expect(ReplicaPlanner.drainBlocked(node: "d", current: plan, eligible: ["a", "d"], replicationFactor: 2).isEmpty)
    }

    @Test func moveEstimateGivesAPercentageAndAnETAFromTheRateSoFar() {
        let e = MoveEstimate(copied: 25 << 20, total: 100 << 20, elapsedSeconds: 5)
        #expect(e.fraction == 0.25)
        #expect(e.rate == Double(5 << 20))
        #expect(e.etaSeconds == 15)
        // Writes during the move can push the copy past the starting size: never 100% before it is done.
        let over = MoveEstimate(copied: 120, total: 100, elapsedSeconds: 1)
        #expect(over.fraction == 0.999 && over.etaSeconds == 0)
        let unknown = MoveEstimate(copied: 10, total: 0, elapsedSeconds: 1)
        #expect(unknown.fraction == nil && unknown.etaSeconds == nil && unknown.rate == 10)
        #expect(MoveEstimate(copied: 0, total: 100, elapsedSeconds: 0).etaSeconds == nil)
    }
}
