#!/usr/bin/env python3
"""ALS peers for bench/als.sh: Spark MLlib ALS (local mode, all cores) and the `implicit` library, on exactly the
hold-out split Chorus uses, with the same rank and iteration count. Prints one JSON object per line.

The split: Chorus holds out an interaction when FNV-1a 64 of (interaction id, NUL, seed), finished by SplitMix64's
avalanche step (StableHash.mixed64), falls below the hold-out fraction (ALSJobConfig.isHeldOut); MovieLens interaction ids are derived by the ingest parser from the record's
fields (RecordParser.derivedInteractionId). Both are re-implemented here, and the script prints its held-out count
so it can be checked against the Chorus job's `held_out`.

Seconds per iteration are marginal: (fit with 1 + N iterations − fit with 1 iteration) / N, after a warm-up fit,
so that start-up, JIT warm-up, data conversion and caching do not count, as for Chorus's `seconds_per_iteration`
(which times the iterations inside the job). Spark's whole fit time is reported too (`fit_seconds`).

    bench/als_peers.py RATINGS_CSV --rank K --iterations N --seed S --holdout F --explicit-lambda L \
        --implicit-rank K2 --implicit-lambda L2 --alpha A [--skip-spark]
    bench/als_peers.py RATINGS_CSV --cg-ranks 16,32,64,128 --threads 2 ...   (implicit CG only, one line per rank)
"""
import argparse, csv, json, math, os, sys, time

FNV_OFFSET, FNV_PRIME, MASK = 0xcbf29ce484222325, 0x100000001b3, (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def derived_id(user, item, ts, channel="movielens", kind="rating", text=""):
    canon = "\x1f".join([user, item, kind, str(ts), channel, text])
    return "i-%016x" % fnv1a64(canon.encode())


def avalanche(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def held_out(iid, seed, frac):
    h = avalanche(fnv1a64(iid.encode() + b"\x00" + str(seed).encode()))
    return (h >> 11) * 2.0 ** -53 < frac


def load(path, seed, frac):
    train, test = {}, {}
    with open(path) as f:
        for r in csv.DictReader(f):
            u, i, v, ts = r["user_id"], r["item_id"], float(r["rating"]), int(float(r["timestamp"]))
            d = test if held_out(derived_id(u, i, ts), seed, frac) else train
            d.setdefault((u, i), []).append(v)
    avg = lambda d: {k: sum(v) / len(v) for k, v in d.items()}
    return avg(train), avg(test)


# Chorus's default implicit weights per interaction type (ALSJobConfig.weights); pairs sum their weights.
WEIGHTS = {"view": 1, "like": 3, "comment": 4, "share": 5, "click": 2, "conversion": 8, "rating": 1}


def load_jsonl(path, seed, frac):
    """Generated interactions (chorus generate): implicit weights, the same hash hold-out on the given ids."""
    train, test = {}, {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            w = WEIGHTS.get(r["type"], 0)
            if w <= 0:
                continue
            d = test if held_out(r["interaction_id"], seed, frac) else train
            k = (r["user_id"], r["content_id"])
            d[k] = d.get(k, 0) + w
    return train, test


def ranking(score_rows, users, items, train, test, k=10):
    """P@k, recall@k, NDCG@k over users with held-out items they had not seen in training (seen items excluded)."""
    import numpy as np
    seen, rel = {}, {}
    for (u, i) in train:
        seen.setdefault(u, set()).add(i)
    for (u, i) in test:
        if i in items and i not in seen.get(u, ()):
            rel.setdefault(u, set()).add(items[i])
    P = R = N = 0.0
    n = 0
    for u, relevant in rel.items():
        n += 1
        if u not in users:
            continue
        s = score_rows(users[u]).astype(np.float64).copy()
        for i in seen.get(u, ()):  # seen items are never recommended
            if i in items:
                s[items[i]] = -np.inf
        top = np.argpartition(-s, k)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        hits = [1 if t in relevant else 0 for t in top]
        P += sum(hits) / k
        R += sum(hits) / len(relevant)
        dcg = sum(h / math.log2(j + 2) for j, h in enumerate(hits))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(relevant))))
        N += dcg / idcg
    return {"precision_at_k": P / max(n, 1), "recall_at_k": R / max(n, 1), "ndcg_at_k": N / max(n, 1), "users": n}


