#!/usr/bin/env python3
"""Risk flags: recall/precision on our held-out examples, false alerts on hard negatives, the self-harm classifier
on held-out Weibo posts, alert rates on ordinary petitions, and time per petition.

    python bench/risk.py [--bundle DIR] [--show-alerts] [--show-misses] [--skip-blind]

Trains the detector as `train_detector` does (lexicon + classifiers on the shared data's train split and our
authored training rows, `risk_model.training_rows`), unless --bundle points at a saved one, then evaluates on what
training never saw: corpora/risk/examples.csv `val` and `val2` rows (--show-misses prints val's, to the terminal
only); the blind sets corpora/risk/val_blind2.csv … val_blind5.csv (each written by another engineer who never
sees the detector: aggregates only, never a row, and not even with --show-misses); the third of
corpora/risk/train_extra.csv held out from training (aggregates only); the 20 % Weibo hold-out (weibo_split,
seed 0); and routing/test.csv. The semantic head is scored off and on. Prints the tables and replaces the "Risk"
section of bench/results.md. corpora/risk/val_blind.csv, the first blind set, trains since the fourth round.
"""

from __future__ import annotations

import argparse
import copy
import csv
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
from triage.risk_model import BAND_NAMES, level_band, load_examples, load_extra, weibo_split  # noqa: E402
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
    "2836": "right: after a failed operation, 盼望着能离开这个世界…我想过很多种死法",
    "182424": "wrong: restaurant fumes (一股油烟味) raised by the type classifier",
    "4163": "wrong: a fraud complaint sent to the county secretary (向书记举报), raised by the semantic head (2026-11-28)",
}
# 70294, 174873 and 143817 were no longer alerts after the past-marker and satire rules (2026-11-25, second round).

