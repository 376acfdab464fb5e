"""Validate the hand-written routing corpora: authored petitions and the department table (承办单位表).

Checks ``corpora/routing/authored.csv``, ``corpora/routing/authored_hotline.csv`` and ``corpora/departments.yaml``
against the board's category tree (``routing/taxonomy.csv`` in the shared data directory, which is read, never
copied), then prints counts per class and split. With the shared data present it also measures how much of each
authored petition's text occurs verbatim in the real data, so a pasted row would be caught.

Usage::

    python corpora/routing/check.py [--data-dir PATH]

Exit status 0 when everything holds, 1 when a problem was found (each one is printed).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml

CORPORA = Path(__file__).resolve().parent.parent
PROJECT_ROOT = CORPORA.parent
COLUMNS = ["id", "title", "content", "category", "level2", "level3", "split"]
REAL_CLASSES = {"城乡建设", "劳动和社会保障", "教育文体", "商贸旅游", "环境保护", "卫生计生", "交通运输"}
MIN_PER_AUTHORED_CLASS = 50
VAL_SHARE = (0.15, 0.25)
MAX_CONTENT_CHARS = 300
OVERLAP_NGRAM = 10  # a shared run of 10 characters is already unlikely by chance in petition text
OVERLAP_LIMIT = 0.2  # flag a row when more than this share of its 10-grams appears in the real data


def default_data_dir() -> Path:
    """The shared data directory from the project's settings, or its default location beside the project."""
    try:
        sys.path.insert(0, str(PROJECT_ROOT))
        from triage.settings import get_settings

        return Path(get_settings().data_dir)
    except Exception:  # settings unavailable (e.g. checker run outside the project's environment)
        return PROJECT_ROOT.parent / "shared" / "data"


