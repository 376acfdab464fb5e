#!/usr/bin/env python3
"""Ingest the shared message streams in time order, as the hotline would POST them, and show the hottest clusters.

    python bench/ingest.py [--limit N]

For each stream (gas/heating complaints, board messages): sort by time, run `triage ingest` on a fresh SQLite
store (routing, risk, duplicates and clustering for every row, every row stored), time it, then read the 15
hottest clusters with `triage clusters --json` as of the newest petition. Prints and updates bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import data_dir, machine, markdown_table, read_csv, today, update_results_md  # noqa: E402
from triage.cli import _parse_time  # noqa: E402

STREAMS = {
    "gas_heating_complaints.csv": "People's Daily board, gas and heating, winter 2022–23 (real places)",
    "board_replies.csv": "city message board 2019–20 (anonymised places)",
}


def stream_rows(path: Path, limit: int | None) -> list[dict]:
    rows = read_csv(path)
    for row in rows:
        row["_t"] = _parse_time(row.get("time"))
    rows.sort(key=lambda r: (r["_t"] is None, r["_t"] or 0, r["id"]))
    out = []
    for row in rows[:limit]:
        item = {"id": row["id"], "title": row["title"], "content": row["content"] or row["title"], "time": row["time"]}
        if row.get("user"):
            item["user"] = row["user"]
        place = "".join(row.get(k, "") for k in ("province", "city", "county"))
        if place:
            item["location"] = place
        out.append(item)
    return out


def run(name: str, limit: int | None) -> tuple[dict, list[dict]]:
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    rows = stream_rows(data_dir() / "streams" / name, limit)
    source = work / "stream.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    env = {
        **os.environ,
        "TRIAGE_DATABASE_URL": f"sqlite:///{work / 'triage.db'}",
        "TRIAGE_INDEX_DIR": str(work / "index"),
        "TRIAGE_MODELS_DIR": str(ROOT / "models"),
    }
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "triage.cli", "ingest", str(source), "--output", str(work / "out.jsonl")],
                          check=True, env=env, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    summary = re.search(r"ingested \d+ rows in ([\d.]+) s .* after ([\d.]+) s of start-up", done.stderr)
    results = [json.loads(line) for line in (work / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    clusters = json.loads(subprocess.run(
        [sys.executable, "-m", "triage.cli", "clusters", "--json", "--limit", "15"],
        check=True, env=env, capture_output=True, text=True,
    ).stdout)
    stats = {
        "rows": len(rows),
        "seconds": seconds,
        "per_s": len(rows) / seconds,
        "steady_per_s": len(rows) / float(summary.group(1)) if summary else float("nan"),
        "startup_s": float(summary.group(2)) if summary else float("nan"),
        "with_duplicates": sum(1 for r in results if r.get("duplicates")),
        "repeats": sum(1 for r in results for d in r.get("duplicates", []) if d["kind"] == "repeat"),
        "same_event": sum(1 for r in results for d in r.get("duplicates", []) if d["kind"] == "same_event"),
        "in_cluster": sum(1 for r in results if r.get("cluster")),
        "alerts": sum(1 for r in results if r.get("risk", {}).get("level") in ("high", "critical")),
    }
    return stats, clusters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows of each stream (in time order)")
    args = parser.parse_args()
    sections = [
        f"Command: `python bench/ingest.py{' --limit ' + str(args.limit) if args.limit else ''}`. Machine: {machine()}. "
        f"Run {today()}. Each row goes through the whole service path in process (`triage ingest`: store, route, "
        "risk, encode, duplicates, cluster; 64 rows per transaction); the time includes start-up (imports, bundle, "
        "encoder load) in the whole-command columns; the rate after start-up is the one `triage ingest` reports itself "
        "(once imports, store, bundle and sentence model are loaded). Heat is as of each stream's newest petition.",
    ]
    for name, description in STREAMS.items():
        stats, clusters = run(name, args.limit)
        sections.append(f"### {name}: {description}")
        sections.append(markdown_table(
            ["rows", "seconds (whole command)", "petitions/s (whole command)", "start-up s", "petitions/s after start-up",
             "with a duplicate", "repeat links", "same-event links", "in a visible cluster", "high/critical"],
            [[stats["rows"], round(stats["seconds"], 1), round(stats["per_s"], 1), round(stats["startup_s"], 1),
              round(stats["steady_per_s"], 1), stats["with_duplicates"],
              stats["repeats"], stats["same_event"], stats["in_cluster"], stats["alerts"]]],
        ))
        sections.append("Top 15 clusters by heat:\n")
        sections.append(markdown_table(
            ["#", "title", "size", "petitioners", "area", "trend", "heat", "keywords"],
            [[i + 1, c["title"], c["size"], c["petitioners"], c["area"] or "—", c["trend"], round(c["heat"], 2),
              "、".join(c["keywords"][:5])] for i, c in enumerate(clusters)],
        ))
    markdown = "\n\n".join(sections)
    print(markdown)
    update_results_md("Ingest and clusters of the streams", markdown)


if __name__ == "__main__":
    main()
