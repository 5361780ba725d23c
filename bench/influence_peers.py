#!/usr/bin/env python3
"""Peers of the `influence` benchmark (bench/influence.sh): PageRank on the same edge list with networkx (its
scipy power iteration) and with a plain pyspark RDD implementation (joins and reduceByKey, no GraphFrames).

    influence_peers.py EDGES.csv [--iterations K] [--damping A] [--skip-spark] [--spark-iterations K]

EDGES.csv: a header line, then follower,followee per line. Every implementation starts from the uniform vector,
spreads dangling mass uniformly and runs exactly K iterations, so seconds per iteration compare one to one.
Prints one JSON object per peer.
"""
import argparse, csv, json, sys, time


def read_edges(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        return [(a, b) for a, b in r]


def networkx_peer(edges, k, damping):
    import networkx as nx
    import numpy as np
    t0 = time.perf_counter()
    g = nx.DiGraph()
    g.add_edges_from(edges)
    load = time.perf_counter() - t0
    # The whole call to convergence (networkx's defaults but tol 1e-12), setup included.
    t = time.perf_counter()
    pr = nx.pagerank(g, alpha=damping, max_iter=1000, tol=1e-12)
    call = time.perf_counter() - t
    # Per iteration: networkx's own scipy update (nx.pagerank → _pagerank_scipy), on the matrix it builds, timed
    # over k iterations. Timing whole calls instead would be dominated by the matrix build (and its noise).
    t = time.perf_counter()
    nodelist = list(g)
    A = nx.to_scipy_sparse_array(g, nodelist=nodelist, weight="weight", dtype=float)
    S = A.sum(axis=1)
    S[S != 0] = 1.0 / S[S != 0]
    import scipy.sparse as sp
    Q = sp.csr_array(sp.spdiags(S.T, 0, *A.shape))
    A = Q @ A
    n = len(nodelist)
    x = np.repeat(1.0 / n, n)
    p = np.repeat(1.0 / n, n)
    dangling_weights = p
    is_dangling = np.where(S == 0)[0]
    build = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(k):
        xlast = x
        x = damping * (x @ A + sum(x[is_dangling]) * dangling_weights) + (1 - damping) * p
        err = np.absolute(x - xlast).sum()
    per = (time.perf_counter() - t) / k
    return {"peer": "networkx", "version": nx.__version__, "nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
            "load_seconds": load, "matrix_seconds": build, "pagerank_call_seconds": call,
            "seconds_per_iteration": per, "iterations": k, "last_err": float(err)}, pr


def spark_peer(path, k, damping):
    P = 4  # partitions: 2 per core on the benchmark machine (8 or more only added scheduling overhead)
    from pyspark.sql import SparkSession
    t0 = time.perf_counter()
    spark = (SparkSession.builder.master("local[*]").appName("pagerank-peer")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "8g")
             .config("spark.ui.showConsoleProgress", "false").config("spark.default.parallelism", str(P))
             .config("spark.sql.shuffle.partitions", str(P)).getOrCreate())
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    start = time.perf_counter() - t0
    t1 = time.perf_counter()
    lines = sc.textFile(path)
    header = lines.first()
    edges = lines.filter(lambda l: l != header).map(lambda l: tuple(l.split(",")[:2])).distinct()
    links = edges.groupByKey().mapValues(list).partitionBy(P).cache()
    nodes = edges.flatMap(lambda e: e).distinct(P).cache()
    n = nodes.count()
    dangling = nodes.map(lambda v: (v, None)).subtractByKey(links).cache()
    dangling.count()
    ranks = nodes.map(lambda v: (v, 1.0 / n)).cache()
    ranks.count()
    load = time.perf_counter() - t1
    times = []
    for _ in range(k):
        t = time.perf_counter()
        d = ranks.join(dangling).map(lambda kv: kv[1][0]).sum()
        contribs = links.join(ranks).flatMap(lambda kv: [(dst, kv[1][1] / len(kv[1][0])) for dst in kv[1][0]])
        base = damping * d / n + (1 - damping) / n
        new = nodes.map(lambda v: (v, 0.0)).union(contribs).reduceByKey(lambda a, b: a + b, P) \
            .mapValues(lambda s: damping * s + base).cache()
        new.count()
        ranks.unpersist()
        ranks = new
        times.append(time.perf_counter() - t)
    total = ranks.values().sum()
    spark.stop()
    return {"peer": "pyspark", "version": spark.version, "nodes": n, "session_seconds": start, "load_seconds": load,
            "seconds_per_iteration": sum(times) / len(times), "iterations": k, "rank_sum": total}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("edges")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--spark-iterations", type=int, default=0, help="default: --iterations")
    ap.add_argument("--damping", type=float, default=0.85)
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--skip-networkx", action="store_true")
    ap.add_argument("--scores", help="write networkx's converged scores here (id,score)")
    a = ap.parse_args()
    ref = None
    if not a.skip_networkx:
        edges = read_edges(a.edges)
        r, ref = networkx_peer(edges, a.iterations, a.damping)
        print(json.dumps(r), flush=True)
        if a.scores:
            with open(a.scores, "w") as f:
                for v, x in ref.items():
                    f.write("%s,%r\n" % (v, x))
        del edges
    if not a.skip_spark:
        print(json.dumps(spark_peer(a.edges, a.spark_iterations or a.iterations, a.damping)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
