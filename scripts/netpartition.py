#!/usr/bin/env python3
"""Helper of scripts/netpartition.sh: reads chorus JSON and the ingest loop's logs.

  settled N            stdin: `cluster status --json`; prints 1 when N workers are active, nothing is
                       under-replicated, no move is in flight or planned and every partition has a primary
  brief                stdin: `cluster status --json`; one line: map version, node states, under-replicated, moves
  primary_of NAME      stdin: `cluster map --json`; prints "PARTITION MAP_VERSION" of a partition NAME leads
  holders              stdin: `cluster map --json`; one line per partition: p primary replicas (names)
  fenced               stdin: `node list --json`; "name=fenced" per node
  check ACKED EXPORT [PROBE_ID...]   lost / duplicated acknowledged ids; probe ids present
  gaps LOG T_CUT T_HEAL            from the ingest loop's log (END_TIME BATCH ATTEMPT EXIT SECONDS): the longest
                                   time without an acknowledged file around the cut, the time from the heal to the
                                   first acknowledgement, and the files acknowledged while cut
"""
import json
import sys
from collections import Counter


def load():
    return json.load(sys.stdin)


def main():
    cmd = sys.argv[1]
    if cmd == "settled":
        n = int(sys.argv[2])
        try:
            s = load()
        except Exception:
            print(0)
            return
        active = sum(1 for x in s["nodes"] if x["state"] == "active")
        ok = (active == n and not s["under_replicated"] and not s["moves"] and s["moves_planned"] == 0
              and s["unassigned_partitions"] == 0)
        print(int(ok))
    elif cmd == "brief":
        try:
            s = load()
        except Exception:
            print("status unavailable")
            return
        nodes = " ".join(f"{x['name']}:{x['state']}({x['primaries']}p/{x['replicas']}r,f{x.get('fenced', 0)})"
                         for x in sorted(s["nodes"], key=lambda x: x["name"]))
        print(f"map v{s['map_version']} ready={s['ready']} unassigned={s['unassigned_partitions']} "
              f"under_replicated={len(s['under_replicated'])} moves={len(s['moves'])}+{s['moves_planned']} | {nodes}")
    elif cmd == "primary_of":
        m = load()
        ids = {n["id"]: n["name"] for n in m["nodes"]}
        for p in m["partitions"]:
            if ids.get(p["primary"]) == sys.argv[2]:
                print(p["partition"], m["version"])
                return
        print("", m["version"])
    elif cmd == "holders":
        m = load()
        ids = {n["id"]: n["name"] for n in m["nodes"]}
        for p in m["partitions"]:
            print(p["partition"], ids.get(p["primary"], p["primary"]),
                  ",".join(ids.get(r, r) for r in p["replicas"]), "epoch", p.get("epoch"))
    elif cmd == "fenced":
        d = load()
        print(" ".join(f"{n['name']}={n.get('fenced', 0)}" for n in sorted(d["nodes"], key=lambda x: x["name"])))
    elif cmd == "check":
        acked_path, export_path, probes = sys.argv[2], sys.argv[3], sys.argv[4:]
        acked = [l.strip() for l in open(acked_path) if l.strip()]
        counts = Counter()
        for line in open(export_path):
            line = line.strip()
            if line:
                counts[json.loads(line).get("user_id", "")] += 1
        lost = [i for i in acked if counts[i] == 0]
        dup = [i for i in set(acked) if counts[i] > 1]
        dup_any = [i for i, c in counts.items() if c > 1]
        present_probes = [p for p in probes if counts[p] > 0]
        out = dict(acknowledged=len(acked), distinct_acknowledged=len(set(acked)), lost=len(lost),
                   duplicated=len(dup), duplicated_any=len(dup_any), exported=sum(counts.values()),
                   lost_sample=lost[:10], dup_sample=(dup or dup_any)[:10], probes_present=present_probes)
        print(json.dumps(out))
    elif cmd == "gaps":
        # longest time between two acknowledged ingests that overlaps the cut..heal window (+ 60 s after),
        # and the time from heal to the first ingest acknowledged after it
        log, t_cut, t_heal = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
        acks = []
        for line in open(log):
            f = line.split()
            if len(f) >= 4 and f[3] == "0":
                acks.append(float(f[0]))  # end time of the acknowledged ingest
        acks.sort()
        before = [t for t in acks if t <= t_cut]
        first_after_heal = next((t for t in acks if t >= t_heal), None)
        # the longest time without an acknowledgement, from the last one before the cut to the first after the heal
        if first_after_heal is None:
            outage = float("nan")
        else:
            window = ([before[-1]] if before else [t_cut]) + [t for t in acks if t_cut < t <= first_after_heal]
            outage = max(b - a for a, b in zip(window, window[1:])) if len(window) > 1 else 0.0
        first = (first_after_heal - t_heal) if first_after_heal is not None else float("nan")
        acked_during = sum(1 for t in acks if t_cut < t <= t_heal)
        print(f"{outage:.1f} {first:.1f} {acked_during}")
    elif cmd == "same":
        # same REF GOT: the profiles of REF's users in GOT, line for line (the job across the cut against the
        # undisturbed run on the same base data); prints "equal total"
        def profiles(path):
            out = {}
            for line in open(path):
                if line.strip():
                    out[json.loads(line).get("user_id", "")] = line.strip()
            return out
        ref, got = profiles(sys.argv[2]), profiles(sys.argv[3])
        print(f"{sum(1 for k, v in ref.items() if got.get(k) == v)} {len(ref)}")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
