"""Ticket lifecycle of the closed loop (闭环): states, the one transition table, and the 督办 escalation scheduler.

源头发现 → 信息上报 → 任务分派 → 问题处置 → 核查反馈. A ticket moves::

    received  --assign-->  assigned  --accept-->  accepted  --start-->  handling  --reply-->  replied
    assigned  --return (退回, reason)-->  returned  --assign (改派, re-route)-->  assigned
    assigned  --assign-->  assigned                      (re-route before anyone accepted: 派错了)
    replied   --verify_satisfied-->  verified  --close-->  closed
    replied   --verify_unsatisfied (reason)-->  reopened  --start-->  handling
    closed    --reopen (reason)-->  reopened             (a later follow-up 回访 finds it unsolved)
    received | assigned | returned  --cancel (reason)-->  cancelled   (作废: duplicate, withdrawn 撤诉, no remit)

Roles, checked where they matter:

- only a **department** (承办单位) accepts, returns (退回), starts and replies;
- only an **operator** (话务员/派单员) or a **supervisor** (督办人员) assigns, re-routes, cancels, closes and re-opens
  a closed ticket;
- the verdict (核查反馈) is given by the **citizen** (诉求人, e.g. in the mini-program) or by an **operator** recording
  the citizen's answer on a follow-up call (回访); a supervisor does not judge satisfaction for the citizen;
- a citizen may also withdraw (cancel) a ticket that nobody has accepted yet.

`apply` is pure: it takes the current state and returns the next state and an `AuditEvent`; it raises
`triage.errors.Conflict` (HTTP 409) for an action the state or role does not allow. `scheduler_pass` marks overdue
tickets and escalates them one level up the chain of a `triage.sla.SlaPolicy`; it reads no clock (``now`` is passed
in) and works on numpy arrays: 100,000 open tickets in about a second on 2 cores (bench/lifecycle.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Literal, NamedTuple

import numpy as np

from triage.errors import Conflict, InvalidInput
from triage.sla import SlaPolicy, epoch_seconds

__all__ = [
    "TicketState",
    "Action",
    "Role",
    "ACTIONS",
    "Transition",
    "TRANSITIONS",
    "AuditEvent",
    "allowed_actions",
    "apply",
    "TicketView",
    "OverdueMark",
    "Escalation",
    "scheduler_pass",
    "apply_pass",
]


class TicketState(str, Enum):
    received = "received"  # 已受理
    assigned = "assigned"  # 已派单
    accepted = "accepted"  # 已签收
    returned = "returned"  # 已退回, waiting to be re-routed
    handling = "handling"  # 办理中
    replied = "replied"  # 已答复, waiting for the verdict
    verified = "verified"  # 已核查, citizen satisfied
    reopened = "reopened"  # 重办
    closed = "closed"  # 已办结
    cancelled = "cancelled"  # 已作废


class Action(str, Enum):
    assign = "assign"
    accept = "accept"
    return_ = "return"
    start = "start"
    reply = "reply"
    verify_satisfied = "verify_satisfied"
    verify_unsatisfied = "verify_unsatisfied"
    close = "close"
    reopen = "reopen"
    cancel = "cancel"


class Role(str, Enum):
    citizen = "citizen"
    operator = "operator"
    department = "department"
    supervisor = "supervisor"


ACTIONS: tuple[str, ...] = tuple(action.value for action in Action)


@dataclass(frozen=True)
class Transition:
    source: TicketState
    action: Action
    target: TicketState
    roles: frozenset[Role]
    needs_note: bool = False  # a reason (退回理由, 不满意原因, 答复内容) must be given
    needs_department: bool = False  # the department the ticket goes to


_S, _A, _R = TicketState, Action, Role
_DISPATCH = frozenset({_R.operator, _R.supervisor})
_DEPT = frozenset({_R.department})
_VERDICT = frozenset({_R.citizen, _R.operator})

# The whole lifecycle. Edit here and nowhere else.
TRANSITIONS: dict[tuple[TicketState, Action], Transition] = {
    (t.source, t.action): t
    for t in [
        Transition(_S.received, _A.assign, _S.assigned, _DISPATCH, needs_department=True),
        Transition(_S.received, _A.cancel, _S.cancelled, _DISPATCH | {_R.citizen}, needs_note=True),
        # Re-routing before anyone accepted (派错了) keeps the ticket assigned, to another department.
        Transition(_S.assigned, _A.assign, _S.assigned, _DISPATCH, needs_department=True),
        Transition(_S.assigned, _A.accept, _S.accepted, _DEPT),
        Transition(_S.assigned, _A.return_, _S.returned, _DEPT, needs_note=True),
        Transition(_S.assigned, _A.cancel, _S.cancelled, _DISPATCH | {_R.citizen}, needs_note=True),
        # 改派: a returned ticket is assigned again (to another department, or to the same one when the operator
        # rejects the return). Cancelling covers petitions outside every department's remit.
        Transition(_S.returned, _A.assign, _S.assigned, _DISPATCH, needs_department=True),
        Transition(_S.returned, _A.cancel, _S.cancelled, _DISPATCH, needs_note=True),
        Transition(_S.accepted, _A.start, _S.handling, _DEPT),
        Transition(_S.handling, _A.reply, _S.replied, _DEPT, needs_note=True),
        Transition(_S.replied, _A.verify_satisfied, _S.verified, _VERDICT),
        Transition(_S.replied, _A.verify_unsatisfied, _S.reopened, _VERDICT, needs_note=True),
        Transition(_S.verified, _A.close, _S.closed, _DISPATCH),
        Transition(_S.reopened, _A.start, _S.handling, _DEPT),
        # A closed ticket found not solved on a later follow-up (回访) goes back to the department.
        Transition(_S.closed, _A.reopen, _S.reopened, _DISPATCH, needs_note=True),
    ]
}


@dataclass(frozen=True)
class AuditEvent:
    """One line of a ticket's history: who did what, as which role, when, and the state before and after."""

    action: Action
    from_state: TicketState
    to_state: TicketState
    actor: str
    role: Role
    at: datetime
    note: str | None = None
    department_id: str | None = None  # where the ticket was (re-)assigned, for assign


