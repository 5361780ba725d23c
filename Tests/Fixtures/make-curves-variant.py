#!/usr/bin/env python3
"""Writes campaign-plan-curves.json: the sample plan (campaign-plan.json, a real `chorus campaign show --json`) with
an illustrative budget of the later format (response curves, the KPI forecast and its weekly intervals), a second
version that is approved, the log, and one flagged content item. The curves are made up for the report's tests and
the screenshot in docs/campaigns.md; they are not fitted from data."""
import json, math, os

here = os.path.dirname(os.path.abspath(__file__))
d = json.load(open(os.path.join(here, "campaign-plan.json")))
plan = d["plan"]
b = plan["budget"]
scale = {"weibo": (60, 9000), "tiktok": (90, 15000), "instagram": (45, 10000), "x": (30, 8000), "wechat": (40, 6000)}
curves, total, var = [], 0.0, 0.0
for c in b["channels"]:
    a, k = scale[c["channel"]]
    hist = round(c["spend"] * 1.3, -2)
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
b["method"] = "response curves"
b["why"] = ("illustrative fixture: the spend goes where the next dollar returns the most, within the brief's min "
            "and max (these curves are made up for the report's tests)")
b["curves"] = curves
half = 1.645 * math.sqrt(var)
b["expected_kpi"] = {"value": round(total, 1), "low": round(total - half, 1), "high": round(total + half, 1), "level": 0.9}
weeks = ["2026-01-05", "2026-01-12", "2026-01-19"]
shape = [0.38, 0.34, 0.28]
b["kpi_by_week"] = [{"week_start": w, "expected": round(total * s, 1), "low": round((total - half) * s * 0.95, 1),
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
