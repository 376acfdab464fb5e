"""Chat intake for the mini-program: POST /v1/intake/sessions and /v1/intake/sessions/{id}/messages."""

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import ServiceDep
from triage.schemas import ErrorOut

router = APIRouter(prefix="/v1/intake/sessions", tags=["intake"])


class SessionOut(BaseModel):
    session_id: str
    reply: str
    state: Literal["collecting"] = "collecting"


class MessageIn(BaseModel):
    text: str | None = Field(None, max_length=5000, description="What the citizen typed (empty and emoji are fine).")


class MessageOut(BaseModel):
    session_id: str
    reply: str
    state: Literal["collecting", "confirming", "submitted", "cancelled"]
    slots: dict[str, Any]
    urgent: bool = False
    asking: str | None = Field(None, description="The slot the reply asks for: what | where | when | contact.")
    ticket: str | None = Field(None, description="Ticket number once submitted, e.g. 20261123-000123.")
    urgent_ticket: str | None = Field(
        None, description="The urgent ticket opened at once on a high/critical message, before the report is complete; "
        "the submitted report keeps this number.")
    risk: dict[str, Any] | None = None


@router.post("", response_model=SessionOut, summary="Open a chat session")
async def open_session(service: ServiceDep) -> SessionOut:
    return SessionOut(**await run_in_threadpool(service.intake.open))


@router.post("/{session_id}/messages", response_model=MessageOut, responses={404: {"model": ErrorOut}})
async def post_message(session_id: str, body: MessageIn, service: ServiceDep) -> MessageOut:
    return MessageOut(**await run_in_threadpool(service.intake.message, session_id, body.text))


@router.get("/{session_id}", responses={404: {"model": ErrorOut}})
def get_session(session_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.intake.get(session_id)