def allowed_actions(state: TicketState | str, role: Role | str | None = None) -> list[Action]:
    """Actions possible from ``state`` (for ``role`` if given), in table order."""
    state = _coerce(TicketState, state, "state")
    role = _coerce(Role, role, "role") if role is not None else None
    return [t.action for (s, _), t in TRANSITIONS.items() if s is state and (role is None or role in t.roles)]


def apply(
    state: TicketState | str,
    action: Action | str,
    *,
    actor: str,
    role: Role | str,
    note: str | None = None,
    at: datetime,
    department_id: str | None = None,
) -> tuple[TicketState, AuditEvent]:
    """Perform ``action`` on a ticket in ``state``; return the new state and the audit event to store with it.

    Raises `Conflict` when the action is not allowed from this state or for this role (the message names the state
    and the allowed actions), `InvalidInput` for a missing actor, note or department, or a naive ``at``.
    """
    state = _coerce(TicketState, state, "state")
    action = _coerce(Action, action, "action")
    role = _coerce(Role, role, "role")
    epoch_seconds(at, field_name="at")
    if not actor or not actor.strip():
        raise InvalidInput("actor is required: who performs the action", field="actor")
    transition = TRANSITIONS.get((state, action))
    if transition is None:
        allowed = ", ".join(a.value for a in allowed_actions(state)) or "none (final state)"
        raise Conflict(f"cannot {action.value} a ticket that is {state.value}; allowed from {state.value}: {allowed}",
                       field="action")
    if role not in transition.roles:
        roles = ", ".join(sorted(r.value for r in transition.roles))
        raise Conflict(f"a {role.value} cannot {action.value} a ticket that is {state.value}; only: {roles}",
                       field="role")
    if transition.needs_note and not (note and note.strip()):
        raise InvalidInput(f"{action.value} needs a note (the reason or the reply text)", field="note")
    if transition.needs_department and not (department_id and department_id.strip()):
        raise InvalidInput(f"{action.value} needs the department_id to send the ticket to", field="department_id")
    event = AuditEvent(
        action=action,
        from_state=state,
        to_state=transition.target,
        actor=actor,
        role=role,
        at=at,
        note=note,
        department_id=department_id if transition.needs_department else None,
    )
    return transition.target, event


def _coerce(enum: type[Enum], value, field_name: str):
    try:
        return enum(value)
    except ValueError:
        raise InvalidInput(f"unknown {field_name} {value!r}; expected one of {[m.value for m in enum]}",
                           field=field_name) from None