# Earlier rounds on rows now in `train` (each round's val was scored, then used for general fixes and moved).
HISTORY = [
    ["1: lexicon only, first look", "190 (92 + 98)", "0.828", "5.1 %"],
    ["2: lexicon only, new rows", "218 (114 + 104)", "0.530", "5.8 %"],
    ["2 again, + type classifier (seen rows)", "218", "0.843", "1.9 %"],
    ["3: lexicon + classifiers, new rows", "136 (69 + 67)", "0.837", "4.5 %"],
    ["3 again, classifier gated, short negatives", "136", "0.796", "1.5 %"],
    ["4 (the current val), first look", "115 (59 + 56)", "0.886", "1.8 %"],
    ["val (rounds 4 + 5), before the second round of work", "205 (107 + 98)", "0.886", "2.0 %"],
    ["val2 (91 new rows), before the second round of work", "91 (59 + 32)", "0.703", "3.1 %"],
    ["val_blind (now the dev set), before the third round of work", "527 (318 + 209)", "0.827", "8.1 %"],
    ["train_extra hold-out, before the third round of work", "317 (208 + 109)", "0.852", "7.3 %"],
    ["val_blind2 (the blind set), the detector before the third round of work", "400 (240 + 160)", "0.917", "10.0 %"],
    ["val_blind2, the detector before the fourth round of work", "400 (240 + 160)", "0.924", "8.1 %"],
    ["val_blind3 (new blind set), the detector before the fourth round of work", "400 (240 + 160)", "0.833", "13.1 %"],
    ["val_blind2 after the fourth round's new training rows, before its rule fixes", "400 (240 + 160)", "0.944", "6.9 %"],
    ["val_blind3 after the fourth round's new training rows, before its rule fixes", "400 (240 + 160)", "0.882", "10.0 %"],
    ["val_blind2 after the fourth round (rows and rule fixes)", "400 (240 + 160)", "0.944", "6.9 %"],
    ["val_blind3 after the fourth round (rows and rule fixes)", "400 (240 + 160)", "0.882", "9.4 %"],
    ["val_blind4 (new blind set), the detector after the fourth round", "400 (240 + 160)", "0.896", "7.5 %"],
    ["val_blind2 after the fifth round", "400 (240 + 160)", "0.931", "5.6 %"],
    ["val_blind3 after the fifth round", "400 (240 + 160)", "0.903", "6.9 %"],
    ["val_blind4 after the fifth round", "400 (240 + 160)", "0.931", "5.6 %"],
    ["val_blind2 after the sixth round", "400 (240 + 160)", "0.938", "6.2 %"],
    ["val_blind3 after the sixth round", "400 (240 + 160)", "0.896", "8.8 %"],
    ["val_blind4 after the sixth round", "400 (240 + 160)", "0.931", "5.0 %"],
    ["val_blind5 (new blind set), first look, the sixth round's detector", "400 (240 + 160)", "0.938", "4.4 %"],
    ["val_blind6 (new blind set), first look, the sixth round's detector", "400 (240 + 160)", "0.951", "5.0 %"],
    ["val_blind2 after the seventh round", "400 (240 + 160)", "0.944", "5.6 %"],
    ["val_blind3 after the seventh round", "400 (240 + 160)", "0.917", "8.1 %"],
    ["val_blind4 after the seventh round", "400 (240 + 160)", "0.951", "4.4 %"],
    ["val_blind5 after the seventh round", "400 (240 + 160)", "0.938", "3.8 %"],
    ["val_blind6 after the seventh round", "400 (240 + 160)", "0.965", "4.4 %"],
    ["val_blind7 (new blind set), first look, the seventh round's detector", "400 (240 + 160)", "0.917", "4.4 %"],
    ["val_blind2 after the eighth round", "400 (240 + 160)", "0.944", "6.2 %"],
    ["val_blind3 after the eighth round", "400 (240 + 160)", "0.903", "8.8 %"],
    ["val_blind4 after the eighth round", "400 (240 + 160)", "0.951", "4.4 %"],
    ["val_blind5 after the eighth round", "400 (240 + 160)", "0.938", "4.4 %"],
    ["val_blind6 after the eighth round", "400 (240 + 160)", "0.965", "5.0 %"],
    ["val_blind7 after the eighth round", "400 (240 + 160)", "0.931", "3.8 %"],
    ["val_blind8 (new blind set), first look, the eighth round's detector", "400 (240 + 160)", "0.917", "1.2 %"],
    ["val_blind8, first look at the ninth round's first bundle (level model, 480 rows)", "400 (240 + 160)", "0.938", "0.0 %"],
    ["val_blind7, the ninth round's first bundle", "400 (240 + 160)", "0.972", "1.9 %"],
    ["val_blind6, the ninth round's first bundle", "400 (240 + 160)", "0.979", "3.1 %"],
    ["val_blind5, the ninth round's first bundle", "400 (240 + 160)", "0.951", "1.2 %"],
    ["val_blind4, the ninth round's first bundle", "400 (240 + 160)", "0.958", "2.5 %"],
    ["val_blind3, the ninth round's first bundle", "400 (240 + 160)", "0.972", "4.4 %"],
    ["val_blind2, the ninth round's first bundle", "400 (240 + 160)", "0.944", "1.9 %"],
    ["val_blind5, same bundle, evasive spellings never lowered (prompted by the API tests)", "400 (240 + 160)", "0.958", "1.2 %"],
    ["val_blind8, the ninth round's final bundle (level model on texts the head reads, threshold 0.3)", "400 (240 + 160)", "0.931", "0.0 %"],
    ["val_blind7, the ninth round's final bundle", "400 (240 + 160)", "0.972", "1.2 %"],
    ["val_blind6, the ninth round's final bundle", "400 (240 + 160)", "0.979", "3.1 %"],
    ["val_blind5, the ninth round's final bundle", "400 (240 + 160)", "0.958", "1.2 %"],
    ["val_blind4, the ninth round's final bundle", "400 (240 + 160)", "0.938", "2.5 %"],
    ["val_blind3, the ninth round's final bundle", "400 (240 + 160)", "0.972", "3.8 %"],
    ["val_blind2, the ninth round's final bundle", "400 (240 + 160)", "0.944", "1.2 %"],
    ["val_blind8 after the tenth round (200 rows: threats against the petitioner, dangerous goods)", "400 (240 + 160)", "0.951", "0.0 %"],
    ["val_blind7 after the tenth round", "400 (240 + 160)", "0.972", "1.9 %"],
    ["val_blind6 after the tenth round", "400 (240 + 160)", "0.979", "3.1 %"],
    ["val_blind5 after the tenth round", "400 (240 + 160)", "0.958", "1.2 %"],
    ["val_blind4 after the tenth round", "400 (240 + 160)", "0.944", "2.5 %"],
    ["val_blind3 after the tenth round", "400 (240 + 160)", "0.972", "4.4 %"],
    ["val_blind2 after the tenth round", "400 (240 + 160)", "0.944", "1.2 %"],
    ["val_blind8 after the appeal rule (该怎么办 after a comma asks for help)", "400 (240 + 160)", "0.958", "0.0 %"],
    ["val_blind7 after the appeal rule", "400 (240 + 160)", "0.972", "1.9 %"],
    ["val_blind6 after the appeal rule", "400 (240 + 160)", "0.979", "3.1 %"],
    ["val_blind5 after the appeal rule", "400 (240 + 160)", "0.958", "1.2 %"],
    ["val_blind4 after the appeal rule", "400 (240 + 160)", "0.944", "2.5 %"],
    ["val_blind3 after the appeal rule", "400 (240 + 160)", "0.972", "4.4 %"],
    ["val_blind2 after the appeal rule", "400 (240 + 160)", "0.944", "1.2 %"],
]
# Second round of work (2026-11-25): val2 was written first and never trained on; its rows are not printed. The
# rule changes of that round were drawn from new train rows and from the issue's own list of val misses
# (高压线被吹断, 好几天没开门, 井盖…掉下去受伤), so val is no longer untouched; val2 and val_blind were the honest figures.
# Third round (2026-11-28): val_blind.csv became a development set (its misses read, general fixes made, no sentence
# copied); val_blind2.csv, written meanwhile by someone who never sees the detector, is the blind set. Its "before"
# row is the previous commit's detector (5614360) scored once, aggregates only, after the changes were made.
# Fourth round (2026-11-28, later): val_blind3.csv was written by another engineer who never saw the detector; the
# detector of that moment (bundle default-2026.11.28-1) was scored on it once. Then val_blind.csv and two new files
# (train_round4_a/b.csv, written without reading the detector or the blind sets) joined the training rows; the
# blind sets were scored once more (aggregates only), and rule fixes were drawn from the new training files' false
# alerts, thresholds from a 5-fold cross-validation over all training rows (scratch work, figures in the README).
# Fifth round: val_blind4.csv written first (same conditions) and scored once with the fourth round's detector;
# then 960 new training rows and rule fixes from their false alerts; the three blind sets scored once after.
# Sixth round: val_blind5.csv written first and never scored before the end of the round; 900 more training rows
# (violence, escalation and vulnerable positives; self-harm, gathering and public-safety hard negatives: the types
# the fifth round's per-type aggregates showed short); classifier C 4 → 8 from a 5-fold CV over the training rows
# (recall 0.922 → 0.923, false alerts 2.7 % → 2.3 %). After the first look at val_blind5, the issue's own level
# rule (conditional threats are high) was applied to gathering and escalation boosters (再不 / 如果不 / 否则 …): it
# was prompted by the per-type, per-level miss counts of the blind sets (escalation flagged medium), and changed
# no blind figure.
# Seventh round: val_blind6.csv written first and scored once with the sixth round's detector (then the shipped
# one); 960 training rows (plainly stated positives in many wordings; long ordinary complaints that mention risk
# words in passing) and rule fixes from their false alerts. Shipping them was decided on a 5-fold CV that scores
# only the other rows (recall 0.922 → 0.928, false alerts 2.5 % → 2.3 % with them; val lost one row, the
# train_extra hold-out three), before the blind sets were scored again.
# Eighth round: val_blind7.csv written first and scored once with the seventh round's detector; 480 training rows
# (firm intents without a date; hyperbole with the strongest risk words), rule fixes from their false alerts, and
# one general rule: a cue inside a 《title》 names a film or book (not a post's own 标题《…》). Kept on the same CV
# (first three folds: recall +0.6 to +0.7 points, false alerts −0.4), decided before the blind sets were scored;
# over the six blind sets the pooled figures then moved from 0.939 / 4.9 % to 0.939 / 5.4 % (one row here or there).
# Ninth round: val_blind8.csv written first (and its explicit/inferred judgement by another annotator) and scored
# once with the eighth round's detector. Then the level model (RiskLevelModel: one logistic regression over what
# every part found, trained on out-of-fold outputs), 480 rows on the medium/high line (kept by the CV that scores
# only the other rows: 0.952 → 0.955 with the level model, false alerts 2.2 → 2.3 %), one rule fix from their false
# alerts (跳河救人) and one general reading rule (a report ends where the petitioner speaks again); the first such
# bundle was scored on the blind sets (the "first look at the ninth round's detector" rows). Probing it with short
# plain sentences (not blind rows) then showed it lowered 我要自杀 or 着火了: it now reads only texts the semantic
# head reads, and a threat against the petitioner (老公说要杀了我) got violence patterns. Its threshold was chosen
# again on the nested CV with that code (0.3: recall 0.919 → 0.946, false alerts 2.2 % → 2.0 %), before the blind
# sets were scored again.
# Tenth round (same session): probing the ninth round's bundle with short sentences of our own showed two kinds of
# petition the training rows hardly had: threats and violence against the petitioner (the new patterns alone gave
# medium under the level model, or a self-harm flag) and dangerous goods stored where people live (私存汽油). 200
# rows on both were written by a helper who saw nothing of the detector. The CV that scores only the other rows
# gave recall 0.919 → 0.920 and false alerts 2.2 % → 2.4 % with them (base pipeline); they were kept, recall first,
# for the categories they cover, before the blind sets were scored again. Last, from the same probes: 该怎么办 /
# 谁负责 after a cue took it back even after a comma (楼道里煤气味两天了，该怎么办 was low); they now act only in the
# cue's own clause with no 了 between. That changed 5 authored rows (3 to their gold level, no hard negative to an
# alert). A nested CV then kept the level model's minimum length at 8 Chinese characters (12, 16, 20 lost recall).
# After round 4's first look only train-derived changes were made (urgent calls and a few critical boosters, from
# train rows that reached high instead of critical); the figures above the history are the second look.


