"""TriageService: accepts petitions, stores them first, triages them, stores the result.

Order matters for "nothing accepted is ever lost": a valid petition is committed before the model sees it; if
triage then fails, the petition stays `pending` and is triaged again at the next start-up or resubmission.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from triage import bundle as bundles
from triage.alerts import WebhookDispatcher, raise_alert
from triage.errors import InvalidInput, NotFound
from triage.matching import Matcher
from triage.pipeline import ReviewPolicy, Triager
from triage.schemas import PetitionIn, PetitionRecord, TriageResult
from triage.sla import SlaPolicy
from triage import tickets
from triage.settings import Settings
from triage.store import petitions as repo
from triage.store.db import Database
from triage.text import check_length, normalize

log = logging.getLogger(__name__)


class TriagerProvider:
    """Holds the serving Triager and swaps it when the promoted bundle changes, without a restart.

    The pointer file is checked at most every `check_interval_s`; a new bundle is loaded fully before the swap, so
    requests in flight finish on the old model and none is dropped.
    """

    def __init__(self, settings: Settings, *, check_interval_s: float = 1.0, encoder=None):
        self.settings = settings
        self.check_interval_s = check_interval_s
        self.encoder = encoder  # shared with the risk detector's semantic head: one sentence model in memory
        self._lock = threading.Lock()
        self._last_check = 0.0
        self._pointer_mtime: float | None = None
        self._triager = self._load(self._choose())

    def _choose(self) -> Path:
        return bundles.resolve(self.settings.models_dir, self.settings.bundle)

    def _pointer(self) -> Path:
        return Path(self.settings.models_dir) / bundles.ACTIVE_POINTER

    def _load(self, path: Path) -> Triager:
        started = time.perf_counter()
        loaded = bundles.load(path)
        risk = loaded.components.get("risk")
        if self.encoder is not None and risk is not None and getattr(risk, "semantic_encoder", None) == self.encoder.name:
            risk.attach_encoder(self.encoder)
        self._pointer_mtime = self._pointer().stat().st_mtime if self._pointer().exists() else None
        log.info("serving bundle %s (loaded in %.1f s)", loaded.version, time.perf_counter() - started)
        return Triager(loaded, policy=ReviewPolicy.from_settings(self.settings), top_k=self.settings.routes_top_k)

    def get(self) -> Triager:
        if self.settings.bundle is None:
            now = time.monotonic()
            if now - self._last_check >= self.check_interval_s:
                self._last_check = now
                self._maybe_reload()
        return self._triager

    def _maybe_reload(self) -> None:
        pointer = self._pointer()
        mtime = pointer.stat().st_mtime if pointer.exists() else None
        if mtime == self._pointer_mtime:
            return
        with self._lock:
            try:
                path = self._choose()
                if path.name != self._triager.model_version:
                    self._triager = self._load(path)
                else:
                    self._pointer_mtime = mtime
            except Exception:  # keep serving the old model rather than failing requests
                log.exception("could not switch to the newly promoted bundle; still serving %s", self._triager.model_version)
                self._pointer_mtime = mtime


def new_petition_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"P{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"


class TriageService:
    def __init__(self, settings: Settings, db: Database, provider: TriagerProvider, matcher: Matcher | None = None):
        self.settings = settings
        self.db = db
        self.provider = provider
        self.dispatcher = WebhookDispatcher(
            db, timeout_s=settings.webhook_timeout_s, poll_s=settings.webhook_poll_s, backoff_s=settings.webhook_backoff_s
        )
        self.sla = SlaPolicy.load(settings.sla_path or settings.corpora_dir / "sla.yaml")
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        from triage.chat import IntakeDesk  # the desk calls back into this service

        self.intake = IntakeDesk(self)
        self.matcher = matcher or Matcher(settings)

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def start(self) -> None:
        """Background work: webhook deliveries (including any left pending by an earlier run), the 督办 scheduler."""
        self.dispatcher.start()
        if self.settings.scheduler_interval_s > 0:
            self._scheduler = threading.Thread(target=self._schedule_loop, name="scheduler", daemon=True)
            self._scheduler.start()

    def stop(self) -> None:
        self._stop.set()
        self.dispatcher.stop()
        if self._scheduler:
            self._scheduler.join(timeout=10)
        self.matcher.save(self.db, force=True)
        self.matcher.close()
        self.db.dispose()

    def run_scheduler(self, now: datetime | None = None) -> dict[str, int]:
        """One 督办 pass: overdue marks and escalations, each recorded as a ticket event."""
        with self.db.session() as session:
            return tickets.run_scheduler(session, self.sla, now or self.now())

    def _schedule_loop(self) -> None:
        while not self._stop.wait(self.settings.scheduler_interval_s):
            try:
                counts = self.run_scheduler()
                if counts["overdue"] or counts["escalated"]:
                    log.info("scheduler pass: %s", counts)
            except Exception:
                log.exception("scheduler pass failed")

    # ------------------------------------------------------------------------------------------ validation

    def validate(self, petition: PetitionIn, *, prefix: str = "") -> None:
        """Refuse what cannot be triaged, before anything is stored."""
        check_length(petition.content, max_chars=self.settings.max_content_chars, field=f"{prefix}content")
        if not normalize(petition.content):
            raise InvalidInput("content has no readable text once markup is removed", field=f"{prefix}content")
        if petition.title and len(petition.title) > self.settings.max_title_chars:
            raise InvalidInput(f"title is longer than {self.settings.max_title_chars} characters", field=f"{prefix}title")

    # ---------------------------------------------------------------------------------------------- submit

    def submit(self, petition: PetitionIn) -> TriageResult:
        return self.submit_batch([petition])[0]

    def submit_batch(self, petitions: Sequence[PetitionIn], *, upcoming: Sequence[PetitionIn] = ()) -> list[TriageResult]:
        """Store, triage and store the results. Already-triaged ids return their stored result unchanged.

        `upcoming`: the petitions the caller will submit next (a file being ingested). They are encoded on the
        encoder's thread while this batch is matched and stored, so that thread never waits for the store.
        """
        if len(petitions) > self.settings.max_batch:
            raise InvalidInput(f"a batch holds at most {self.settings.max_batch} petitions", field="petitions")
        for i, petition in enumerate(petitions):
            self.validate(petition, prefix=f"petitions[{i}]." if len(petitions) > 1 else "")
        ids = [p.id or new_petition_id() for p in petitions]
        if len(set(ids)) != len(ids):
            raise InvalidInput("the same id appears twice in one batch", field="petitions")
        # The encoder starts now, while this thread writes the petitions; the vectors wait in its cache. (A
        # resubmitted petition's encoding is wasted; a resubmission is rare, and its answer is already stored.)
        ahead = self.matcher.encode_ahead(petitions)

        stored: dict[str, TriageResult] = {}
        todo: list[int] = []
        for attempt in range(2):
            try:
                with self.db.session() as session:
                    for i, (pid, row) in enumerate(zip(ids, repo.insert_many(session, list(zip(ids, petitions))))):
                        previous = repo.latest_result(session, pid) if row.status != "pending" else None
                        if previous is not None:
                            stored[pid] = previous
                        else:
                            todo.append(i)
                break
            except IntegrityError:
                # The same id arrived twice at once and the other request committed first: read it back.
                stored.clear()
                todo.clear()
                if attempt:
                    raise
        if todo:
            whole = len(todo) == len(petitions)  # the usual case: the early encoding is exactly this batch's
            fresh = self._triage_and_store(
                [ids[i] for i in todo], [petitions[i] for i in todo], upcoming, vectors=ahead if whole else None
            )
            stored.update({r.id: r for r in fresh})
        return [stored[pid] for pid in ids]

    def _triage_and_store(
        self,
        ids: list[str],
        petitions: list[PetitionIn],
        upcoming: Sequence[PetitionIn] = (),
        vectors: Future | None = None,
    ) -> list[TriageResult]:
        pending = self.matcher.start(petitions, vectors)  # encoding on the other core while routing and risk run here
        if upcoming:
            self.matcher.encode_ahead(upcoming)  # fills the encoder's cache for the next batch
        results = self.provider.get().triage(ids, petitions)
        alerted = False
        with self.db.session() as session:
            try:
                self.matcher.process(session, petitions, results, pending)
            except Exception:  # duplicates and clusters are extras: routing and risk must still be stored
                log.exception("duplicate/cluster step failed for %d petitions", len(results))
            for result in results:
                repo.save_result(session, result)
                # Same transaction: a stored high-risk result always has its alert and its pending deliveries.
                alerted |= raise_alert(session, result, self.settings.webhook_urls) is not None
        if alerted:
            self.dispatcher.notify()
        self.matcher.save(self.db)
        return results

    # --------------------------------------------------------------------------------------------- queries

    def get_petition(self, petition_id: str) -> PetitionRecord:
        with self.db.session() as session:
            row = repo.get(session, petition_id)
            if row is None:
                raise NotFound(f"no petition with id {petition_id!r}", field="id")
            return repo.to_record(session, row)

    def retriage_pending(self, limit: int = 1000) -> int:
        """Triage petitions that were stored but never triaged (a crash between the two commits)."""
        with self.db.session() as session:
            rows = [repo.get(session, pid) for pid in repo.pending_ids(session, limit)]
            items = [
                (row.id, PetitionIn(title=row.title, content=row.content, channel=row.channel)) for row in rows if row
            ]
        if items:
            self._triage_and_store([i for i, _ in items], [p for _, p in items])
        return len(items)


def build_service(settings: Settings) -> TriageService:
    from threadpoolctl import threadpool_limits

    # The service's parallelism is its own threads (the encoder's beside the request's); BLAS threads on top of
    # them only spin against each other, so every BLAS call in this process gets `encoder_threads` (default 1).
    threadpool_limits(limits=settings.encoder_threads, user_api="blas")
    db = Database(settings.database_url)
    db.migrate()
    matcher = Matcher(settings)
    matcher.encoder.start()  # the model (in its own process by default) is loaded before the first request
    service = TriageService(settings, db, TriagerProvider(settings, encoder=matcher.encoder), matcher)
    service.matcher.open(db)
    try:
        recovered = service.retriage_pending()
        if recovered:
            log.warning("triaged %d petitions left pending by an earlier run", recovered)
    except IntegrityError:  # pragma: no cover - another worker got there first
        pass
    return service
