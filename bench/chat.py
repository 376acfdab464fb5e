#!/usr/bin/env python3
"""Chat intake through the real HTTP API: completion rate, turns per ticket, reply latency.

    python bench/chat.py [--conversations 200]

Plays the scripted conversations of tests/conversations/*.yaml (cycled up to the requested number) against a
fresh server, one message at a time, and checks each against its script. Prints a table, updates bench/results.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, markdown_table, today, update_results_md  # noqa: E402
from tests.api.test_intake import http_backend  # noqa: E402
from tests.conftest import RunningServer  # noqa: E402
from tests.conversations.runner import load_conversations, run_conversation  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=200)
    args = parser.parse_args()
    scripts = load_conversations()
    server = RunningServer(Path(tempfile.mkdtemp(prefix="bench-chat-")), ROOT / "models").start()
    latencies: list[float] = []
    passed = submitted = expected_submissions = 0
    turns_to_ticket: list[int] = []
    try:
        with server.client() as client:
            for n in range(args.conversations):
                script = scripts[n % len(scripts)]
                send = http_backend(client)
                state = {"turns": 0, "ticket_at": None}

                def timed(text: str) -> dict:
                    started = time.perf_counter()
                    observed = send(text)
                    latencies.append((time.perf_counter() - started) * 1000)
                    state["turns"] += 1
                    if observed.get("ticket_no") and state["ticket_at"] is None:
                        state["ticket_at"] = state["turns"]
                    return observed

                failures = run_conversation(script, timed, now=datetime.now(ZoneInfo("Asia/Shanghai")))
                passed += not failures
                if script.get("final_status") == "submitted":
                    expected_submissions += 1
                    if state["ticket_at"] is not None:
                        submitted += 1
                        turns_to_ticket.append(state["ticket_at"])
    finally:
        server.stop()
    rows = [[
        args.conversations,
        f"{passed / args.conversations:.1%}",
        f"{submitted}/{expected_submissions} ({submitted / max(expected_submissions, 1):.1%})",
        f"{statistics.median(turns_to_ticket):.0f} / {max(turns_to_ticket)}" if turns_to_ticket else "—",
        f"{statistics.median(latencies):.1f}",
        f"{percentile(latencies, 95):.1f}",
        len(latencies),
    ]]
    markdown = (
        f"Command: `python bench/chat.py --conversations {args.conversations}`. Machine: {machine()}. Run {today()}. "
        f"{len(scripts)} scripted conversations (tests/conversations/*.yaml) cycled; each message is one HTTP POST to a "
        "fresh server (SQLite), and a confirmed chat runs the whole triage pipeline and opens a ticket.\n\n"
        + markdown_table(
            ["conversations", "passed their script", "ended with a ticket (of those scripted to)", "turns to ticket (median / max)",
             "reply p50 ms", "reply p95 ms", "messages"],
            rows,
        )
    )
    print(markdown)
    update_results_md("Chat intake over HTTP", markdown)


if __name__ == "__main__":
    main()
