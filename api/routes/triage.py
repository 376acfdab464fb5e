"""POST /v1/triage and /v1/triage/batch."""

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import ServiceDep
from triage.schemas import BatchIn, BatchOut, ErrorOut, PetitionIn, TriageResult

router = APIRouter(prefix="/v1/triage", tags=["triage"])
ERRORS = {code: {"model": ErrorOut} for code in (400, 409, 413, 422, 500)}


@router.post("", response_model=TriageResult, responses=ERRORS, summary="Triage and store one petition")
async def triage_one(petition: PetitionIn, service: ServiceDep) -> TriageResult:
    return await run_in_threadpool(service.submit, petition)


@router.post("/batch", response_model=BatchOut, responses=ERRORS, summary="Triage and store up to 1,000 petitions")
async def triage_batch(batch: BatchIn, service: ServiceDep) -> BatchOut:
    return BatchOut(results=await run_in_threadpool(service.submit_batch, batch.petitions))
