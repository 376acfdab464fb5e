"""Stateless batch prediction over a file (`triage predict`): one TriageResult JSON line per row, same ids, same order.

Nothing is stored. Routing and risk are independent per petition, so chunks of rows can go to several worker
processes, each with its own copy of the bundle; results are written back in file order. One process is the
batch path of the service itself; two use both cores of a small machine.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator, Sequence

from triage.schemas import PetitionIn
from triage.settings import Settings

_worker_triager = None  # the Triager of one worker process (built once by `_init_worker`)


def load_triager(settings: Settings, bundle: str | None = None):
    """The promoted (or named) bundle as a Triager, its risk head given an encoder of its own."""
    from triage import bundle as bundles
    from triage.pipeline import ReviewPolicy, Triager

    loaded = bundles.load(bundles.resolve(settings.models_dir, bundle))
    risk = loaded.components.get("risk")
    if risk is not None and hasattr(risk, "attach_encoder"):
        from triage.similarity import Encoder

        risk.attach_encoder(Encoder(risk.semantic_encoder, threads=settings.encoder_threads))
    return Triager(loaded, policy=ReviewPolicy.from_settings(settings), top_k=settings.routes_top_k)


def predict_lines(triager, rows: Sequence[dict[str, str]], first_number: int = 1) -> list[str]:
    """JSON lines for `rows` in order: a TriageResult, or an error object for a row with no text."""
    ids = [row.get("id") or str(first_number + i) for i, row in enumerate(rows)]
    good, lines = [], {}
    for pid, row in zip(ids, rows):
        content = (row.get("content") or "").strip() or (row.get("title") or "").strip()
        if not content:
            lines[pid] = {"id": pid, "error": {"code": "empty_text", "message": "row has no title or content"}}
            continue
        good.append((pid, PetitionIn(title=row.get("title") or None, content=content)))
    for result in triager.triage([p for p, _ in good], [p for _, p in good]):
        lines[result.id] = result.model_dump(mode="json")
    return [json.dumps(lines[pid], ensure_ascii=False) for pid in ids]


def _init_worker(settings: Settings, bundle: str | None) -> None:
    global _worker_triager
    _worker_triager = load_triager(settings, bundle)


def _worker_chunk(job: tuple[int, list[dict[str, str]]]) -> list[str]:
    first_number, rows = job
    return predict_lines(_worker_triager, rows, first_number)


def predict_chunks(
    rows: Sequence[dict[str, str]],
    settings: Settings,
    *,
    bundle: str | None = None,
    batch_size: int = 256,
    workers: int = 1,
) -> Iterator[list[str]]:
    """The JSON lines of each chunk of `batch_size` rows, in file order.

    The bundle is resolved and its manifest checked before this returns, so a bad bundle fails before anything is
    written. With `workers` > 1 (and more than one chunk) the chunks are spread over that many processes, started
    with `spawn` so that no model, thread pool or lock is inherited half-initialised; each loads the bundle once.
    """
    from triage import bundle as bundles

    path = bundles.resolve(settings.models_dir, bundle)
    bundles.check_libraries(bundles.read_manifest(path))
    jobs = [(start + 1, list(rows[start : start + batch_size])) for start in range(0, len(rows), batch_size)]
    if workers <= 1 or len(jobs) <= 1:
        triager = load_triager(settings, bundle)
        return (predict_lines(triager, chunk, first_number) for first_number, chunk in jobs)
    return _in_workers(jobs, settings, bundle, min(workers, len(jobs)))


def _in_workers(jobs, settings: Settings, bundle: str | None, workers: int) -> Iterator[list[str]]:
    context = multiprocessing.get_context("spawn")
    worker_settings = settings.model_copy(update={"encoder_threads": 1})  # one core each: BLAS threads would fight
    with context.Pool(processes=workers, initializer=_init_worker, initargs=(worker_settings, bundle)) as pool:
        yield from pool.imap(_worker_chunk, jobs)


def default_workers() -> int:
    """One worker per core, at most four (each holds a copy of the models: about 400 MB)."""
    import os

    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)))

