"""GET /v1/petitions/{id}."""

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import ServiceDep
from triage.schemas import ErrorOut, PetitionRecord

router = APIRouter(prefix="/v1/petitions", tags=["petitions"])


@router.get("/{petition_id}", response_model=PetitionRecord, responses={404: {"model": ErrorOut}})
async def get_petition(petition_id: str, service: ServiceDep) -> PetitionRecord:
    return await run_in_threadpool(service.get_petition, petition_id)