# ------------------------------------------------------------------------------------------------ scheduler

# Which deadline is running in each open state; the other states are not supervised. A ticket still with the
# dispatch centre (received, or returned and not yet re-routed) runs against accept_by too and is marked overdue,
# but 督办 supervises departments (承办单位), so only a ticket some department holds is escalated.
_WAITING_ACCEPT = 1
_WAITING_REPLY = 2
_WAITING_DISPATCH = 3
_PHASE = {
    TicketState.received: _WAITING_DISPATCH,
    TicketState.assigned: _WAITING_ACCEPT,
    TicketState.returned: _WAITING_DISPATCH,
    TicketState.accepted: _WAITING_REPLY,
    TicketState.handling: _WAITING_REPLY,
    TicketState.reopened: _WAITING_REPLY,
}


@dataclass(frozen=True, slots=True)
class TicketView:
    """What the scheduler needs of one ticket; the store maps its rows to this.

    ``level`` is the chain level (name or alias from the SLA policy) of the handling department, ``None`` for the
    bottom; ``escalation_level`` counts escalation steps already taken. The store refreshes a deadline when the
    clock restarts: ``accept_by`` when a returned ticket is re-routed to a new department, ``reply_by`` on re-open,
    each from ``SlaPolicy.deadlines(urgency, category, <that moment>)``. The overdue flags and the escalation level
    are history and stay as they are.
    """

    id: str
    state: TicketState | str
    urgency: str
    received_at: datetime
    accept_by: datetime | None
    reply_by: datetime | None
    category: str | None = None
    department_id: str | None = None
    level: str | None = None
    escalation_level: int = 0
    last_escalated_at: datetime | None = None
    accept_overdue: bool = False
    reply_overdue: bool = False


class OverdueMark(NamedTuple):
    """The ticket missed its accept (签收超期) or reply (办理超期) deadline; record it once.

    Results are named tuples: immutable, cheap to build by the hundred thousand, ``._asdict()`` for storage."""

    ticket_id: str
    kind: Literal["accept", "reply"]
    deadline: datetime
    at: datetime


class Escalation(NamedTuple):
    """督办: the ticket goes one level up. ``step`` is the new ``escalation_level`` (unique per ticket and step)."""

    ticket_id: str
    step: int
    from_level: str
    to_level: str
    kind: Literal["accept", "reply"]
    due_at: datetime  # when this step became due: missed deadline (or previous escalation) + the level's delay
    at: datetime


