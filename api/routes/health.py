"""GET /health: liveness plus what is being served."""

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(service: ServiceDep) -> dict:
    with service.db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok", "model_version": service.provider.get().model_version, "database": service.db.engine.dialect.name}
