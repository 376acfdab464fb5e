"""Pydantic models shared by the library, the CLI and the API: the contract with the hotline and mini-program.

Field names here are an interface other systems are written against: add fields, never rename them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

BEIJING = ZoneInfo("Asia/Shanghai")


class Channel(str, Enum):
    """Where a petition came in (受理渠道)."""

    hotline = "hotline"
    miniprogram = "miniprogram"
    grid = "grid"
    letter = "letter"
    web = "web"


class RiskLevel(str, Enum):
    """Ordered risk levels; `risk.level` of a petition is the highest level among its flags."""

    none = "none"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _RISK_ORDER[self]

    def __ge__(self, other: "RiskLevel") -> bool:  # type: ignore[override]
        return self.rank >= RiskLevel(other).rank

    def __gt__(self, other: "RiskLevel") -> bool:  # type: ignore[override]
        return self.rank > RiskLevel(other).rank

    def __le__(self, other: "RiskLevel") -> bool:  # type: ignore[override]
        return self.rank <= RiskLevel(other).rank

    def __lt__(self, other: "RiskLevel") -> bool:  # type: ignore[override]
        return self.rank < RiskLevel(other).rank


_RISK_ORDER = {RiskLevel.none: 0, RiskLevel.low: 1, RiskLevel.medium: 2, RiskLevel.high: 3, RiskLevel.critical: 4}


class Priority(str, Enum):
    normal = "normal"
    urgent = "urgent"


# --------------------------------------------------------------------------------------------------- request


class Petitioner(BaseModel):
    """Who filed the petition (诉求人). Every field is optional: anonymous petitions are allowed."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(None, max_length=128, description="The caller system's petitioner id, if any.")
    name: str | None = Field(None, max_length=64, description="Name; masked in logs.")
    phone: str | None = Field(None, max_length=32, description="Phone number; masked in logs.")


class Location(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str | None = Field(None, max_length=500, description="Free-text place as given (地址、小区、路口).")


class PetitionIn(BaseModel):
    """One incoming petition."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "id": "HL-20261125-0001",
                    "title": "小区门口路灯坏了一个月",
                    "content": "A市A3区枫林路18号小区门口的三盏路灯坏了一个多月，晚上很黑，老人孩子出门不安全，请尽快维修。",
                    "channel": "hotline",
                    "petitioner": {"id": "U1001", "phone": "13800138000"},
                    "location": {"text": "A3区枫林路18号"},
                    "received_at": "2026-11-25T09:30:00+08:00",
                }
            ]
        },
    )

    id: str | None = Field(
        None,
        max_length=128,
        description="Caller's id for idempotency: submitting the same id again returns the stored result.",
    )
    title: str | None = Field(None, max_length=500, description="Title or summary (标题).")
    content: str = Field(..., description="The petition text (诉求内容). Required, not blank.")
    channel: Channel = Field(Channel.hotline, description="Intake channel.")
    petitioner: Petitioner | None = None
    location: Location | None = None
    received_at: datetime | None = Field(
        None, description="When it was received; defaults to now. A time without an offset is Beijing time (UTC+8)."
    )
    likes: int | None = Field(None, ge=0, description="Likes/support count where the channel has them (message boards).")


    @field_validator("received_at")
    @classmethod
    def _beijing_when_naive(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=BEIJING) if value is not None and value.tzinfo is None else value


class BatchIn(BaseModel):
    petitions: list[PetitionIn] = Field(..., min_length=1, description="Up to the configured batch limit (1,000).")


# -------------------------------------------------------------------------------------------------- response


class CategoryOut(BaseModel):
    path: list[str] = Field(..., description="Category path in the taxonomy, first level first, e.g. ['城乡建设', '物业管理'].")
    label: str = Field(..., description="The first-level category the router chose.")
    score: float = Field(..., ge=0, le=1, description="Calibrated probability of the first-level category.")
    alternatives: list["ScoredLabel"] = Field(default_factory=list, description="Next most likely first-level categories.")


class ScoredLabel(BaseModel):
    label: str
    score: float


class RouteOut(BaseModel):
    department_id: str = Field(..., description="Stable id from corpora/departments.yaml.")
    department: str = Field(..., description="Department name (承办单位).")
    score: float = Field(..., ge=0, le=1)


class Evidence(BaseModel):
    text: str = Field(..., description="A word or character n-gram of the input that drove the decision.")
    weight: float


class RiskEvidence(BaseModel):
    text: str
    start: int = Field(..., description="Offset in the normalised text (title + '\\n' + content).")
    end: int


class RiskFlag(BaseModel):
    type: str = Field(..., description="self_harm | violence | gathering | escalation | public_safety | vulnerable")
    level: RiskLevel
    score: float = Field(..., ge=0, le=1)
    evidence: list[RiskEvidence] = Field(default_factory=list)


class RiskOut(BaseModel):
    level: RiskLevel = RiskLevel.none
    flags: list[RiskFlag] = Field(default_factory=list)


class DuplicateOut(BaseModel):
    id: str
    kind: Literal["repeat", "same_event"]
    score: float
    received_at: datetime | None = None


class ClusterRef(BaseModel):
    id: str
    title: str
    size: int
    petitioners: int
    heat: float
    trend: str | None = None


class TriageResult(BaseModel):
    """What the service says about one petition."""

    id: str
    model_version: str
    category: CategoryOut
    routes: list[RouteOut] = Field(..., description="Top-3 departments, best first.")
    needs_review: bool
    review_reasons: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    risk: RiskOut = Field(default_factory=RiskOut)
    priority: Priority = Priority.normal
    duplicates: list[DuplicateOut] = Field(default_factory=list)
    cluster: ClusterRef | None = None
    elapsed_ms: float = 0.0


class BatchOut(BaseModel):
    results: list[TriageResult]


class PetitionRecord(BaseModel):
    """A stored petition with its latest triage result."""

    id: str
    title: str | None
    content: str
    channel: Channel
    petitioner: Petitioner | None
    location: Location | None
    received_at: datetime
    created_at: datetime
    result: TriageResult | None


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


CategoryOut.model_rebuild()
