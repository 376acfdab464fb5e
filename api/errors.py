"""The one place library exceptions become HTTP errors, all in one JSON shape: {"error": {code, message, field}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from triage.errors import TriageError

log = logging.getLogger("api")


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message, "field": field}})


def _field_of(loc: tuple | list) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or None


def install(app: FastAPI) -> None:
    @app.exception_handler(TriageError)
    async def triage_error(_request: Request, exc: TriageError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request", "type": "invalid"}
        kind = first.get("type", "invalid")
        if kind in ("json_invalid", "value_error.jsondecode"):
            return error_response(400, "invalid_json", f"request body is not valid JSON (UTF-8): {first.get('msg')}")
        field = _field_of(first.get("loc", ()))
        code = "missing_field" if kind == "missing" else "invalid_field"
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return error_response(422, code, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", type(exc).__name__)
        return error_response(500, "internal_error", "the service failed on this request; it has been logged")
