"""Shared helpers for the benchmark scripts: loading the shared data, describing the machine, and writing one
`## section` of bench/results.md without touching the others."""

from __future__ import annotations

import csv
import datetime as dt
import os
import platform
import re
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_MD = BENCH_DIR / "results.md"
PROJECT_ROOT = BENCH_DIR.parent


def data_dir() -> Path:
    """The shared data directory from settings (TRIAGE_DATA_DIR), failing clearly when it is absent."""
    from triage.settings import get_settings

    path = Path(get_settings().data_dir)
    if not path.is_dir():
        raise SystemExit(f"shared data not found at {path}: set TRIAGE_DATA_DIR")
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV as dicts (missing cells become '')."""
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        return [{k: (v or "") for k, v in row.items()} for row in csv.DictReader(handle)]


def machine() -> str:
    """'<cpu model>, <n> cores, Python x.y' from /proc/cpuinfo (falls back to platform)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table; floats printed with 3 decimals."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def update_results_md(section: str, markdown: str, path: Path = RESULTS_MD) -> Path:
    """Replace the `## {section}` block of results.md (up to the next `## `) or append it if absent."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = f"## {section}\n\n{markdown.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(section)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: block + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    return path
