#!/usr/bin/env python3
"""Writes campaign-plan-curves.json: the sample plan (campaign-plan.json, a real `chorus campaign show --json`) with
an illustrative budget in the format of the fitted split (per-channel expected KPI, marginal return, fit and
extrapolation flag; response curves, the KPI forecast and its weekly intervals), a second
version that is approved, the log, and one flagged content item. The curves are made up for the report's tests and
the screenshot in docs/campaigns.md; they are not fitted from data."""
import json, math, os

here = os.path.dirname(os.path.abspath(__file__))
d = json.load(open(os.path.join(here, "campaign-plan.json")))
plan = d["plan"]
b = plan["budget"]
scale = {"weibo": (60, 9000), "tiktok": (90, 15000), "instagram": (45, 10000), "x": (30, 8000), "wechat": (40, 6000)}
curves, total, var = [], 0.0, 0.0
periods = 3
for c in b["channels"]:
    a, k = scale[c["channel"]]
    # wechat's chosen spend is past its history: an extrapolated channel, as the job marks one.
    hist = round(c["spend"] * (0.8 if c["channel"] == "wechat" else 1.3), -2)
    top = max(hist, c["spend"], c.get("max", 0)) * 1.6
    pts = []
    for i in range(13):
        x = top * i / 12
        y = a * (1 - math.exp(-x / k))
        w = 0.12 + 0.25 * max(0.0, x - hist) / hist
        pts.append({"spend": round(x, 2), "kpi": round(y, 2), "low": round(y * (1 - w), 2), "high": round(y * (1 + w), 2)})
    y = a * (1 - math.exp(-c["spend"] / k))
    total += y
    var += (0.07 * y) ** 2
    curves.append({"channel": c["channel"], "points": pts, "chosen_spend": c["spend"], "history_max": hist})
    c["spend_per_week"] = round(c["spend"] / periods, 6)
    c["expected_kpi"] = round(y, 6)
    c["marginal_return"] = round(a / k * math.exp(-c["spend"] / k), 6)
    c["extrapolated"] = c["spend"] > hist
    c["history_max_per_week"] = round(hist / periods, 6)
    c["fit"] = {"decay": 0.3, "half_saturation": k / periods, "shape": 1.0, "coefficient": a, "r2": 0.91, "periods": 104,
                "roas_history": 0.004}
b["method"] = "response curves"
b["why"] = ("illustrative fixture: the spend goes where the next dollar returns the most, within the brief's min "
            "and max (these curves are made up for the report's tests)")
b["kpi"] = "conversions"
b["period"] = "week"
b["periods"] = periods
b["curves"] = curves
b["extrapolated_channels"] = [c["channel"] for c in b["channels"] if c["extrapolated"]]
b["extrapolation_warning"] = ("the plan spends more per week than the history ever did on %s: the curve there is an "
                              "extrapolation, not a measurement" % ", ".join(b["extrapolated_channels"]))
half = 1.2816 * math.sqrt(var)
b["expected_kpi"] = {"value": round(total, 1), "low": round(total - half, 1), "high": round(total + half, 1), "level": 0.8}
weeks = ["2026-01-05", "2026-01-12", "2026-01-19"]
shape = [0.38, 0.34, 0.28]
b["kpi_by_week"] = [{"period_start": w, "expected": round(total * s, 1), "low": round((total - half) * s * 0.95, 1),
                     "high": round((total + half) * s * 1.05, 1)} for w, s in zip(weeks, shape)]
plan["gaps"] = [g for g in plan["gaps"] if "spend history" not in g]
plan["content"][0]["items"][2]["flags"] = ["topic=fashion has a negative alert at 2025-09-20T10:00:00Z"]
d["version"] = 2
d["latest_version"] = 2
d["approved_by"] = "ben"
d["approved_at"] = "2026-12-06T18:40:12Z"
d["action"] = "replan"
d["created_at"] = "2026-12-06T18:31:02Z"
d["versions"] = [
    {"version": 1, "created_at": "2026-12-06T18:17:45Z", "author": "ana", "action": "create",
     "summary": "2 segment(s), 18 posts, budget USD 50000.0 (even split)", "approved_by": "", "job_id": "job-000010"},
    {"version": 2, "created_at": "2026-12-06T18:31:02Z", "author": "ana", "action": "replan",
     "summary": "2 segment(s), 18 posts, budget USD 50000.0 (response curves)", "approved_by": "ben",
     "approved_at": "2026-12-06T18:40:12Z", "job_id": "job-000012"},
]
d["audit"] = [
    {"at": "2026-12-06T18:17:45Z", "who": "ana", "action": "create", "version": 1, "detail": "2 segment(s), 18 posts"},
    {"at": "2026-12-06T18:31:02Z", "who": "ana", "action": "replan", "version": 2, "detail": "after the spend history was loaded"},
    {"at": "2026-12-06T18:40:12Z", "who": "ben", "action": "approve", "version": 2, "detail": "ok for launch"},
    {"at": "2026-12-06T18:41:30Z", "who": "ben", "action": "export", "version": 2, "detail": "ics, 18 posts to launch.ics"},
]
json.dump(d, open(os.path.join(here, "campaign-plan-curves.json"), "w"), indent=1, sort_keys=True, ensure_ascii=False)
