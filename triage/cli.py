"""The `triage` command: serve, predict, train, evaluate, bundle list/promote/rollback."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from triage.errors import TriageError
from triage.settings import get_settings

app = typer.Typer(help="petition-triage: route, de-duplicate, cluster and risk-flag Chinese citizen petitions.")
bundle_app = typer.Typer(help="List, promote and roll back model bundles.")
app.add_typer(bundle_app, name="bundle")
feedback_app = typer.Typer(help="Operators' routing corrections.")
app.add_typer(feedback_app, name="feedback")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default TRIAGE_HOST or 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default TRIAGE_PORT or 8000).")] = None,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs).

    One process: the duplicate index and the cluster state live in it (saved beside the store), so several worker
    processes would each see only part of the stream.
    """
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.main:app_factory",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
    )


@app.command()
def predict(
    input: Annotated[Path, typer.Argument(help="CSV or JSONL with id, title, content.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="JSONL out (default: stdout).")] = None,
    bundle: Annotated[Optional[str], typer.Option(help="Bundle name (default: the promoted one).")] = None,
    batch_size: Annotated[int, typer.Option(help="Petitions per model call.")] = 256,
    workers: Annotated[
        Optional[int], typer.Option(help="Worker processes (default: one per core, at most 4; 1 = this process only).")
    ] = None,
) -> None:
    """Triage a file without storing anything: one TriageResult JSON per input row, same ids, same order."""
    from tqdm import tqdm

    from triage.batch import default_workers, predict_chunks
    from triage.training import read_rows

    settings = get_settings()
    try:
        rows = read_rows(input)
        chunks = predict_chunks(
            rows, settings, bundle=bundle, batch_size=batch_size, workers=workers if workers is not None else default_workers()
        )
        sink = open(output, "w", encoding="utf-8") if output else sys.stdout
        try:
            with tqdm(total=len(rows), desc="predict", unit="petition", file=sys.stderr) as bar:
                for lines in chunks:
                    sink.write("".join(line + "\n" for line in lines))
                    bar.update(len(lines))
        finally:
            if output:
                sink.close()
    except TriageError as exc:
        fail(exc.message)


@app.command()
def train(
    data: Annotated[list[Path], typer.Option(help="CSV/JSONL with title, content, category[, department]; repeatable.")],
    out: Annotated[Path, typer.Option(help="New bundle directory, e.g. models/city-2026.11.")],
    eval: Annotated[Optional[Path], typer.Option("--eval", help="Labelled file to evaluate on.")] = None,
    corpora: Annotated[bool, typer.Option(help="Add our authored petitions for categories the data lacks.")] = True,
    risk: Annotated[bool, typer.Option(help="Train and include the risk detector.")] = True,
    promote: Annotated[bool, typer.Option(help="Promote the new bundle when done.")] = False,
) -> None:
    """Train a new bundle and write its evaluation report (same as train.py)."""
    from triage import bundle as bundles
    from triage.training import train_bundle

    settings = get_settings()
    try:
        path, report = train_bundle(data, out, eval_data=eval, settings=settings, use_corpora=corpora, with_risk=risk)
    except TriageError as exc:
        fail(exc.message)
    typer.echo(f"bundle written: {path}")
    if "eval" in report:
        ev = report["eval"]
        typer.echo(f"macro-F1 {ev['macro_f1']:.4f}  accuracy {ev['accuracy']:.4f}  ECE {ev['ece']:.4f}")
        typer.echo(f"report: {path / 'report.md'}")
    if promote:
        bundles.promote(path.parent, path.name)
        typer.echo(f"promoted {path.name}")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="Labelled CSV/JSONL (title, content, category).")],
    bundle: Annotated[Optional[str], typer.Option(help="Bundle name (default: the promoted one).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of Markdown.")] = False,
) -> None:
    """Evaluate a bundle on a labelled file and print the report."""
    from triage import bundle as bundles
    from triage.evaluation import to_markdown
    from triage.pipeline import ReviewPolicy
    from triage.training import evaluate_router, load_dataset

    settings = get_settings()
    try:
        path = bundles.resolve(settings.models_dir, bundle)
        loaded = bundles.load(path, components=("router",))
        report = evaluate_router(loaded.router, load_dataset(data), ReviewPolicy.from_settings(settings))
    except TriageError as exc:
        fail(exc.message)
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2) if json_out else to_markdown(report, title=f"{path.name} on {data}"))


