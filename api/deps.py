"""FastAPI dependencies: handlers declare what they need (`ServiceDep`, `SettingsDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from triage.service import TriageService
from triage.settings import Settings


def get_service(request: Request) -> TriageService:
    return request.app.state.service


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


ServiceDep = Annotated[TriageService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
