"""Table definitions (SQLAlchemy 2 declarative). Schema changes go through Alembic migrations in migrations/."""

from __future__ import annotations

from datetime import datetime

from datetime import timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timestamps stored as UTC and read back timezone-aware on every database (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:  # the library only stores aware times; a naive one is taken as UTC
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Petition(Base):
    """One accepted petition (诉求件), exactly as submitted, plus a PII-masked copy for plain view."""

    __tablename__ = "petitions"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    content_masked: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    petitioner_id: Mapped[str | None] = mapped_column(String(128), index=True)
    petitioner_name: Mapped[str | None] = mapped_column(String(64))
    petitioner_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    location_text: Mapped[str | None] = mapped_column(Text)
    likes: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_hash: Mapped[str] = mapped_column(String(64))
    # 'pending' until a triage result is stored; a petition is never dropped when triage fails.
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    # Filled by the similarity step (issue 4): the vector is stored so a restart never re-encodes the store.
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    place: Mapped[dict | None] = mapped_column(JSON)


class TriageRecord(Base):
    """A triage result for a petition; the newest row is the current one."""

    __tablename__ = "triage_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    petition_id: Mapped[str] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    model_version: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32), index=True)
    top_department: Mapped[str | None] = mapped_column(String(64), index=True)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    risk_level: Mapped[str] = mapped_column(String(16), index=True)
    top_score: Mapped[float] = mapped_column(Float)
    result: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


Index("ix_triage_results_petition_created", TriageRecord.petition_id, TriageRecord.created_at)


class ServiceState(Base):
    """Named JSON state of a stateful component (e.g. the online clusterer), so a restart resumes where it was."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Alert(Base):
    """A high or critical risk petition that must reach a person now (预警)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    petition_id: Mapped[str] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), unique=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    types: Mapped[list] = mapped_column(JSON)
    flags: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    acked_by: Mapped[str | None] = mapped_column(String(128))
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ack_note: Mapped[str | None] = mapped_column(Text)


class OutboxEntry(Base):
    """A webhook delivery owed to one receiver; durable, retried until delivered (transactional outbox)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    receiver: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IntakeSession(Base):
    """A mini-program chat session; its dialogue state is JSON so it survives a restart."""

    __tablename__ = "intake_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    state: Mapped[dict] = mapped_column(JSON)
    ticket_id: Mapped[str | None] = mapped_column(String(32))
    turns: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TicketSequence(Base):
    """Per-day counter behind ticket numbers like 20261123-000123."""

    __tablename__ = "ticket_sequences"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """The work item a petition becomes (工单): who handles it, by when, and where it stands."""

    __tablename__ = "tickets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    petition_id: Mapped[str] = mapped_column(ForeignKey("petitions.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    urgency: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))
    department_id: Mapped[str | None] = mapped_column(String(64), index=True)
    level: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accept_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reply_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accept_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_overdue: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    last_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TicketEvent(Base):
    """Audit trail: every state change, overdue mark and escalation (督办) of a ticket."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JSON)


class RoutingFeedback(Base):
    """An operator's routing correction next to the model's suggestion: the data retraining learns from."""

    __tablename__ = "routing_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    petition_id: Mapped[str] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(32), index=True)
    model_version: Mapped[str | None] = mapped_column(String(128))
    model_category: Mapped[str | None] = mapped_column(String(32))
    model_department_id: Mapped[str | None] = mapped_column(String(64))
    chosen_category: Mapped[str | None] = mapped_column(String(32))
    chosen_department_id: Mapped[str] = mapped_column(String(64))
    overridden: Mapped[bool] = mapped_column(Boolean, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
