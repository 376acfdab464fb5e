"""Department table (承办单位表): which departments handle which categories, and how a category distribution
becomes a ranked list of departments.

The table is our own written data, ``corpora/departments.yaml``::

    version: 1
    city: 示例市
    departments: [{id: housing, name: 市住房和城乡建设局, short: 住建, duties: …}, …]
    routing:
      - {category: 城乡建设, departments: {housing: 0.5, urban_mgmt: 0.3, district_gov: 0.2}}
      - {category: 城乡建设, level2: 物业管理, departments: {…}}
      - {category: 城乡建设, keywords: [燃气, 供暖], departments: {…}}

For each category the most specific matching rule wins: a keyword rule (any keyword occurs in the text) beats a
level2 rule (the predicted level2 of that category equals the rule's), which beats the plain level1 rule. A rule
may carry both ``level2`` and ``keywords``; then both must match and it is the most specific of all. Among equally
specific matching rules the first in the file wins. A department's score is
Σ_category P(category) × weight(department | winning rule of that category).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ahocorasick_rs
import yaml

from triage.errors import DataError

if TYPE_CHECKING:
    from triage.taxonomy import Taxonomy

WEIGHT_SUM_TOLERANCE = 0.01


@dataclass(frozen=True)
class Department:
    """One handling unit (承办单位)."""

    id: str
    name: str
    short: str = ""
    duties: str = ""


@dataclass(frozen=True)
class RoutingRule:
    """Weights over departments for one category, optionally narrowed by level2 and/or keywords."""

    category: str
    departments: tuple[tuple[str, float], ...]
    level2: str | None = None
    keywords: tuple[str, ...] = field(default_factory=tuple)
    position: int = 0  # index in the file, for error messages and tie-breaking

    @property
    def specificity(self) -> int:
        """0 level1 only, 1 level2, 2 keywords, 3 level2 and keywords."""
        return (2 if self.keywords else 0) + (1 if self.level2 else 0)

    def matches(self, level2: str | None, text: str) -> bool:
        return self.matches_found(level2, {word for word in self.keywords if word in text})

    def matches_found(self, level2: str | None, found: set[str]) -> bool:
        """`matches`, given the set of table keywords that occur in the text."""
        if self.level2 is not None and self.level2 != level2:
            return False
        return not self.keywords or not found.isdisjoint(self.keywords)


class DepartmentTable:
    """Departments plus category → department rules, validated on construction."""

    def __init__(self, departments: list[Department], rules: list[RoutingRule], *, city: str = "", version: int = 1):
        self.departments = {d.id: d for d in departments}
        self.rules = list(rules)
        self.city = city
        self.version = version
        self._by_category: dict[str, list[RoutingRule]] = {}
        for rule in sorted(self.rules, key=lambda r: (-r.specificity, r.position)):
            self._by_category.setdefault(rule.category, []).append(rule)
        self._keyword_finder = self._build_keyword_finder()

    # ----------------------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path, taxonomy: "Taxonomy | None" = None) -> "DepartmentTable":
        """Read and validate a departments YAML file; with `taxonomy`, also check categories against it."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"department table not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, taxonomy=taxonomy, source=str(path))

    @classmethod
    def from_dict(cls, data: object, *, taxonomy: "Taxonomy | None" = None, source: str = "departments") -> "DepartmentTable":
        """Build from the parsed YAML structure, raising DataError naming the offending entry."""
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: top level must be a mapping with 'version', 'departments', 'routing'")
        version = data.get("version")
        if version != 1:
            raise DataError(f"{source}: unsupported version {version!r}; this library reads version 1")
        departments = _parse_departments(data.get("departments"), source)
        known = {d.id for d in departments}
        raw_rules = data.get("routing")
        if not isinstance(raw_rules, list) or not raw_rules:
            raise DataError(f"{source}: 'routing' must be a non-empty list of rules")
        rules = [_parse_rule(raw, i, known, taxonomy, source) for i, raw in enumerate(raw_rules)]
        _check_rule_set(rules, taxonomy, source)
        return cls(departments, rules, city=str(data.get("city") or ""), version=1)

    def save(self, directory: str | Path) -> Path:
        """Write the table as departments.yaml in `directory` (a bundle's snapshot of the city's table)."""
        path = Path(directory) / "departments.yaml"
        path.write_text(yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    def to_dict(self) -> dict:
        """The YAML structure again (for a bundle or for writing back)."""
        routing = []
        for rule in self.rules:
            entry: dict = {"category": rule.category}
            if rule.level2 is not None:
                entry["level2"] = rule.level2
            if rule.keywords:
                entry["keywords"] = list(rule.keywords)
            entry["departments"] = dict(rule.departments)
            routing.append(entry)
        return {
            "version": self.version,
            "city": self.city,
            "departments": [vars(d).copy() for d in self.departments.values()],
            "routing": routing,
        }

    @property
    def categories(self) -> list[str]:
        """Categories that have at least one rule."""
        return list(self._by_category)

    # ---------------------------------------------------------------------------------------------- ranking
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_keyword_finder"}  # the automaton does not pickle

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._keyword_finder = self._build_keyword_finder()

    def _build_keyword_finder(self):
        """Every keyword of every rule found in one pass over the text, instead of one substring search per rule."""
        keywords = sorted({word for rule in self.rules for word in rule.keywords})
        return ahocorasick_rs.AhoCorasick(keywords) if keywords else None

    def keywords_in(self, text: str) -> set[str]:
        """The table's rule keywords that occur in `text`."""
        if self._keyword_finder is None or not text:
            return set()
        return set(self._keyword_finder.find_matches_as_strings(text, overlapping=True))

    def rule_for(self, category: str, level2: str | None, text: str) -> RoutingRule | None:
        """The most specific rule of `category` that matches, or None if the category has no matching rule."""
        return self._rule_for(category, level2, self.keywords_in(text))

    def _rule_for(self, category: str, level2: str | None, found: set[str]) -> RoutingRule | None:
        for rule in self._by_category.get(category, ()):
            if rule.matches_found(level2, found):
                return rule
        return None

    def rank(
        self,
        category_probs: Mapping[str, float],
        level2: Mapping[str, str] | None = None,
        text: str = "",
        k: int = 3,
    ) -> list[tuple[str, str, float]]:
        """Top-k departments as (department_id, name, score), best first.

        `category_probs` maps first-level categories to probabilities; `level2` maps a first-level category to
        its predicted second-level category (optional); `text` is searched for rule keywords. Categories with no
        rule contribute nothing, so scores can sum to less than 1.
        """
        scores: dict[str, float] = {}
        level2 = level2 or {}
        found = self.keywords_in(text)
        for category, probability in category_probs.items():
            if probability <= 0:
                continue
            rule = self._rule_for(category, level2.get(category), found)
            if rule is None:
                continue
            for department_id, weight in rule.departments:
                scores[department_id] = scores.get(department_id, 0.0) + float(probability) * weight
        order = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: max(k, 0)]
        return [(d, self.departments[d].name, min(1.0, s)) for d, s in order]

    def __repr__(self) -> str:
        return f"DepartmentTable({len(self.departments)} departments, {len(self.rules)} rules)"


