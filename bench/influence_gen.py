#!/usr/bin/env python3
"""Writes a synthetic follower graph for bench/influence.sh: about EDGES follows among EDGES/9.4 users, each user following
about 10 others chosen with a heavy-tailed popularity (user i is picked with weight ~ 1/(i+1)^0.8, so in-degrees
follow a power law), no self-follows, no repeats. Deterministic for a seed.

    influence_gen.py EDGES OUTDIR [--seed 42]     # OUTDIR/follows-gen.jsonl (for chorus ingest), OUTDIR/edges.csv
"""
import argparse, bisect, itertools, os, random

ap = argparse.ArgumentParser()
ap.add_argument("edges", type=int)
ap.add_argument("out")
ap.add_argument("--seed", type=int, default=42)
a = ap.parse_args()
rng = random.Random(a.seed)
n = max(10, int(a.edges / 9.4))
cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(n)))
total = cum[-1]
ids = ["g%07d" % i for i in range(n)]
os.makedirs(a.out, exist_ok=True)
written = 0
with open(os.path.join(a.out, "follows-gen.jsonl"), "w") as js, open(os.path.join(a.out, "edges.csv"), "w") as cs:
    cs.write("follower,followee\n")
    u = 0
    while written < a.edges:
        me = ids[u % n]
        want = min(n - 1, 1 + int(rng.expovariate(1 / 9.0)), a.edges - written)
        seen = set()
        while len(seen) < want:
            v = bisect.bisect_left(cum, rng.random() * total)
            if v != u % n:
                seen.add(min(v, n - 1))
        for v in sorted(seen):
            js.write('{"follower_id":"%s","followee_id":"%s","channel":"x"}\n' % (me, ids[v]))
            cs.write("%s,%s\n" % (me, ids[v]))
        written += len(seen)
        u += 1
        if u % n == 0:
            break  # every user has had its turn; fewer edges than asked (printed below)
print(written)
