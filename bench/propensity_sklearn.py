#!/usr/bin/env python3
"""Fits scikit-learn's LogisticRegression on exactly the design matrix a `propensity` job used, and compares.

    chorus job submit propensity --param export_features=true --wait --json > job.json
    chorus propensity features --out design.csv
    .cache/peers/venv/bin/python bench/propensity_sklearn.py design.csv job.json [--json]

design.csv: user_id, slice (fit/dev/calibration/test/score), label, then the standardized features (the CSV of
`chorus propensity features`). job.json: the job's `--json` status (its summary holds λ, the coefficients and the
held-out AUC). The same L2 in sklearn's convention: Chorus minimises mean log-loss + (λ/2)‖w‖² (intercept free);
sklearn minimises C·Σ log-loss + ½‖w‖², the same optimum when C = 1 / (n·λ), n = the fit rows.

Prints the AUC of both on the test rows (the raw model's; Platt scaling does not change a ranking), the
correlation of the coefficients and the largest absolute difference. Exit 0 either way; the integration test
asserts the thresholds (AUC within 0.005, correlation ≥ 0.99).
"""
import csv
import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def load(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        names = header[3:]
        rows = {}
        for row in r:
            rows.setdefault(row[1], []).append(row)
    def part(s):
        rs = rows.get(s, [])
        x = np.array([[float(v) for v in row[3:]] for row in rs]).reshape(len(rs), len(names))
        y = np.array([int(row[2]) for row in rs])
        return x, y
    return names, part


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    names, part = load(args[0])
    with open(args[1]) as f:
        job = json.load(f)
    summary = job.get("summary", job)
    lam = float(summary["lambda"]["chosen"])
    ours = np.array([c["coefficient"] for c in summary["coefficients"]])
    assert [c["feature"] for c in summary["coefficients"]] == names, "the export and the summary name other features"
    xf, yf = part("fit")
    xt, yt = part("test")
    n = len(yf)
    C = 1.0 / (n * lam) if lam > 0 else 1e12
    m = LogisticRegression(C=C, penalty="l2", solver="lbfgs", tol=1e-12, max_iter=100000)
    m.fit(xf, yf)
    theirs = m.coef_[0]
    # The job's own AUC on the test rows from its coefficients (the raw logits; calibration is monotone).
    ours_logits = xt @ ours + summary["intercept"]
    auc_ours = roc_auc_score(yt, ours_logits)
    auc_sklearn = roc_auc_score(yt, m.decision_function(xt))
    corr = float(np.corrcoef(ours, theirs)[0, 1])
    out = {
        "fit_rows": n, "test_rows": int(len(yt)), "lambda": lam, "sklearn_C": C,
        "auc_chorus": auc_ours, "auc_chorus_reported": summary["test"]["auc"], "auc_sklearn": auc_sklearn,
        "auc_difference": abs(auc_ours - auc_sklearn), "coefficient_correlation": corr,
        "max_coefficient_difference": float(np.max(np.abs(ours - theirs))),
        "intercept_chorus": summary["intercept"], "intercept_sklearn": float(m.intercept_[0]),
        "features": names, "coefficients_chorus": ours.tolist(), "coefficients_sklearn": theirs.tolist(),
    }
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        print("fit rows %d, test rows %d, lambda %g (sklearn C = %g)" % (n, len(yt), lam, C))
        print("held-out AUC: chorus %.4f (reported %.4f), sklearn %.4f, |diff| %.5f"
              % (auc_ours, summary["test"]["auc"], auc_sklearn, out["auc_difference"]))
        print("coefficients: correlation %.6f, max |diff| %.2e" % (corr, out["max_coefficient_difference"]))
        for f, a, b in zip(names, ours, theirs):
            print("  %-22s chorus %+.5f  sklearn %+.5f" % (f, a, b))


if __name__ == "__main__":
    main()