def load_taxonomy(data_dir: Path) -> tuple[set[str], set[tuple[str, str]], set[tuple[str, str, str]]]:
    """Level-1 names, (level1, level2) pairs and (level1, level2, level3) triples of the board's tree."""
    level1, level2, level3 = set(), set(), set()
    with open(data_dir / "routing" / "taxonomy.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            level1.add(row["level1"])
            level2.add((row["level1"], row["level2"]))
            level3.add((row["level1"], row["level2"], row["level3"]))
    return level1, level2, level3


def check_petitions(path: Path, allowed: set[str], taxonomy, problems: list[str], seen_ids: set[str]) -> list[dict]:
    """Validate one authored petition file; append problems; return its rows."""
    level1, level2, level3 = taxonomy
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            problems.append(f"{path.name}: columns {reader.fieldnames}, expected {COLUMNS}")
            return []
        rows = list(reader)
    texts = Counter()
    for n, row in enumerate(rows, start=2):
        where = f"{path.name}:{n} ({row['id']})"
        if None in row or any(v is None for v in row.values()):
            problems.append(f"{where}: wrong number of fields")
            continue
        if row["id"] in seen_ids:
            problems.append(f"{where}: duplicate id")
        seen_ids.add(row["id"])
        if not row["title"].strip() or not row["content"].strip():
            problems.append(f"{where}: empty title or content")
        if len(row["content"]) > MAX_CONTENT_CHARS:
            problems.append(f"{where}: content longer than {MAX_CONTENT_CHARS} characters")
        texts[row["title"] + "\n" + row["content"]] += 1
        if row["category"] not in level1:
            problems.append(f"{where}: category {row['category']!r} not in taxonomy")
        elif row["category"] not in allowed:
            problems.append(f"{where}: category {row['category']!r} does not belong in this file")
        if (row["category"], row["level2"]) not in level2:
            problems.append(f"{where}: level2 {row['level2']!r} not under {row['category']}")
        if row["level3"] and (row["category"], row["level2"], row["level3"]) not in level3:
            problems.append(f"{where}: level3 {row['level3']!r} not under {row['category']}/{row['level2']}")
        if row["split"] not in ("train", "val"):
            problems.append(f"{where}: split {row['split']!r} is not train/val")
    problems.extend(f"{path.name}: text repeated {k} times: {t[:30]}…" for t, k in texts.items() if k > 1)
    return rows


def check_splits(name: str, rows: list[dict], minimum: int, problems: list[str]) -> None:
    """Every class has at least `minimum` rows and a validation share inside VAL_SHARE; print the counts."""
    by_class: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        by_class[row["category"]][row["split"]] += 1
    print(f"\n{name}: {len(rows)} rows")
    print(f"  {'category':<12} train  val  total  level2 used")
    for category in sorted(by_class):
        c = by_class[category]
        total = c["train"] + c["val"]
        subtopics = len({r["level2"] for r in rows if r["category"] == category})
        print(f"  {category:<12} {c['train']:>5} {c['val']:>4} {total:>6}  {subtopics:>5}")
        if total < minimum:
            problems.append(f"{name}: {category} has {total} rows, fewer than {minimum}")
        share = c["val"] / total if total else 0.0
        if not VAL_SHARE[0] <= share <= VAL_SHARE[1]:
            problems.append(f"{name}: {category} validation share {share:.2f} outside {VAL_SHARE}")
    lengths = sorted(len(r["content"]) for r in rows)
    if lengths:
        print(f"  content length min/median/max: {lengths[0]}/{lengths[len(lengths) // 2]}/{lengths[-1]}")


def check_departments(path: Path, level1: set[str], level2: set[tuple[str, str]], problems: list[str]) -> None:
    """Validate the department table: ids, duties, rules, weights, coverage."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if doc.get("version") != 1:
        problems.append(f"{path.name}: version must be 1")
    if not isinstance(doc.get("city"), str):
        problems.append(f"{path.name}: city missing")
    ids = []
    for dept in doc.get("departments", []):
        for key in ("id", "name", "short", "duties"):
            if not isinstance(dept.get(key), str) or not dept[key].strip():
                problems.append(f"{path.name}: department {dept.get('id')!r} lacks {key}")
        if not dept.get("id", "").isascii() or not dept.get("id", "").replace("_", "").isalnum():
            problems.append(f"{path.name}: id {dept.get('id')!r} is not ascii snake_case")
        ids.append(dept.get("id"))
    for dup, k in Counter(ids).items():
        if k > 1:
            problems.append(f"{path.name}: id {dup!r} defined {k} times")
    used: set[str] = set()
    defaults = Counter()
    seen_rules = set()
    kinds = Counter()
    for n, rule in enumerate(doc.get("routing", []), start=1):
        where = f"{path.name}: rule {n} ({rule.get('category')}/{rule.get('level2') or rule.get('keywords') or '-'})"
        unknown = set(rule) - {"category", "level2", "keywords", "departments"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        if rule.get("category") not in level1:
            problems.append(f"{where}: category not in taxonomy")
        if "level2" in rule and (rule.get("category"), rule["level2"]) not in level2:
            problems.append(f"{where}: level2 not under this category in taxonomy")
        if "level2" in rule and "keywords" in rule:
            problems.append(f"{where}: give level2 or keywords, not both")
        if "keywords" in rule:
            words = rule["keywords"]
            if not words or not all(isinstance(w, str) and w.strip() for w in words):
                problems.append(f"{where}: keywords must be a non-empty list of strings")
            kinds["keywords"] += 1
        elif "level2" in rule:
            key = (rule["category"], rule["level2"])
            if key in seen_rules:
                problems.append(f"{where}: second rule for the same level2")
            seen_rules.add(key)
            kinds["level2"] += 1
        else:
            defaults[rule.get("category")] += 1
            kinds["category"] += 1
        weights = rule.get("departments") or {}
        if not weights:
            problems.append(f"{where}: no departments")
        for dept, w in weights.items():
            if dept not in ids:
                problems.append(f"{where}: unknown department {dept!r}")
            if not isinstance(w, (int, float)) or not 0 < w <= 1:
                problems.append(f"{where}: weight {w!r} for {dept} not in (0, 1]")
            used.add(dept)
        if abs(sum(weights.values()) - 1.0) > 1e-9:
            problems.append(f"{where}: weights sum to {sum(weights.values()):.3f}, not 1")
    for category in sorted(level1):
        if defaults[category] != 1:
            problems.append(f"{path.name}: {category} has {defaults[category]} default rules, expected 1")
    for dept in sorted(set(ids) - used):
        problems.append(f"{path.name}: department {dept!r} is used by no rule")
    print(f"\n{path.name}: {len(ids)} departments, {sum(kinds.values())} rules "
          f"({kinds['category']} category, {kinds['level2']} level2, {kinds['keywords']} keyword)")


def check_overlap(rows: list[dict], data_dir: Path, problems: list[str]) -> None:
    """Report how much authored text occurs verbatim in the real board data (a guard against pasted rows)."""
    real: set[str] = set()
    for name in ("train.csv", "test.csv", "unlabeled.csv"):
        path = data_dir / "routing" / name
        if not path.exists():
            continue
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                text = (row.get("title") or "") + "\n" + (row.get("content") or "")
                real.update(text[i : i + OVERLAP_NGRAM] for i in range(len(text) - OVERLAP_NGRAM + 1))
    worst = (0.0, "")
    for row in rows:
        text = row["title"] + "\n" + row["content"]
        grams = [text[i : i + OVERLAP_NGRAM] for i in range(len(text) - OVERLAP_NGRAM + 1)]
        if not grams:
            continue
        share = sum(g in real for g in grams) / len(grams)
        worst = max(worst, (share, row["id"]))
        if share > OVERLAP_LIMIT:
            problems.append(f"{row['id']}: {share:.0%} of its {OVERLAP_NGRAM}-grams occur verbatim in the real data")
    print(f"\nverbatim overlap with real board data: worst row {worst[1]} at {worst[0]:.1%} of {OVERLAP_NGRAM}-grams")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="shared data directory (holds routing/taxonomy.csv)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    if not (data_dir / "routing" / "taxonomy.csv").exists():
        print(f"taxonomy not found under {data_dir}; pass --data-dir", file=sys.stderr)
        return 1
    taxonomy = load_taxonomy(data_dir)
    level1 = taxonomy[0]
    problems: list[str] = []
    seen_ids: set[str] = set()
    here = Path(__file__).resolve().parent
    authored = check_petitions(here / "authored.csv", level1 - REAL_CLASSES, taxonomy, problems, seen_ids)
    hotline = check_petitions(here / "authored_hotline.csv", REAL_CLASSES, taxonomy, problems, seen_ids)
    check_splits("authored.csv", authored, MIN_PER_AUTHORED_CLASS, problems)
    check_splits("authored_hotline.csv", hotline, 8, problems)
    check_departments(CORPORA / "departments.yaml", level1, taxonomy[1], problems)
    check_overlap(authored + hotline, data_dir, problems)
    print()
    for p in problems:
        print("PROBLEM", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