BLIND_SETS = (8, 7, 6, 5, 4, 3, 2)  # newest first: the fewer times a set's aggregates were seen, the more its figure says
BLIND_NOTES = {
    2: "Written by another engineer who never sees the detector, during the third round of work. Its aggregates "
       "were looked at after the third round and after each round since. Aggregates only.",
    3: "Written at the start of the fourth round by another engineer who never saw the detector or the other sets; "
       "scored before that round's work and after each round since. Aggregates only.",
    4: "Written at the start of the fifth round, same conditions; scored before that round's work and after each "
       "round since. Aggregates only.",
    5: "Written at the start of the sixth round, same conditions, and scored first with the sixth round's detector "
       "(0.938 recall, 4.4 % false alerts); then after the conditional-threat boosters for gathering and "
       "escalation (no change) and after the seventh round. Aggregates only.",
    6: "Written at the start of the seventh round, same conditions, and scored first with the sixth round's "
       "detector (0.951 recall, 5.0 % false alerts); then after the seventh and eighth rounds, whose rows it did "
       "not choose. Aggregates only.",
    7: "Written at the start of the eighth round, same conditions, and scored first with the seventh round's "
       "detector (0.917 recall, 4.4 % false alerts); then after the eighth and ninth rounds, whose rows it did not "
       "choose. Aggregates only.",
    8: "Written at the start of the ninth round, same conditions, and scored first with the eighth round's "
       "detector (0.917 recall, 1.2 % false alerts); then with the ninth round's first bundle (0.938, 0.0 %), "
       "its final one (0.931, 0.0 %), the tenth round's (0.951, 0.0 %) and the last one (below), each decided "
       "before it was scored. The least used blind set. Aggregates only.",
}


