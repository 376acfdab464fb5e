"""GET /v1/alerts and POST /v1/alerts/{id}/ack."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import ServiceDep
from triage import alerts as repo
from triage.schemas import ErrorOut, RiskFlag

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    id: int
    petition_id: str
    level: Literal["high", "critical"]
    types: list[str]
    flags: list[RiskFlag]
    status: Literal["open", "acked"]
    created_at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_note: str | None = None


class AckIn(BaseModel):
    by: str = Field(..., min_length=1, max_length=128, description="Who acknowledges (operator id or name).")
    note: str | None = Field(None, max_length=2000)


@router.get("", response_model=list[AlertOut], summary="Risk alerts, newest first")
def list_alerts(
    service: ServiceDep,
    level: Annotated[Literal["high", "critical"] | None, Query()] = None,
    type: Annotated[str | None, Query(description="self_harm, violence, gathering, …")] = None,
    status: Annotated[Literal["open", "acked"] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    with service.db.session() as session:
        rows = repo.list_alerts(session, level=level, type_=type, status=status, since=since, until=until, limit=limit)
    return [AlertOut.model_validate(r) for r in rows]


@router.post("/{alert_id}/ack", response_model=AlertOut, responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}})
async def ack_alert(alert_id: int, body: AckIn, service: ServiceDep) -> AlertOut:
    def run():
        with service.db.session() as session:
            return repo.ack(session, alert_id, by=body.by, note=body.note)

    return AlertOut.model_validate(await run_in_threadpool(run))
