#!/usr/bin/env python3
"""Speed of the 督办 scheduler: one pass over 100,000 synthetic open tickets, then an idempotent second pass.

    python bench/lifecycle.py [--tickets 100000] [--repeats 3] [--seed 7]

Builds tickets with a mix of states, urgencies, categories, chain levels and ages (0–20 days, deadlines from
corpora/sla.yaml), then times `scheduler_pass` at one fixed ``now``: a cold pass (nothing marked yet), the same pass
again after its results are applied (must yield nothing), and a steady pass five minutes later. Prints a table and
replaces the "Lifecycle scheduler" section of bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, update_results_md  # noqa: E402
from triage.lifecycle import Escalation, OverdueMark, TicketView, apply_pass, scheduler_pass  # noqa: E402
from triage.sla import SlaPolicy  # noqa: E402

SECTION = "Lifecycle scheduler"
BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=BEIJING)
STATES = {"received": 3, "assigned": 20, "returned": 2, "accepted": 10, "handling": 50, "reopened": 3, "replied": 12}
CATEGORIES = [None] * 8 + ["燃气供应", "自来水供应", "安全隐患", "冬季采暖"]
LEVELS = ["村/社区"] * 10 + ["街道/乡镇"] * 60 + ["区县"] * 30


def build_tickets(policy: SlaPolicy, count: int, seed: int) -> list[TicketView]:
    rng = random.Random(seed)
    states = rng.choices(list(STATES), weights=list(STATES.values()), k=count)
    urgencies = ["urgent" if rng.random() < 0.15 else "normal" for _ in range(count)]
    categories = [rng.choice(CATEGORIES) for _ in range(count)]
    received = [NOW - timedelta(seconds=rng.uniform(0, 20 * 86400)) for _ in range(count)]
    deadlines = policy.deadlines_batch(urgencies, categories, received)
    tickets = []
    for i in range(count):
        escalated = rng.random() < 0.1
        tickets.append(TicketView(
            id=f"T-{i:06d}",
            state=states[i],
            urgency=urgencies[i],
            received_at=received[i],
            accept_by=deadlines[i].accept_by,
            reply_by=deadlines[i].reply_by,
            category=categories[i],
            department_id=f"D-{rng.randrange(120)}",
            level=rng.choice(LEVELS),
            escalation_level=1 if escalated else 0,
            last_escalated_at=received[i] + (NOW - received[i]) / 2 if escalated else None,
        ))
    return tickets


def timed(function, repeats: int):
    runs, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result


def store_pass(tickets: list[TicketView], policy: SlaPolicy) -> tuple[float, float, dict, dict]:
    """The same pass through the store, as the service runs it: load open tickets, decide, write marks,
    escalations and audit events, commit. Returns (cold seconds, repeat seconds, cold counts, repeat counts)."""
    from sqlalchemy import insert

    from triage.store.db import Database
    from triage.store.models import Petition, Ticket
    from triage.tickets import run_scheduler

    db = Database(f"sqlite:///{tempfile.mkdtemp(prefix='bench-lifecycle-')}/store.db")
    db.migrate()
    with db.session() as session:
        session.execute(insert(Petition), [
            {"id": t.id, "content": "…", "content_masked": "…", "channel": "hotline", "received_at": t.received_at,
             "created_at": t.received_at, "request_hash": t.id, "status": "triaged"} for t in tickets])
        session.execute(insert(Ticket), [
            {"id": t.id, "petition_id": t.id, "state": t.state, "urgency": t.urgency, "category": t.category,
             "department_id": t.department_id, "level": t.level, "received_at": t.received_at, "accept_by": t.accept_by,
             "reply_by": t.reply_by, "escalation_level": t.escalation_level, "last_escalated_at": t.last_escalated_at,
             "created_at": t.received_at, "updated_at": t.received_at} for t in tickets])
    timings, counts = [], []
    for _ in range(2):
        start = time.perf_counter()
        with db.session() as session:
            counts.append(run_scheduler(session, policy, NOW))
        timings.append(time.perf_counter() - start)
    db.dispose()
    return timings[0], timings[1], counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    load = os.getloadavg()[0]
    policy = SlaPolicy.load(ROOT / "corpora" / "sla.yaml")
    start = time.perf_counter()
    tickets = build_tickets(policy, args.tickets, args.seed)
    build_s = time.perf_counter() - start
    sample = tickets[: min(10_000, len(tickets))]
    start = time.perf_counter()
    for ticket in sample:
        policy.deadlines(ticket.urgency, ticket.category, ticket.received_at)
    single_us = (time.perf_counter() - start) / len(sample) * 1e6
    start = time.perf_counter()
    policy.deadlines_batch([t.urgency for t in tickets], [t.category for t in tickets], [t.received_at for t in tickets])
    batch_us = (time.perf_counter() - start) / len(tickets) * 1e6

    cold_s, cold = timed(lambda: scheduler_pass(tickets, NOW, policy=policy), args.repeats)
    applied = apply_pass(tickets, cold)
    again_s, again = timed(lambda: scheduler_pass(applied, NOW, policy=policy), args.repeats)
    later = NOW + timedelta(minutes=5)
    steady_s, steady = timed(lambda: scheduler_pass(applied, later, policy=policy), args.repeats)
    if again:
        raise SystemExit(f"idempotency broken: the second pass at the same time produced {len(again)} results")
    store_cold_s, store_again_s, store_cold, store_again = store_pass(tickets, policy)
    if store_again["overdue"] or store_again["escalated"]:
        raise SystemExit(f"idempotency broken in the store: {store_again}")

    def counts(results) -> str:
        kinds = Counter(type(r).__name__ for r in results)
        return f"{kinds.get(OverdueMark.__name__, 0):,} marks, {kinds.get(Escalation.__name__, 0):,} escalations"

    states = Counter(t.state for t in tickets)
    command = "python bench/lifecycle.py " + " ".join(sys.argv[1:])
    rows = [
        ("cold pass (nothing marked yet)", cold_s, counts(cold)),
        ("same `now` after applying (idempotent)", again_s, counts(again)),
        ("steady pass 5 min later", steady_s, counts(steady)),
    ]
    table = ["| pass | median of {} (s) | tickets/s | results |".format(args.repeats), "|---|---:|---:|---|"]
    table += [f"| {name} | {secs:.3f} | {args.tickets / secs:,.0f} | {what} |" for name, secs, what in rows]
    markdown = "\n".join([
        f"`scheduler_pass` over {args.tickets:,} synthetic open tickets (seed {args.seed}; states "
        + ", ".join(f"{s} {n:,}" for s, n in states.most_common())
        + "; 15 % urgent; ages 0–20 days; deadlines and chain from corpora/sla.yaml). First the pure pass (no database), then the same through the store.",
        "",
        *table,
        "",
        f"Deadlines: `SlaPolicy.deadlines` {single_us:.0f} µs per ticket one at a time, `deadlines_batch` "
        f"{batch_us:.1f} µs per ticket over {args.tickets:,}. Building the synthetic tickets took {build_s:.1f} s.",
        "",
        "Through the store (SQLite, `triage.tickets.run_scheduler`: load every open ticket, decide, write the marks, "
        "escalations and their audit events, commit), as the service's background scheduler runs it:",
        "",
        "| pass | seconds | results |",
        "|---|---:|---|",
        f"| cold | {store_cold_s:.1f} | {store_cold['overdue']:,} overdue marks, {store_cold['escalated']:,} escalations |",
        f"| again at the same `now` | {store_again_s:.1f} | {store_again['overdue']:,} marks, {store_again['escalated']:,} escalations |",
        "",
        f"Machine: {machine()}; load average {load:.1f} when the run started (the machine is shared, "
        f"so timings vary by about 2×). Command: `{command.strip()}`.",
    ])
    print(markdown)
    update_results_md(SECTION, markdown)


if __name__ == "__main__":
    main()
