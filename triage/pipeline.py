"""Triager: runs the stateless components (routing, risk) of one bundle over petitions → TriageResult.

Duplicates and clusters need the store and the index; the service layer (triage/service.py) fills those fields
in after this step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from triage.bundle import Bundle
from triage.schemas import (
    CategoryOut,
    Evidence,
    PetitionIn,
    Priority,
    RiskLevel,
    RiskOut,
    RouteOut,
    ScoredLabel,
    TriageResult,
)
from triage.settings import Settings
from triage.text import compose

CJK_MIN_SHARE = 0.2  # below this share of Chinese characters the router is reading something it was not trained on


@dataclass(frozen=True)
class ReviewPolicy:
    """When a routing suggestion goes to an operator instead of being auto-routed."""

    min_score: float = 0.90
    min_margin: float = 0.15
    urgent_at: RiskLevel = RiskLevel.high

    @classmethod
    def from_settings(cls, settings: Settings) -> "ReviewPolicy":
        return cls(min_score=settings.review_min_score, min_margin=settings.review_min_margin)


def cjk_share(text: str) -> float:
    letters = [ch for ch in text if not ch.isspace()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff") / len(letters)


class Triager:
    """Routing + risk for a batch of petitions, from one loaded bundle."""

    def __init__(self, bundle: Bundle, *, policy: ReviewPolicy | None = None, top_k: int = 3, evidence_k: int = 6):
        self.bundle = bundle
        self.router = bundle.router
        self.departments = bundle.departments
        self.risk = bundle.components.get("risk")
        self.policy = policy or ReviewPolicy()
        self.top_k = top_k
        self.evidence_k = evidence_k

    @property
    def model_version(self) -> str:
        return self.bundle.version

    def triage(self, ids: Sequence[str], petitions: Sequence[PetitionIn]) -> list[TriageResult]:
        """One TriageResult per petition, in order. Batch first: one predict_proba call for the whole batch."""
        started = time.perf_counter()
        texts = [compose(p.title, p.content) for p in petitions]
        if not texts:
            return []
        proba = self.router.predict_proba(texts)
        classes = list(self.router.classes_)
        best = np.argsort(-proba, axis=1)
        level1 = [classes[row[0]] for row in best]
        if getattr(self.router, "taxonomy", None) is not None:
            level2 = self.router.suggest_level2(texts, level1)
        else:  # a bundle trained without a taxonomy routes on first-level categories only
            level2 = [("", None, 0.0)] * len(texts)
        # Departments and evidence before risk: the risk head may wait for the sentence encoder (still at work on
        # this batch in the service's encoder process), and this work does not need it.
        routed = []
        for i, text in enumerate(texts):
            item_start = time.perf_counter()
            order = best[i]
            probs = {classes[j]: float(proba[i, j]) for j in order}
            l2 = level2[i][0]
            routes = self.departments.rank(probs, {level1[i]: l2} if l2 else None, text, k=self.top_k)
            evidence = [Evidence(text=e.text, weight=e.weight) for e in self.router.explain(text, k=self.evidence_k)]
            routed.append((routes, evidence, time.perf_counter() - item_start))
        risks = self.risk.detect(texts) if self.risk is not None else [RiskOut() for _ in texts]
        # elapsed_ms of a petition: its share of the whole-batch steps (routing model, level 2, risk) plus its own
        batch_s = time.perf_counter() - started - sum(seconds for _, _, seconds in routed)
        per_item_ms = batch_s * 1000 / len(texts)

        results = []
        for i, (petition_id, text) in enumerate(zip(ids, texts)):
            item_start = time.perf_counter()
            order = best[i]
            top, second = float(proba[i, order[0]]), float(proba[i, order[1]]) if len(order) > 1 else 0.0
            l2, l3, _l2_score = level2[i]
            path = [level1[i]] + [x for x in (l2, l3) if x]
            routes, evidence, routed_s = routed[i]
            reasons = self._review_reasons(text, top, second)
            risk = risks[i]
            priority = Priority.normal
            if risk.level >= self.policy.urgent_at:
                # Recall first: a serious risk flag always goes to a person, whatever the router thinks.
                priority = Priority.urgent
                types = ",".join(sorted({f.type for f in risk.flags if f.level >= self.policy.urgent_at}))
                reasons.insert(0, f"risk {risk.level.value}: {types}")
            results.append(
                TriageResult(
                    id=petition_id,
                    model_version=self.model_version,
                    category=CategoryOut(
                        path=path,
                        label=level1[i],
                        score=round(top, 4),
                        alternatives=[ScoredLabel(label=classes[j], score=round(float(proba[i, j]), 4)) for j in order[1:3]],
                    ),
                    routes=[RouteOut(department_id=d, department=name, score=round(float(s), 4)) for d, name, s in routes],
                    needs_review=bool(reasons),
                    review_reasons=reasons,
                    evidence=evidence,
                    risk=risk,
                    priority=priority,
                    elapsed_ms=round(per_item_ms + (routed_s + time.perf_counter() - item_start) * 1000, 3),
                )
            )
        return results

    def _review_reasons(self, text: str, top: float, second: float) -> list[str]:
        reasons = []
        if top < self.policy.min_score:
            reasons.append(f"low confidence: top category score {top:.2f} < {self.policy.min_score:.2f}")
        if top - second < self.policy.min_margin:
            reasons.append(f"ambiguous: top two categories within {top - second:.2f}")
        if cjk_share(text) < CJK_MIN_SHARE:
            reasons.append("little Chinese text: the router is trained on Chinese petitions")
        return reasons
