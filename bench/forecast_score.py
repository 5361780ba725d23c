#!/usr/bin/env python3
"""Scores forecast CSVs (key,cutoff,h,ts,point,lo80,hi80,lo95,hi95,model) against the series CSV with one
formula for all: per (series, cutoff), MASE = mean |y - point| / mean |y_t - y_{t-m}| over the training data
(t up to the cutoff, m the seasonal-naive lag: 7 daily, 168 hourly), averaged over cutoffs, then over series;
the error relative to seasonal naive on the same values; the share of values inside the 80% and 95% intervals.

    python3 bench/forecast_score.py SERIES.csv --interval day ours.csv autoets.csv snaive.csv
"""
import argparse, csv, json, collections, datetime, math

ap = argparse.ArgumentParser()
ap.add_argument("series"); ap.add_argument("--interval", default="day"); ap.add_argument("forecasts", nargs="+")
a = ap.parse_args()
m = 7 if a.interval == "day" else 168
def ts(s):
    s = s if len(s) > 10 else s + "T00:00:00Z"
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
series = collections.defaultdict(dict)
for r in csv.DictReader(open(a.series)):
    series[r["key"]][ts(r["ts"])] = float(r["value"]) if r["value"] != "" else math.nan
step = datetime.timedelta(days=1) if a.interval == "day" else datetime.timedelta(hours=1)
def scale(key, cutoff):
    vals = [v for t, v in sorted(series[key].items()) if t <= cutoff]
    d = [abs(vals[i] - vals[i - m]) for i in range(m, len(vals)) if not math.isnan(vals[i]) and not math.isnan(vals[i - m])]
    return sum(d) / len(d) if d else math.nan
def naive(key, cutoff, t):
    k = 1
    while True:
        back = t - k * m * step
        while back > cutoff: k += 1; back = t - k * m * step
        v = series[key].get(back, math.nan)
        if not math.isnan(v) or back < min(series[key]): return v
        k += 1
result = {}
for path in a.forecasts:
    rows = list(csv.DictReader(open(path)))
    by = collections.defaultdict(list)
    for r in rows: by[(r["key"], r["cutoff"])].append(r)
    per_series = collections.defaultdict(list)
    err = nerr = 0.0; n = in80 = in95 = 0
    for (key, cut), rs in by.items():
        c = ts(cut); sc = scale(key, c); e = []
        for r in rs:
            y = series[key].get(ts(r["ts"]), math.nan); nv = naive(key, c, ts(r["ts"]))
            if math.isnan(y) or math.isnan(nv): continue
            p = float(r["point"]); e.append(abs(y - p)); err += abs(y - p); nerr += abs(y - nv); n += 1
            in80 += float(r["lo80"]) <= y <= float(r["hi80"]); in95 += float(r["lo95"]) <= y <= float(r["hi95"])
        if e and sc > 0: per_series[key].append(sum(e) / len(e) / sc)
    mase = {k: sum(v) / len(v) for k, v in per_series.items()}
    result[path] = {"mean_mase": sum(mase.values()) / len(mase), "relative_mae": err / nerr if nerr else None,
                    "coverage80": in80 / n, "coverage95": in95 / n, "points": n, "mase": mase}
print(json.dumps(result, indent=1, sort_keys=True))
