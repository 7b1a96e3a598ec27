"""Every refusal the API answers, mapped once for all routes and documented once: a
``ServiceError`` is its status and one line; a malformed request is a 422 naming the field; a
body the collector cannot read is its ``BodyError`` status; a database that is down is a 503
with ``Retry-After`` (the unit backs off and retries); two requests racing for one row is a 409
for the loser. Each is an ``ErrorReply`` (``models.py``), and ``refusals(...)`` puts the
statuses a route can answer into its OpenAPI ``responses``."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from appliance.errors import BodyError, DatabaseError, ServiceError
from collector.models import ErrorReply

log = logging.getLogger("collector")

# What each refusal means, as the OpenAPI document says it.
MEANINGS: dict[int, str] = {
    400: "the body is not valid gzip, or is truncated",
    401: "no bearer token, or one that is unknown, expired or revoked: enroll again, or ask"
    " for a role token",
    403: "a token of another role (or a door unit's) for this route; for enrollment, an"
    " unknown code",
    409: "a concurrent request changed this (retry), or the checkpoint ID is already enrolled",
    410: "the enrollment code was already used or has expired: ask for a new one",
    413: "the body is over 8 MiB, or inflates past 32 MiB (send smaller batches); a health"
    " report over 64 KiB",
    415: "a Content-Encoding other than gzip or identity",
    422: "a malformed request: `detail` names the first field at fault, `errors` lists them",
    503: "the database does not answer (retry after `Retry-After` seconds), or the collector"
    " lacks what the route needs (the province key)",
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that may answer these refusals (and always a 503)."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 503}):
        documented[status] = {"model": ErrorReply, "description": MEANINGS[status]}
    documented[503]["headers"] = RETRY_AFTER
    return documented


def _quotable(text: str) -> str:
    """``text`` as a refusal can carry it: a refusal may quote a request's field name, and a
    name may hold a NUL, which no text of a reply may (ErrorReply refuses it): that was a 500,
    found by the fuzzer. A NUL is shown as its escape instead."""
    return text.replace("\x00", "\\x00")


def reply(status: int, detail: str, *, errors: list[dict[str, str]] | None = None,
          headers: Mapping[str, str] | None = None) -> JSONResponse:  # fmt: skip
    """A refusal in the one shape every refusal has."""
    listed = [{key: _quotable(value) for key, value in error.items()} for error in errors or []]
    body = ErrorReply.model_validate({"detail": _quotable(detail), "errors": listed})
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.exception_handler(ServiceError)(refused)
    app.exception_handler(RequestValidationError)(invalid)
    app.exception_handler(BodyError)(unreadable)
    app.exception_handler(DatabaseError)(unavailable)
    app.exception_handler(HTTPException)(not_here)
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
    return reply(exc.status, str(exc), headers=headers)


async def not_here(request: Request, exc: HTTPException) -> JSONResponse:
    # Starlette's own refusals (no such route, another method) in the same shape.
    return reply(exc.status_code, str(exc.detail), headers=exc.headers)


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
        return reply(422, "body: not valid JSON")
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    message = f"{_field(tuple(first.get('loc', ())))}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    fields = [
        {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg"))}
        for e in errors[:20]
    ]
    return reply(422, message, errors=fields)


async def unreadable(request: Request, exc: BodyError) -> JSONResponse:
    return reply(exc.status, str(exc))


async def unavailable(request: Request, exc: DatabaseError) -> JSONResponse:
    log.error("database: %s", exc)
    return reply(
        503, "the collector's database is unavailable; retry later", headers={"Retry-After": "30"}
    )


async def failed(request: Request, exc: Exception) -> JSONResponse:
    return await unavailable(request, DatabaseError(str(exc)))
