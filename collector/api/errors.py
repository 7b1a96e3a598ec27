"""Every refusal the API answers, mapped once for all routes: a ``ServiceError`` is its status
and one line; a malformed request is a 422 naming the field; a body the collector cannot read
is its ``BodyError`` status; a database that is down is a 503 with ``Retry-After`` (the unit
backs off and retries); two requests racing for one row is a 409 for the loser."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from appliance.errors import BodyError, DatabaseError, ServiceError

log = logging.getLogger("collector")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.exception_handler(ServiceError)(refused)
    app.exception_handler(RequestValidationError)(invalid)
    app.exception_handler(BodyError)(unreadable)
    app.exception_handler(DatabaseError)(unavailable)
    conflicts, failures = _driver_errors()
    for conflict in conflicts:
        app.exception_handler(conflict)(raced)
    for failure in failures:
        app.exception_handler(failure)(failed)


def _driver_errors() -> tuple[list[type[Exception]], list[type[Exception]]]:
    """The database drivers' own exceptions: (integrity errors, every other failure)."""
    conflicts: list[type[Exception]] = [sqlite3.IntegrityError]
    failures: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover - psycopg is a collector dependency
        return conflicts, failures
    conflicts.append(psycopg.IntegrityError)
    failures += [psycopg.Error, psycopg_pool.PoolTimeout]
    return conflicts, failures


async def refused(request: Request, exc: ServiceError) -> JSONResponse:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    # Refused credentials are an operator's business (a unit to re-enroll, or a probe).
    level = logging.WARNING if exc.status in (401, 403, 409, 410) else logging.INFO
    client = request.client.host if request.client else "?"
    log.log(level, "refused %s %s from %s: %s %s", request.method, request.url.path, client,
            exc.status, exc)  # fmt: skip
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)


async def raced(request: Request, exc: Exception) -> JSONResponse:
    # Two requests raced for the same row (one code, one new ID): the loser is told.
    return await refused(request, ServiceError(409, "a concurrent request changed this; retry"))


def _field(loc: tuple[Any, ...]) -> str:
    """``("body", "records", 3, "entered_at")`` → ``records[3].entered_at``."""
    text = ""
    for part in loc:
        if part in ("body", "query", "header", "path"):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"detail": "body: not valid JSON", "errors": []}, status_code=422)
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    message = f"{_field(tuple(first.get('loc', ())))}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    detail = [
        {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg")} for e in errors[:20]
    ]
    return JSONResponse({"detail": message, "errors": detail}, status_code=422)


async def unreadable(request: Request, exc: BodyError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


async def unavailable(request: Request, exc: DatabaseError) -> JSONResponse:
    log.error("database: %s", exc)
    return JSONResponse(
        {"detail": "the collector's database is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "30"},
    )


async def failed(request: Request, exc: Exception) -> JSONResponse:
    return await unavailable(request, DatabaseError(str(exc)))
