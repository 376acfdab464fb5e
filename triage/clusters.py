"""Online clustering of petitions into hot issues (民情地图 issue map): same matter, same area, same time window.

How a petition is placed (`OnlineClusterer.add`):

* Candidates are the *open* clusters of its area: a cluster is open while the petition's time lies within
  ``window_hours`` of the cluster's span (``first_seen - window ≤ t ≤ last_seen + window``).
* Matter: the petition's mean cosine similarity to the cluster's members (``linkage="average"``: the dot product
  with the mean member vector, so one row per cluster). On the gas/heating stream (scratch/clusters/) it beat both
  the cosine to the re-normalised centroid and the nearest member: at equal coverage its clusters are tighter
  (at ~20 % of reports clustered: mean within-cluster similarity 0.733 vs 0.681 centroid, 0.695 nearest member;
  share of clustered pairs below 0.6: 2.5 % vs 16 % and 14 %). A centroid drifts toward the topic mean and then
  attracts every generic "停气了"; a mean similarity does not. ``linkage="centroid"`` remains available.
  A petition that shares one of the cluster's street keys gets ``street_bonus`` added to its similarity.
* Area (辖区): a cluster is anchored to the first known district-level ``area_key`` among its members. A petition
  with a known area only ever joins clusters of that area (different districts never join), or an established
  (two or more reports) area-less cluster, which then takes the petition's area. A petition with no area may join
  an established open cluster of any area or an area-less cluster. Every join across "known / unknown area"
  needs ``unknown_area_threshold`` (default: halfway between ``similarity_threshold`` and 1), because an unplaced
  "没气了" must not inflate some district's count on topic alone. Asking for an established cluster on the other
  side keeps those area-wide scans small: singletons are most open clusters.
* The best cluster over the threshold wins (highest similarity, then the older cluster); otherwise the petition
  starts a candidate cluster.

Visibility: a cluster is shown (`is_visible`) once it holds reports from at least ``min_petitioners`` different
petitioners. One person's repeats (重复件) are a duplicate chain, not a hot issue. Petitions without a petitioner key
(anonymous or unknown) each count as a distinct petitioner: we cannot tell them apart, and hiding every anonymous
report would hide most of a message board.

Stable ids: ids are "C" plus a sequence number, issued in input order (a rebuild from the same stream gives the same
ids) and never reused. `merge` keeps the older id (earlier ``first_seen``, then lower sequence) and records the
other as an alias; `resolve` follows aliases. `recluster` re-groups the members of open clusters per area (average
linkage) and then gives every new group the id of its **oldest contributing cluster not already taken**, larger
groups choosing first; a group with no free contributor gets a new id, and a cluster whose id was not reused
becomes an alias of the group that received most of its members.

Heat (热度), computed as of an injected ``now`` (reports after ``now`` are ignored; no wall clock here)::

    heat = Σ_reports w · 2^(-age / half_life)  +  like_weight · ln(1 + likes) · 2^(-age_of_last_report / half_life)

with ``w = 1`` for each petitioner's first report in the cluster and ``repeat_weight`` for their repeats. So heat
reads as "distinct people complaining, discounted by how long ago", and grows with size, distinct petitioners,
recency and likes. Trend (走势) compares arrivals in the last ``trend_window_hours`` (recent) with the span before
it (previous): "rising" when recent ≥ 2, recent > previous and recent ≥ 1.5 × previous; "cooling" when previous ≥ 2,
recent < previous and recent ≤ previous / 1.5; otherwise "steady".

Memory: member vectors are kept only while a cluster is open. A cluster that closes without becoming visible is
forgotten; visible clusters are kept (without vectors) for ``retention_hours``, then dropped (the store has them).
"""

from __future__ import annotations

import base64
import functools
import heapq
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from triage.errors import InvalidInput, NotFound
from triage.keywords import ClassTfidf
from triage.schemas import ClusterRef

STATE_VERSION = 1
_HOUR = 3600.0


@dataclass(frozen=True)
class ClusterItem:
    """One petition as the clusterer sees it. ``vector`` must be L2-normalised (triage.similarity.Encoder)."""

    petition_id: str
    vector: np.ndarray
    text: str
    area_key: str | None
    street_key: str | None
    petitioner_key: str | None
    received_at: datetime
    category: str | None = None
    departments: Sequence[str] = ()
    likes: int = 0


@dataclass(frozen=True)
class ClusterAssignment:
    """Where `add` put a petition."""

    cluster_id: str
    created: bool  # True: the petition started a new (candidate) cluster
    similarity: float | None  # similarity to the joined cluster (with street bonus); None if created
    size: int
    petitioners: int
    is_visible: bool
    became_visible: bool  # this petition made the cluster visible (alert-worthy)