@bundle_app.command("list")
def bundle_list() -> None:
    """Bundles in the models directory, newest first; * marks the active one."""
    from triage import bundle as bundles

    for row in bundles.list_bundles(get_settings().models_dir):
        mark = "*" if row.get("active") else " "
        if "error" in row:
            typer.echo(f"{mark} {row['name']}  (unreadable: {row['error']})")
            continue
        f1 = row["metrics"].get("macro_f1")
        typer.echo(f"{mark} {row['name']}  created {row['created_at']}  labels {row['labels']}  macro-F1 {f1 if f1 is not None else '—'}")


@bundle_app.command("promote")
def bundle_promote(name: Annotated[str, typer.Argument(help="Bundle directory name in the models directory.")]) -> None:
    """Make NAME the served bundle (a running server switches within a second, without a restart)."""
    from triage import bundle as bundles

    try:
        previous = bundles.promote(get_settings().models_dir, name)
    except TriageError as exc:
        fail(exc.message)
    typer.echo(f"active: {name} (previous: {previous or 'none'})")


@bundle_app.command("rollback")
def bundle_rollback() -> None:
    """Re-activate the previously promoted bundle."""
    from triage import bundle as bundles

    try:
        name = bundles.rollback(get_settings().models_dir)
    except TriageError as exc:
        fail(exc.message)
    typer.echo(f"active: {name}")


