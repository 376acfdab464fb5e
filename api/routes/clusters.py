"""Clustered complaints (民情地图) and duplicates: GET /v1/clusters, /v1/clusters/{id}, /v1/petitions/{id}/duplicates."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import ServiceDep
from triage.schemas import DuplicateOut, ErrorOut

router = APIRouter(tags=["clusters"])


class ClusterOut(BaseModel):
    id: str
    aliases: list[str]
    title: str
    keywords: list[str]
    area: str | None
    street: str | None
    category: str | None
    departments: list[str]
    size: int
    petitioners: int
    first_seen: datetime
    last_seen: datetime
    heat: float
    trend: str


class ClusterDetail(ClusterOut):
    members: list[str]


def cluster_out(view, *, members: bool = False) -> dict:
    fields = {name: getattr(view, name) for name in ClusterOut.model_fields}
    if members:
        fields["members"] = list(view.member_ids)
    return fields


@router.get("/v1/clusters", response_model=list[ClusterOut], summary="Visible clusters, hottest first")
def list_clusters(
    service: ServiceDep,
    since: datetime | None = None,
    region: Annotated[str | None, Query(description="Area key or a part of it, e.g. 长治市 or A3区.")] = None,
    department: str | None = None,
    min_size: Annotated[int, Query(ge=1)] = 2,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    as_of: Annotated[datetime | None, Query(description="Heat and trend as of this time (default now).")] = None,
) -> list[dict]:
    views = service.matcher.clusters(
        now=as_of, since=since, region=region, department=department, min_size=min_size, limit=limit
    )
    return [cluster_out(v) for v in views]


class MergeIn(BaseModel):
    ids: list[str] = Field(..., min_length=2, description="Clusters to merge; the oldest id survives.")


@router.post("/v1/clusters/merge", response_model=ClusterDetail, responses={404: {"model": ErrorOut}})
def merge_clusters(body: MergeIn, service: ServiceDep) -> dict:
    survivor = service.matcher.merge(body.ids)
    service.matcher.save(service.db, force=True)
    return cluster_out(service.matcher.cluster(survivor), members=True)


@router.get("/v1/clusters/{cluster_id}", response_model=ClusterDetail, responses={404: {"model": ErrorOut}})
def get_cluster(cluster_id: str, service: ServiceDep) -> dict:
    return cluster_out(service.matcher.cluster(cluster_id), members=True)


@router.get("/v1/petitions/{petition_id}/duplicates", response_model=list[DuplicateOut], responses={404: {"model": ErrorOut}})
def petition_duplicates(petition_id: str, service: ServiceDep) -> list[DuplicateOut]:
    service.get_petition(petition_id)  # 404 for an unknown id
    with service.db.session() as session:
        return service.matcher.duplicates_of(session, petition_id)