@dataclass(frozen=True)
class ClusterView:
    """A cluster as of some ``now``: what the issue map shows."""

    id: str
    aliases: list[str]
    title: str
    keywords: list[str]
    area: str | None
    street: str | None
    category: str | None
    departments: list[str]
    size: int
    petitioners: int
    first_seen: datetime
    last_seen: datetime
    heat: float
    trend: str  # rising | steady | cooling
    member_ids: list[str]
    is_visible: bool

    def to_ref(self) -> ClusterRef:
        return ClusterRef(id=self.id, title=self.title, size=self.size, petitioners=self.petitioners,
                          heat=round(self.heat, 4), trend=self.trend)


@dataclass(frozen=True)
class ReclusterReport:
    """What `recluster` changed: absorbed ids → survivor, newly issued ids, and petitions that changed cluster."""

    merged: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)


@dataclass
class _Member:
    petition_id: str
    ts: float
    petitioner: str | None
    likes: int
    text: str
    area: str | None
    street: str | None
    category: str | None
    departments: tuple[str, ...]


class _Cluster:
    """Mutable cluster state. ``vec_sum``/``vectors`` are None once the cluster has closed."""

    def __init__(self, cid: str, seq: int, anchor: str | None, dim: int):
        self.id, self.seq, self.anchor = cid, seq, anchor
        self.aliases: list[str] = []
        self.members: list[_Member] = []
        self.vectors: dict[str, np.ndarray] | None = {}  # petition id → vector, open clusters only
        self.vec_sum: np.ndarray | None = np.zeros(dim, dtype=np.float64)
        self.petitioner_keys: set[str] = set()
        self.anonymous = 0
        self.streets: Counter = Counter()
        self.first_seen = float("inf")
        self.last_seen = float("-inf")

    def append(self, member: _Member, vector: np.ndarray | None) -> None:
        self.members.append(member)
        if vector is not None and self.vectors is not None:
            self.vectors[member.petition_id] = vector
            self.vec_sum += vector
        if member.petitioner is None:
            self.anonymous += 1
        else:
            self.petitioner_keys.add(member.petitioner)
        if member.street is not None:
            self.streets[member.street] += 1
        self.first_seen = min(self.first_seen, member.ts)
        self.last_seen = max(self.last_seen, member.ts)

    @property
    def petitioners(self) -> int:
        return len(self.petitioner_keys) + self.anonymous

    def profile(self, linkage: str) -> np.ndarray:
        """The row matched against: the mean member vector ("average": its dot product with a petition is the mean
        similarity to the members) or that mean re-normalised ("centroid": cosine to the centre)."""
        scale = float(np.linalg.norm(self.vec_sum)) if linkage == "centroid" else float(len(self.vectors))
        return (self.vec_sum / scale if scale > 0 else self.vec_sum).astype(np.float32)


class _Bucket:
    """Centroids of the open clusters of one area, as one contiguous matrix (rows removed by swap-with-last)."""

    def __init__(self, dim: int):
        self.ids: list[str] = []
        self.seqs = np.zeros(16, dtype=np.int64)
        self.matrix = np.zeros((16, dim), dtype=np.float32)
        self.first = np.zeros(16)
        self.last = np.zeros(16)
        self.row: dict[str, int] = {}

    def put(self, c: _Cluster, row: np.ndarray) -> None:
        i = self.row.get(c.id)
        if i is None:
            i = len(self.ids)
            if i == len(self.first):
                self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
                grow = (np.concatenate([a, np.zeros_like(a)]) for a in (self.seqs, self.first, self.last))
                self.seqs, self.first, self.last = grow
            self.ids.append(c.id)
            self.row[c.id] = i
        self.matrix[i], self.seqs[i], self.first[i], self.last[i] = row, c.seq, c.first_seen, c.last_seen

    def remove(self, cid: str) -> None:
        i = self.row.pop(cid, None)
        if i is None:
            return
        j = len(self.ids) - 1
        if i != j:
            moved = self.ids[j]
            self.ids[i] = moved
            self.row[moved] = i
            self.matrix[i], self.seqs[i] = self.matrix[j], self.seqs[j]
            self.first[i], self.last[i] = self.first[j], self.last[j]
        self.ids.pop()

    def candidates(self, v: np.ndarray, ts: float, window: float, floor: float) -> list[tuple[float, int, str]]:
        """(similarity, seq, id) of the time-compatible clusters at or above ``floor``."""
        n = len(self.ids)
        if n == 0:
            return []
        sims = self.matrix[:n] @ v
        ok = (sims >= floor) & (ts >= self.first[:n] - window) & (ts <= self.last[:n] + window)
        return [(float(sims[i]), int(self.seqs[i]), self.ids[i]) for i in np.flatnonzero(ok)]


