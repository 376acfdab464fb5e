"""Duplicate detection: 重复件 (repeat filing by the same petitioner) and 同事件 (same event, other petitioners).

The caller (store/pipeline) fetches the candidates — nearest neighbours from the vector index plus the same
petitioner's earlier petitions — and passes them in as `PetitionFeatures`; this module only judges them.

How a candidate is judged
-------------------------
1. *Same matter* score in [0, 1]: a logistic combination of sentence-vector cosine, character n-gram TF-IDF
   cosine (`triage.similarity.LexicalSimilarity`) and whether both name the same street, community or road.
   Weights per encoder were fitted on the dev half of the hand-labelled pairs in ``corpora/pairs/pairs.csv``
   (bench/similarity.py, `fit_weights`); the lexical signal carries most of the weight, because shared place
   names, numbers and names tell "the same burst pipe" from "another burst pipe" better than topic vectors do.
2. Kind, by who filed it:
   * same petitioner (same petitioner id or same phone) → ``repeat`` when the score reaches
     ``repeat_threshold`` within ``repeat_window_days``;
   * another petitioner → ``same_event`` when the score reaches ``same_event_threshold`` within
     ``same_event_window_hours`` and the places do not contradict each other: a different district
     (``triage.places.same_area(..., "district") is False``) is never the same event. Unknown place is allowed.
3. Optionally, a different known category lowers the score by ``category_mismatch_penalty`` (off by default: the
   labelled pairs carry no categories, so there is no data yet to set it).

Most petitions have no duplicate: the result is usually an empty list, and never more than ``max_results``.

The default thresholds and windows are the ones bench/similarity.py chose on the dev pairs (figures on the test
pairs are in bench/results.md). Both windows came out at the longest value tried, which is also the edge of what
the labelled pairs cover (other petitioners within 30 days, same petitioner within 90): longer gaps are unmeasured.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from triage.errors import InvalidInput
from triage.places import Place, same_area
from triage.schemas import DuplicateOut
from triage.similarity import LexicalSimilarity

# Logistic weights (bias, vector cosine, lexical cosine, same street/community/road), fitted per encoder on the dev
# pairs. Vector cosines of the two encoders live on different scales (e5 crowds everything into 0.8–1.0), hence
# one row per encoder.
DEFAULT_WEIGHTS: dict[str, tuple[float, float, float, float]] = {
    "use": (-3.96, 1.67, 10.22, 2.40),
    "use-numpy": (-3.96, 1.67, 10.22, 2.40),  # the same model as "use" (vectors agree to a cosine of 0.9999)
    "e5": (-5.51, 2.90, 10.49, 2.38),
}
_DIGITS = re.compile(r"\D+")


@dataclass
class PetitionFeatures:
    """What the duplicate finder needs to know about one petition; the caller fills it from its store.

    `vector` is the `Encoder` row (L2-normalised). `place` comes from `triage.places.extract_place`; when only a
    district key is at hand ("山西省/长治市/上党区"), pass it as `area_key` instead.
    """

    id: str
    text: str
    vector: np.ndarray | None = None
    petitioner_id: str | None = None
    phone: str | None = None
    place: Place | None = None
    area_key: str | None = None
    received_at: datetime | None = None
    category: str | None = None


def _phone_key(phone: str | None) -> str | None:
    digits = _DIGITS.sub("", phone or "")
    # compare the last 11 digits so "+86 138-0013-8000" and "13800138000" are the same caller
    return digits[-11:] if len(digits) >= 7 else None


def same_petitioner(a: PetitionFeatures, b: PetitionFeatures) -> bool:
    """Same petitioner id, or the same phone number (any formatting)."""
    if a.petitioner_id and b.petitioner_id and a.petitioner_id == b.petitioner_id:
        return True
    pa, pb = _phone_key(a.phone), _phone_key(b.phone)
    return pa is not None and pa == pb


def _district_agreement(a: PetitionFeatures, b: PetitionFeatures) -> bool | None:
    if a.place is not None and b.place is not None:
        agree = same_area(a.place, b.place, "district")
        if agree is not None:
            return agree
    key_a = a.area_key or (a.place.area_key("district") if a.place is not None else None)
    key_b = b.area_key or (b.place.area_key("district") if b.place is not None else None)
    if not key_a or not key_b:
        return None
    # keys are "province/city/district" with "?" for an unknown part: compare only parts both know
    for part_a, part_b in zip(key_a.split("/"), key_b.split("/")):
        if part_a != "?" and part_b != "?" and part_a != part_b:
            return False
    return True


def _local_match(a: PetitionFeatures, b: PetitionFeatures) -> bool:
    """Both name the same street (街道/乡镇), community (社区/村/小区) or road, inside the same district."""
    if a.place is None or b.place is None or _district_agreement(a, b) is False:
        return False
    return any(
        getattr(a.place, name) and getattr(a.place, name) == getattr(b.place, name)
        for name in ("street", "community", "road")
    )


def _hours_apart(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    if (a.tzinfo is None) != (b.tzinfo is None):  # one naive, one aware: read the naive one as UTC
        a = a if a.tzinfo else a.replace(tzinfo=timezone.utc)
        b = b if b.tzinfo else b.replace(tzinfo=timezone.utc)
    return abs((a - b).total_seconds()) / 3600.0


class DuplicateFinder:
    """Judges candidates for a new petition as repeat (重复件), same event (同事件) or nothing.

    Parameters
    ----------
    repeat_threshold:
        Least same-matter score for a repeat by the same petitioner.
    same_event_threshold:
        Least same-matter score for the same event reported by another petitioner.
    same_event_window_hours:
        Reports further apart than this are not the same event.
    repeat_window_days:
        Filings by the same petitioner further apart than this are not listed as repeats.
    max_results:
        At most this many duplicates, best first.
    encoder:
        Name of the encoder that made the vectors ("use" or "e5"); picks the fitted weights.
    weights:
        (bias, vector, lexical, same street/community/road) logistic weights; default: DEFAULT_WEIGHTS[encoder].
    category_mismatch_penalty:
        Subtracted from the score when both categories are known and differ (0 = off).
    lexical:
        A fitted `LexicalSimilarity`; default an unfitted one (uniform n-gram weights). Call `fit` to learn IDF.
    """

    def __init__(
        self,
        *,
        repeat_threshold: float = 0.15,
        same_event_threshold: float = 0.17,
        same_event_window_hours: float = 720.0,
        repeat_window_days: float = 90.0,
        max_results: int = 5,
        encoder: str = "use",
        weights: tuple[float, float, float, float] | None = None,
        category_mismatch_penalty: float = 0.0,
        lexical: LexicalSimilarity | None = None,
    ):
        self.repeat_threshold = repeat_threshold
        self.same_event_threshold = same_event_threshold
        self.same_event_window_hours = same_event_window_hours
        self.repeat_window_days = repeat_window_days
        self.max_results = max_results
        self.encoder = encoder
        self.weights = weights
        self.category_mismatch_penalty = category_mismatch_penalty
        self.lexical = lexical

    def _weights(self) -> tuple[float, float, float, float]:
        if self.weights is not None:
            return self.weights
        if self.encoder not in DEFAULT_WEIGHTS:
            raise InvalidInput(f"no fitted weights for encoder {self.encoder!r}; pass weights=", field="encoder")
        return DEFAULT_WEIGHTS[self.encoder]

    def _lexical(self) -> LexicalSimilarity:
        if self.lexical is None:
            self.lexical = LexicalSimilarity()
        return self.lexical

    def prepare(self, texts: Sequence[str]) -> None:
        """Compute the lexical vectors of texts about to be judged (kept in the lexical cache), e.g. while their
        sentence vectors are still being encoded."""
        self._lexical().prepare(texts)

    def fit(self, texts: Sequence[str]) -> "DuplicateFinder":
        """Learn the lexical IDF from a corpus of petition texts (any few thousand petitions will do)."""
        self.lexical = LexicalSimilarity().fit(texts) if self.lexical is None else self.lexical.fit(texts)
        return self

    def score(self, new: PetitionFeatures, candidates: Sequence[PetitionFeatures]) -> np.ndarray:
        """Same-matter score in [0, 1] of `new` against each candidate (kind, window and place not applied)."""
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        if new.vector is None or any(c.vector is None for c in candidates):
            raise InvalidInput("every petition needs its encoder vector to be scored", field="vector")
        bias, w_vec, w_lex, w_local = self._weights()
        vec_sim = np.stack([c.vector for c in candidates]).astype(np.float32) @ np.asarray(new.vector, np.float32)
        lex_sim = self._lexical().score_one_to_many(new.text, [c.text for c in candidates])
        local = np.array([_local_match(new, c) for c in candidates], dtype=np.float32)
        logits = bias + w_vec * vec_sim + w_lex * lex_sim + w_local * local
        scores = 1.0 / (1.0 + np.exp(-logits))
        if self.category_mismatch_penalty:
            differ = np.array([bool(new.category and c.category and new.category != c.category) for c in candidates])
            scores = scores - self.category_mismatch_penalty * differ
        return np.clip(scores, 0.0, 1.0).astype(np.float32)

    def judge(self, new: PetitionFeatures, candidates: Sequence[PetitionFeatures]) -> list[str | None]:
        """Kind of each candidate: "repeat", "same_event" or None, with its score (see `find`)."""
        return [kind for kind, _ in self._judge(new, candidates)]

    def _judge(self, new, candidates) -> list[tuple[str | None, float]]:
        scores = self.score(new, candidates)
        out = []
        for cand, score in zip(candidates, scores.tolist()):
            kind = None
            if cand.id != new.id:
                hours = _hours_apart(new.received_at, cand.received_at)
                if same_petitioner(new, cand):
                    in_window = hours is None or hours <= self.repeat_window_days * 24.0
                    if in_window and score >= self.repeat_threshold:
                        kind = "repeat"
                else:
                    in_window = hours is None or hours <= self.same_event_window_hours
                    if in_window and score >= self.same_event_threshold and _district_agreement(new, cand) is not False:
                        kind = "same_event"
            out.append((kind, score))
        return out

    def find(self, new: PetitionFeatures, candidates: Sequence[PetitionFeatures]) -> list[DuplicateOut]:
        """Duplicates of `new` among `candidates`, best first, at most `max_results`; usually empty."""
        seen: dict[str, DuplicateOut] = {}
        for cand, (kind, score) in zip(candidates, self._judge(new, candidates)):
            if kind is None:
                continue
            out = DuplicateOut(id=cand.id, kind=kind, score=round(float(score), 4), received_at=cand.received_at)
            # the same petition can arrive twice (index neighbour and petitioner history): keep the better verdict
            if cand.id not in seen or seen[cand.id].score < out.score:
                seen[cand.id] = out
        ranked = sorted(seen.values(), key=lambda d: (-d.score, d.kind != "repeat", d.id))
        return ranked[: self.max_results]

    def find_batch(
        self, news: Sequence[PetitionFeatures], candidates: Sequence[Sequence[PetitionFeatures]]
    ) -> list[list[DuplicateOut]]:
        """`find` for many petitions, each with its own candidate list."""
        if len(news) != len(candidates):
            raise InvalidInput("one candidate list per petition is needed", field="candidates")
        return [self.find(n, c) for n, c in zip(news, candidates)]

