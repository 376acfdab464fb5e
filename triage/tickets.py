"""Tickets (工单) in the store: creation from a triage result, state changes with audit events, the 督办 scheduler
pass over open tickets, operator routing corrections, and the figures built on them.

The rules themselves live in triage.lifecycle (transitions) and triage.sla (deadlines, escalation chain); this
module maps store rows to them and records what they decide.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage import lifecycle
from triage.errors import InvalidInput, NotFound
from triage.lifecycle import Action, Escalation, OverdueMark, Role, TicketState, TicketView
from triage.schemas import Priority, TriageResult
from triage.sla import SlaPolicy
from triage.store.models import Petition, RoutingFeedback, Ticket, TicketEvent, TicketSequence, TriageRecord
from triage.store.petitions import as_aware, latest_result

OPEN_STATES = ("received", "assigned", "accepted", "returned", "handling", "replied", "reopened")
SYSTEM = "system"


def next_ticket_number(session: Session, now: datetime) -> str:
    """Date + per-day sequence (20261123-000123): short enough for a citizen to read out on the phone."""
    day = f"{now:%Y%m%d}"
    row = session.get(TicketSequence, day, with_for_update=True)
    if row is None:
        row = TicketSequence(day=day, last=0)
        session.add(row)
    row.last += 1
    session.flush()
    return f"{day}-{row.last:06d}"


def _event(session: Session, ticket: Ticket, event: lifecycle.AuditEvent | None = None, **fields) -> TicketEvent:
    if event is not None:
        fields = {
            "action": event.action.value,
            "from_state": event.from_state.value,
            "to_state": event.to_state.value,
            "actor": event.actor,
            "role": event.role.value,
            "at": event.at,
            "note": event.note,
            "details": {"department_id": event.department_id} if event.department_id else None,
        } | fields
    row = TicketEvent(ticket_id=ticket.id, **fields)
    session.add(row)
    return row


def create_ticket(
    session: Session,
    result: TriageResult,
    *,
    policy: SlaPolicy,
    now: datetime,
    start_level: str | None,
    auto_assign: bool = True,
) -> Ticket:
    """A ticket for a triaged petition; auto-assigned to the top department unless the result needs review."""
    existing = session.scalars(select(Ticket).where(Ticket.petition_id == result.id)).first()
    if existing is not None:
        return existing
    petition = session.get(Petition, result.id)
    received_at = as_aware(petition.received_at) if petition else now
    urgency = "urgent" if result.priority == Priority.urgent else "normal"
    deadlines = policy.deadlines(urgency, result.category.path, received_at)
    ticket = Ticket(
        id=next_ticket_number(session, now),
        petition_id=result.id,
        state=TicketState.received.value,
        urgency=urgency,
        category=result.category.label,
        department_id=None,
        level=start_level,
        received_at=received_at,
        accept_by=deadlines.accept_by,
        reply_by=deadlines.reply_by,
        escalation_level=0,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    _event(session, ticket, action="create", from_state=None, to_state="received", actor=SYSTEM, role="operator",
           at=now, note=None, details={"model_version": result.model_version, "urgency": urgency})
    if auto_assign and not result.needs_review and result.routes:
        transition(session, ticket.id, Action.assign, actor=SYSTEM, role=Role.operator, now=now,
                   department_id=result.routes[0].department_id, note="auto-routed by the model")
    return ticket


def attach_petition(session: Session, ticket_id: str, result: TriageResult, *, now: datetime, note: str) -> Ticket | None:
    """Hand an open ticket the fuller petition that completes it (the chat's urgent ticket, opened on the alarming
    message, gets the citizen's whole report on confirmation). The urgent deadlines keep running from the moment the
    ticket was opened; the category follows the fuller text while nobody has been assigned yet. Audited as
    `supplement`. None when the ticket is no longer open: the caller opens a new one.
    """
    ticket = get_ticket(session, ticket_id)
    if ticket.state not in OPEN_STATES:
        return None
    previous = ticket.petition_id
    ticket.petition_id = result.id
    if ticket.state == TicketState.received.value:
        ticket.category = result.category.label
    ticket.updated_at = now
    _event(session, ticket, action="supplement", from_state=ticket.state, to_state=ticket.state, actor=SYSTEM,
           role="operator", at=now, note=note, details={"from_petition_id": previous, "petition_id": result.id})
    session.flush()
    return ticket


def get_ticket(session: Session, ticket_id: str) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id!r}", field="ticket_id")
    return ticket


def transition(
    session: Session,
    ticket_id: str,
    action: Action | str,
    *,
    actor: str,
    role: Role | str,
    now: datetime,
    note: str | None = None,
    department_id: str | None = None,
    policy: SlaPolicy | None = None,
) -> Ticket:
    """Apply one lifecycle action (409 when illegal) and record its audit event."""
    ticket = get_ticket(session, ticket_id)
    new_state, event = lifecycle.apply(
        ticket.state, action, actor=actor, role=role, note=note, at=now, department_id=department_id
    )
    ticket.state = new_state.value
    ticket.updated_at = now
    if event.department_id:
        ticket.department_id = event.department_id
    if event.action == Action.assign and event.from_state == TicketState.returned and policy is not None:
        # 改派: the newly assigned department gets its own acceptance deadline.
        ticket.accept_by = policy.deadlines(ticket.urgency, ticket.category, now).accept_by
        ticket.accept_overdue = False
    if new_state == TicketState.reopened and policy is not None:
        # A re-opened ticket gets a fresh reply deadline and a clean overdue slate.
        ticket.reply_by = policy.deadlines(ticket.urgency, ticket.category, now).reply_by
        ticket.reply_overdue = False
    _event(session, ticket, event)
    session.flush()
    return ticket


def ticket_view(ticket: Ticket) -> TicketView:
    return TicketView(
        id=ticket.id,
        state=ticket.state,
        urgency=ticket.urgency,
        received_at=as_aware(ticket.received_at),
        accept_by=as_aware(ticket.accept_by) if ticket.accept_by else None,
        reply_by=as_aware(ticket.reply_by) if ticket.reply_by else None,
        category=ticket.category,
        department_id=ticket.department_id,
        level=ticket.level,
        escalation_level=ticket.escalation_level,
        last_escalated_at=as_aware(ticket.last_escalated_at) if ticket.last_escalated_at else None,
        accept_overdue=ticket.accept_overdue,
        reply_overdue=ticket.reply_overdue,
    )


def run_scheduler(session: Session, policy: SlaPolicy, now: datetime) -> dict[str, int]:
    """One 督办 pass: mark overdue tickets and escalate them, each with an audit event. Idempotent at a given now."""
    rows = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.state.in_(OPEN_STATES)))}
    results = lifecycle.scheduler_pass([ticket_view(t) for t in rows.values()], now, policy=policy)
    counts = {"open": len(rows), "overdue": 0, "escalated": 0}
    for item in results:
        ticket = rows[item.ticket_id]
        if isinstance(item, OverdueMark):
            setattr(ticket, f"{item.kind}_overdue", True)
            counts["overdue"] += 1
            _event(session, ticket, action=f"overdue_{item.kind}", from_state=ticket.state, to_state=ticket.state,
                   actor=SYSTEM, role="supervisor", at=now, note=f"{item.kind} deadline {item.deadline.isoformat()} missed")
        elif isinstance(item, Escalation):
            ticket.escalation_level = item.step
            ticket.last_escalated_at = item.at
            counts["escalated"] += 1
            _event(session, ticket, action="escalate", from_state=ticket.state, to_state=ticket.state, actor=SYSTEM,
                   role="supervisor", at=now, note=f"督办: {item.from_level} → {item.to_level}",
                   details={"step": item.step, "from_level": item.from_level, "to_level": item.to_level,
                            "kind": item.kind, "due_at": item.due_at.isoformat()})
        ticket.updated_at = now
    session.flush()
    return counts


def ticket_out(session: Session, ticket: Ticket, *, with_events: bool = False, policy: SlaPolicy | None = None) -> dict:
    out = {
        "id": ticket.id,
        "petition_id": ticket.petition_id,
        "state": ticket.state,
        "urgency": ticket.urgency,
        "category": ticket.category,
        "department_id": ticket.department_id,
        "received_at": as_aware(ticket.received_at),
        "accept_by": as_aware(ticket.accept_by) if ticket.accept_by else None,
        "reply_by": as_aware(ticket.reply_by) if ticket.reply_by else None,
        "overdue": bool(ticket.accept_overdue or ticket.reply_overdue),
        "escalation_level": ticket.escalation_level,
        "escalated_to": policy.levels[min(policy.level_index(ticket.level) + ticket.escalation_level, len(policy.levels) - 1)].name
        if policy is not None and ticket.escalation_level
        else None,
        "allowed_actions": [a.value for a in lifecycle.allowed_actions(ticket.state)],
        "updated_at": as_aware(ticket.updated_at),
    }
    if with_events:
        events = session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id))
        out["events"] = [
            {"action": e.action, "from": e.from_state, "to": e.to_state, "actor": e.actor, "role": e.role,
             "at": as_aware(e.at), "note": e.note, "details": e.details}
            for e in events
        ]
    return out


def list_tickets(session: Session, *, overdue: bool | None = None, state: str | None = None,
                 department_id: str | None = None, limit: int = 100) -> list[Ticket]:
    query = select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc())
    if overdue is not None:
        flag = Ticket.accept_overdue | Ticket.reply_overdue
        query = query.where(flag if overdue else ~flag).where(Ticket.state.in_(OPEN_STATES) if overdue else True)
    if state:
        query = query.where(Ticket.state == state)
    if department_id:
        query = query.where(Ticket.department_id == department_id)
    return list(session.scalars(query.limit(limit)))


def overdue_by_department(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Ticket.department_id, func.count())
        .where(Ticket.state.in_(OPEN_STATES), Ticket.accept_overdue | Ticket.reply_overdue)
        .group_by(Ticket.department_id)
    ).all()
    return {dept or "unassigned": count for dept, count in rows}


# ------------------------------------------------------------------------------------- operator corrections


def record_route(
    session: Session,
    ticket_id: str,
    *,
    department_id: str,
    category: str | None,
    reason: str | None,
    actor: str,
    now: datetime,
    known_departments: set[str],
    known_categories: set[str],
) -> tuple[Ticket, RoutingFeedback]:
    """The operator's routing choice, stored next to the model's suggestion, and the ticket (re-)assigned to it."""
    if department_id not in known_departments:
        raise InvalidInput(f"unknown department_id {department_id!r}", field="department_id")
    if category is not None and category not in known_categories:
        raise InvalidInput(f"unknown category {category!r}", field="category")
    ticket = get_ticket(session, ticket_id)
    suggestion = latest_result(session, ticket.petition_id)
    model_department = suggestion.routes[0].department_id if suggestion and suggestion.routes else None
    model_category = suggestion.category.label if suggestion else None
    feedback = RoutingFeedback(
        petition_id=ticket.petition_id,
        ticket_id=ticket.id,
        model_version=suggestion.model_version if suggestion else None,
        model_category=model_category,
        model_department_id=model_department,
        chosen_category=category or model_category,
        chosen_department_id=department_id,
        overridden=(department_id != model_department) or (category is not None and category != model_category),
        reason=reason,
        actor=actor,
        created_at=now,
    )
    session.add(feedback)
    if category:
        ticket.category = category
    if ticket.department_id != department_id and Action.assign in lifecycle.allowed_actions(ticket.state, Role.operator):
        transition(session, ticket.id, Action.assign, actor=actor, role=Role.operator, now=now,
                   department_id=department_id, note=reason or "operator routing correction")
    session.flush()
    return ticket, feedback


def export_feedback_csv(session: Session, since: datetime | None = None) -> str:
    """Corrected tickets as a CSV that train.py reads directly: id, title, content, category, department."""
    query = select(RoutingFeedback, Petition).join(Petition, Petition.id == RoutingFeedback.petition_id)
    if since is not None:
        query = query.where(RoutingFeedback.created_at >= since)
    latest: dict[str, tuple[RoutingFeedback, Petition]] = {}
    for feedback, petition in session.execute(query.order_by(RoutingFeedback.id)):
        latest[petition.id] = (feedback, petition)  # the operator's last word on a petition wins
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "title", "content", "category", "department", "model_category", "model_department", "corrected_at"])
    for feedback, petition in latest.values():
        if not feedback.chosen_category:
            continue
        writer.writerow([petition.id, petition.title or "", petition.content_masked, feedback.chosen_category,
                         feedback.chosen_department_id, feedback.model_category or "", feedback.model_department_id or "",
                         as_aware(feedback.created_at).isoformat()])
    return buffer.getvalue()


def routing_metrics(session: Session, since: datetime | None = None) -> dict:
    """Override rate per ISO week, category and department (a drift signal), and the auto-routed vs reviewed share.

    A row is keyed by the week the ticket was opened and by what the model suggested for it (category, department):
    `tickets` is how many tickets it suggested that for, `overrides` how many of them an operator routed elsewhere
    (`corrections` counts the operator's route choices, agreeing ones included), and `override_rate` is
    overrides / tickets, so a week where operators re-route more of the model's choices stands out.
    """
    query = (
        select(Ticket.id, Ticket.created_at, TriageRecord.id, TriageRecord.category, TriageRecord.top_department)
        .join(TriageRecord, TriageRecord.petition_id == Ticket.petition_id)
    )
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    suggestion: dict[str, tuple[int, datetime, str, str | None]] = {}
    for ticket_id, created_at, record_id, category, department in session.execute(query):
        if ticket_id not in suggestion or record_id > suggestion[ticket_id][0]:
            suggestion[ticket_id] = (record_id, created_at, category, department)  # the suggestion the operator saw
    corrected: set[str] = set()
    overridden: set[str] = set()
    if suggestion:
        feedback = select(RoutingFeedback.ticket_id, RoutingFeedback.overridden)
        if since is not None:
            feedback = feedback.where(RoutingFeedback.created_at >= since)
        for ticket_id, was_overridden in session.execute(feedback):
            corrected.add(ticket_id)
            if was_overridden:
                overridden.add(ticket_id)
    per: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for ticket_id, (_, created_at, category, department) in suggestion.items():
        week = "{}-W{:02d}".format(*as_aware(created_at).isocalendar()[:2])
        for dimension, key in (("category", category or "?"), ("department", department or "?")):
            cell = per[(week, dimension, key)]
            cell[0] += 1
            cell[1] += ticket_id in corrected
            cell[2] += ticket_id in overridden
    triaged = select(TriageRecord.needs_review, func.count()).group_by(TriageRecord.needs_review)
    if since is not None:
        triaged = triaged.where(TriageRecord.created_at >= since)
    counts = {bool(flag): n for flag, n in session.execute(triaged)}
    total = sum(counts.values())
    return {
        "weeks": [
            {"week": week, "by": dimension, "key": key, "tickets": n, "corrections": c, "overrides": o,
             "override_rate": round(o / n, 4)}
            for (week, dimension, key), (n, c, o) in sorted(per.items())
        ],
        "triaged": total,
        "auto_routed_share": round(counts.get(False, 0) / total, 4) if total else None,
        "reviewed_share": round(counts.get(True, 0) / total, 4) if total else None,
    }


def expected_reply_text(reply_by: datetime | None, utc_offset_hours: int = 8) -> str:
    if reply_by is None:
        return ""
    local = as_aware(reply_by) + timedelta(hours=utc_offset_hours)
    return f"{local:%Y年%m月%d日 %H:%M}"