def run_implicit(train, test, a, threads, cg):
    import numpy as np, scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits
    users = {u: j for j, u in enumerate(sorted({u for u, _ in train}))}
    items = {i: j for j, i in enumerate(sorted({i for _, i in train}))}
    rows = [users[u] for u, _ in train]
    cols = [items[i] for _, i in train]
    m = sp.csr_matrix((np.array(list(train.values()), dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    times = {}
    with threadpool_limits(1):
        for its in (2, 1, 1 + a.iterations):  # the first fit only warms up
            model = AlternatingLeastSquares(factors=a.implicit_rank, regularization=a.implicit_lambda, alpha=a.alpha,
                                            iterations=its, random_state=a.seed, num_threads=threads,
                                            calculate_training_loss=False, use_cg=cg)
            t = time.perf_counter()
            model.fit(m, show_progress=False)
            times[its] = time.perf_counter() - t
    per = (times[1 + a.iterations] - times[1]) / a.iterations
    uf, itf = model.user_factors, model.item_factors
    q = ranking(lambda u: itf @ uf[u], users, items, train, test) if test else {}
    return dict(peer="implicit", mode="implicit", solver="cg" if cg else "cholesky", threads=threads,
                rank=a.implicit_rank, nnz=m.nnz,
                iterations=a.iterations, seconds_per_iteration=per, **q)


def run_spark(train, test, a):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    from pyspark.ml.recommendation import ALS
    import numpy as np
    t0 = time.perf_counter()
    spark = (SparkSession.builder.master("local[*]").appName("chorus-bench")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g")
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - t0
    users = {u: j for j, u in enumerate(sorted({u for u, _ in train}))}
    items = {i: j for j, i in enumerate(sorted({i for _, i in train}))}
    df = spark.createDataFrame([(users[u], items[i], float(v)) for (u, i), v in train.items()],
                               ["user", "item", "rating"]).cache()
    df.count()
    out = []
    for mode in ("explicit", "implicit"):
        rank = a.rank if mode == "explicit" else a.implicit_rank
        times = {}
        for its in (2, 1, 1 + a.iterations):  # the first fit only warms up the JVM (JIT) and the cached data
            als = ALS(rank=rank, maxIter=its, regParam=a.explicit_lambda if mode == "explicit" else a.implicit_lambda,
                      implicitPrefs=(mode == "implicit"), alpha=a.alpha, seed=a.seed, userCol="user", itemCol="item",
                      ratingCol="rating", coldStartStrategy="drop")
            t = time.perf_counter()
            model = als.fit(df)
            model.userFactors.count()  # force the computation
            times[its] = time.perf_counter() - t
        per = (times[1 + a.iterations] - times[1]) / a.iterations
        uf = {r["id"]: np.array(r["features"], dtype=np.float32) for r in model.userFactors.collect()}
        itf_rows = {r["id"]: np.array(r["features"], dtype=np.float32) for r in model.itemFactors.collect()}
        itf = np.zeros((len(items), rank), dtype=np.float32)
        for j, v in itf_rows.items():
            itf[j] = v
        res = dict(peer="spark", mode=mode, rank=rank, iterations=a.iterations, seconds_per_iteration=per,
                   fit_seconds=times[1 + a.iterations], session_start_seconds=startup)
        if mode == "explicit":
            se = ae = 0.0
            n = 0
            for (u, i), v in test.items():
                if u in users and i in items and users[u] in uf:
                    p = float(uf[users[u]] @ itf[items[i]])
                    se += (p - v) ** 2
                    ae += abs(p - v)
                    n += 1
            res.update(rmse=math.sqrt(se / n), mae=ae / n, pairs=n)
        else:
            res.update(ranking(lambda u: itf @ uf.get(u, np.zeros(rank, dtype=np.float32)), users, items, train, test))
        out.append(res)
    spark.stop()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ratings")
    p.add_argument("--rank", type=int, default=10)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--explicit-lambda", type=float, default=0.1)
    p.add_argument("--implicit-rank", type=int, default=32)
    p.add_argument("--implicit-lambda", type=float, default=0.1)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--skip-spark", action="store_true")
    p.add_argument("--speed-only", action="store_true", help="implicit library only, no ranking metrics")
    p.add_argument("--cg-ranks", default="", help="only the implicit library's CG at these ranks (comma-separated), "
                   "with --threads threads: the rank sweep of bench/als.sh")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    train, test = (load_jsonl if a.ratings.endswith(".jsonl") else load)(a.ratings, a.seed, a.holdout)
    if a.speed_only:
        test = {}
    print(json.dumps({"split": "chorus", "train_pairs": len(train), "held_out": len(test)}), flush=True)
    if a.cg_ranks:
        for rank in [int(r) for r in a.cg_ranks.split(",")]:
            a.implicit_rank = rank
            print(json.dumps(run_implicit(train, test, a, a.threads, True)), flush=True)
        return
    for threads in (1, 2):
        for cg in (True, False):
            print(json.dumps(run_implicit(train, test, a, threads, cg)), flush=True)
    if not a.skip_spark:
        for r in run_spark(train, test, a):
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