def type_level(out, name: str) -> int:
    return max((f.level.rank for f in out.flags if f.type == name), default=0)


def val_tables(detector: RiskDetector, corpora: Path, split: str = "val", *, show_rows: bool = True) -> tuple[str, dict]:
    rows = load_examples(corpora, split=split)
    return example_tables(detector, rows, show_rows=show_rows)


def example_tables(detector: RiskDetector, rows: list[dict], *, show_rows: bool, outs=None) -> tuple[str, dict]:
    """Per-type and per-level tables over labelled rows (text, type, level); rows are quoted only if `show_rows`.
    `outs`: the detector's answers for `rows`, when the caller has them already."""
    outs = detector.detect([r["text"] for r in rows]) if outs is None else outs
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
    found_high = sum(type_level(o, r["type"]) >= HIGH for r, o in all_high)
    recall_high = found_high / max(1, len(all_high))

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

    exact = sum(type_level(o, r["type"]) == RANK[r["level"]] for r, o in positives) / max(1, len(positives))
    md = [
        f"{len(positives)} positives, {len(negatives)} hard negatives.\n",
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
        f"{len(false_alerts) / max(1, len(negatives)):.1%}**; flagged medium or above: {false_medium}/{len(negatives)}. "
        f"Exact level of positives: {exact:.3f}.",
    ]
    if misses and show_rows:
        md.append("\nMissed (gold ≥ high, flagged below high): " + "; ".join(
            f"{r['type']}/{r['level']} 「{r['text'][:40]}」 → {type_level(o, r['type'])}" for r, o in misses))
    if false_alerts and show_rows:
        md.append("\nFalse alerts: " + "; ".join(
            f"「{r['text'][:40]}」 → " + ",".join(f"{f.type}:{f.level.value}" for f in o.flags if f.level.rank >= HIGH)
            for r, o in false_alerts))
    summary = {
        "recall_high": recall_high, "false_alert_rate": len(false_alerts) / max(1, len(negatives)), "exact": exact,
        "found_high": found_high, "gold_high": len(all_high), "false_alerts": len(false_alerts), "negatives": len(negatives),
    }
    return "\n".join(md), summary


