"""Tickets (工单): create, read, act on (lifecycle), route corrections, overdue lists, the 督办 scheduler."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import ServiceDep
from triage import tickets as desk
from triage.errors import InvalidInput, NotFound
from triage.lifecycle import ACTIONS
from triage.schemas import ErrorOut
from triage.store.petitions import latest_result

router = APIRouter(tags=["tickets"])
ERRORS = {code: {"model": ErrorOut} for code in (404, 409, 422)}


class TicketIn(BaseModel):
    petition_id: str = Field(..., description="A petition already submitted to POST /v1/triage.")
    auto_assign: bool = Field(True, description="Assign to the top suggested department unless it needs review.")


class ActionIn(BaseModel):
    action: str = Field(..., description=" | ".join(ACTIONS))
    actor: str = Field(..., min_length=1, max_length=128)
    role: str = Field(..., description="citizen | operator | department | supervisor")
    note: str | None = Field(None, max_length=5000, description="Reason / reply text where the action needs one.")
    department_id: str | None = Field(None, description="For assign: the department the ticket goes to.")


class RouteIn(BaseModel):
    department_id: str
    category: str | None = None
    reason: str | None = Field(None, max_length=2000)
    actor: str = Field("operator", max_length=128)


class SchedulerIn(BaseModel):
    now: datetime | None = Field(None, description="Run the pass as of this time (drills and tests; off in production).")


@router.post("/v1/tickets", responses=ERRORS, summary="Open a ticket for a triaged petition")
def create(body: TicketIn, service: ServiceDep) -> dict[str, Any]:
    with service.db.session() as session:
        result = latest_result(session, body.petition_id)
        if result is None:
            raise NotFound(f"no triaged petition {body.petition_id!r}", field="petition_id")
        ticket = desk.create_ticket(session, result, policy=service.sla, now=service.now(),
                                    start_level=service.settings.ticket_start_level, auto_assign=body.auto_assign)
        return desk.ticket_out(session, ticket, with_events=True, policy=service.sla)


@router.get("/v1/tickets", summary="Tickets, newest first; overdue=true lists open overdue ones")
def list_tickets(
    service: ServiceDep,
    overdue: bool | None = None,
    state: str | None = None,
    department_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    with service.db.session() as session:
        rows = desk.list_tickets(session, overdue=overdue, state=state, department_id=department_id, limit=limit)
        return [desk.ticket_out(session, t, policy=service.sla) for t in rows]


@router.get("/v1/tickets/{ticket_id}", responses=ERRORS)
def get_ticket(ticket_id: str, service: ServiceDep) -> dict[str, Any]:
    with service.db.session() as session:
        return desk.ticket_out(session, desk.get_ticket(session, ticket_id), with_events=True, policy=service.sla)


@router.post("/v1/tickets/{ticket_id}/actions", responses=ERRORS, summary="Move a ticket through its lifecycle")
def act(ticket_id: str, body: ActionIn, service: ServiceDep) -> dict[str, Any]:
    with service.db.session() as session:
        ticket = desk.transition(session, ticket_id, body.action, actor=body.actor, role=body.role, now=service.now(),
                                 note=body.note, department_id=body.department_id, policy=service.sla)
        return desk.ticket_out(session, ticket, with_events=True, policy=service.sla)


@router.post("/v1/tickets/{ticket_id}/route", responses=ERRORS, summary="Record the operator's routing choice")
def route(ticket_id: str, body: RouteIn, service: ServiceDep) -> dict[str, Any]:
    table = service.provider.get().departments
    with service.db.session() as session:
        ticket, feedback = desk.record_route(
            session, ticket_id, department_id=body.department_id, category=body.category, reason=body.reason,
            actor=body.actor, now=service.now(), known_departments=set(table.departments),
            known_categories=set(service.provider.get().router.classes_),
        )
        out = desk.ticket_out(session, ticket, with_events=True, policy=service.sla)
        out["feedback"] = {"model_department_id": feedback.model_department_id, "model_category": feedback.model_category,
                           "chosen_department_id": feedback.chosen_department_id,
                           "chosen_category": feedback.chosen_category, "overridden": feedback.overridden}
        return out


@router.post("/v1/scheduler/run", summary="Run one 督办 pass now (the service also runs it periodically)")
async def run_scheduler(body: SchedulerIn, service: ServiceDep) -> dict[str, Any]:
    if body.now is not None and not service.settings.allow_clock_override:
        raise InvalidInput("an explicit `now` is disabled here (TRIAGE_ALLOW_CLOCK_OVERRIDE)", field="now")
    if body.now is not None and body.now.tzinfo is None:
        raise InvalidInput("`now` needs a timezone, e.g. 2026-11-25T09:00:00+08:00", field="now")
    return await run_in_threadpool(service.run_scheduler, body.now)


@router.get("/v1/metrics/overdue", summary="Open overdue tickets per department")
def overdue_counts(service: ServiceDep) -> dict[str, int]:
    with service.db.session() as session:
        return desk.overdue_by_department(session)


@router.get("/v1/metrics/routing", summary="Operator override rate per week, category and department")
def routing_metrics(service: ServiceDep, since: datetime | None = None) -> dict[str, Any]:
    with service.db.session() as session:
        return desk.routing_metrics(session, since)
