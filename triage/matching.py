"""Duplicates (重复件/同事件) and complaint clusters for the service, over the store.

For each new petition: encode it, extract its place, fetch candidates (index neighbours plus the same petitioner's
earlier filings), judge them, add the petition to the index and to the online clusterer, and store its vector and
place with the petition. The store is the source of truth: the index and the clusterer state are saved beside it
and rebuilt from it (replaying petitions in arrival order) when missing or stale, so cluster ids survive restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from triage.clusters import ClusterItem, ClusterView, OnlineClusterer
from triage.duplicates import DuplicateFinder, PetitionFeatures
from triage.index import VectorIndex, load_index, make_index
from triage.places import Place, extract_place
from triage.schemas import DuplicateOut, PetitionIn, TriageResult
from triage.settings import Settings
from triage.similarity import Encoder
from triage.store.models import Petition, ServiceState, TriageRecord
from triage.store.petitions import as_aware, utcnow
from triage.text import compose

log = logging.getLogger(__name__)

STATE_KEY = "clusterer"
NEIGHBOURS = 10  # index neighbours judged per petition (the labelled pairs came from the top few)


def place_from_dict(data: dict | None) -> Place | None:
    return Place(**{k: v for k, v in data.items() if k in Place.__dataclass_fields__}) if data else None


def petitioner_key(petitioner_id: str | None, phone: str | None) -> str | None:
    if petitioner_id:
        return f"id:{petitioner_id}"
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return f"tel:{digits[-11:]}" if digits else None


@dataclass
class PendingBatch:
    """A batch `Matcher.start` has begun: its extracted places, and its vectors being encoded."""

    places: list[Place]
    vectors: Future


class Matcher:
    """Owns the encoder, the vector index, the duplicate finder and the clusterer of one service."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.encoder = Encoder(settings.encoder, threads=settings.encoder_threads, own_process=settings.encoder_process)
        self.finder = DuplicateFinder(
            repeat_threshold=settings.repeat_threshold,
            same_event_threshold=settings.same_event_threshold,
            same_event_window_hours=settings.same_event_window_hours,
            repeat_window_days=settings.repeat_window_days,
            encoder=settings.encoder,
        )
        self.index: VectorIndex = make_index(self.backend_for(0), dim=self.encoder.dim)
        self.clusterer = self._new_clusterer()
        self._lock = threading.RLock()
        self._encoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
        self._feature_cache: OrderedDict[str, PetitionFeatures] = OrderedDict()
        self._dirty = 0
        self._last_saved = time.monotonic()

    def _new_clusterer(self) -> OnlineClusterer:
        s = self.settings
        return OnlineClusterer(
            similarity_threshold=s.cluster_similarity_threshold,
            window_hours=s.cluster_window_hours,
            min_petitioners=s.cluster_min_petitioners,
            heat_half_life_hours=s.cluster_heat_half_life_hours,
        )

    def backend_for(self, count: int) -> str:
        """The index kind for a store of `count` petitions: exact search while it is cheap, HNSW past that."""
        if self.settings.index_backend != "auto":
            return self.settings.index_backend
        return "faiss-hnsw" if count >= self.settings.index_hnsw_from else "faiss"

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    # ------------------------------------------------------------------------------------ start-up and saving

    def open(self, db) -> None:
        """Load the saved index and clusterer state, then bring both up to date with the store."""
        import jieba

        jieba.initialize()  # cluster keywords segment with jieba: pay its dictionary load at start-up, not per request
        if self.settings.index_backend in ("auto", "faiss", "faiss-hnsw"):
            import faiss

            # One query at a time: OpenMP's thread team costs more than it saves, and fights the server's threads.
            faiss.omp_set_num_threads(self.settings.index_threads)
        with db.session() as session:
            stored = session.scalars(select(Petition.id).where(Petition.vector.is_not(None))).all()
            texts = session.execute(
                select(Petition.title, Petition.content).order_by(Petition.created_at.desc()).limit(5000)
            ).all()
            state = session.get(ServiceState, STATE_KEY)
        if len(texts) >= 50:
            self.finder.fit([compose(t, c) for t, c in texts])
        self.index = self._load_or_rebuild_index(db, set(stored))
        if state is not None:
            try:
                self.clusterer = OnlineClusterer.from_state(state.value)
            except Exception:
                log.exception("clusterer state unreadable; rebuilding it from the store")
                self.clusterer = self._new_clusterer()
        self._replay_missing(db)

    def _load_or_rebuild_index(self, db, stored: set[str]) -> VectorIndex:
        backend = self.backend_for(len(stored))
        if (self.index_dir / "manifest.json").is_file():
            try:
                index = load_index(self.index_dir, dim=self.encoder.dim, backend=backend)
                if len(index) == len(stored) and all(pid in index for pid in stored):
                    return index
                log.warning("saved index has %d vectors, the store %d: rebuilding", len(index), len(stored))
            except Exception as exc:
                log.warning("saved index unusable (%s): rebuilding from the store", exc)
        index = make_index(backend, dim=self.encoder.dim)
        with db.session() as session:
            rows = session.execute(select(Petition.id, Petition.vector).where(Petition.vector.is_not(None))).all()
        if rows:
            index.add([r.id for r in rows], np.stack([np.frombuffer(r.vector, dtype=np.float32) for r in rows]))
        return index

    def _replay_missing(self, db) -> None:
        """Petitions stored (with vectors) but unknown to the clusterer are added in arrival order."""
        with db.session() as session:
            rows = session.execute(
                select(Petition).where(Petition.vector.is_not(None)).order_by(Petition.created_at, Petition.id)
            ).scalars().all()
            missing = [r for r in rows if self.clusterer.cluster_of_.get(r.id) is None]
            items = [self._cluster_item(session, r) for r in missing]
        for item in items:
            self.clusterer.add(item)
        if items:
            log.info("clusterer caught up with %d stored petitions", len(items))
            self._dirty += len(items)

    def close(self) -> None:
        """Stop the encoder's thread and process."""
        self._encoding.shutdown(wait=True)
        self.encoder.close()

    def save(self, db, *, force: bool = False) -> None:
        with self._lock:
            if not self._dirty or (not force and time.monotonic() - self._last_saved < self.settings.state_save_interval_s):
                return
            self.index.save(self.index_dir)
            with db.session() as session:
                row = session.get(ServiceState, STATE_KEY)
                value = self.clusterer.to_state()
                if row is None:
                    session.add(ServiceState(key=STATE_KEY, value=value, updated_at=utcnow()))
                else:
                    row.value, row.updated_at = value, utcnow()
            self._dirty = 0
            self._last_saved = time.monotonic()

    # ------------------------------------------------------------------------------------------- processing

    def _cluster_item(self, session: Session, row: Petition, result: TriageResult | None = None) -> ClusterItem:
        place = place_from_dict(row.place)
        category, departments = None, []
        if result is not None:
            category, departments = result.category.label, [r.department_id for r in result.routes[:1]]
        else:
            record = session.scalars(
                select(TriageRecord).where(TriageRecord.petition_id == row.id).order_by(TriageRecord.id.desc()).limit(1)
            ).first()
            if record is not None:
                category, departments = record.category, [record.top_department] if record.top_department else []
        return ClusterItem(
            petition_id=row.id,
            vector=np.frombuffer(row.vector, dtype=np.float32),
            text=compose(row.title, row.content),
            area_key=place.area_key("district") if place else None,
            street_key=place.area_key("street") if place else None,
            petitioner_key=petitioner_key(row.petitioner_id, row.petitioner_phone),
            received_at=as_aware(row.received_at),
            category=category,
            departments=departments,
            likes=row.likes or 0,
        )

    def _features(self, row: Petition) -> PetitionFeatures:
        return PetitionFeatures(
            id=row.id,
            text=compose(row.title, row.content),
            vector=np.frombuffer(row.vector, dtype=np.float32) if row.vector is not None else None,
            petitioner_id=row.petitioner_id,
            phone=row.petitioner_phone,
            place=place_from_dict(row.place),
            received_at=as_aware(row.received_at),
        )

    def _candidates(self, session: Session, row: Petition, vector: np.ndarray) -> list[PetitionFeatures]:
        ids, _scores = self.index.search(vector[None, :], k=NEIGHBOURS)
        wanted = set(ids[0]) - {row.id}
        if row.petitioner_id or row.petitioner_phone:
            since = as_aware(row.received_at) - timedelta(days=self.settings.repeat_window_days)
            same_person = [Petition.petitioner_id == row.petitioner_id] if row.petitioner_id else []
            if row.petitioner_phone:
                same_person.append(Petition.petitioner_phone == row.petitioner_phone)
            wanted |= set(
                session.scalars(
                    select(Petition.id)
                    .where(or_(*same_person), Petition.id != row.id, Petition.received_at >= since)
                    .where(Petition.vector.is_not(None))
                    .limit(NEIGHBOURS)
                )
            )
        if not wanted:
            return []
        known = {pid: self._cached_features(pid) for pid in sorted(wanted)}  # sorted: the same order every run
        missing = [pid for pid, features in known.items() if features is None]
        if missing:
            for r in session.scalars(select(Petition).where(Petition.id.in_(missing))):
                known[r.id] = self._remember(self._features(r)) if r.vector is not None else None
        return [features for features in known.values() if features is not None]

    def _cached_features(self, petition_id: str) -> PetitionFeatures | None:
        features = self._feature_cache.get(petition_id)
        if features is not None:
            self._feature_cache.move_to_end(petition_id)
        return features

    def _remember(self, features: PetitionFeatures) -> PetitionFeatures:
        """Keep a stored petition's features (its text, vector, place, petitioner and time never change once stored),
        so the neighbours that come back again and again are not read and parsed from the store each time."""
        self._feature_cache[features.id] = features
        self._feature_cache.move_to_end(features.id)
        while len(self._feature_cache) > self.settings.feature_cache_size:
            self._feature_cache.popitem(last=False)
        return features

    def encode_ahead(self, petitions: Sequence[PetitionIn]) -> Future:
        """Start encoding `petitions` from the encoder's own thread; the vectors land in the encoder's cache too.

        The sentence encoder is most of a petition's cost. Started before routing and risk, it runs on the second
        core (in its own process by default, see `Encoder.own_process`) while they run on the first. The risk
        detector's semantic head asks the same encoder for the same texts and gets them from its cache.
        """
        texts = [compose(p.title, p.content) for p in petitions]
        return self._encoding.submit(self.encoder.encode, texts)

    def start(self, petitions: Sequence[PetitionIn], vectors: Future | None = None) -> "PendingBatch":
        """Begin a batch: its encoding on the encoder's thread (or `vectors`, what `encode_ahead` returned for these
        same petitions), and here what needs no vector (places, lexical vectors), so that the request's own thread
        has done that by the time it has to wait for the vectors."""
        vectors = vectors or self.encode_ahead(petitions)
        texts = [compose(p.title, p.content) for p in petitions]
        places = [extract_place(text, p.location.text if p.location else None) for p, text in zip(petitions, texts)]
        with self._lock:
            self.finder.prepare(texts)
        return PendingBatch(places=places, vectors=vectors)

    def process(
        self,
        session: Session,
        petitions: Sequence[PetitionIn],
        results: Sequence[TriageResult],
        pending: "PendingBatch | None" = None,
    ) -> None:
        """Fill `duplicates` and `cluster` of each result, in order, and store vectors and places with the petitions.

        Petitions of one batch are handled one after another, so a later one sees the earlier ones as candidates.
        `pending` is what `start` returned for the same petitions, if it was called.
        """
        pending = pending or self.start(petitions)
        stored = {r.id: r for r in session.scalars(select(Petition).where(Petition.id.in_([r.id for r in results])))}
        vectors = pending.vectors.result()
        with self._lock:
            for result, place, vector in zip(results, pending.places, vectors):
                row = stored[result.id]
                row.vector = vector.astype(np.float32).tobytes()
                row.place = place.as_dict()
                features = self._features(row)
                result.duplicates = self.finder.find(features, self._candidates(session, row, vector))
                self._remember(features)
                self.index.add([row.id], vector[None, :])
                assignment = self.clusterer.add(self._cluster_item(session, row, result))
                if assignment.is_visible:
                    result.cluster = self.clusterer.get(assignment.cluster_id, as_aware(row.received_at)).to_ref()
                self._dirty += 1

    # ---------------------------------------------------------------------------------------------- queries

    def clusters(self, *, now: datetime | None = None, since: datetime | None = None, region: str | None = None,
                 department: str | None = None, min_size: int = 1, limit: int = 100) -> list[ClusterView]:
        """Visible clusters, hottest as of `now` first; `region` matches any part of the main area key (长治市, A3区)."""
        with self._lock:
            views = self.clusterer.clusters(now or utcnow(), since=since, department=department, min_size=min_size)
        if region:
            views = [v for v in views if region in (v.area or "") or region in (v.street or "")]
        return views[:limit]

    def latest_arrival(self) -> datetime | None:
        """When the newest clustered petition was received (the natural `now` for replayed historical streams)."""
        with self._lock:
            stamps = [v.last_seen for v in self.clusterer.clusters(utcnow(), visible_only=False)]
        return max(stamps) if stamps else None

    def merge(self, cluster_ids: Sequence[str]) -> str:
        """An operator's merge: the oldest id survives, the others become its aliases."""
        with self._lock:
            survivor = cluster_ids[0]
            for other in cluster_ids[1:]:
                survivor = self.clusterer.merge(survivor, other)
            self._dirty += 1
            return survivor

    def cluster(self, cluster_id: str, now: datetime | None = None) -> ClusterView:
        with self._lock:
            return self.clusterer.get(self.clusterer.resolve(cluster_id), now or utcnow())

    def duplicates_of(self, session: Session, petition_id: str) -> list[DuplicateOut]:
        """Duplicates of a stored petition among everything stored now, earlier and later filings alike."""
        row = session.get(Petition, petition_id)
        if row is None or row.vector is None:
            return []
        vector = np.frombuffer(row.vector, dtype=np.float32)
        with self._lock:
            return self.finder.find(self._features(row), self._candidates(session, row, vector))