def blind_table(detector: RiskDetector, path: Path) -> str:
    """Aggregate figures on another engineer's blind set; no row is printed or returned."""
    rows = read_blind(path)
    if rows is None:
        return f"`{path.relative_to(ROOT)}` is absent or lacks the columns text, type (or risk_type), level: not scored."
    outs = detector.detect([r["text"] for r in rows])
    md, summary = example_tables(detector, rows, show_rows=False, outs=outs)
    explicit = read_explicit(path)
    if explicit:
        alerts = [(r, o) for r, o in zip(rows, outs) if RANK[r["level"]] >= HIGH]
        said = [(r, o) for r, o in alerts if explicit.get(r["id"])]
        inferred = [(r, o) for r, o in alerts if not explicit.get(r["id"])]
        found = sum(type_level(o, r["type"]) >= HIGH for r, o in said)
        found_inferred = sum(type_level(o, r["type"]) >= HIGH for r, o in inferred)
        md += (
            f"\n\nExplicit text (the issue's criterion): {len(said)} of the {len(alerts)} gold high/critical rows say the "
            "risk in plain words (evasive spellings included), as judged by an annotator who saw neither the detector "
            f"nor its output (`{path.stem}_explicit.csv`); **recall at high-or-above on them: {found / max(1, len(said)):.3f}** "
            f"({found}/{len(said)}); on the {len(inferred)} that must be inferred: {found_inferred}/{len(inferred)}. "
            f"**False alerts on hard negatives: {summary['false_alert_rate']:.1%}**."
        )
    return md


