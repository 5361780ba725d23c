"""scikit-learn's KMeans on the exact vectors a `segments` job clustered (run with store_vectors=true).

    python bench/segments_sklearn.py PROFILES.jsonl K [N_INIT]

PROFILES.jsonl is `chorus profile export`: each assigned user's segment section holds its standardized vector.
Prints JSON: rows, dims, k, n_init, inertia (sklearn's best of n_init k-means++ runs, Lloyd), iterations.
"""
import json
import sys

import numpy as np
from sklearn.cluster import KMeans

path, k = sys.argv[1], int(sys.argv[2])
n_init = int(sys.argv[3]) if len(sys.argv) > 3 else 4
rows = []
with open(path) as f:
    for line in f:
        seg = json.loads(line).get("segment") or {}
        if seg.get("state") == "assigned" and "vector" in seg:
            rows.append(seg["vector"])
X = np.asarray(rows, dtype=np.float64)
km = KMeans(n_clusters=k, n_init=n_init, init="k-means++", algorithm="lloyd", random_state=0, tol=1e-6,
            max_iter=300).fit(X)
print(json.dumps({"rows": int(X.shape[0]), "dims": int(X.shape[1]), "k": k, "n_init": n_init,
                  "inertia": float(km.inertia_), "iterations": int(km.n_iter_)}))
