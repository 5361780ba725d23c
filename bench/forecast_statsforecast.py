#!/usr/bin/env python3
"""statsforecast AutoETS and SeasonalNaive on the series of a key,ts,value CSV, with the origins and horizon of
`chorus forecast eval` (n_windows origins one step apart, the last one `horizon` steps before the end; each
model refitted at every origin), scored with the same formulas (bench/forecast_score.py).

    python bench/forecast_statsforecast.py SERIES.csv --interval day --horizon 7 --windows 28 --out PREFIX

Writes PREFIX-autoets.csv and PREFIX-snaive.csv (key,cutoff,h,ts,point,lo80,hi80,lo95,hi95,model) and prints
the seconds per series of each model as JSON.
"""
import argparse, json, time
import numpy as np, pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, SeasonalNaive

ap = argparse.ArgumentParser()
ap.add_argument("series"); ap.add_argument("--interval", default="day")
ap.add_argument("--horizon", type=int, default=7); ap.add_argument("--windows", type=int, default=28)
ap.add_argument("--out", required=True)
a = ap.parse_args()
season = 7 if a.interval == "day" else 24
freq = "D" if a.interval == "day" else "h"
df = pd.read_csv(a.series)
df["ds"] = pd.to_datetime(df["ts"], utc=True).dt.tz_localize(None)
df = df.rename(columns={"key": "unique_id", "value": "y"})[["unique_id", "ds", "y"]]
if df["y"].isna().any():
    # statsforecast's models need complete series: missing values are filled with the series' median.
    df["y"] = df.groupby("unique_id")["y"].transform(lambda s: s.fillna(s.median()))
n_series = df["unique_id"].nunique()
timing = {}
for name, model in (("autoets", AutoETS(season_length=season)), ("snaive", SeasonalNaive(season_length=season))):
    sf = StatsForecast(models=[model], freq=freq, n_jobs=1)
    if name == "autoets":   # warm up the numba compilation outside the timing (same series, one window)
        sf.cross_validation(df=df, h=a.horizon, n_windows=1, step_size=1, level=[80, 95])
    t = time.perf_counter()
    cv = sf.cross_validation(df=df, h=a.horizon, n_windows=a.windows, step_size=1, level=[80, 95], refit=True)
    timing[name] = (time.perf_counter() - t) / n_series
    col = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y") and "-lo-" not in c and "-hi-" not in c][0]
    cv = cv.sort_values(["unique_id", "cutoff", "ds"])
    cv["h"] = cv.groupby(["unique_id", "cutoff"]).cumcount() + 1
    out = pd.DataFrame({
        "key": cv["unique_id"], "cutoff": cv["cutoff"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "h": cv["h"],
        "ts": cv["ds"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "point": cv[col],
        "lo80": cv[col + "-lo-80"], "hi80": cv[col + "-hi-80"], "lo95": cv[col + "-lo-95"], "hi95": cv[col + "-hi-95"],
        "model": name})
    out.to_csv(f"{a.out}-{name}.csv", index=False)
print(json.dumps({"seconds_per_series": timing, "series": n_series}))