def print_misses(detector: RiskDetector, name: str, rows: list[dict]) -> None:
    """To the terminal only (never results.md): a development set's misses at high-or-above and its false alerts."""
    outs = detector.detect([r["text"] for r in rows])
    print(f"\n--- {name}: missed (gold ≥ high, flagged below high) and false alerts")
    for r, o in zip(rows, outs):
        flags = ",".join(f"{f.type}:{f.level.value}" for f in o.flags)
        if r["level"] != "none" and RANK[r["level"]] >= HIGH and type_level(o, r["type"]) < HIGH:
            print(f"MISS {r['type']}/{r['level']} -> {flags or 'none'} | {r['text']}")
        elif r["level"] == "none" and o.level.rank >= HIGH:
            print(f"FALSE {r['type']} -> {flags} | {r['text']}")


def read_blind(path: Path) -> list[dict] | None:
    """The blind set's rows as (text, type, level), or None when it is absent or lacks the columns."""
    if not path.is_file():
        return None
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    type_column = "type" if rows and "type" in rows[0] else "risk_type"
    if not rows or type_column not in rows[0] or "level" not in rows[0] or "text" not in rows[0]:
        return None
    return [
        {"id": r.get("id", ""), "text": r["text"], "type": r[type_column] or "", "level": (r["level"] or "none").strip()}
        for r in rows
    ]


def read_explicit(path: Path) -> dict[str, bool] | None:
    """For a blind set, the annotator's judgement of each positive (`<set>_explicit.csv`: id, explicit yes/no): does
    the text say the risk in plain words (evasive spellings included), or must a reader infer it? None if absent."""
    path = path.with_name(path.stem + "_explicit.csv")
    if not path.is_file():
        return None
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["id"]: r["explicit"].strip() == "yes" for r in csv.DictReader(fh)}


def semantic_table(detector: RiskDetector, sets: dict[str, list[dict]]) -> str:
    """Recall at high-or-above and false alerts with the semantic head off and on, per labelled set (aggregates)."""
    if getattr(detector, "semantic_classifier_", None) is None:
        return "This detector has no semantic head."
    off = copy.copy(detector)
    off.semantic_threshold = 1.01  # the same fitted parts; no probability reaches it
    off.level_model_ = None  # the level model was trained on the head's raises: judge the head without it
    plain = copy.copy(detector)
    plain.level_model_ = None
    return on_off_table(off, plain, sets, ("recall ≥ high, rules + n-grams", "+ semantic head"))


def level_table(detector: RiskDetector, sets: dict[str, list[dict]]) -> str:
    """The same with the level model off and on."""
    if getattr(detector, "level_model_", None) is None:
        return "This detector has no level model."
    off = copy.copy(detector)
    off.level_model_ = None
    return on_off_table(off, detector, sets, ("recall ≥ high, without", "with the level model"))


def on_off_table(off: RiskDetector, on: RiskDetector, sets: dict[str, list[dict]], names: tuple[str, str]) -> str:
    table = []
    pooled = {"off": [0, 0, 0, 0], "on": [0, 0, 0, 0]}
    for name, rows in sets.items():
        if not rows:
            table.append([name, "–", "absent", "", "", ""])
            continue
        _, before = example_tables(off, rows, show_rows=False)
        _, after = example_tables(on, rows, show_rows=False)
        negatives = sum(r["level"] == "none" for r in rows)
        table.append([
            name, f"{len(rows) - negatives} + {negatives}",
            f"{before['recall_high']:.3f}", f"**{after['recall_high']:.3f}**",
            f"{before['false_alert_rate']:.1%}", f"**{after['false_alert_rate']:.1%}**",
        ])
        if name.startswith("blind"):
            for key, summary in (("off", before), ("on", after)):
                pooled[key] = [a + b for a, b in zip(pooled[key], (
                    summary["found_high"], summary["gold_high"], summary["false_alerts"], summary["negatives"]))]
    if pooled["on"][1]:
        off_, on_ = pooled["off"], pooled["on"]
        table.append([
            "blind sets pooled", "",
            f"{off_[0] / off_[1]:.3f}", f"**{on_[0] / on_[1]:.3f}**", f"{off_[2] / off_[3]:.1%}", f"**{on_[2] / on_[3]:.1%}**",
        ])
    return markdown_table(["set", "rows (pos + neg)", names[0], names[1], "false alerts before", "after"], table)


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
        + ". The classifier's features (char 1–3, two heads averaged) were chosen among six variants on this "
        f"hold-out, so its figure is slightly optimistic; its C ({detector.classifier_c:g}, shared with the type "
        "classifier) by the cross-validation over our training rows. The README's 0.73 baseline was measured on "
        "another split."
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


