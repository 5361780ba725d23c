#!/usr/bin/env python3
"""Makes docs/images/campaign-report.png: the report of Tests/Fixtures/campaign-plan-fitted.json rendered by headless
Chromium at 0.75 scale, cut to four parts (summary and audience, the schedule heatmap, the budget with its curves and
forecast, the history) joined by grey lines. Standard library only; needs a built `chorus` and `chromium`.

usage: scripts/campaign-report-screenshot.py [CHORUS_BIN]

The parts are pixel rows of the 0.75-scale page; when the page's layout changes, look at the full screenshot
(left in the temporary directory it prints) and move them."""
import os, struct, subprocess, sys, tempfile, zlib

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
chorus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug/chorus")
parts = [(0, 770), (1940, 2220), (2620, 3738), (4477, 4742)]  # the history moved down by the results section (not measured)

ns = {}
src = open(os.path.join(root, "Tests/Fixtures/png_stats.py")).read().replace("\nmain()\n", "\n")
exec(src, ns)  # decode()

tmp = tempfile.mkdtemp(prefix="chorus-report-shot-")
html, png = os.path.join(tmp, "report.html"), os.path.join(tmp, "report.png")
subprocess.run([chorus, "campaign", "report", "--from-json", os.path.join(root, "Tests/Fixtures/campaign-plan-fitted.json"),
                "--out", html], check=True)
subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + tmp + "/profile",
                "--force-device-scale-factor=0.75", "--window-size=1280,6400", "--screenshot=" + png, "file://" + html],
               check=True, stderr=subprocess.DEVNULL)
w, h, bpp, rows = ns["decode"](png)
out = []
for j, (y0, y1) in enumerate(parts):
    if j:
        out += [b"\x00" + b"\xd1\xd5\xdb" * w] * 2
    for y in range(y0, min(y1, h)):
        rgb = bytearray(w * 3)
        for k in range(3):
            rgb[k::3] = rows[y][k::bpp]
        out.append(b"\x00" + bytes(rgb))


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


target = os.path.join(root, "docs/images/campaign-report.png")
with open(target, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, len(out), 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(out), 9)) + chunk(b"IEND", b""))
print("%s: %d x %d, %d bytes (full page: %s)" % (target, w, len(out), os.path.getsize(target), png))
