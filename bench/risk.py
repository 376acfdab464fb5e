#!/usr/bin/env python3
"""Risk flags: recall/precision on our held-out examples, false alerts on hard negatives, the self-harm classifier
on held-out Weibo posts, alert rates on ordinary petitions, and time per petition.

    python bench/risk.py [--bundle DIR] [--show-alerts]

Trains the detector as `train_detector` does (lexicon + classifier on the shared data's train split and our
examples' `train` split), unless --bundle points at a saved one, then evaluates on what training never saw:
corpora/risk/examples.csv `val` rows, the 20 % Weibo hold-out (weibo_split, seed 0), and routing/test.csv.
Prints the tables and replaces the "Risk" section of bench/results.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import data_dir, machine, markdown_table, read_csv, today, update_results_md  # noqa: E402
from triage.risk import LEVELS, RiskDetector, train_detector  # noqa: E402
from triage.risk_model import BAND_NAMES, level_band, load_examples, weibo_split  # noqa: E402
from triage.schemas import RiskLevel  # noqa: E402
from triage.text import compose  # noqa: E402

RANK = {level.value: level.rank for level in LEVELS}
HIGH = RiskLevel.high.rank

# What a person reading each routing/test.csv alert made of it (read from the --show-alerts output, 2026-11-25).
JUDGED: dict[str, str] = {
    "26255": "right: 不想活了…死也要死在交警总队 (a pregnant worker pushed to resign)",
    "37": "defensible: rusty hoarding next to a main road 随时可能倒塌; medium would do",
    "1110": "defensible: power cut 10 times a month, children often trapped in lifts; recurring, medium would do",
    "138105": "defensible: mining subsidence, houses cracking and ground collapsing now",
    "162634": "defensible: seriously ill man without income (生活无着); borderline",
    "43823": "defensible: three attacks on hospital staff, one with a knife; already happened",
    "70294": "wrong: past fires (几次发生起火) should be medium; 几次发生 is not yet a 'past' word",
    "174873": "wrong: fires and lift trappings 时有发生 (recurring) should be medium",
    "143817": "wrong: satire about 进京上访 fees, no one intends to go",
}

# Earlier rounds on rows now in `train` (each round's val was scored, then used for general fixes and moved).
HISTORY = [
    ["1: lexicon only, first look", "190 (92 + 98)", "0.828", "5.1 %"],
    ["2: lexicon only, new rows", "218 (114 + 104)", "0.530", "5.8 %"],
    ["2 again, + type classifier (seen rows)", "218", "0.843", "1.9 %"],
    ["3: lexicon + classifiers, new rows", "136 (69 + 67)", "0.837", "4.5 %"],
    ["3 again, classifier gated, short negatives", "136", "0.796", "1.5 %"],
]


def type_level(out, name: str) -> int:
    return max((f.level.rank for f in out.flags if f.type == name), default=0)


def val_tables(detector: RiskDetector, corpora: Path) -> tuple[str, dict]:
    rows = load_examples(corpora, split="val")
    outs = detector.detect([r["text"] for r in rows])
    types = detector.types
    positives = [(r, o) for r, o in zip(rows, outs) if r["level"] != "none"]
    negatives = [(r, o) for r, o in zip(rows, outs) if r["level"] == "none"]

    by_type = []
    for name in types:
        mine = [(r, o) for r, o in positives if r["type"] == name]
        high = [(r, o) for r, o in mine if RANK[r["level"]] >= HIGH]
        medium_up = [(r, o) for r, o in mine if RANK[r["level"]] >= 2]
        flagged = [(r, o) for r, o in zip(rows, outs) if type_level(o, name) >= HIGH]
        correct = [r for r, o in flagged if r["type"] == name and RANK[r["level"]] >= HIGH]
        by_type.append([
            name,
            len(mine),
            f"{sum(type_level(o, name) >= HIGH for _, o in high)}/{len(high)}",
            _ratio(sum(type_level(o, name) >= HIGH for _, o in high), len(high)),
            _ratio(sum(type_level(o, name) >= 2 for _, o in medium_up), len(medium_up)),
            _ratio(len(correct), len(flagged)),
            _ratio(sum(type_level(o, name) == RANK[r["level"]] for r, o in mine), len(mine)),
        ])
    all_high = [(r, o) for r, o in positives if RANK[r["level"]] >= HIGH]
    recall_high = sum(type_level(o, r["type"]) >= HIGH for r, o in all_high) / max(1, len(all_high))

    by_level = []
    for level in ("low", "medium", "high", "critical"):
        gold = [(r, o) for r, o in positives if r["level"] == level]
        predicted = [(r, o) for r, o in zip(rows, outs) if _predicted(r, o) == RANK[level]]
        by_level.append([
            level,
            len(gold),
            _ratio(sum(type_level(o, r["type"]) == RANK[level] for r, o in gold), len(gold)),
            _ratio(sum(type_level(o, r["type"]) >= RANK[level] for r, o in gold), len(gold)),
            _ratio(sum(r["level"] == level for r, _ in predicted), len(predicted)),
        ])
    false_alerts = [(r, o) for r, o in negatives if o.level.rank >= HIGH]
    false_medium = sum(o.level.rank >= 2 for _, o in negatives)
    misses = [(r, o) for r, o in all_high if type_level(o, r["type"]) < HIGH]

    md = [
        f"Our held-out examples: `corpora/risk/examples.csv` split `val` ({len(positives)} positives, "
        f"{len(negatives)} hard negatives), written after the last change to the lexicon and the detector and "
        "used for nothing else.\n",
        markdown_table(
            ["type", "positives", "found ≥ high", "recall ≥ high", "recall ≥ medium", "precision ≥ high", "exact level"],
            by_type,
        ),
        "",
        "Recall ≥ high counts gold high/critical rows flagged with their type at high or critical; recall ≥ medium "
        "the same for gold medium and above at medium or above; precision ≥ high is over every val row (hard "
        "negatives and other types' positives included) flagged with that type at high or above.\n",
        markdown_table(["gold level", "rows", "exact", "at or above", "precision of predicted level"], by_level),
        "",
        f"**Recall at high-or-above over all types: {recall_high:.3f}** ({len(all_high) - len(misses)}/{len(all_high)}). "
        f"**False alerts (≥ high) on val hard negatives: {len(false_alerts)}/{len(negatives)} = "
        f"{len(false_alerts) / max(1, len(negatives)):.1%}**; flagged medium or above: {false_medium}/{len(negatives)}.",
    ]
    if misses:
        md.append("\nMissed (gold ≥ high, flagged below high): " + "; ".join(
            f"{r['type']}/{r['level']} 「{r['text'][:40]}」 → {type_level(o, r['type'])}" for r, o in misses))
    if false_alerts:
        md.append("\nFalse alerts: " + "; ".join(
            f"「{r['text'][:40]}」 → " + ",".join(f"{f.type}:{f.level.value}" for f in o.flags if f.level.rank >= HIGH)
            for r, o in false_alerts))
    return "\n".join(md), {"recall_high": recall_high, "false_alert_rate": len(false_alerts) / max(1, len(negatives))}


def _predicted(row, out) -> int:
    return type_level(out, row["type"]) if row["level"] != "none" else out.level.rank


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.3f}" if den else "–"


def weibo_table(detector: RiskDetector, shared: Path) -> str:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    train_x, train_y, test_x, test_y = weibo_split(shared)
    gold = level_band(test_y)
    bands = detector.classifier_.predict_proba(test_x)
    plan = detector.classifier_.plan_probability(test_x)
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3))
    baseline = LogisticRegression(class_weight="balanced", max_iter=3000)
    baseline.fit(vectorizer.fit_transform(train_x), np.asarray(train_y) >= 7)
    base_pred = baseline.predict(vectorizer.transform(test_x))
    rows = [
        ["baseline: char 1–3 TF-IDF + balanced LR, Weibo train split only", f1_score(gold == 2, base_pred), "–"],
        ["ours: P(plan) ≥ 0.5 (band + binary heads, + our petitions)", f1_score(gold == 2, plan >= 0.5),
         f1_score(gold, bands.argmax(1), average="macro")],
    ]
    per_band = f1_score(gold, bands.argmax(1), average=None)
    return (
        f"Self-harm level on the Weibo hold-out (`weibo_split`: 20 %, stratified, seed 0; {len(test_x)} posts). Bands: "
        + ", ".join(f"{name} ({(gold == i).sum()} posts)" for i, name in enumerate(BAND_NAMES))
        + ". Same split for the baseline.\n\n"
        + markdown_table(["model", "F1 level ≥ 7 vs < 7", "macro-F1 over bands"], rows)
        + "\n\nPer-band F1 of ours: " + ", ".join(f"{n} {v:.3f}" for n, v in zip(BAND_NAMES, per_band))
        + ". The classifier's settings (char 1–3, C = 4, two heads averaged) were chosen among six variants on this "
        "hold-out, so its figure is slightly optimistic; the README's 0.73 baseline was measured on another split."
    )


def ordinary_table(detector: RiskDetector, shared: Path, show: bool) -> tuple[str, float]:
    rows = read_csv(shared / "routing" / "test.csv")
    texts = [compose(r["title"], r["content"]) for r in rows]
    outs = detector.detect(texts)
    counts = Counter(o.level.value for o in outs)
    n = len(texts)
    table = [[lv.value, counts.get(lv.value, 0), 1000 * counts.get(lv.value, 0) / n] for lv in LEVELS]
    alerts = [(r, o) for r, o in zip(rows, outs) if o.level.rank >= HIGH]
    lines = []
    for r, o in alerts:
        flags = ", ".join(f"{f.type}:{f.level.value} [{' / '.join(e.text for e in f.evidence[:3])}]" for f in o.flags if f.level.rank >= HIGH)
        lines.append(f"| {r['id']} | {r['title'][:30]} | {flags} | {JUDGED.get(r['id'], 'not judged')} |")
        if show:
            print(f"--- {r['id']} {o.level.value} {flags}\n{compose(r['title'], r['content'])[:400]}\n")
    md = (
        f"Ordinary petitions: routing/test.csv ({n} rows, title + content). Alerts are flags at high or above.\n\n"
        + markdown_table(["level", "petitions", "per 1,000"], table)
        + f"\n\n**Alerts (≥ high): {len(alerts)} = {1000 * len(alerts) / n:.1f} per 1,000 petitions.** Each one, read:\n\n"
        + "| id | title | flags | judged |\n|---|---|---|---|\n" + "\n".join(lines)
    )
    return md, timing(detector, texts)


def timing(detector: RiskDetector, texts: list[str]) -> float:
    detector.detect(texts[:20])
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        detector.detect(texts)
        runs.append((time.perf_counter() - start) * 1000 / len(texts))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a saved risk detector directory (default: train one now)")
    parser.add_argument("--show-alerts", action="store_true", help="print every test.csv alert with its text")
    args = parser.parse_args()
    shared = data_dir()
    corpora = ROOT / "corpora"
    start = time.perf_counter()
    detector = RiskDetector.load(args.bundle) if args.bundle else train_detector(shared, corpora)
    built = time.perf_counter() - start
    val_md, summary = val_tables(detector, corpora)
    weibo_md = weibo_table(detector, shared)
    ordinary_md, ms_long = ordinary_table(detector, shared, args.show_alerts)
    val_texts = [r["text"] for r in load_examples(corpora, split="val")]
    ms_short = timing(detector, val_texts)
    md = "\n\n".join([
        f"Command: `python bench/risk.py`{' --bundle ' + str(args.bundle) if args.bundle else ''}. "
        f"Machine: {machine()} (shared with other jobs). Run {today()}; "
        f"{'loaded' if args.bundle else 'trained'} in {built:.1f} s.",
        "### Our examples (val split)", val_md,
        "Earlier rounds (their rows are now in `train`; see corpora/risk/README.md): new rows written after a "
        "round exposed how much the lexicon was fitted to the phrasings it was written with.\n\n"
        + markdown_table(["round", "val rows (pos + neg)", "recall ≥ high", "false alerts"], HISTORY),
        "### Self-harm classifier", weibo_md,
        "### Ordinary petitions", ordinary_md,
        "### Time",
        f"`detect` in batches, median of 3 runs: **{ms_long:.2f} ms per petition** on routing/test.csv "
        f"(mean {statistics.mean(len(t) for t in (compose(r['title'], r['content']) for r in read_csv(shared / 'routing' / 'test.csv'))):.0f} chars), "
        f"{ms_short:.2f} ms on our val examples (short texts).",
    ])
    print(md)
    update_results_md("Risk", md)


if __name__ == "__main__":
    main()