# ---------------------------------------------------------------------------------------------- validation
def _parse_departments(raw: object, source: str) -> list[Department]:
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{source}: 'departments' must be a non-empty list")
    out: list[Department] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise DataError(f"{source}: departments[{i}] must be a mapping with 'id' and 'name'")
        dep_id, name = str(entry.get("id") or "").strip(), str(entry.get("name") or "").strip()
        if not dep_id or not name:
            raise DataError(f"{source}: departments[{i}] needs a non-empty 'id' and 'name'")
        if dep_id in seen:
            raise DataError(f"{source}: department id {dep_id!r} appears twice")
        seen.add(dep_id)
        out.append(Department(dep_id, name, str(entry.get("short") or ""), str(entry.get("duties") or "")))
    return out


def _parse_rule(raw: object, i: int, known: set[str], taxonomy: "Taxonomy | None", source: str) -> RoutingRule:
    where = f"{source}: routing[{i}]"
    if not isinstance(raw, Mapping):
        raise DataError(f"{where} must be a mapping with 'category' and 'departments'")
    category = str(raw.get("category") or "").strip()
    if not category:
        raise DataError(f"{where} has no 'category'")
    if taxonomy is not None and not taxonomy.has_level1(category):
        raise DataError(f"{where}: unknown category {category!r} (not a level1 of the taxonomy)")
    level2 = raw.get("level2")
    level2 = str(level2).strip() if level2 is not None else None
    if level2 is not None and taxonomy is not None and not taxonomy.has_level2(category, level2):
        raise DataError(f"{where}: level2 {level2!r} is not under {category!r} in the taxonomy")
    keywords = raw.get("keywords") or []
    if isinstance(keywords, str) or not isinstance(keywords, list) or any(not str(w).strip() for w in keywords):
        raise DataError(f"{where}: 'keywords' must be a list of non-empty strings")
    weights = raw.get("departments")
    if not isinstance(weights, Mapping) or not weights:
        raise DataError(f"{where} ({category}): 'departments' must be a non-empty mapping id → weight")
    pairs: list[tuple[str, float]] = []
    for dep_id, weight in weights.items():
        if dep_id not in known:
            raise DataError(f"{where} ({category}): unknown department id {dep_id!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1:
            raise DataError(f"{where} ({category}): weight of {dep_id!r} must be a number in (0, 1], got {weight!r}")
        pairs.append((str(dep_id), float(weight)))
    total = sum(w for _, w in pairs)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise DataError(f"{where} ({category}): weights sum to {total:.3f}, expected 1")
    pairs = [(d, w / total) for d, w in pairs]
    return RoutingRule(category, tuple(pairs), level2, tuple(str(w).strip() for w in keywords), i)


def _check_rule_set(rules: list[RoutingRule], taxonomy: "Taxonomy | None", source: str) -> None:
    seen: dict[tuple, int] = {}
    for rule in rules:
        key = (rule.category, rule.level2, tuple(sorted(rule.keywords)))
        if key in seen:
            raise DataError(f"{source}: routing[{rule.position}] repeats routing[{seen[key]}] ({rule.category})")
        seen[key] = rule.position
    base = {r.category for r in rules if r.specificity == 0}
    narrowed = {r.category for r in rules} - base
    if narrowed:
        raise DataError(
            f"{source}: categories {', '.join(sorted(narrowed))} have level2/keyword rules but no plain level1 rule"
        )
    if taxonomy is not None:
        missing = [c for c in taxonomy.level1 if c not in base]
        if missing:
            raise DataError(f"{source}: no routing rule for category(ies) {', '.join(missing)}")