def semantic_cost(detector: RiskDetector, texts: list[str]) -> str:
    """Time per petition with the semantic head off (not asked) and on, and how many texts it reads."""
    if getattr(detector, "semantic_classifier_", None) is None:
        return ""
    off = copy.copy(detector)
    off.semantic_min_chars = 10**9  # no text is long enough: USE is never run
    (wall_off, cpu_off), (wall_on, cpu_on) = timing(off, texts), timing(detector, texts)
    counting, read = copy.copy(detector), []
    counting._embed = lambda batch: (read.append(len(batch)), detector._embed(batch))[1]  # the first call: texts read whole
    counting.detect(texts)
    return (
        f"Without the semantic head (USE never run): {wall_off:.2f} ms wall-clock ({cpu_off:.2f} ms CPU); with it: "
        f"{wall_on:.2f} ms ({cpu_on:.2f} ms CPU). USE read {read[0] if read else 0} of the {len(texts)} petitions "
        f"(first {detector.semantic_max_chars} folded characters): those with at least "
        f"{detector.semantic_min_chars} Chinese characters and a risk word or an n-gram P(type) ≥ {detector.semantic_gate}. "
        "The level model's step is included in both figures. "
        "In the service every petition is encoded once anyway, for the duplicate index (in the encoder's own process), "
        "and the head reads that vector from the encoder's cache: there the risk step costs about the figure without "
        "the head. Each timed run starts with the encoder's cache empty."
    )