def _parse_time(value: str | None):
    """Timestamps as the streams write them (2019/4/25 9:32:09, 2023-01-16 19:26), Beijing time unless zoned."""
    import re
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not value or not value.strip():
        return None
    match = re.match(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", value.strip())
    if match is None:
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    parts = [int(p) if p else 0 for p in match.groups()]
    return datetime(*parts, tzinfo=ZoneInfo("Asia/Shanghai"))


def _row_to_petition(row: dict):
    from triage.schemas import Channel, Location, PetitionIn, Petitioner

    location = row.get("location") or "".join(row.get(k) or "" for k in ("province", "city", "county")) or None
    likes = row.get("likes") or row.get("votes")
    return PetitionIn(
        id=row.get("id") or None,
        title=row.get("title") or None,
        content=(row.get("content") or "").strip() or (row.get("title") or ""),
        channel=Channel(row["channel"]) if row.get("channel") in Channel._value2member_map_ else Channel.web,
        petitioner=Petitioner(id=row["user"]) if row.get("user") else None,
        location=Location(text=location) if location else None,
        received_at=_parse_time(row.get("time") or row.get("received_at")),
        likes=int(likes) if likes and str(likes).isdigit() else None,
    )


@app.command()
def ingest(
    input: Annotated[Path, typer.Argument(help="CSV or JSONL: id, title, content[, user, time, location, likes].")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="JSONL out (default: stdout).")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows stored and triaged per transaction.")] = 64,
) -> None:
    """Store every row in file order exactly as if it had been POSTed; print one TriageResult per line."""
    from tqdm import tqdm

    from triage.logs import configure_logging
    from triage.service import build_service
    from triage.training import read_rows

    configure_logging("WARNING")
    settings = get_settings()
    started = time.perf_counter()
    try:
        rows = read_rows(input)
        service = build_service(settings)  # the sentence model is loaded too, so the rate below is the steady one
    except TriageError as exc:
        fail(exc.message)
    ready = time.perf_counter()
    sink = open(output, "w", encoding="utf-8") if output else sys.stdout
    try:
        with tqdm(total=len(rows), desc="ingest", unit="petition", file=sys.stderr) as bar:
            chunks = [_checked_chunk(service, rows[start : start + batch_size]) for start in range(0, len(rows), batch_size)]
            for number, (good, lines) in enumerate(chunks):
                upcoming = chunks[number + 1][0] if number + 1 < len(chunks) else ()
                results = iter(service.submit_batch(good, upcoming=upcoming) if good else [])
                for line in lines:
                    payload = line if line is not None else next(results).model_dump(mode="json")
                    sink.write(json.dumps(payload, ensure_ascii=False) + "\n")
                bar.update(len(lines))
        seconds = time.perf_counter() - ready
        typer.echo(
            f"ingested {len(rows)} rows in {seconds:.1f} s ({len(rows) / max(seconds, 1e-9):.1f} rows/s) "
            f"after {ready - started:.1f} s of start-up",
            err=True,
        )
    finally:
        service.stop()
        if output:
            sink.close()


def _checked_chunk(service, chunk: list[dict[str, str]]) -> tuple[list, list]:
    """(valid petitions, one slot per row: None for a valid row, its error object otherwise)."""
    good, lines = [], []
    for row in chunk:
        try:
            petition = _row_to_petition(row)
            service.validate(petition)
            good.append(petition)
            lines.append(None)
        except (TriageError, ValueError) as exc:
            message = exc.message if isinstance(exc, TriageError) else str(exc).splitlines()[0]
            lines.append({"id": row.get("id"), "error": {"code": "invalid_input", "message": message}})
    return good, lines


@app.command()
def clusters(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many clusters.")] = 50,
    min_size: Annotated[int, typer.Option(help="Only clusters with at least this many petitions.")] = 2,
    as_of: Annotated[Optional[str], typer.Option(help="Heat as of this time (default: the newest petition).")] = None,
) -> None:
    """The current clusters of complaints, hottest first, with their member ids."""
    from triage.logs import configure_logging
    from triage.matching import Matcher
    from triage.store.db import Database

    configure_logging("WARNING")
    settings = get_settings()
    db = Database(settings.database_url)
    db.migrate()
    matcher = Matcher(settings)
    matcher.open(db)
    now = _parse_time(as_of) if as_of else matcher.latest_arrival()
    views = matcher.clusters(now=now, min_size=min_size, limit=limit)
    if json_out:
        typer.echo(json.dumps(
            [{"id": v.id, "title": v.title, "heat": round(v.heat, 4), "size": v.size, "petitioners": v.petitioners,
              "members": list(v.member_ids), "keywords": v.keywords, "area": v.area, "departments": v.departments,
              "trend": v.trend, "first_seen": v.first_seen.isoformat(), "last_seen": v.last_seen.isoformat(),
              "aliases": v.aliases} for v in views], ensure_ascii=False, indent=2))
        return
    for v in views:
        typer.echo(f"{v.id}  heat {v.heat:7.2f}  {v.size:3d} petitions / {v.petitioners:3d} people  {v.trend:7s}  "
                   f"{v.area or '-'}  {v.title}")


@feedback_app.command("export")
def feedback_export(
    since: Annotated[Optional[str], typer.Option(help="Only corrections made on or after this date (YYYY-MM-DD).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="CSV out (default: stdout).")] = None,
) -> None:
    """Corrected tickets as a CSV that train.py accepts directly (id, title, content, category, department)."""
    from datetime import datetime, timezone

    from triage.store.db import Database
    from triage.tickets import export_feedback_csv

    start = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since {since!r} is not a date like 2026-11-01")
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
    db = Database(get_settings().database_url)
    db.migrate()
    with db.session() as session:
        text = export_feedback_csv(session, start)
    if output:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{max(text.count(chr(10)) - 1, 0)} corrections written to {output}", err=True)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":  # pragma: no cover
    app()
