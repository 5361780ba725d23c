/// Pure replica placement: which nodes should hold each partition, primary first.
///
/// Input is the current in-sync holder list of every partition (primary first) and the nodes that may hold data
/// (live and not draining). The plan:
/// 1. keeps every current holder that is still eligible (at most R of them), so no data moves without a reason;
/// 2. tops every partition up to R' = min(R, eligible nodes) holders, each time on the least-loaded eligible node
///    that does not hold it yet;
/// 3. moves one holding at a time from the most- to the least-loaded node until all loads are within one
///    (first re-targeting holdings added in step 2, which cost nothing yet, then holdings where the donor is not
///    the primary, so leadership rarely changes). Each step lowers the spread, so the number of copies is the
///    minimum the loads require;
/// 4. balances primaries by reordering holders inside a partition (a leadership change, no data moves);
/// 5. keeps `retiring` holders (live nodes being drained) at the end of a partition's holders while it has fewer
///    than R eligible ones, so a drain never takes a partition below R copies: a retiring node gives a partition
///    up only once R copies exist without it, and holds on to it when there is no room elsewhere.
/// 6. gives nothing new to `frozen` nodes (eligible nodes low on disk): they keep what they hold, and a holding
///    the steps above would add on one goes to a holder the plan dropped for it, else to the least-loaded other
///    eligible node (or nowhere, if none is left).
/// Ties break by node id, so the plan is a deterministic function of its input.
/// Partitions whose holders are all ineligible and that were never empty are left alone by the caller (their data
/// lives only on those nodes); the planner itself just reports what it would like.
public enum ReplicaPlanner {
    public static func plan(current: [[String]], eligible unsorted: [String], replicationFactor: Int,
                            retiring: Set<String> = [], frozen: Set<String> = []) -> [[String]] {
        let out = spread(current: current, eligible: unsorted, replicationFactor: replicationFactor, retiring: retiring)
        return frozen.isEmpty ? out : freeze(out, current: current, eligible: unsorted, frozen: frozen)
    }

    /// Step 6: moves holdings new to a frozen node back to where they were, or to the least-loaded other node.
    static func freeze(_ planned: [[String]], current: [[String]], eligible: [String], frozen: Set<String>) -> [[String]] {
        var out = planned
        let open = Array(Set(eligible).subtracting(frozen)).sorted()
        var load: [String: Int] = [:]
        for h in out { for n in h { load[n, default: 0] += 1 } }
        for p in out.indices {
            var i = 0
            while i < out[p].count {
                let n = out[p][i]
                guard frozen.contains(n), !current[p].contains(n) else { i += 1; continue }
                let back = current[p].first { open.contains($0) && !out[p].contains($0) }
                let sub = back ?? open.filter { !out[p].contains($0) }.min { (load[$0, default: 0], $0) < (load[$1, default: 0], $1) }
                load[n, default: 0] -= 1
                if let sub {
                    out[p][i] = sub
                    load[sub, default: 0] += 1
                    i += 1
                } else {
                    out[p].remove(at: i)
                }
            }
        }
        return out
    }