def timing(detector: RiskDetector, texts: list[str]) -> tuple[float, float]:
    """Median over 3 runs of wall-clock and of CPU milliseconds per text (CPU time is what other jobs on a shared
    machine do not inflate)."""
    detector.detect(texts[:20])
    wall, cpu = [], []
    for _ in range(3):
        # The encoder keeps recent vectors; a second run over the same texts would only look them up.
        getattr(getattr(detector, "_encoder", None), "_cache", {}).clear()
        start, start_cpu = time.perf_counter(), time.process_time()
        detector.detect(texts)
        wall.append((time.perf_counter() - start) * 1000 / len(texts))
        cpu.append((time.process_time() - start_cpu) * 1000 / len(texts))
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a saved risk detector directory (default: train one now)")
    parser.add_argument("--show-alerts", action="store_true", help="print every test.csv alert with its text")
    parser.add_argument(
        "--show-misses", action="store_true",
        help="print the misses and false alerts of val; never of the blind sets",
    )
    parser.add_argument(
        "--skip-blind", action="store_true",
        help="leave the blind sets unread (for runs while choosing anything); results.md is not updated",
    )
    args = parser.parse_args()
    shared = data_dir()
    corpora = ROOT / "corpora"
    start = time.perf_counter()
    detector = RiskDetector.load(args.bundle) if args.bundle else train_detector(shared, corpora)
    built = time.perf_counter() - start
    val_md, summary = val_tables(detector, corpora)
    val2_md, _ = val_tables(detector, corpora, "val2", show_rows=False)
    skipped = "skipped: --skip-blind"
    blind_paths = {n: corpora / "risk" / (f"val_blind{n}.csv" if not args.skip_blind else skipped) for n in BLIND_SETS}
    blind_mds = {n: blind_table(detector, path) for n, path in blind_paths.items()}
    if args.show_misses:
        print_misses(detector, "val", load_examples(corpora, split="val"))
    extra_md, _ = example_tables(detector, load_extra(corpora, part="holdout"), show_rows=False) if load_extra(
        corpora, part="holdout") else ("`corpora/risk/train_extra.csv` is not there yet.", None)
    labelled = {
        "val": load_examples(corpora, split="val"),
        "val2": load_examples(corpora, split="val2"),
        "train_extra hold-out": load_extra(corpora, part="holdout"),
        **{f"blind (val_blind{n})": read_blind(path) or [] for n, path in blind_paths.items()},
    }
    semantic_md = semantic_table(detector, labelled)
    level_md = level_table(detector, labelled)
    weibo_md = weibo_table(detector, shared)
    ordinary_md, (ms_long, cpu_long) = ordinary_table(detector, shared, args.show_alerts)
    val_texts = [r["text"] for r in load_examples(corpora, split="val")]
    ms_short, _ = timing(detector, val_texts)
    routing_texts = [compose(r["title"], r["content"]) for r in read_csv(shared / "routing" / "test.csv")]
    cost_md = semantic_cost(detector, routing_texts)
    md = "\n\n".join([
        f"Command: `python bench/risk.py`{' --bundle ' + str(args.bundle) if args.bundle else ''}. "
        f"Machine: {machine()} (shared with other jobs). Run {today()}; "
        f"{'loaded' if args.bundle else 'trained'} in {built:.1f} s.",
        "### Our examples (val split)",
        "`corpora/risk/examples.csv` split `val`: rounds 4 and 5 of the examples, never trained on. Their misses were "
        "read in earlier rounds and the issue quoted some of them, so the figure is somewhat optimistic.",
        val_md,
        "### Our examples (val2 split)",
        "`val2`: 91 rows written at the start of the second round, before any change of that round, never trained "
        "on or read for tuning; only aggregates are printed here.",
        val2_md,
        "### train_extra hold-out",
        "`corpora/risk/train_extra.csv` was written by another engineer than examples.csv; every third row (by a hash "
        "of its text, `load_extra(part='holdout')`) is never trained on. Aggregates only.",
        extra_md,
        *[part for n in BLIND_SETS for part in (f"### Blind set (corpora/risk/val_blind{n}.csv)", BLIND_NOTES[n], blind_mds[n])],
        "Rounds (see corpora/risk/README.md): each round's rows were scored, guided general fixes and moved to "
        "`train`; new rows written after a round showed how much the lexicon fitted the phrasings it was written "
        "with.\n\n"
        + markdown_table(["round", "val rows (pos + neg)", "recall ≥ high", "false alerts"], HISTORY),
        "### Semantic head (USE) off and on",
        "Same detector, the semantic head disabled (threshold above 1) or as trained; aggregates only. Its threshold "
        f"({detector.semantic_threshold}) and minimum length ({detector.semantic_min_chars} Chinese characters) were "
        "chosen on val, val2 and the train part of train_extra.csv scored by a detector trained without it, and kept "
        "by a 5-fold cross-validation of the whole detector over all training rows in the fourth round; the "
        "train_extra hold-out and the blind sets chose nothing.",
        semantic_md,
        "### Level model off and on",
        "Same detector without and with its level model (a logistic regression over what the other parts found, "
        "trained on their out-of-fold outputs over the authored training rows; `RiskLevelModel`). Its threshold "
        f"({detector.level_threshold}) was chosen on a nested 5-fold cross-validation over the training rows: the "
        "lowest whose false-alert rate was no higher than the detector's without it (recall 0.919 → 0.946, false "
        "alerts 2.2 % → 2.0 % there; 0.25 gave 0.952 with one false alert more). It reads only texts the semantic "
        "head reads. The held-out splits and the blind sets chose nothing; val_blind8 was first scored with it after "
        "it was fixed.",
        level_md,
        "### Self-harm classifier", weibo_md,
        "### Ordinary petitions", ordinary_md,
        "### Time",
        f"`detect` in batches, median of 3 runs: **{ms_long:.2f} ms per petition** wall-clock ({cpu_long:.2f} ms CPU) on routing/test.csv "
        f"(mean {statistics.mean(len(t) for t in (compose(r['title'], r['content']) for r in read_csv(shared / 'routing' / 'test.csv'))):.0f} chars), "
        f"{ms_short:.2f} ms on our val examples (short texts). {cost_md}",
    ])
    print(md)
    if not args.skip_blind:  # results.md keeps the figures of a full run only
        update_results_md("Risk", md)


if __name__ == "__main__":
    main()
