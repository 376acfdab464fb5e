#!/usr/bin/env python3
"""Latency, throughput and memory of the served path.

    python bench/latency.py [--requests 500] [--batch-rows 2000]

Starts the real server (`triage serve`, a fresh SQLite file, the promoted bundle), sends single petitions one at a
time over HTTP and reports p50/p95/p99 of POST /v1/triage; times `triage predict` on a file for batch throughput;
reads the server's resident memory (VmRSS, VmHWM) from /proc. Prints a table and updates bench/results.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, update_results_md  # noqa: E402
from tests.conftest import RunningServer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "routing"


def sample_petitions(limit: int) -> list[dict]:
    """Real petitions from test.csv and unlabeled.csv (titles + content), or authored ones when absent."""
    rows = []
    for name in ("test.csv", "unlabeled.csv"):
        path = DATA / name
        if path.is_file():
            with open(path, encoding="utf-8") as handle:
                rows += [{"title": r["title"], "content": r["content"] or r["title"]} for r in csv.DictReader(handle)]
    if not rows:
        with open(ROOT / "corpora" / "routing" / "authored.csv", encoding="utf-8") as handle:
            rows = [{"title": r["title"], "content": r["content"]} for r in csv.DictReader(handle)]
    return [rows[i % len(rows)] for i in range(limit)]


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of the process and of its children (the server's encoder runs in a child process)."""
    fields = {"VmRSS": 0, "VmHWM": 0}
    for one in [pid, *children(pid)]:
        with open(f"/proc/{one}/status") as handle:
            for line in handle:
                if line.startswith(("VmRSS", "VmHWM")):
                    key, value = line.split(":")
                    fields[key] += int(value.split()[0])
    return fields


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        path = task / "children"
        if path.exists():
            found += [int(c) for c in path.read_text().split()]
    return found + [grandchild for child in found for grandchild in children(child)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def bench_http(requests: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    server = RunningServer(workdir, ROOT / "models").start()
    try:
        idle = memory_kb(server.process.pid)
        petitions = sample_petitions(requests + 20)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for petition in petitions[:20]:  # warm-up: first calls pay for lazy imports and caches
                client.post("/v1/triage", json=petition).raise_for_status()
            timings = []
            for petition in petitions[20:]:
                started = time.perf_counter()
                client.post("/v1/triage", json=petition).raise_for_status()
                timings.append((time.perf_counter() - started) * 1000)
            batch = petitions[:200]
            started = time.perf_counter()
            client.post("/v1/triage/batch", json={"petitions": batch}).raise_for_status()
            batch_seconds = time.perf_counter() - started
        busy = memory_kb(server.process.pid)
    finally:
        server.stop()
    return {
        "requests": len(timings),
        "p50_ms": statistics.median(timings),
        "p95_ms": percentile(timings, 95),
        "p99_ms": percentile(timings, 99),
        "mean_ms": statistics.fmean(timings),
        "http_batch_per_s": len(batch) / batch_seconds,
        "rss_idle_mb": idle["VmRSS"] / 1024,
        "rss_mb": busy["VmRSS"] / 1024,
        "rss_peak_mb": busy["VmHWM"] / 1024,
    }


def bench_predict(rows: int, workers: int | None = None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    env = {**os.environ, "TRIAGE_MODELS_DIR": str(ROOT / "models")}
    extra = ["--workers", str(workers)] if workers else []

    def run(n: int) -> float:
        source = workdir / f"input-{n}.jsonl"
        with open(source, "w", encoding="utf-8") as handle:
            for i, petition in enumerate(sample_petitions(n)):
                handle.write(json.dumps({"id": str(i), **petition}, ensure_ascii=False) + "\n")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "triage.cli", "predict", str(source), "--output", str(workdir / f"out-{n}.jsonl"), *extra],
            check=True, env=env, stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started

    total = run(rows)
    # Steady state as the marginal rate between a half-size and the full file: start-up (imports, spawning the
    # workers, each loading the bundle) is paid by both runs and cancels out.
    half = rows // 2
    total_half = run(half)
    steady = (rows - half) / max(total - total_half, 1e-9)
    from triage.batch import default_workers

    return {"rows": rows, "seconds": total, "startup_s": max(0.0, total - rows / steady), "per_s": rows / total,
            "steady_per_s": steady, "workers": workers or default_workers()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--batch-rows", type=int, default=2000)
    args = parser.parse_args()
    http = bench_http(args.requests)
    predict = bench_predict(args.batch_rows)
    single = bench_predict(args.batch_rows, workers=1)
    table = "\n".join(
        [
            "| figure | value | target |",
            "|---|---|---|",
            f"| POST /v1/triage p50 (sequential, {http['requests']} requests) | {http['p50_ms']:.1f} ms | ≤ 20 ms |",
            f"| POST /v1/triage p95 | {http['p95_ms']:.1f} ms | |",
            f"| POST /v1/triage p99 | {http['p99_ms']:.1f} ms | ≤ 100 ms |",
            f"| POST /v1/triage/batch, 200 petitions | {http['http_batch_per_s']:.0f} petitions/s | |",
            f"| `triage predict`, {predict['rows']} rows, whole command ({predict['workers']} worker processes) | {predict['per_s']:.0f} petitions/s | ≥ 300/s |",
            f"| `triage predict`, steady state (marginal rate between {predict['rows'] // 2} and {predict['rows']} rows; start-up ≈ {predict['startup_s']:.1f} s) | {predict['steady_per_s']:.0f} petitions/s | |",
            f"| `triage predict --workers 1`, whole command / steady state | {single['per_s']:.0f} / {single['steady_per_s']:.0f} petitions/s | |",
            f"| server RSS idle / after the run / peak (with its encoder process) | {http['rss_idle_mb']:.0f} / {http['rss_mb']:.0f} / {http['rss_peak_mb']:.0f} MB | ≤ 1.5 GB |",
        ]
    )
    markdown = (
        f"Command: `python bench/latency.py --requests {args.requests} --batch-rows {args.batch_rows}`. "
        f"Machine: {machine()}. Each POST stores the petition and its result in SQLite (WAL) before answering.\n\n"
        + table
    )
    print(markdown)
    update_results_md("Latency and memory", markdown)


if __name__ == "__main__":
    main()
