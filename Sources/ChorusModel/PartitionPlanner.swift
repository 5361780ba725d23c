/// Pure partition placement: which live worker owns which partition.
///
/// Rules (see docs/architecture.md):
/// 1. A partition with no owner, or whose owner is gone and which holds no data, goes to the least-loaded live node.
/// 2. Then partitions that are allowed to move (`movable`) go from the most- to the least-loaded node until every live
///    node holds within one partition of the others, or nothing movable is left. Each step moves one partition, so
///    the number of moves is the minimum needed.
/// 3. Ties break by node id, so the plan is deterministic.
/// Partitions that hold data are not movable until partition moves (streaming data between workers) exist.
public enum PartitionPlanner {
    public static func plan(owners: [String?], live: [String], movable: (UInt32) -> Bool) -> [String?] {
        var out = owners
        let liveSet = Set(live)
        guard !live.isEmpty else { return out }
        var load = Dictionary(uniqueKeysWithValues: live.map { ($0, 0) })
        for o in out { if let o, liveSet.contains(o) { load[o, default: 0] += 1 } }
        func least() -> String { live.min { (load[$0]!, $0) < (load[$1]!, $1) }! }
        func most() -> String { live.max { (load[$0]!, $1) < (load[$1]!, $0) }! }
        for p in out.indices {
            let owner = out[p]
            if owner == nil || (!liveSet.contains(owner!) && movable(UInt32(p))) {
                let n = least()
                out[p] = n
                load[n]! += 1
            }
        }
        while true {
            let hi = most(), lo = least()
            guard load[hi]! - load[lo]! > 1 else { break }
            guard let p = out.indices.last(where: { out[$0] == hi && movable(UInt32($0)) }) else {
                // The most-loaded node has nothing movable; try any over-target node that does.
                let target = (owners.count + live.count - 1) / live.count
                guard let donor = live.filter({ load[$0]! > target }).first(where: { d in
                    out.indices.contains { out[$0] == d && movable(UInt32($0)) } }),
                      let q = out.indices.last(where: { out[$0] == donor && movable(UInt32($0)) }),
                      load[donor]! - load[lo]! > 1 else { break }
                out[q] = lo
                load[donor]! -= 1
                load[lo]! += 1
                continue
            }
            out[p] = lo
            load[hi]! -= 1
            load[lo]! += 1
        }
        return out
    }
}
