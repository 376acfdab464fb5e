"""Risk alerts (预警) and their webhook outbox: every high/critical petition becomes an alert and one durable
delivery per configured receiver, written in the same transaction as the triage result.

Delivery is at-least-once on the wire with a stable `Idempotency-Key` per (alert, receiver), so a receiver that
keeps the keys it has seen processes each alert exactly once, across retries and restarts.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.errors import Conflict, NotFound
from triage.schemas import RiskLevel, TriageResult
from triage.store.models import Alert, OutboxEntry
from triage.store.petitions import as_aware, utcnow

log = logging.getLogger(__name__)

ALERT_AT = RiskLevel.high


def receiver_key(alert_id: int, receiver: str) -> str:
    return f"alert-{alert_id}-{hashlib.sha256(receiver.encode()).hexdigest()[:16]}"


def alert_payload(alert: Alert, result: TriageResult | None = None) -> dict:
    payload = {
        "alert_id": alert.id,
        "petition_id": alert.petition_id,
        "level": alert.level,
        "types": alert.types,
        "flags": alert.flags,
        "created_at": as_aware(alert.created_at).isoformat(),
    }
    if result is not None:
        payload["category"] = result.category.label
        payload["routes"] = [r.department for r in result.routes]
    return payload


def raise_alert(session: Session, result: TriageResult, receivers: list[str], *, now: datetime | None = None) -> Alert | None:
    """Create the alert (once per petition) and its outbox rows when the result is high or critical."""
    if result.risk.level < ALERT_AT:
        return None
    existing = session.scalars(select(Alert).where(Alert.petition_id == result.id)).first()
    if existing is not None:
        return existing
    now = now or utcnow()
    flags = [f.model_dump(mode="json") for f in result.risk.flags if f.level >= ALERT_AT]
    alert = Alert(
        petition_id=result.id,
        level=result.risk.level.value,
        types=sorted({f["type"] for f in flags}),
        flags=flags,
        status="open",
        created_at=now,
    )
    session.add(alert)
    session.flush()
    payload = alert_payload(alert, result)
    for receiver in receivers:
        session.add(
            OutboxEntry(
                idempotency_key=receiver_key(alert.id, receiver),
                receiver=receiver,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return alert


def alert_view(alert: Alert) -> dict:
    return {
        "id": alert.id,
        "petition_id": alert.petition_id,
        "level": alert.level,
        "types": alert.types,
        "flags": alert.flags,
        "status": alert.status,
        "created_at": as_aware(alert.created_at),
        "acked_by": alert.acked_by,
        "acked_at": as_aware(alert.acked_at) if alert.acked_at else None,
        "ack_note": alert.ack_note,
    }


def list_alerts(
    session: Session,
    *,
    level: str | None = None,
    type_: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict]:
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc())
    if level:
        query = query.where(Alert.level == level)
    if status:
        query = query.where(Alert.status == status)
    if since:
        query = query.where(Alert.created_at >= since)
    if until:
        query = query.where(Alert.created_at <= until)
    rows = session.scalars(query.limit(limit * 5 if type_ else limit)).all()
    if type_:  # JSON list membership is not portable SQL; filter here on an already narrowed set
        rows = [r for r in rows if type_ in (r.types or [])][:limit]
    return [alert_view(r) for r in rows]


def ack(session: Session, alert_id: int, *, by: str, note: str | None, now: datetime | None = None) -> dict:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}", field="id")
    if alert.status == "acked":
        raise Conflict(f"alert {alert_id} was already acknowledged by {alert.acked_by}", field="id")
    alert.status = "acked"
    alert.acked_by = by
    alert.acked_at = now or utcnow()
    alert.ack_note = note
    session.flush()
    return alert_view(alert)


class WebhookDispatcher:
    """Background thread that drains the outbox: POSTs each pending delivery, retries with backoff.

    Wakes at once when a new alert is stored (`notify`), and otherwise every `poll_s` seconds.
    """

    def __init__(self, db, *, timeout_s: float = 5.0, poll_s: float = 1.0, backoff_s: float = 2.0, max_backoff_s: float = 300.0):
        self.db = db
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                try:
                    self.deliver_due(client)
                except Exception:  # the dispatcher must outlive a bad row or a database hiccup
                    log.exception("webhook dispatch pass failed")
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def deliver_due(self, client: httpx.Client, now: datetime | None = None) -> int:
        now = now or utcnow()
        with self.db.session() as session:
            due = session.scalars(
                select(OutboxEntry)
                .where(OutboxEntry.status == "pending", OutboxEntry.next_attempt_at <= now)
                .order_by(OutboxEntry.id)
                .limit(50)
            ).all()
            jobs = [(e.id, e.receiver, e.idempotency_key, e.payload, e.attempts) for e in due]
        delivered = 0
        for entry_id, receiver, key, payload, attempts in jobs:
            error = None
            try:
                response = client.post(receiver, json=payload, headers={"Idempotency-Key": key})
                if response.status_code >= 300:
                    error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self.db.session() as session:
                entry = session.get(OutboxEntry, entry_id)
                entry.attempts = attempts + 1
                if error is None:
                    entry.status = "delivered"
                    entry.delivered_at = utcnow()
                    delivered += 1
                else:
                    delay = min(self.max_backoff_s, self.backoff_s * 2 ** min(attempts, 16))
                    entry.next_attempt_at = utcnow() + timedelta(seconds=delay)
                    entry.last_error = error[:500]
                    log.warning("webhook to receiver failed (attempt %d, retry in %.0f s): %s", attempts + 1, delay, error)
        return delivered


def pending_deliveries(session: Session) -> int:
    return len(session.scalars(select(OutboxEntry.id).where(OutboxEntry.status == "pending")).all())


__all__ = ["raise_alert", "list_alerts", "ack", "WebhookDispatcher", "ALERT_AT"]
