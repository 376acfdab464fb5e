"""Repository functions for petitions and their triage results."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.errors import Conflict
from triage.schemas import Location, PetitionIn, PetitionRecord, Petitioner, TriageResult
from triage.store.models import Petition, TriageRecord
from triage.text import mask_pii


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def request_hash(petition: PetitionIn) -> str:
    """Fingerprint of what was asked, so a reused id with different content is a conflict, not a silent overwrite."""
    payload = petition.model_dump(mode="json", exclude={"id", "received_at"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def get(session: Session, petition_id: str) -> Petition | None:
    return session.get(Petition, petition_id)


def insert(session: Session, petition_id: str, petition: PetitionIn, *, now: datetime | None = None) -> Petition:
    """Store an accepted petition before it is triaged; raises Conflict if the id holds a different petition."""
    return insert_many(session, [(petition_id, petition)], now=now)[0]


def insert_many(session: Session, items: list[tuple[str, PetitionIn]], *, now: datetime | None = None) -> list[Petition]:
    """`insert` for a batch: one query for the ids already stored, one flush. Rows come back in the given order;
    an id already holding the same petition gives its stored row, a different petition raises Conflict."""
    now = now or utcnow()
    ids = [petition_id for petition_id, _ in items]
    stored = {row.id: row for row in session.scalars(select(Petition).where(Petition.id.in_(ids)))} if ids else {}
    rows = []
    for petition_id, petition in items:
        fingerprint = request_hash(petition)
        existing = stored.get(petition_id)
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise Conflict(f"petition id {petition_id!r} was already used for a different petition", field="id")
            rows.append(existing)
            continue
        person = petition.petitioner or Petitioner()
        row = Petition(
            id=petition_id,
            title=petition.title,
            content=petition.content,
            content_masked=mask_pii(petition.content),
            channel=petition.channel.value,
            petitioner_id=person.id,
            petitioner_name=person.name,
            petitioner_phone=person.phone,
            location_text=petition.location.text if petition.location else None,
            likes=petition.likes,
            received_at=as_aware(petition.received_at) if petition.received_at else now,
            created_at=now,
            request_hash=fingerprint,
            status="pending",
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def save_result(session: Session, result: TriageResult, *, now: datetime | None = None) -> TriageRecord:
    record = TriageRecord(
        petition_id=result.id,
        model_version=result.model_version,
        category=result.category.label,
        top_department=result.routes[0].department_id if result.routes else None,
        needs_review=result.needs_review,
        risk_level=result.risk.level.value,
        top_score=result.category.score,
        result=result.model_dump(mode="json"),
        created_at=now or utcnow(),
    )
    session.add(record)
    petition = session.get(Petition, result.id)
    if petition is not None:
        petition.status = "triaged"
    return record  # flushed with the session: a batch is written in one go


def latest_result(session: Session, petition_id: str) -> TriageResult | None:
    row = session.scalars(
        select(TriageRecord)
        .where(TriageRecord.petition_id == petition_id)
        .order_by(TriageRecord.created_at.desc(), TriageRecord.id.desc())
        .limit(1)
    ).first()
    return TriageResult.model_validate(row.result) if row else None


def to_record(session: Session, row: Petition) -> PetitionRecord:
    return PetitionRecord(
        id=row.id,
        title=row.title,
        content=row.content_masked,
        channel=row.channel,
        petitioner=Petitioner(id=row.petitioner_id, name=None, phone=mask_pii(row.petitioner_phone or "") or None)
        if (row.petitioner_id or row.petitioner_phone)
        else None,
        location=Location(text=row.location_text) if row.location_text else None,
        received_at=as_aware(row.received_at),
        created_at=as_aware(row.created_at),
        result=latest_result(session, row.id),
    )


def pending_ids(session: Session, limit: int = 1000) -> list[str]:
    """Petitions accepted but not yet triaged (e.g. the process died mid-request); re-triaged at start-up."""
    return list(session.scalars(select(Petition.id).where(Petition.status == "pending").limit(limit)))
