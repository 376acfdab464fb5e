"""The FastAPI application: settings → service at start-up, routers, error shape. No logic lives here."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

from api import errors
from api.routes import alerts, clusters, health, intake, petitions, tickets, triage
from triage.logs import configure_logging
from triage.service import build_service
from triage.settings import Settings, get_settings

log = logging.getLogger("api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_logging(settings.log_level)
        app.state.service = build_service(settings)
        app.state.service.start()
        yield
        app.state.service.stop()

    app = FastAPI(
        title="petition-triage",
        version="1",
        summary="Routing, duplicates, clusters, risk flags and chat intake for Chinese citizen petitions.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            return errors.error_response(
                413, "payload_too_large", f"request body over {settings.max_body_bytes} bytes"
            )
        return await call_next(request)

    for module in (health, triage, petitions, alerts, tickets, intake, clusters):
        app.include_router(module.router)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.main:app_factory`."""
    return create_app()


__all__ = ["create_app", "app_factory"]