def scheduler_pass(
    tickets: Iterable[TicketView], now: datetime, *, policy: SlaPolicy
) -> list[OverdueMark | Escalation]:
    """One pass of the supervision scheduler at time ``now``.

    A ticket waiting to be accepted (received, assigned, returned) is judged on ``accept_by``; one being handled
    (accepted, handling, reopened) on ``reply_by``. Once ``now`` is past that deadline it gets an `OverdueMark`
    (unless already marked), and a ticket a department holds (assigned onwards) is escalated one level when the next
    level's delay has passed since the later of the missed deadline and its last escalation. Tickets still with the
    dispatch centre (received, returned) are marked but not escalated: 督办 supervises departments. Applying the results (`apply_pass`) and running again at the same
    ``now`` yields nothing. Results come in input order, a ticket's mark before its escalation.
    """
    tickets = tickets if isinstance(tickets, Sequence) else list(tickets)
    now_s = epoch_seconds(now, field_name="now")
    phase = np.fromiter((_PHASE.get(t.state, 0) for t in tickets), dtype=np.int8, count=len(tickets))
    rows = np.flatnonzero(phase)
    if rows.size == 0:
        return []
    open_tickets = [tickets[i] for i in rows]
    phase = phase[rows]
    deadline = np.array([_ts(t.reply_by if p == _WAITING_REPLY else t.accept_by)
                         for t, p in zip(open_tickets, phase.tolist())], dtype=np.float64)
    missed = deadline < now_s  # NaN (no deadline) compares False
    hit = np.flatnonzero(missed)
    if hit.size == 0:
        return []
    late = [open_tickets[i] for i in hit]
    late_phase = phase[hit]
    late_deadline = deadline[hit]
    already_marked = np.array([t.reply_overdue if p == _WAITING_REPLY else t.accept_overdue
                               for t, p in zip(late, late_phase.tolist())], dtype=bool)

    urgency_index = {u: i for i, u in enumerate(policy.urgencies)}
    level_cache: dict[str | None, int] = {}
    try:
        urgency = np.array([urgency_index[getattr(t.urgency, "value", t.urgency)] for t in late], dtype=np.int64)
    except KeyError as exc:
        raise InvalidInput(f"unknown urgency {exc.args[0]!r}; the policy has {list(policy.urgencies)}",
                           field="urgency") from None
    position = np.array([_level(policy, level_cache, t.level) + max(t.escalation_level, 0) for t in late],
                        dtype=np.int64)
    last = np.array([_ts(t.last_escalated_at) for t in late], dtype=np.float64)

    # Delay before each level, per urgency; level 0 has none.
    n_levels = len(policy.levels)
    delay = np.full((n_levels + 1, len(urgency_index)), np.inf)
    working = np.zeros_like(delay, dtype=bool)
    for index, level in enumerate(policy.levels[1:], start=1):
        for u, i in urgency_index.items():
            delay[index, i], working[index, i] = level.after[u].seconds, level.after[u].working
    target = np.minimum(position + 1, n_levels)  # n_levels = no level above: delay stays infinite
    step_delay = delay[target, urgency]
    step_working = working[target, urgency]
    anchor = np.fmax(late_deadline, last)  # fmax ignores a NaN last escalation
    elapsed = now_s - anchor
    if step_working.any():
        calendar = policy.calendar
        clock_now = calendar.working_clock(np.array([now_s]))[0]
        elapsed_working = clock_now - calendar.working_clock(anchor[step_working])
        elapsed[step_working] = elapsed_working
    escalate = (elapsed >= step_delay) & (late_phase != _WAITING_DISPATCH)
    due = anchor + np.where(np.isfinite(step_delay), step_delay, 0.0)
    if (escalate & step_working).any():
        sel = escalate & step_working
        due[sel] = policy.calendar.from_working_clock(policy.calendar.working_clock(anchor[sel]) + step_delay[sel])

    tz = policy.calendar.tz
    names = [level.name for level in policy.levels] + [""]
    marked, esc, phases = already_marked.tolist(), escalate.tolist(), late_phase.tolist()
    from_pos, to_pos, due_s = position.tolist(), target.tolist(), due.tolist()
    results: list[OverdueMark | Escalation] = []
    for i in np.flatnonzero(~already_marked | escalate).tolist():
        ticket = late[i]
        replying = phases[i] == _WAITING_REPLY
        kind = "reply" if replying else "accept"
        if not marked[i]:
            results.append(OverdueMark(ticket.id, kind, ticket.reply_by if replying else ticket.accept_by, now))
        if esc[i]:
            results.append(Escalation(
                ticket_id=ticket.id,
                step=ticket.escalation_level + 1,
                from_level=names[from_pos[i]],
                to_level=names[to_pos[i]],
                kind=kind,
                due_at=datetime.fromtimestamp(due_s[i], tz=tz),
                at=now,
            ))
    return results


def apply_pass(tickets: Iterable[TicketView], results: Iterable[OverdueMark | Escalation]) -> list[TicketView]:
    """The tickets as they are after a pass's results are recorded (what the store does to its rows)."""
    by_id: dict[str, list[OverdueMark | Escalation]] = {}
    for result in results:
        by_id.setdefault(result.ticket_id, []).append(result)
    updated = []
    for ticket in tickets:
        for result in by_id.get(ticket.id, ()):
            if isinstance(result, OverdueMark):
                ticket = replace(ticket, **{f"{result.kind}_overdue": True})
            elif result.step == ticket.escalation_level + 1:
                ticket = replace(ticket, escalation_level=result.step, last_escalated_at=result.at)
        updated.append(ticket)
    return updated


def _ts(moment: datetime | None) -> float:
    # The hot loop of a pass: a cheaper awareness check than `epoch_seconds` (a datetime whose tzinfo gives no
    # offset is too exotic to pay for on every row).
    if moment is None:
        return math.nan
    if moment.tzinfo is None:
        epoch_seconds(moment, field_name="deadline")  # raises with the usual message
    return moment.timestamp()


def _level(policy: SlaPolicy, cache: dict[str | None, int], level: str | None) -> int:
    if level not in cache:
        cache[level] = policy.level_index(level)
    return cache[level]
