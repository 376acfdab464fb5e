"""The petition category tree (分类体系): three levels, level1 → level2 → level3, and lexical matching of its names.

The board's taxonomy has 15 first-level classes (一级分类) and a few hundred second- and third-level ones. A
`Taxonomy` is a small immutable value: it loads from a CSV with columns ``level1, level2, level3``, pickles as
plain tuples, and round-trips through ``to_dict``/``from_dict`` or ``save``/``load`` so a model bundle can carry
its own copy and never needs the shared data directory at run time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from triage.errors import DataError

_COLUMNS = ("level1", "level2", "level3")


class Taxonomy:
    """A three-level category tree.

    Parameters
    ----------
    paths : sequence of (level1, level2, level3) triples, in file order. Blank level2/level3 are allowed
        (a level1 with no children, or a level2 with no level3).
    """

    def __init__(self, paths: Iterable[Sequence[str]]):
        cleaned: list[tuple[str, str, str]] = []
        seen: set[tuple[str, str, str]] = set()
        for number, path in enumerate(paths, start=1):
            parts = tuple((str(p).strip() if p is not None else "") for p in path)
            if len(parts) != 3:
                raise DataError(f"taxonomy row {number}: expected 3 levels, got {len(parts)}")
            if not parts[0]:
                raise DataError(f"taxonomy row {number}: level1 is blank")
            if parts[2] and not parts[1]:
                raise DataError(f"taxonomy row {number}: level3 {parts[2]!r} has no level2")
            if parts not in seen:
                seen.add(parts)
                cleaned.append(parts)  # type: ignore[arg-type]
        if not cleaned:
            raise DataError("taxonomy is empty")
        self.paths: tuple[tuple[str, str, str], ...] = tuple(cleaned)
        self._index()

    def _index(self) -> None:
        level1: dict[str, None] = {}
        level2: dict[str, dict[str, None]] = {}
        level3: dict[tuple[str, str], dict[str, None]] = {}
        for l1, l2, l3 in self.paths:
            level1.setdefault(l1)
            children = level2.setdefault(l1, {})
            if l2:
                children.setdefault(l2)
                grandchildren = level3.setdefault((l1, l2), {})
                if l3:
                    grandchildren.setdefault(l3)
        self._level1 = list(level1)
        self._level2 = {k: list(v) for k, v in level2.items()}
        self._level3 = {k: list(v) for k, v in level3.items()}

    # ------------------------------------------------------------------------------------------------ queries
    @property
    def level1(self) -> list[str]:
        """First-level classes in file order."""
        return list(self._level1)

    def level2_of(self, level1: str) -> list[str]:
        """Second-level classes under `level1` (unknown level1 → DataError)."""
        if level1 not in self._level2:
            raise DataError(f"unknown level1 category {level1!r}", field="category")
        return list(self._level2[level1])

    def level3_of(self, level1: str, level2: str) -> list[str]:
        """Third-level classes under `level1 / level2` (unknown pair → DataError)."""
        if (level1, level2) not in self._level3:
            raise DataError(f"unknown level2 category {level1!r} / {level2!r}", field="level2")
        return list(self._level3[(level1, level2)])

    def has_level1(self, level1: str) -> bool:
        return level1 in self._level2

    def has_level2(self, level1: str, level2: str) -> bool:
        return (level1, level2) in self._level3

    def __len__(self) -> int:
        return len(self.paths)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taxonomy) and self.paths == other.paths

    def __hash__(self) -> int:
        return hash(self.paths)

    def __repr__(self) -> str:
        return f"Taxonomy({len(self._level1)} level1, {len(self._level3)} level2, {len(self.paths)} paths)"

    # -------------------------------------------------------------------------------------------- persistence
    @classmethod
    def load(cls, path: str | Path) -> "Taxonomy":
        """Read a CSV (header ``level1,level2,level3``) or a JSON file written by `save`."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"taxonomy file not found: {path}")
        if path.suffix == ".json":
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(_COLUMNS)}")
            return cls((row["level1"], row["level2"], row["level3"]) for row in reader)

    def save(self, path: str | Path) -> Path:
        """Write the tree as JSON (for a model bundle). Returns the path written."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        return path

    def to_dict(self) -> dict:
        return {"version": 1, "paths": [list(p) for p in self.paths]}

    @classmethod
    def from_dict(cls, data: dict) -> "Taxonomy":
        if not isinstance(data, dict) or "paths" not in data:
            raise DataError("taxonomy data has no 'paths'")
        return cls(data["paths"])

    def __getstate__(self) -> dict:
        return {"paths": self.paths}

    def __setstate__(self, state: dict) -> None:
        self.paths = tuple(tuple(p) for p in state["paths"])
        self._index()


# ------------------------------------------------------------------------ lexical matching of category names
def _bigrams(name: str) -> set[str]:
    return {name[i : i + 2] for i in range(len(name) - 1)} or {name}


def name_idf(taxonomy: Taxonomy, texts: Sequence[str]) -> dict[str, float]:
    """IDF of every character bigram in the taxonomy's level2/level3 names, measured on `texts`."""
    grams = set().union(*(_bigrams(part) for path in taxonomy.paths for part in path[1:] if part))
    counts = dict.fromkeys(grams, 0)
    for text in texts:
        for gram in _bigrams(text) & grams:
            counts[gram] += 1
    n = len(texts)
    return {gram: float(np.log((1 + n) / (1 + c)) + 1) for gram, c in counts.items()}


def _coverage(name: str, text: str, idf: dict[str, float]) -> float:
    grams = _bigrams(name)
    total = sum(idf.get(g, 1.0) for g in grams)
    return sum(idf.get(g, 1.0) for g in grams if g in text) / total if total else 0.0


def match_level2(taxonomy: Taxonomy, level1: str, text: str, idf: dict[str, float]) -> tuple[str, str | None, float]:
    """Best (level2, level3 or None, score) under `level1` by IDF-weighted bigram coverage of the names.

    A level2 scores the better of its own name's coverage and its best level3's; level3 is named only when its
    own coverage is at least 0.5. ("", None, 0.0) when nothing under `level1` matches.
    """
    best: tuple[str, str | None, float] = ("", None, 0.0)
    for level2 in taxonomy.level2_of(level1):
        level3s = [(l3, _coverage(l3, text, idf)) for l3 in taxonomy.level3_of(level1, level2)]
        top3, top3_score = max(level3s, key=lambda item: item[1], default=(None, 0.0))
        score = max(_coverage(level2, text, idf), top3_score)
        if score > best[2]:
            best = (level2, top3 if top3_score >= 0.5 else None, round(score, 4))
    return best
