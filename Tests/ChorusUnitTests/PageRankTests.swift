import ChorusAnalytics
import ChorusModel
import Testing

/// The pure PageRank of the `influence` job: small graphs whose stationary vector is solved by hand (with dangling
/// nodes and a personalized teleport), the convergence rule, the ranking, and planted hubs in a random graph.
@Suite struct PageRankTests {
    static let tight = PageRank.Options(damping: 0.85, tolerance: 1e-14, maxIterations: 1000)

    /// 0 → 1, and 1 dangling. With α = 0.85 and the dangling mass spread uniformly:
    /// x0 = α·x1/2 + 0.075 and x1 = α·(x0 + x1/2) + 0.075, x0 + x1 = 1 ⇒ x0 = 0.5 / 1.425.
    @Test func twoNodesWithADanglingNode() {
        let v = PageRank.run(.init(n: 2, edges: [(0, 1)]), options: Self.tight)
        #expect(v.converged)
        #expect(abs(v.x[0] - 0.5 / 1.425) < 1e-12)
        #expect(abs(v.x[1] - (1 - 0.5 / 1.425)) < 1e-12)
    }

    /// A star: leaves 1, 2, 3 follow 0, and 0 follows no one (dangling).
    /// x_leaf = α·x0/4 + 0.0375 and x0 + 3·x_leaf = 1 ⇒ x0 = 0.8875 / 1.6375.
    @Test func starWithADanglingCentre() {
        let v = PageRank.run(.init(n: 4, edges: [(1, 0), (2, 0), (3, 0)]), options: Self.tight)
        let x0 = 0.8875 / 1.6375
        #expect(abs(v.x[0] - x0) < 1e-12)
        for leaf in 1...3 { #expect(abs(v.x[leaf] - (1 - x0) / 3) < 1e-12) }
        #expect(abs(v.x.reduce(0, +) - 1) < 1e-12)
    }

    /// A 3-cycle plus a repeated edge (counted once): uniform.
    @Test func cycleIsUniformAndRepeatsCountOnce() {
        let v = PageRank.run(.init(n: 3, edges: [(0, 1), (1, 2), (2, 0), (0, 1)]), options: Self.tight)
        for x in v.x { #expect(abs(x - 1.0 / 3) < 1e-12) }
    }

    /// Personalized on node 0 (p = (1, 0)), 0 → 1 and 1 dangling: the dangling mass also goes to 0 (networkx uses
    /// the personalization when no dangling distribution is given). x1 = α·x0, x0 = α·x1 + 0.15 ⇒ x0 = 0.15/(1−α²).
    @Test func personalizedTeleportAndDangling() {
        let p = PageRank.Vector.distribution([3, 0])!
        let v = PageRank.run(.init(n: 2, edges: [(0, 1)]), options: Self.tight, personalization: p)
        let x0 = 0.15 / (1 - 0.85 * 0.85)
        #expect(abs(v.x[0] - x0) < 1e-12)
        #expect(abs(v.x[1] - 0.85 * x0) < 1e-12)
        #expect(PageRank.Vector.distribution([0, 0]) == nil)
    }

    /// The stop rule is the L1 change of the whole vector against N·tol, and a capped run says it did not converge.
    @Test func convergenceRuleAndCap() {
        let g = PageRank.Graph(n: 4, edges: [(1, 0), (2, 0), (3, 0), (0, 1)])
        let loose = PageRank.run(g, options: .init(tolerance: 1e-3, maxIterations: 1000))
        #expect(loose.converged)
        #expect(loose.delta < 4 * 1e-3)
        let capped = PageRank.run(g, options: .init(tolerance: 1e-15, maxIterations: 3))
        #expect(!capped.converged)
        #expect(capped.iterations == 3)
        #expect(capped.delta > 0)
        // One step of the loose run more does not change it by more than the rule allowed.
        var again = loose
        let (s, d) = again.share(outDegree: g.outDegree)
        again.advance(inflow: g.inflow(s), dangling: d, options: .init(tolerance: 1e-3))
        #expect(again.delta <= loose.delta)
    }

    @Test func ranksAndPercentiles() {
        let r = PageRank.ranks([0.2, 0.5, 0.2, 0.1], ids: ["b", "a", "a2", "z"], eligible: [true, true, true, false])
        #expect(r == [3, 1, 2, 0])  // tie 0.2: "a2" < "b"
        #expect(PageRank.percentile(rank: 1, of: 3) == 100)
        #expect(PageRank.percentile(rank: 3, of: 3) == 0)
        #expect(PageRank.percentile(rank: 1, of: 1) == 100)
    }

    /// Planted truth: 2,000 nodes with random sparse follows, and 5 planted hubs that a fifth of the nodes follow.
    /// The 5 hubs are the top 5.
    @Test func plantedHubsRankTop() {
        var rng = SplitMix64(seed: 13)
        let n = 2000
        let hubs = [17, 400, 999, 1234, 1800]
        var edges: [(Int, Int)] = []
        for u in 0..<n {
            for _ in 0..<Int(rng.next() % 6) {
                let v = Int(rng.next() % UInt64(n))
                if v != u { edges.append((u, v)) }
            }
            for h in hubs where h != u && rng.next() % 5 == 0 { edges.append((u, h)) }
        }
        let v = PageRank.run(.init(n: n, edges: edges))
        #expect(v.converged)
        let top = PageRank.ranks(v.x, ids: (0..<n).map { String($0) }, eligible: [Bool](repeating: true, count: n))
        #expect(Set(hubs.map { top[$0] }) == Set(1...5))
    }

    @Test func engagementInfluenceDefinition() {
        let e = EngagementInfluence(posts: 2, views: 200, engagements: 50, shares: 10)
        #expect(e.engagementRate == 0.25)
        #expect(e.influence(followers: 100)! == 100 * 0.25 * 1.05)
        #expect(EngagementInfluence().influence(followers: 100) == nil)
    }
}
