"""Peers for bench/segments.sh: scikit-learn KMeans and Spark MLlib KMeans (local mode, all cores) on the vectors a
`segments` job clustered (store_vectors=true, exported with `chorus profile export`).

Seconds per Lloyd iteration are marginal, (fit(n+1) − fit(1)) / n, with the same initial centroids for both fits
(scikit-learn: init=array; Spark: maxIter 1 vs n+1 from the same seed, tol 0), so start-up, loading and seeding are
left out. Prints one line per peer and the ratios to ours.
"""
import argparse
import json
import os
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("profiles")
ap.add_argument("--k", type=int, default=6)
ap.add_argument("--iterations", type=int, default=10)
ap.add_argument("--ours", required=True)
ap.add_argument("--skip-spark", action="store_true")
a = ap.parse_args()

cache = a.profiles + ".npy"
if os.path.exists(cache):
    X = np.load(cache)
else:
    rows = []
    with open(a.profiles) as f:
        for line in f:
            seg = json.loads(line).get("segment") or {}
            if seg.get("state") == "assigned" and "vector" in seg:
                rows.append(seg["vector"])
    X = np.asarray(rows, dtype=np.float64)
    np.save(cache, X)
ours = json.load(open(a.ours))["summary"]
print("matrix: %d rows x %d columns (the job's standardized vectors)" % X.shape)
results = {"chorus": ours["seconds_per_iteration"]}

from sklearn.cluster import KMeans

rng = np.random.default_rng(0)
init = X[rng.choice(X.shape[0], a.k, replace=False)]

def sk(n):
    t = time.perf_counter()
    KMeans(n_clusters=a.k, init=init, n_init=1, max_iter=n, tol=0, algorithm="lloyd").fit(X)
    return time.perf_counter() - t

sk(1)  # warm-up
results["scikit-learn"] = (sk(a.iterations + 1) - sk(1)) / a.iterations

if not a.skip_spark:
    from pyspark.ml.clustering import KMeans as SparkKMeans
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[*]").appName("segments-bench")
             .config("spark.driver.memory", "8g").config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.createDataFrame([(Vectors.dense(r),) for r in X], ["features"]).cache()
    df.count()

    def sp(n):
        t = time.perf_counter()
        SparkKMeans(k=a.k, maxIter=n, tol=0.0, seed=1, initMode="random").fit(df)
        return time.perf_counter() - t

    sp(1)  # warm-up
    results["spark-mllib"] = (sp(a.iterations + 1) - sp(1)) / a.iterations
    spark.stop()

for name, s in results.items():
    ratio = "" if name == "chorus" else "   chorus is %.1fx faster" % (s / results["chorus"])
    print("  %-14s %.4f s per Lloyd iteration%s" % (name, s, ratio))
print(json.dumps({"rows": int(X.shape[0]), "dims": int(X.shape[1]), "k": a.k, "seconds_per_iteration": results}))
