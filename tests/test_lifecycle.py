"""Ticket lifecycle: the transition table, role checks, audit events, and the 督办 escalation scheduler."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from triage.errors import Conflict, InvalidInput
from triage.lifecycle import (
    TRANSITIONS,
    Action,
    AuditEvent,
    Escalation,
    OverdueMark,
    Role,
    TicketState,
    TicketView,
    allowed_actions,
    apply,
    apply_pass,
    scheduler_pass,
)
from triage.sla import SlaPolicy

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=BEIJING)  # a Wednesday
SLA_YAML = Path(__file__).resolve().parent.parent / "corpora" / "sla.yaml"


@pytest.fixture(scope="module")
def policy() -> SlaPolicy:
    return SlaPolicy.load(SLA_YAML)


def act(state, action, role, *, note=None, department_id=None, actor="u1"):
    return apply(state, action, actor=actor, role=role, note=note, at=T0, department_id=department_id)


# ------------------------------------------------------------------------------------------- transitions


LEGAL = [(t, role) for t in TRANSITIONS.values() for role in sorted(t.roles, key=lambda r: r.value)]


@pytest.mark.parametrize("transition,role", LEGAL, ids=lambda v: getattr(v, "value", None) or f"{v.source.value}")
def test_every_legal_transition_reaches_its_target_and_records_an_audit_event(transition, role):
    new_state, event = act(transition.source, transition.action, role, note="原因", department_id="D-7")
    assert new_state is transition.target
    assert event == AuditEvent(
        action=transition.action,
        from_state=transition.source,
        to_state=transition.target,
        actor="u1",
        role=role,
        at=T0,
        note="原因",
        department_id="D-7" if transition.action is Action.assign else None,
    )


ILLEGAL = [(s, a) for s in TicketState for a in Action if (s, a) not in TRANSITIONS]


@pytest.mark.parametrize("state,action", ILLEGAL, ids=lambda v: v.value)
def test_illegal_transition_raises_conflict_naming_the_state_and_allowed_actions(state, action):
    with pytest.raises(Conflict) as caught:
        act(state, action, Role.supervisor, note="x", department_id="D-1")
    message = caught.value.message
    assert f"that is {state.value}" in message
    for allowed in allowed_actions(state):
        assert allowed.value in message
    assert caught.value.status == 409


def test_final_states_allow_nothing_and_say_so():
    assert allowed_actions(TicketState.cancelled) == []
    with pytest.raises(Conflict, match="final state"):
        act(TicketState.cancelled, Action.assign, Role.operator, department_id="D-1")


@pytest.mark.parametrize(
    "state,action,role",
    [
        (TicketState.received, Action.assign, Role.department),  # a department cannot dispatch to itself
        (TicketState.assigned, Action.accept, Role.operator),  # only the department accepts
        (TicketState.assigned, Action.return_, Role.supervisor),
        (TicketState.handling, Action.reply, Role.citizen),
        (TicketState.replied, Action.verify_satisfied, Role.department),  # no grading its own work
        (TicketState.replied, Action.verify_satisfied, Role.supervisor),
        (TicketState.verified, Action.close, Role.citizen),
        (TicketState.returned, Action.cancel, Role.citizen),
    ],
)
def test_action_by_the_wrong_role_is_refused_with_the_roles_allowed(state, action, role):
    with pytest.raises(Conflict, match=f"a {role.value} cannot {action.value}") as caught:
        act(state, action, role, note="x", department_id="D-1")
    assert caught.value.field == "role"


def test_return_without_a_reason_is_refused():
    with pytest.raises(InvalidInput, match="needs a note") as caught:
        act(TicketState.assigned, Action.return_, Role.department, note="  ")
    assert caught.value.field == "note"


def test_assign_without_a_department_is_refused():
    with pytest.raises(InvalidInput, match="department_id"):
        act(TicketState.received, Action.assign, Role.operator)


def test_naive_time_and_missing_actor_are_refused():
    with pytest.raises(InvalidInput, match="timezone-aware"):
        apply("assigned", "accept", actor="d1", role="department", at=datetime(2026, 11, 25, 9))
    with pytest.raises(InvalidInput, match="actor"):
        apply("assigned", "accept", actor=" ", role="department", at=T0)


def test_unknown_action_name_is_invalid_input_listing_the_actions():
    with pytest.raises(InvalidInput, match="verify_satisfied"):
        apply("replied", "approve", actor="o1", role="operator", at=T0)


def test_returned_ticket_is_rerouted_and_assigned_to_the_new_department():
    state, first = act("received", "assign", "operator", department_id="D-water")
    state, returned = act(state, "return", "department", note="不属于本单位职责，应由燃气公司处理")
    assert state is TicketState.returned
    assert returned.note.startswith("不属于")
    state, rerouted = act(state, "assign", "operator", department_id="D-gas")
    assert state is TicketState.assigned
    assert (rerouted.from_state, rerouted.department_id) == (TicketState.returned, "D-gas")
    state, accepted = act(state, "accept", "department", actor="gas-clerk")
    assert state is TicketState.accepted and accepted.actor == "gas-clerk"


def test_unsatisfied_verdict_reopens_the_ticket_for_the_department():
    state = TicketState.replied
    state, event = act(state, "verify_unsatisfied", "citizen", note="路灯还是不亮")
    assert state is TicketState.reopened and event.to_state is TicketState.reopened
    assert Action.start in allowed_actions(state, Role.department)
    state, _ = act(state, "start", "department")
    assert state is TicketState.handling


def test_whole_closed_loop_leaves_a_chained_audit_trail():
    steps = [
        ("assign", "operator", None, "D-1"),
        ("accept", "department", None, None),
        ("start", "department", None, None),
        ("reply", "department", "已维修", None),
        ("verify_unsatisfied", "citizen", "还坏着", None),
        ("start", "department", None, None),
        ("reply", "department", "已更换灯具", None),
        ("verify_satisfied", "operator", None, None),
        ("close", "operator", None, None),
    ]
    state, trail = TicketState.received, []
    for action, role, note, department in steps:
        state, event = act(state, action, role, note=note, department_id=department)
        trail.append(event)
    assert state is TicketState.closed
    assert all(a.to_state is b.from_state for a, b in zip(trail, trail[1:]))
    assert [e.action.value for e in trail] == [s[0] for s in steps]


def test_allowed_actions_depend_on_the_role():
    assert allowed_actions("assigned", "department") == [Action.accept, Action.return_]
    assert allowed_actions("assigned", "operator") == [Action.assign, Action.cancel]
    assert allowed_actions("replied", "supervisor") == []


# ---------------------------------------------------------------------------------------------- scheduler


def street_ticket(policy, ticket_id="T-1", state="assigned", urgency="normal", received=T0, **fields):
    deadlines = policy.deadlines(urgency, fields.pop("category", None), received)
    fields.setdefault("level", "街道")
    return TicketView(ticket_id, state, urgency, received, deadlines.accept_by, deadlines.reply_by, **fields)


def run(tickets, now, policy):
    results = scheduler_pass(tickets, now, policy=policy)
    return results, apply_pass(tickets, results)


def test_overdue_ticket_escalates_street_to_county_to_city_one_step_at_a_time(policy):
    tickets = [street_ticket(policy)]  # accept by Thu 26 Nov 09:00 (1wd)
    seen: list[tuple[datetime, object]] = []
    now = T0
    while now <= T0 + timedelta(days=14):
        results, tickets = run(tickets, now, policy)
        assert scheduler_pass(tickets, now, policy=policy) == []  # a second pass at the same time: nothing new
        seen += [(now, r) for r in results]
        now += timedelta(hours=1)
    marks = [r for _, r in seen if isinstance(r, OverdueMark)]
    escalations = [(when, r) for when, r in seen if isinstance(r, Escalation)]
    assert [(m.kind, m.deadline) for m in marks] == [("accept", datetime(2026, 11, 26, 9, tzinfo=BEIJING))]
    assert [(r.step, r.from_level, r.to_level) for _, r in escalations] == [(1, "街道/乡镇", "区县"), (2, "区县", "市")]
    # 区县 one working day after the missed deadline; 市 two working days later, skipping the weekend
    assert [when for when, _ in escalations] == [datetime(2026, 11, 27, 9, tzinfo=BEIJING),
                                                 datetime(2026, 12, 1, 9, tzinfo=BEIJING)]
    assert tickets[0].escalation_level == 2


def test_nothing_happens_before_the_deadline(policy):
    assert scheduler_pass([street_ticket(policy)], T0 + timedelta(hours=23, minutes=59), policy=policy) == []
    assert scheduler_pass([street_ticket(policy)], T0 + timedelta(hours=24), policy=policy) == []


def test_late_scheduler_catches_up_one_level_per_pass(policy):
    tickets = [street_ticket(policy)]
    much_later = T0 + timedelta(days=30)
    first, tickets = run(tickets, much_later, policy)
    assert [type(r).__name__ for r in first] == ["OverdueMark", "Escalation"]
    second, tickets = run(tickets, much_later + timedelta(minutes=1), policy)
    assert second == []  # the county level gets its full delay from the moment it was notified
    third, tickets = run(tickets, much_later + timedelta(days=4), policy)
    assert [(r.step, r.to_level) for r in third] == [(2, "市")]


def test_city_level_ticket_is_never_escalated_above_the_top(policy):
    ticket = street_ticket(policy, level="市")
    results = scheduler_pass([ticket], T0 + timedelta(days=60), policy=policy)
    assert [type(r) for r in results] == [OverdueMark]


def test_accepted_ticket_is_judged_on_its_reply_deadline(policy):
    ticket = street_ticket(policy, state="handling", accept_overdue=True)  # reply by Mon 30 Nov 09:00 (3wd)
    assert scheduler_pass([ticket], datetime(2026, 11, 30, 8, 59, tzinfo=BEIJING), policy=policy) == []
    [mark] = scheduler_pass([ticket], datetime(2026, 11, 30, 9, 1, tzinfo=BEIJING), policy=policy)
    assert mark.kind == "reply"


@pytest.mark.parametrize("state", ["replied", "verified", "closed", "cancelled"])
def test_tickets_outside_a_running_deadline_are_not_supervised(policy, state):
    assert scheduler_pass([street_ticket(policy, state=state)], T0 + timedelta(days=60), policy=policy) == []


def test_urgent_gas_ticket_escalates_on_the_wall_clock_overnight(policy):
    received = datetime(2026, 11, 27, 22, 0, tzinfo=BEIJING)  # Friday night
    ticket = street_ticket(policy, urgency="urgent", received=received, category="燃气供应")
    # accept by 22:30; the county (区县) is notified 4 h later, at night, on a Saturday
    results, tickets = run([ticket], received + timedelta(hours=6, minutes=31), policy)
    assert [(type(r).__name__, getattr(r, "to_level", None)) for r in results] == [("OverdueMark", None),
                                                                                   ("Escalation", "区县")]
    assert results[1].due_at == datetime(2026, 11, 28, 2, 30, tzinfo=BEIJING)
    one_minute_early = scheduler_pass([ticket], received + timedelta(hours=4, minutes=29), policy=policy)
    assert [type(r) for r in one_minute_early] == [OverdueMark]


def test_batch_pass_equals_each_ticket_passed_alone(policy):
    states = ["received", "assigned", "returned", "accepted", "handling", "reopened", "replied", "closed"]
    tickets = []
    for i in range(80):
        received = T0 - timedelta(hours=7 * i)
        tickets.append(street_ticket(policy, f"T-{i}", states[i % len(states)], ["normal", "urgent"][i % 2],
                                     received, category=["燃气供应", None][i % 3 == 0], escalation_level=i % 3,
                                     accept_overdue=i % 5 == 0,
                                     last_escalated_at=received + timedelta(days=1) if i % 3 else None))
    now = T0 + timedelta(days=2)
    batch = scheduler_pass(tickets, now, policy=policy)
    alone = [r for t in tickets for r in scheduler_pass([t], now, policy=policy)]
    assert batch == alone
    assert len({type(r) for r in batch}) == 2  # the mix exercises both marks and escalations


def test_ticket_with_unknown_urgency_is_refused(policy):
    ticket = replace(street_ticket(policy), urgency="critical")
    with pytest.raises(InvalidInput, match="unknown urgency"):
        scheduler_pass([ticket], T0 + timedelta(days=5), policy=policy)


@pytest.mark.parametrize("state", ["received", "returned"])
def test_ticket_still_with_the_dispatch_centre_is_marked_but_not_escalated(policy, state):
    results = scheduler_pass([street_ticket(policy, state=state)], T0 + timedelta(days=30), policy=policy)
    assert [(type(r), r.kind) for r in results] == [(OverdueMark, "accept")]
