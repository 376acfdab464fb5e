#!/usr/bin/env python3
"""Duplicate search latency with a large store: the whole `duplicates_of` path, not only the index.

    python bench/duplicate_search.py [--petitions 100000] [--queries 300]

Fills a fresh SQLite store with N petitions (real texts from the shared routing and stream files, cycled with a
number so no two are identical; synthetic unit vectors, since encoding 100k texts here would take 15 minutes), opens
the service's Matcher on it (index chosen by size: HNSW past `index_hnsw_from`), then times
`Matcher.duplicates_of` — index neighbours, the same petitioner's history, lexical and vector scoring, the verdict —
for random stored petitions. Prints a table and updates bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import data_dir, machine, markdown_table, read_csv, today, update_results_md  # noqa: E402


def texts() -> list[tuple[str, str]]:
    rows = []
    for name in ("routing/train.csv", "routing/unlabeled.csv", "streams/board_replies.csv", "streams/gas_heating_complaints.csv"):
        rows += [(r["title"], r["content"][:400]) for r in read_csv(data_dir() / name)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--petitions", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dupsearch-"))
    os.environ["TRIAGE_DATABASE_URL"] = f"sqlite:///{work / 'store.db'}"
    os.environ["TRIAGE_INDEX_DIR"] = str(work / "index")
    from sqlalchemy import insert

    from triage.matching import Matcher
    from triage.settings import Settings
    from triage.store.db import Database
    from triage.store.models import Petition

    settings = Settings()
    db = Database(settings.database_url)
    db.migrate()
    rng = np.random.default_rng(0)
    pool = texts()
    start_time = datetime(2026, 1, 1, tzinfo=timezone.utc)
    started = time.perf_counter()
    batch = 5000
    for offset in range(0, args.petitions, batch):
        n = min(batch, args.petitions - offset)
        vectors = rng.standard_normal((n, 512)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = []
        for i in range(n):
            k = offset + i
            title, content = pool[k % len(pool)]
            rows.append({
                "id": f"P{k:07d}", "title": title, "content": f"{content}（第{k}号）", "content_masked": content,
                "channel": "web", "petitioner_id": f"U{k % 40000}", "received_at": start_time + timedelta(minutes=5 * k),
                "created_at": start_time + timedelta(minutes=5 * k), "request_hash": str(k), "status": "triaged",
                "vector": vectors[i].tobytes(), "place": None,
            })
        with db.session() as session:
            session.execute(insert(Petition), rows)
    fill_s = time.perf_counter() - started
    matcher = Matcher(settings)
    started = time.perf_counter()
    matcher.open(db)
    open_s = time.perf_counter() - started
    picks = random.Random(1).sample(range(args.petitions), args.queries)
    timings, found = [], 0
    with db.session() as session:
        for k in picks[:20]:  # warm-up
            matcher.duplicates_of(session, f"P{k:07d}")
        for k in picks:
            t0 = time.perf_counter()
            found += bool(matcher.duplicates_of(session, f"P{k:07d}"))
            timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    markdown = (
        f"Command: `python bench/duplicate_search.py --petitions {args.petitions} --queries {args.queries}`. "
        f"Machine: {machine()}. Run {today()}. Store filled in {fill_s:.0f} s; the Matcher opened it (rebuilding the "
        f"index from the stored vectors, fitting the lexical IDF, catching the clusterer up) in {open_s:.0f} s. "
        "Vectors are synthetic, so the neighbours are random: the figure is the cost of the path, not its quality.\n\n"
        + markdown_table(
            ["stored petitions", "index", "queries", "p50 ms", "p95 ms", "p99 ms", "target"],
            [[f"{args.petitions:,}", type(matcher.index).__name__ + f" ({matcher.backend_for(args.petitions)})", len(timings),
              round(statistics.median(timings), 2), round(timings[int(0.95 * (len(timings) - 1))], 2),
              round(timings[int(0.99 * (len(timings) - 1))], 2), "p50 ≤ 10 ms"]],
        )
    )
    print(markdown)
    update_results_md("Duplicate search at scale", markdown)


if __name__ == "__main__":
    main()
