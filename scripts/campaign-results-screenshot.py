#!/usr/bin/env python3
"""Makes docs/images/campaign-report-results.png: the results section of the report of the sample-launch plan
(Tests/Fixtures/campaign-plan-fitted.json) with its evaluation (Tests/Fixtures/campaign-eval.json), rendered by
headless Chromium at 0.75 scale. The section is found on the page by the rule under the section titles (#134e4a):
from the title of "results" to the title of the next section. Standard library only; needs a built `chorus` and
`chromium`.

usage: scripts/campaign-results-screenshot.py [CHORUS_BIN]"""
import os, struct, subprocess, sys, tempfile, zlib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
chorus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug/chorus")
sections = ["audience", "content", "schedule", "budget", "measurement", "results", "risks"]  # those with an <h2>

ns = {}
src = open(os.path.join(root, "Tests/Fixtures/png_stats.py")).read().replace("\nmain()\n", "\n")
exec(src, ns)  # decode()

tmp = tempfile.mkdtemp(prefix="chorus-results-shot-")
html, png = os.path.join(tmp, "report.html"), os.path.join(tmp, "report.png")
fixtures = os.path.join(root, "Tests/Fixtures")
subprocess.run([chorus, "campaign", "report", "--from-json", os.path.join(fixtures, "campaign-plan-fitted.json"),
                "--evaluation-json", os.path.join(fixtures, "campaign-eval.json"), "--out", html], check=True)
subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + tmp + "/profile",
                "--force-device-scale-factor=0.75", "--window-size=1280,9000", "--screenshot=" + png, "file://" + html],
               check=True, stderr=subprocess.DEVNULL)
w, h, bpp, rows = ns["decode"](png)


def rule(y):
    r = rows[y]
    n = 0
    for x in range(0, w * bpp, bpp * 4):
        if abs(r[x] - 0x13) < 24 and abs(r[x + 1] - 0x4e) < 24 and abs(r[x + 2] - 0x4a) < 24:
            n += 1
    return n > w // 4 * 0.5


rules = []
for y in range(h):
    if rule(y) and (not rules or y > rules[-1] + 3):
        rules.append(y)
i = sections.index("results")
assert len(rules) > i + 1, "found %d section rules" % len(rules)
title = 26  # the title above its rule, at 0.75 scale
y0, y1 = rules[i] - title, rules[i + 1] - title - 4
out = []
for y in range(y0, y1):
    rgb = bytearray(w * 3)
    for k in range(3):
        rgb[k::3] = rows[y][k::bpp]
    out.append(b"\x00" + bytes(rgb))


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


target = os.path.join(root, "docs/images/campaign-report-results.png")
with open(target, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, len(out), 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(out), 9)) + chunk(b"IEND", b""))
print("%s: %d x %d, %d bytes (full page: %s)" % (target, w, len(out), os.path.getsize(target), png))
