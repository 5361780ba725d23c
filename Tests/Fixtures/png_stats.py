#!/usr/bin/env python3
"""Pixel statistics of a PNG, with the standard library only (zlib, struct): what CampaignReportBrowserTests needs
to tell a drawn chart from a blank page.

usage: png_stats.py FILE [RRGGBB ...]
prints JSON: {width, height, distinct (colours), background (the commonest colour), non_background (pixels),
rows_drawn (rows with a non-background pixel), counts: {RRGGBB: pixels of exactly that colour}}."""
import json, struct, sys, zlib
from collections import Counter


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit("not a PNG: " + path)
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace != 0:
        raise SystemExit("unsupported PNG: depth %d, colour type %d, interlace %d" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif f != 0:
            raise SystemExit("bad filter %d in row %d" % (f, y))
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def main():
    path, wanted = sys.argv[1], [c.lower().lstrip("#") for c in sys.argv[2:]]
    w, h, bpp, rows = decode(path)
    hist, rgb_rows = Counter(), []
    for line in rows:
        rgb = bytearray(w * 3)
        for k in range(3):
            rgb[k::3] = line[k::bpp]
        rgb_rows.append(bytes(rgb))
        hist.update(zip(rgb[0::3], rgb[1::3], rgb[2::3]))
    background, most = hist.most_common(1)[0]
    blank = bytes(background) * w
    print(json.dumps({
        "width": w, "height": h, "distinct": len(hist), "background": bytes(background).hex(),
        "non_background": w * h - most, "rows_drawn": sum(1 for r in rgb_rows if r != blank),
        "counts": {c: hist.get(tuple(bytes.fromhex(c)), 0) for c in wanted},
    }))


main()
