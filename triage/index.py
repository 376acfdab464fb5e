"""Vector index over petition vectors: add / remove / search / save / load, with a numpy and a faiss backend.

Petition ids are strings (the caller's ids); the index maps them to int64 row keys internally. Vectors are expected
to be L2-normalised, so inner product is cosine similarity.

Restricting a search (last N days, one city, one petitioner) — `allowed_ids`:
the caller passes the ids that may be returned (from its store: "petitions of this area in the last 72 hours").
The numpy backend scores only those rows, which is both exact and cheaper than a full scan when the set is small.
The faiss backend passes them to faiss as an `IDSelectorBatch`, so flat search stays exact and HNSW searches the
graph while skipping disallowed nodes; when the allowed set is small (under `exact_below`), HNSW scores those
vectors exactly instead, because a graph walk seldom reaches a tiny scattered subset. Over-fetching k×m and
filtering afterwards was the alternative; it silently returns fewer than k hits whenever the allowed set is a small
share of the index (a city's last three days is well under 1% of a national index), so it is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from triage.errors import BundleError, InvalidInput

INDEX_FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("numpy", "faiss-cpu", "petition-triage"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


class VectorIndex:
    """Base class: id bookkeeping, locking, argument checks and the saved manifest. Backends store vectors.

    Parameters
    ----------
    dim:
        Vector length; every add and search is checked against it.
    """

    backend = "base"

    def __init__(self, dim: int):
        if dim <= 0:
            raise InvalidInput(f"dim must be positive, got {dim}", field="dim")
        self.dim = dim
        self._lock = threading.RLock()
        self._key_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._next_key = 0

    # ------------------------------------------------------------------ public API

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors under string ids; an id already present is replaced (re-triage of an edited petition)."""
        vectors = self._check_vectors(vectors)
        ids = [str(i) for i in ids]
        if len(ids) != len(vectors):
            raise InvalidInput(f"{len(ids)} ids for {len(vectors)} vectors", field="ids")
        if len(set(ids)) != len(ids):
            raise InvalidInput("duplicate ids in one add() call", field="ids")
        with self._lock:
            present = [i for i in ids if i in self._key_of]
            if present:
                self.remove(present)
            keys = np.arange(self._next_key, self._next_key + len(ids), dtype=np.int64)
            self._next_key += len(ids)
            self._add_rows(keys, vectors)
            for i, k in zip(ids, keys.tolist()):
                self._key_of[i] = k
                self._id_of[k] = i

    def remove(self, ids: Iterable[str]) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""
        with self._lock:
            keys = [self._key_of.pop(str(i)) for i in ids if str(i) in self._key_of]
            for k in keys:
                del self._id_of[k]
            if keys:
                self._remove_rows(np.asarray(keys, dtype=np.int64))
            return len(keys)

    def search(
        self, vectors: np.ndarray, k: int = 10, allowed_ids: Iterable[str] | None = None
    ) -> tuple[list[list[str]], np.ndarray]:
        """Top-k most similar stored vectors for each query row.

        Returns (ids, scores): `ids[q]` is a list of up to k ids best first, `scores` a float32 array (n_queries, k)
        padded with -inf where fewer than k hits exist. With `allowed_ids` only those ids can be returned.
        """
        vectors = self._check_vectors(vectors)
        if k <= 0:
            raise InvalidInput("k must be positive", field="k")
        with self._lock:
            allowed = None
            if allowed_ids is not None:
                allowed = np.fromiter(
                    (self._key_of[str(i)] for i in allowed_ids if str(i) in self._key_of), dtype=np.int64
                )
            if len(self) == 0 or (allowed is not None and len(allowed) == 0):
                return [[] for _ in range(len(vectors))], np.full((len(vectors), k), -np.inf, dtype=np.float32)
            keys, scores = self._search_rows(vectors, k, allowed)
            ids = [[self._id_of[int(x)] for x in row if x >= 0] for row in keys]
            return ids, scores.astype(np.float32)

    def __len__(self) -> int:
        return len(self._key_of)

    def __contains__(self, petition_id: str) -> bool:
        return str(petition_id) in self._key_of

    def save(self, path: str | Path) -> Path:
        """Write the index to directory `path`: manifest.json, ids.json and the backend's vector file.

        Written to a sibling temporary directory first and swapped in, so a crash never leaves a half-written
        index under `path` (the previous one stays until the new one is complete).
        """
        path = Path(path)
        staging = path.with_name(f".{path.name}.saving-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with self._lock:
            manifest = {
                "format_version": INDEX_FORMAT_VERSION,
                "created_at": datetime.now(timezone.utc).isoformat(),
                "backend": self.backend,
                "dim": self.dim,
                "count": len(self),
                "params": self._params(),
                "versions": _versions(),
            }
            self._save_rows(staging)
            (staging / "ids.json").write_text(
                json.dumps({"next_key": self._next_key, "keys": self._key_of}, ensure_ascii=False), encoding="utf-8"
            )
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        retired = path.with_name(f".{path.name}.old-{os.getpid()}")
        if path.exists():
            path.rename(retired)
        staging.rename(path)
        shutil.rmtree(retired, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | Path, *, dim: int | None = None, backend: str | None = None) -> "VectorIndex":
        """Load an index saved by `save`. Refuses, with the reason, a dim or backend other than the expected one."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            raise BundleError(f"no vector index at {path} (manifest.json missing)")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format_version") != INDEX_FORMAT_VERSION:
            raise BundleError(
                f"index at {path} has format {manifest.get('format_version')}, expected {INDEX_FORMAT_VERSION}"
            )
        want_backend = backend or (cls.backend if cls is not VectorIndex else None)
        if want_backend and manifest["backend"] != want_backend:
            raise BundleError(
                f"index at {path} was built with backend {manifest['backend']!r}, not {want_backend!r}; rebuild it"
            )
        if dim is not None and manifest["dim"] != dim:
            raise BundleError(
                f"index at {path} holds {manifest['dim']}-dim vectors but the encoder makes {dim}-dim ones; "
                "rebuild the index with the current encoder"
            )
        index = make_index(manifest["backend"], manifest["dim"], **manifest.get("params", {}))
        ids = json.loads((path / "ids.json").read_text(encoding="utf-8"))
        index._key_of = {i: int(k) for i, k in ids["keys"].items()}
        index._id_of = {k: i for i, k in index._key_of.items()}
        index._next_key = int(ids["next_key"])
        index._load_rows(path)
        if index._stored_count() != manifest["count"]:
            raise BundleError(f"index at {path} is damaged: manifest says {manifest['count']} vectors")
        return index

    # ------------------------------------------------------------------ backend hooks

    def _check_vectors(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidInput(f"vectors must have shape (n, {self.dim}), got {vectors.shape}", field="vectors")
        return vectors

    def _params(self) -> dict:
        return {}

    def _add_rows(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def _remove_rows(self, keys: np.ndarray) -> None:
        raise NotImplementedError

    def _search_rows(self, vectors: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _save_rows(self, path: Path) -> None:
        raise NotImplementedError

    def _load_rows(self, path: Path) -> None:
        raise NotImplementedError

    def _stored_count(self) -> int:
        raise NotImplementedError


def _top_k(scores: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k columns of each row of `scores` (n_q, n), sorted, padded with key -1 / score -inf."""
    n_q, n = scores.shape
    take = min(k, n)
    part = np.argpartition(-scores, take - 1, axis=1)[:, :take] if take < n else np.tile(np.arange(n), (n_q, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    out_keys = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    out_keys[:, :take] = keys[best]
    out_scores[:, :take] = np.take_along_axis(scores, best, axis=1)
    return out_keys, out_scores


class NumpyIndex(VectorIndex):
    """Exact inner-product search in numpy; no faiss needed. Fine up to a few hundred thousand vectors."""

    backend = "numpy"

    def __init__(self, dim: int):
        super().__init__(dim)
        self._keys = np.empty(0, dtype=np.int64)
        self._matrix = np.empty((0, dim), dtype=np.float32)

    def _add_rows(self, keys, vectors):
        self._keys = np.concatenate([self._keys, keys])
        self._matrix = np.concatenate([self._matrix, vectors])

    def _remove_rows(self, keys):
        keep = ~np.isin(self._keys, keys)
        self._keys, self._matrix = self._keys[keep], self._matrix[keep]

    def _search_rows(self, vectors, k, allowed):
        keys, matrix = self._keys, self._matrix
        if allowed is not None:
            rows = np.flatnonzero(np.isin(keys, allowed))
            keys, matrix = keys[rows], matrix[rows]
        return _top_k(vectors @ matrix.T, keys, k)

    def _save_rows(self, path):
        np.savez(path / "vectors.npz", keys=self._keys, matrix=self._matrix)

    def _load_rows(self, path):
        with np.load(path / "vectors.npz") as data:
            self._keys, self._matrix = data["keys"], data["matrix"]

    def _stored_count(self):
        return len(self._keys)


class FaissIndex(VectorIndex):
    """faiss `IndexIDMap` over exact inner product (`kind="flat"`) or an HNSW graph (`kind="hnsw"`).

    HNSW answers faster than a flat scan once the index is large, but it is approximate, needs more memory (the
    graph links) and is slow to build on one core (see bench/results.md). A filtered search over fewer than
    `exact_below` allowed ids is scored exactly instead of walking the graph. Removing from HNSW only marks ids
    deleted (faiss cannot unlink graph nodes), so a long-running HNSW index should be rebuilt from the store now
    and then.
    """

    backend = "faiss"

    def __init__(
        self,
        dim: int,
        *,
        kind: str = "flat",
        hnsw_m: int = 32,
        ef_search: int = 64,
        ef_construction: int = 80,
        exact_below: int = 50_000,
    ):
        import faiss

        if kind not in ("flat", "hnsw"):
            raise InvalidInput(f"faiss index kind must be 'flat' or 'hnsw', got {kind!r}", field="kind")
        super().__init__(dim)
        self.kind, self.hnsw_m, self.ef_search, self.ef_construction = kind, hnsw_m, ef_search, ef_construction
        self.exact_below = exact_below
        self._faiss = faiss
        self._index = self._empty()

    def _empty(self):
        faiss = self._faiss
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap(inner)

    def _params(self):
        return {
            "kind": self.kind,
            "hnsw_m": self.hnsw_m,
            "ef_search": self.ef_search,
            "ef_construction": self.ef_construction,
            "exact_below": self.exact_below,
        }

    def _add_rows(self, keys, vectors):
        self._index.add_with_ids(vectors, keys)

    def _remove_rows(self, keys):
        if self.kind == "flat":
            self._index.remove_ids(self._faiss.IDSelectorBatch(keys))
        else:
            # HNSW cannot delete nodes: keep them in the graph and filter them out at search time.
            self._deleted = np.union1d(getattr(self, "_deleted", np.empty(0, np.int64)), keys)

    def _search_rows(self, vectors, k, allowed):
        faiss = self._faiss
        deleted = getattr(self, "_deleted", np.empty(0, np.int64))
        if allowed is not None and self.kind == "hnsw" and len(allowed) <= self.exact_below:
            # A small allowed set is a poor start for graph search (the walk rarely reaches it); scoring those
            # vectors exactly is both correct and fast.
            return self._search_exact(vectors, k, allowed)
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed)
        elif len(deleted):
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(deleted))
        else:
            selector = None
        if selector is None:
            scores, keys = self._index.search(vectors, k)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
            scores, keys = self._index.search(vectors, k, params=params)
        else:
            scores, keys = self._index.search(vectors, k, params=faiss.SearchParameters(sel=selector))
        scores = np.where(keys < 0, -np.inf, scores).astype(np.float32)
        return keys, scores

    def _search_exact(self, vectors, k, allowed):
        id_map = self._faiss.vector_to_array(self._index.id_map)
        positions = np.flatnonzero(np.isin(id_map, allowed))
        stored = self._index.index.reconstruct_batch(positions)
        return _top_k(vectors @ stored.T, id_map[positions], k)

    def _save_rows(self, path):
        self._faiss.write_index(self._index, str(path / "faiss.index"))
        np.save(path / "deleted.npy", getattr(self, "_deleted", np.empty(0, np.int64)))

    def _load_rows(self, path):
        self._index = self._faiss.read_index(str(path / "faiss.index"))
        self._deleted = np.load(path / "deleted.npy")

    def _stored_count(self):
        return int(self._index.ntotal) - len(getattr(self, "_deleted", ()))


def make_index(backend: str = "numpy", dim: int = 512, **params) -> VectorIndex:
    """Build an empty index by backend name: "numpy", "faiss" (flat) or "faiss-hnsw"."""
    if backend == "numpy":
        return NumpyIndex(dim)
    if backend == "faiss":
        return FaissIndex(dim, **params)
    if backend == "faiss-hnsw":
        return FaissIndex(dim, **{**params, "kind": "hnsw"})
    raise InvalidInput(f"unknown index backend {backend!r}; choose numpy, faiss or faiss-hnsw", field="backend")


def load_index(path: str | Path, *, dim: int | None = None, backend: str | None = None) -> VectorIndex:
    """Load a saved index of whichever backend it was built with (checked against `backend` when given)."""
    return VectorIndex.load(path, dim=dim, backend=backend)
