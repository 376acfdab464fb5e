"""Table definitions (SQLAlchemy 2 declarative). Schema changes go through Alembic migrations in migrations/."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


Index("ix_triage_results_petition_created", TriageRecord.petition_id, TriageRecord.created_at)