def _in_region(area_key: str | None, region: str) -> bool:
    """True when ``region`` is the area key, a leading part of it ("山西省/长治市") or one of its levels ("A3区"),
    so "A3区" never matches "A13区"."""
    if area_key is None:
        return False
    return area_key == region or area_key.startswith(region.rstrip("/") + "/") or region in area_key.split("/")


def _locked(method):
    """Run a public method under the clusterer's lock."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class OnlineClusterer:
    """Incremental same-matter, same-area clustering with stable ids, heat and trend (see the module docstring).

    Parameters
    ----------
    similarity_threshold:
        Least similarity (see ``linkage``) for a petition to join a cluster of its own area.
    window_hours:
        A petition may join a cluster whose span it comes within this many hours of.
    min_petitioners:
        Distinct petitioners needed before a cluster is visible.
    heat_half_life_hours:
        A report's contribution to heat halves every this many hours.
    unknown_area_threshold:
        Similarity needed when the petition or the cluster has no area; default halfway from the threshold to 1.
    street_bonus:
        Added to the similarity when the petition's street key is among the cluster's streets.
    repeat_weight:
        Heat weight of a petitioner's second and later reports in a cluster (their first counts 1).
    like_weight:
        Heat per unit of ln(1 + total likes).
    trend_window_hours:
        Arrivals in the last this-many hours are compared with the same span before it.
    recluster_threshold:
        Average-linkage similarity at which `recluster` keeps members together; default ``similarity_threshold``.
    retention_hours:
        Closed visible clusters are forgotten this long after their last report.
    id_prefix:
        Prefix of cluster ids.
    linkage:
        "average" (mean similarity to the members; default) or "centroid" (cosine to the re-normalised mean).
    max_text_chars:
        Each report's text is kept (for keywords and titles) up to this many characters.
    """

    def __init__(self, *, similarity_threshold: float, window_hours: float, min_petitioners: int = 2,
                 heat_half_life_hours: float, unknown_area_threshold: float | None = None, street_bonus: float = 0.03,
                 repeat_weight: float = 0.25, like_weight: float = 0.5, trend_window_hours: float = 24.0,
                 recluster_threshold: float | None = None, retention_hours: float = 24.0 * 90, id_prefix: str = "C",
                 linkage: str = "average", max_text_chars: int = 300):
        self.similarity_threshold = similarity_threshold
        self.window_hours = window_hours
        self.min_petitioners = min_petitioners
        self.heat_half_life_hours = heat_half_life_hours
        self.unknown_area_threshold = unknown_area_threshold
        self.street_bonus = street_bonus
        self.repeat_weight = repeat_weight
        self.like_weight = like_weight
        self.trend_window_hours = trend_window_hours
        self.recluster_threshold = recluster_threshold
        self.retention_hours = retention_hours
        self.id_prefix = id_prefix
        self.linkage = linkage
        self.max_text_chars = max_text_chars
        self.dim_: int | None = None
        self.seq_ = 0
        self.watermark_ = float("-inf")
        self.last_prune_ = float("-inf")
        self.naive_: bool | None = None
        self.clusters_: dict[str, _Cluster] = {}
        self.aliases_: dict[str, str] = {}
        self.cluster_of_: dict[str, str] = {}
        self._buckets: dict[str | None, _Bucket] = {}
        self._all: _Bucket | None = None
        self._tfidf = ClassTfidf()
        self._tfidf_stale: set[str] = set()
        self._closed: list[tuple[float, int, str]] = []  # heap of closed visible clusters by last report
        self._lock = threading.RLock()  # one writer or reader at a time: the API serves requests from threads

    # ----------------------------------------------------------------------------------------------- params

    def get_params(self) -> dict:
        names = ("similarity_threshold", "window_hours", "min_petitioners", "heat_half_life_hours",
                 "unknown_area_threshold", "street_bonus", "repeat_weight", "like_weight", "trend_window_hours",
                 "recluster_threshold", "retention_hours", "id_prefix", "linkage", "max_text_chars")
        return {n: getattr(self, n) for n in names}

    @property
    def _unknown_threshold(self) -> float:
        if self.unknown_area_threshold is not None:
            return self.unknown_area_threshold
        return self.similarity_threshold + (1.0 - self.similarity_threshold) / 2

    # ------------------------------------------------------------------------------------------------- add

    @_locked
    def add(self, item: ClusterItem) -> ClusterAssignment:
        """Place one petition: join the best open cluster of the same matter and area, or start a candidate."""
        if self.linkage not in ("average", "centroid"):
            raise InvalidInput(f"linkage must be 'average' or 'centroid', not {self.linkage!r}", field="linkage")
        if item.petition_id in self.cluster_of_:
            raise InvalidInput(f"petition {item.petition_id!r} was already added", field="petition_id")
        for name in ("area_key", "street_key", "petitioner_key"):
            if not isinstance(getattr(item, name), (str, type(None))):  # a NaN from a DataFrame is not an area
                raise InvalidInput(f"{name} must be a string or None, not {getattr(item, name)!r}", field=name)
        v = self._check_vector(item.vector)
        ts = self._to_ts(item.received_at)
        if ts > self.watermark_:
            self.watermark_ = ts
            if ts - self.last_prune_ >= self.window_hours * _HOUR / 10:
                self._prune()
        window = self.window_hours * _HOUR
        t_known, t_unknown = self.similarity_threshold, self._unknown_threshold
        floor = min(t_known, t_unknown) - self.street_bonus
        # (bucket, threshold, only area-less clusters): `_all` holds the established clusters of every area
        if item.area_key is None:
            pools = [(self._all, t_unknown, False), (self._buckets.get(None), t_unknown, False)]
        else:
            pools = [(self._buckets.get(item.area_key), t_known, False), (self._all, t_unknown, True)]
        best: tuple[float, int, str] | None = None
        for bucket, threshold, unplaced_only in pools:
            if bucket is None:
                continue
            for sim, seq, cid in bucket.candidates(v, ts, window, floor):
                if unplaced_only and self.clusters_[cid].anchor is not None:
                    continue
                if item.street_key is not None and item.street_key in self.clusters_[cid].streets:
                    sim += self.street_bonus
                if sim >= threshold and (best is None or (sim, -seq) > (best[0], -best[1])):
                    best = (sim, seq, cid)
        member = _Member(item.petition_id, ts, item.petitioner_key, int(item.likes or 0),
                         (item.text or "")[: self.max_text_chars], item.area_key,
                         item.street_key, item.category, tuple(item.departments or ()))
        if best is None:
            cluster = self._new_cluster(item.area_key)
            was_visible = False
        else:
            cluster = self.clusters_[best[2]]
            was_visible = self._visible(cluster)
            if cluster.anchor is None and item.area_key is not None:
                self._unindex(cluster)
                cluster.anchor = item.area_key
        cluster.append(member, v)
        self.cluster_of_[item.petition_id] = cluster.id
        self._index(cluster)
        self._tfidf_stale.add(cluster.id)
        visible = self._visible(cluster)
        return ClusterAssignment(cluster.id, best is None, None if best is None else best[0], len(cluster.members),
                                 cluster.petitioners, visible, visible and not was_visible)

    @_locked
    def update_likes(self, petition_id: str, likes: int) -> None:
        """Record a new like count for a petition (message boards keep collecting likes)."""
        cid = self.cluster_of_.get(petition_id)
        if cid is None:
            raise NotFound(f"petition {petition_id!r} is not in any retained cluster", field="petition_id")
        for m in self.clusters_[cid].members:
            if m.petition_id == petition_id:
                m.likes = int(likes)

    # ------------------------------------------------------------------------------------------ ids, merge

    def resolve(self, cluster_id: str) -> str:
        """The current id of a cluster: follows merge aliases; an id that is not an alias is returned as is."""
        return self.aliases_.get(cluster_id, cluster_id)

    def cluster_id_of(self, petition_id: str) -> str | None:
        """The cluster a retained petition is in, or None."""
        return self.cluster_of_.get(petition_id)

    @_locked
    def merge(self, a: str, b: str) -> str:
        """Merge two clusters (e.g. an operator's decision); the older id survives, the other becomes its alias."""
        ca, cb = self._get(a), self._get(b)
        if ca is cb:
            return ca.id
        keep, gone = sorted((ca, cb), key=lambda c: (c.first_seen, c.seq))
        self._absorb(keep, gone)
        return keep.id

    def _absorb(self, keep: _Cluster, gone: _Cluster) -> None:
        self._unindex(gone)
        self._unindex(keep)
        if keep.vectors is None and gone.vectors is not None:  # an open cluster merged into a closed one reopens it
            keep.vectors, keep.vec_sum = {}, np.zeros(self.dim_, dtype=np.float64)
        for m in gone.members:
            keep.append(m, None if gone.vectors is None else gone.vectors.get(m.petition_id))
            self.cluster_of_[m.petition_id] = keep.id
        if keep.anchor is None:
            keep.anchor = gone.anchor
        self._alias(gone, keep.id)
        self._index(keep)
        self._tfidf_stale.add(keep.id)

    def _alias(self, gone: _Cluster, target: str) -> None:
        for old in [gone.id, *gone.aliases]:
            self.aliases_[old] = target
        for old, tgt in self.aliases_.items():  # keep the map one hop deep
            if tgt == gone.id:
                self.aliases_[old] = target
        survivor = self.clusters_[target]
        survivor.aliases = sorted(set(survivor.aliases) | {gone.id, *gone.aliases}, key=self._seq_of)
        del self.clusters_[gone.id]
        self._tfidf.drop_class(gone.id)
        self._tfidf_stale.discard(gone.id)

    def _seq_of(self, cid: str) -> int:
        return int(cid[len(self.id_prefix):]) if cid[len(self.id_prefix):].isdigit() else 0

    # ----------------------------------------------------------------------------------------------- views

    @_locked
    def clusters(self, now: datetime, *, since: datetime | None = None, area: str | None = None,
                 department: str | None = None, min_size: int = 1, visible_only: bool = True,
                 limit: int | None = None, region: str | None = None) -> list[ClusterView]:
        """Held clusters as of ``now``, hottest first (ties: older id first).

        ``since`` keeps clusters with a report at or after it; ``area`` matches the main area exactly, ``region`` any
        part of it ("长治市", "A3区"); ``department`` any of the top three departments. Titles and keywords are built
        only for the clusters returned.
        """
        now_ts = self._query_ts(now)
        since_ts = None if since is None else self._query_ts(since)
        chosen = []
        for c in self.clusters_.values():
            if len(c.members) < min_size or (visible_only and not self._visible(c)):
                continue
            if since_ts is not None and c.last_seen < since_ts:
                continue
            if area is not None or region is not None:
                main_area = self._main_area(c)
                if area is not None and main_area != area:
                    continue
                if region is not None and not _in_region(main_area, region):
                    continue
            if department is not None and department not in self._departments(c):
                continue
            chosen.append((self._heat(c, now_ts), c.seq, c))
        chosen.sort(key=lambda hc: (-hc[0], hc[1]))
        chosen = chosen if limit is None else chosen[:limit]
        self._refresh_keywords()
        return [self._view(c, now_ts, heat) for heat, _, c in chosen]

    @_locked
    def get(self, cluster_id: str, now: datetime) -> ClusterView:
        """One cluster (aliases resolved) as of ``now``."""
        cluster = self._get(cluster_id)
        self._refresh_keywords()
        now_ts = self._query_ts(now)
        return self._view(cluster, now_ts, self._heat(cluster, now_ts))

    @_locked
    def heat(self, cluster_id: str, now: datetime) -> float:
        return self._heat(self._get(cluster_id), self._query_ts(now))

    def _heat(self, c: _Cluster, now_ts: float) -> float:
        half_life = self.heat_half_life_hours * _HOUR
        seen: set[str] = set()
        heat, likes, last = 0.0, 0, None
        for m in sorted(c.members, key=lambda m: m.ts):
            if m.ts > now_ts:
                break
            repeat = m.petitioner is not None and m.petitioner in seen
            if m.petitioner is not None:
                seen.add(m.petitioner)
            heat += (self.repeat_weight if repeat else 1.0) * 2.0 ** (-(now_ts - m.ts) / half_life)
            likes += m.likes
            last = m.ts
        if last is not None and likes > 0:
            heat += self.like_weight * np.log1p(likes) * 2.0 ** (-(now_ts - last) / half_life)
        return float(heat)

    def _trend(self, c: _Cluster, now_ts: float) -> str:
        span = self.trend_window_hours * _HOUR
        recent = sum(1 for m in c.members if now_ts - span < m.ts <= now_ts)
        previous = sum(1 for m in c.members if now_ts - 2 * span < m.ts <= now_ts - span)
        if recent >= 2 and recent > previous and recent >= 1.5 * previous:
            return "rising"
        if previous >= 2 and recent < previous and recent * 1.5 <= previous:
            return "cooling"
        return "steady"

    @staticmethod
    def _ranked(values) -> list:
        return [v for v, _ in Counter(v for v in values if v is not None).most_common()]

    def _main_area(self, c: _Cluster) -> str | None:
        areas = self._ranked(m.area for m in c.members)
        return areas[0] if areas else c.anchor

    def _departments(self, c: _Cluster) -> list[str]:
        return self._ranked(d for m in c.members for d in m.departments)[:3]

    def _view(self, c: _Cluster, now_ts: float, heat: float) -> ClusterView:
        streets, categories = (self._ranked(getattr(m, f) for m in c.members) for f in ("street", "category"))
        members = c.members
        if c.vectors:  # most central report first: the title tie-break prefers it
            mean = c.vec_sum / max(len(c.vectors), 1)
            centrality = {p: float(v @ mean) for p, v in c.vectors.items()}
            members = sorted(members, key=lambda m: -centrality.get(m.petition_id, -1.0))
        titles = [(m.petition_id, m.text.partition("\n")[0] if "\n" in m.text else m.text[:40]) for m in members]
        reports = None if c.id in self._tfidf.class_words_ else [(m.petition_id, m.text) for m in members]
        keywords = self._tfidf.keywords(c.id, reports=reports)
        return ClusterView(
            id=c.id, aliases=list(c.aliases), title=self._tfidf.title(keywords, titles),
            keywords=[w for w, _ in keywords], area=self._main_area(c), street=streets[0] if streets else None,
            category=categories[0] if categories else None, departments=self._departments(c), size=len(c.members),
            petitioners=c.petitioners, first_seen=self._to_dt(c.first_seen), last_seen=self._to_dt(c.last_seen),
            heat=heat, trend=self._trend(c, now_ts), member_ids=[m.petition_id for m in c.members],
            is_visible=self._visible(c))

    def _refresh_keywords(self) -> None:
        """Bring the c-TF-IDF classes up to date: one class per held cluster of two or more reports.

        Singletons stay out: they would dominate the IDF with noise, and tokenising every open singleton after a
        restart would cost seconds. A singleton's own keywords are scored against these classes when asked for.
        """
        for cid in sorted(self._tfidf_stale):
            c = self.clusters_.get(cid)
            if c is not None and len(c.members) >= 2:
                self._tfidf.set_class(cid, [(m.petition_id, m.text) for m in c.members])
            else:
                self._tfidf.drop_class(cid)
        self._tfidf_stale.clear()

    # -------------------------------------------------------------------------------------------- internals

    def _check_vector(self, vector: np.ndarray) -> np.ndarray:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self.dim_ is None:
            self.dim_ = v.shape[0]
            self._all = _Bucket(self.dim_)
        if v.shape[0] != self.dim_:
            raise InvalidInput(f"vector has {v.shape[0]} dimensions; the clusterer holds {self.dim_}", field="vector")
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 and abs(norm - 1.0) > 1e-3 else v

    def _to_ts(self, when: datetime) -> float:
        naive = when.tzinfo is None
        if self.naive_ is None:
            self.naive_ = naive
        return (when.replace(tzinfo=timezone.utc) if naive else when).timestamp()

    def _query_ts(self, when: datetime) -> float:
        return (when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when).timestamp()

    def _to_dt(self, ts: float) -> datetime:
        dt = datetime.fromtimestamp(ts, tz=timezone.utc)
        return dt.replace(tzinfo=None) if self.naive_ else dt

    def _new_cluster(self, anchor: str | None) -> _Cluster:
        self.seq_ += 1
        cluster = _Cluster(f"{self.id_prefix}{self.seq_:08d}", self.seq_, anchor, self.dim_)
        self.clusters_[cluster.id] = cluster
        return cluster

    def _visible(self, c: _Cluster) -> bool:
        return c.petitioners >= self.min_petitioners

    def _index(self, c: _Cluster) -> None:
        if c.vec_sum is None:
            return
        row = c.profile(self.linkage)
        self._buckets.setdefault(c.anchor, _Bucket(self.dim_)).put(c, row)
        if len(c.members) >= 2:  # area-less petitions look only at established clusters: keeps their scan small
            self._all.put(c, row)

    def _unindex(self, c: _Cluster) -> None:
        bucket = self._buckets.get(c.anchor)
        if bucket is not None:
            bucket.remove(c.id)
        if self._all is not None:
            self._all.remove(c.id)

    def _get(self, cluster_id: str) -> _Cluster:
        cluster = self.clusters_.get(self.resolve(cluster_id))
        if cluster is None:
            raise NotFound(f"cluster {cluster_id!r} is not held (unknown, or closed without becoming visible)",
                           field="cluster_id")
        return cluster

    def _prune(self) -> None:
        """Close clusters the window has passed; forget closed invisible ones and visible ones past retention."""
        self.last_prune_ = self.watermark_
        close_before = self.watermark_ - self.window_hours * _HOUR
        drop_before = self.watermark_ - self.retention_hours * _HOUR
        for anchor, bucket in list(self._buckets.items()):
            n = len(bucket.ids)
            if n == 0:
                del self._buckets[anchor]  # areas come and go; an empty bucket only costs scan time
                continue
            for cid in [bucket.ids[i] for i in np.flatnonzero(bucket.last[:n] < close_before)]:
                c = self.clusters_[cid]
                self._unindex(c)
                c.vectors, c.vec_sum = None, None
                if self._visible(c):
                    heapq.heappush(self._closed, (c.last_seen, c.seq, c.id))
                else:
                    self._forget(c)
        while self._closed and self._closed[0][0] < drop_before:
            last_seen, seq, cid = heapq.heappop(self._closed)
            c = self.clusters_.get(cid)
            if c is None or c.vectors is not None:
                continue  # merged away, or reopened by a merge (pushed again when it closes)
            if c.last_seen < drop_before:
                self._forget(c)
            else:
                heapq.heappush(self._closed, (c.last_seen, c.seq, c.id))

    def _forget(self, c: _Cluster) -> None:
        del self.clusters_[c.id]
        for m in c.members:
            self.cluster_of_.pop(m.petition_id, None)
        for old in [c.id, *c.aliases]:
            self.aliases_.pop(old, None)
        self._tfidf.drop_class(c.id, forget_reports=[m.petition_id for m in c.members])
        self._tfidf_stale.discard(c.id)

    # ------------------------------------------------------------------------------------------- recluster

    @_locked
    def recluster(self, *, max_members: int = 3000) -> ReclusterReport:
        """Re-group the members of open clusters, area by area, by average-linkage agglomerative clustering.

        Ids stay stable: each new group takes the id of its oldest contributing cluster not already taken (larger
        groups choose first); a group with none free gets a new id; a cluster whose id is not reused becomes an
        alias of the group that got most of its members. Areas with more than ``max_members`` open members are
        skipped (average linkage is quadratic). Returns what changed.
        """
        from sklearn.cluster import AgglomerativeClustering

        report = ReclusterReport()
        by_anchor: dict[str | None, list[_Cluster]] = {}
        for c in self.clusters_.values():
            if c.vectors:
                by_anchor.setdefault(c.anchor, []).append(c)
        for anchor, olds in by_anchor.items():
            olds.sort(key=lambda c: (c.first_seen, c.seq))
            rows = [(c, m) for c in olds for m in c.members if m.petition_id in c.vectors]
            if len(rows) < 2 or len(rows) > max_members:
                continue
            threshold = self.recluster_threshold or (self.similarity_threshold if anchor is not None
                                                     else self._unknown_threshold)
            X = np.stack([c.vectors[m.petition_id] for c, m in rows])
            labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                             distance_threshold=1.0 - threshold).fit_predict(X)
            groups: dict[int, list[int]] = {}
            for i, label in enumerate(labels):
                groups.setdefault(int(label), []).append(i)
            old_of = {id(c): {int(labels[i]) for i, (o, _) in enumerate(rows) if o is c} for c in olds}
            if all(len({id(rows[i][0]) for i in g}) == 1 for g in groups.values()) and all(
                    len(v) <= 1 for v in old_of.values()):
                continue  # same partition as before
            self._regroup(olds, rows, list(groups.values()), report)
        return report

    def _regroup(self, olds: list[_Cluster], rows: list[tuple[_Cluster, _Member]], groups: list[list[int]],
                 report: ReclusterReport) -> None:
        groups.sort(key=lambda g: (-len(g), min(rows[i][1].ts for i in g), g[0]))
        taken: dict[str, int] = {}  # cluster id → group index
        new_ids: list[str] = []
        for gi, g in enumerate(groups):
            contributors = sorted({id(rows[i][0]): rows[i][0] for i in g}.values(), key=lambda c: (c.first_seen, c.seq))
            free = [c for c in contributors if c.id not in taken]
            if free:
                cid = free[0].id
            else:
                self.seq_ += 1
                cid = f"{self.id_prefix}{self.seq_:08d}"
                report.created.append(cid)
            taken[cid] = gi
            new_ids.append(cid)
        olds_by_id = {c.id: c for c in olds}
        fresh = []
        for gi, (cid, g) in enumerate(zip(new_ids, groups)):
            old = olds_by_id.get(cid)
            nc = _Cluster(cid, old.seq if old else self._seq_of(cid), old.anchor if old else rows[g[0]][0].anchor,
                          self.dim_)
            nc.aliases = list(old.aliases) if old else []
            fresh.append(nc)
        for old in olds:  # members without vectors (merged in from closed clusters) and aliases follow the id
            if old.id in taken:
                target = fresh[taken[old.id]]
            else:
                counts = Counter(gi for gi, g in enumerate(groups) for i in g if rows[i][0] is old)
                target = fresh[min(counts, key=lambda gi: (-counts[gi], gi))]
                report.merged[old.id] = target.id
                for alias in [old.id, *old.aliases]:
                    self.aliases_[alias] = target.id
                for alias, tgt in self.aliases_.items():
                    if tgt == old.id:
                        self.aliases_[alias] = target.id
                target.aliases = sorted(set(target.aliases) | {old.id, *old.aliases}, key=self._seq_of)
            for m in old.members:
                if m.petition_id not in old.vectors:
                    target.append(m, None)
        for nc, g in zip(fresh, groups):
            for i in sorted(g, key=lambda i: (rows[i][1].ts, i)):
                old, m = rows[i]
                nc.append(m, old.vectors[m.petition_id])
        for old in olds:
            self._unindex(old)
            del self.clusters_[old.id]
            self._tfidf.drop_class(old.id)
        for nc in fresh:
            self.clusters_[nc.id] = nc
            self._index(nc)
            self._tfidf_stale.add(nc.id)
            for m in nc.members:
                if self.cluster_of_.get(m.petition_id) != nc.id:
                    report.moved[m.petition_id] = nc.id
                self.cluster_of_[m.petition_id] = nc.id
        for cid in list(self.aliases_):  # an alias must never shadow a live cluster
            if cid in self.clusters_:
                del self.aliases_[cid]

    # ----------------------------------------------------------------------------------------------- state

    @_locked
    def to_state(self) -> dict:
        """Everything needed to resume exactly where this clusterer is, as JSON-serialisable data."""

        def b64(a: np.ndarray) -> str:
            return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")

        clusters = []
        for c in sorted(self.clusters_.values(), key=lambda c: c.seq):
            vec_ids = [] if c.vectors is None else list(c.vectors)
            clusters.append({
                "id": c.id, "seq": c.seq, "anchor": c.anchor, "aliases": list(c.aliases),
                "members": [[m.petition_id, m.ts, m.petitioner, m.likes, m.text, m.area, m.street, m.category,
                             list(m.departments)] for m in c.members],
                "open": c.vectors is not None, "vector_ids": vec_ids,
                "vectors": b64(np.stack([c.vectors[p] for p in vec_ids])) if vec_ids else None,
                "vec_sum": None if c.vec_sum is None else b64(c.vec_sum),
            })
        finite = lambda x: None if not np.isfinite(x) else x  # noqa: E731
        return {
            "version": STATE_VERSION, "params": self.get_params(), "dim": self.dim_, "seq": self.seq_,
            "watermark": finite(self.watermark_), "last_prune": finite(self.last_prune_), "naive": self.naive_,
            "aliases": dict(self.aliases_), "clusters": clusters,
            "buckets": [[anchor, list(b.ids)] for anchor, b in self._buckets.items()],
            "all": [] if self._all is None else list(self._all.ids),
        }

    @classmethod
    def from_state(cls, state: dict) -> "OnlineClusterer":
        """Rebuild a clusterer from `to_state` output; adding to it then gives what the original would have."""
        if state.get("version") != STATE_VERSION:
            raise InvalidInput(f"cluster state version {state.get('version')!r}; this library reads {STATE_VERSION}",
                               field="state")
        self = cls(**state["params"])
        self.dim_, self.seq_, self.naive_ = state["dim"], state["seq"], state["naive"]
        self.watermark_ = float("-inf") if state["watermark"] is None else state["watermark"]
        self.last_prune_ = float("-inf") if state["last_prune"] is None else state["last_prune"]
        self.aliases_ = dict(state["aliases"])
        for cs in state["clusters"]:
            c = _Cluster(cs["id"], cs["seq"], cs["anchor"], self.dim_)
            c.aliases = list(cs["aliases"])
            vectors = {}
            if cs["vectors"]:
                raw = np.frombuffer(base64.b64decode(cs["vectors"]), dtype=np.float32).reshape(-1, self.dim_)
                vectors = {p: raw[i].copy() for i, p in enumerate(cs["vector_ids"])}
            if not cs["open"]:
                c.vectors = None
            for pid, ts, petitioner, likes, text, area, street, category, departments in cs["members"]:
                c.append(_Member(pid, ts, petitioner, likes, text, area, street, category, tuple(departments)),
                         vectors.get(pid))
                self.cluster_of_[pid] = c.id
            c.vec_sum = None if cs["vec_sum"] is None else np.frombuffer(
                base64.b64decode(cs["vec_sum"]), dtype=np.float64).copy()
            self.clusters_[c.id] = c
            self._tfidf_stale.add(c.id)
            if c.vectors is None:
                self._closed.append((c.last_seen, c.seq, c.id))
        heapq.heapify(self._closed)
        if self.dim_ is not None:
            self._all = _Bucket(self.dim_)
            for anchor, ids in state["buckets"]:  # same row order as before, so nothing depends on the restart
                bucket = self._buckets.setdefault(anchor, _Bucket(self.dim_))
                for cid in ids:
                    bucket.put(self.clusters_[cid], self.clusters_[cid].profile(self.linkage))
            for cid in state["all"]:
                self._all.put(self.clusters_[cid], self.clusters_[cid].profile(self.linkage))
        return self