    static func spread(current: [[String]], eligible unsorted: [String], replicationFactor: Int,
                       retiring: Set<String>) -> [[String]] {
        let eligible = Array(Set(unsorted)).sorted()
        guard !eligible.isEmpty, replicationFactor >= 1 else { return current }
        let retiring = retiring.subtracting(eligible)
        let r = min(replicationFactor, eligible.count)
        let ok = Set(eligible)
        var load = Dictionary(uniqueKeysWithValues: eligible.map { ($0, 0) })
        var out: [[String]] = current.map { holders in
            var seen = Set<String>()
            return Array(holders.filter { ok.contains($0) && seen.insert($0).inserted }.prefix(r))
        }
        // How often two nodes hold the same partition. Spreading partners means a dead node's partitions are
        // re-replicated from (and onto) many nodes, not one.
        var pairs: [String: Int] = [:]
        func pairKey(_ x: String, _ y: String) -> String { x < y ? x + "\u{0}" + y : y + "\u{0}" + x }
        for h in out {
            for n in h { load[n]! += 1 }
            for (i, x) in h.enumerated() { for y in h[(i + 1)...] { pairs[pairKey(x, y), default: 0] += 1 } }
        }
        func leastLoaded(excluding: [String]) -> String? {
            func score(_ n: String) -> Int { excluding.reduce(0) { $0 + (pairs[pairKey($1, n)] ?? 0) } }
            return eligible.filter { !excluding.contains($0) }.min { (load[$0]!, score($0), $0) < (load[$1]!, score($1), $1) }
        }
        // 2. Top up. Holdings added here are free to re-target in step 3 (they are not copied yet).
        var added = Set<String>()
        for p in out.indices {
            while out[p].count < r, let n = leastLoaded(excluding: out[p]) {
                for x in out[p] { pairs[pairKey(x, n), default: 0] += 1 }
                out[p].append(n)
                load[n]! += 1
                added.insert("\(p)/\(n)")
            }
        }
        // 3. Spread holdings.
        var guardSteps = out.count * r * eligible.count + 16
        while guardSteps > 0 {
            guardSteps -= 1
            let hi = eligible.max { (load[$0]!, $1) < (load[$1]!, $0) }!
            let lo = eligible.min { (load[$0]!, $0) < (load[$1]!, $1) }!
            guard load[hi]! - load[lo]! > 1 else { break }
            let candidates = out.indices.filter { out[$0].contains(hi) && !out[$0].contains(lo) }
            guard let p = candidates.last(where: { added.contains("\($0)/\(hi)") })
                    ?? candidates.last(where: { out[$0].first != hi }) ?? candidates.last else { break }
            if added.remove("\(p)/\(hi)") != nil || current[p].isEmpty { added.insert("\(p)/\(lo)") }
            let i = out[p].firstIndex(of: hi)!
            if i == 0 {
                // The donor was primary: the next holder takes over, the newcomer joins at the end.
                out[p].remove(at: 0)
                out[p].append(lo)
            } else {
                out[p][i] = lo
            }
            load[hi]! -= 1
            load[lo]! += 1
        }
        // 4. Balance primaries by reordering inside each partition.
        var prim = Dictionary(uniqueKeysWithValues: eligible.map { ($0, 0) })
        for h in out { if let f = h.first { prim[f]! += 1 } }
        guardSteps = out.count * eligible.count + 16
        while guardSteps > 0 {
            guardSteps -= 1
            let hi = eligible.max { (prim[$0]!, $1) < (prim[$1]!, $0) }!
            // The partition led by `hi` whose other holder has the fewest primaries.
            var best: (p: Int, i: Int, n: String)?
            for p in out.indices where out[p].first == hi {
                for (i, n) in out[p].enumerated().dropFirst() where prim[n]! + 1 < prim[hi]! {
                    if best == nil || (prim[n]!, n, p) < (prim[best!.n]!, best!.n, best!.p) { best = (p, i, n) }
                }
            }
            guard let b = best else { break }
            out[b.p].swapAt(0, b.i)
            prim[hi]! -= 1
            prim[b.n]! += 1
        }
        // 5. Retiring holders stay where the partition would otherwise have fewer than R copies.
        for p in out.indices where out[p].count < replicationFactor {
            for n in current[p] where retiring.contains(n) && !out[p].contains(n) && out[p].count < replicationFactor {
                out[p].append(n)
            }
        }
        return out
    }

    /// The partitions `node` holds that could not have R copies without it if it were drained now: all of them
    /// when fewer than R other nodes are eligible (live and not draining), none otherwise.
    public static func drainBlocked(node: String, current: [[String]], eligible: [String],
                                    replicationFactor: Int) -> [Int] {
        let others = Set(eligible).subtracting([node]).count
        guard others < replicationFactor else { return [] }
        return current.indices.filter { current[$0].contains(node) }
    }

    /// Copies the plan needs: holders in `target` that are not in `current`, summed over partitions.
    public static func copies(from current: [[String]], to target: [[String]]) -> Int {
        zip(current, target).reduce(0) { acc, pair in acc + pair.1.filter { !pair.0.contains($0) }.count }
    }
}
