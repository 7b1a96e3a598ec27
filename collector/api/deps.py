"""What the routes depend on: the app's settings and who is calling, as FastAPI dependencies.

A bearer token is checked by an ``Authenticator``: ``CurrentUnit`` for a door unit's device
token, ``require_role(...)`` for a person's role token. The route class runs the same check
before it reads a request's body (an unauthenticated request never has its body read or
inflated); the dependency then answers from that check instead of asking the database again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from collector.db import PostgresDatabase, SqliteDatabase
from collector.services import auth
from collector.services.auth import Checkpoint


@dataclass
class Settings:
    db: SqliteDatabase | PostgresDatabase
    zone: ZoneInfo
    province_secret: bytes | None = None
    clock: Callable[[], float] = time.time


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(settings_of)]

bearer = HTTPBearer(auto_error=False, description="a device token or a role token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

Principal = TypeVar("Principal")
_CHECKED = "checkpoint.principals"  # the request scope's key for the checks already done


class Authenticator(Generic[Principal]):
    """One way of checking a request's bearer token, run at most once per request."""

    def __init__(self, check: Callable[[Settings, str | None], Principal]) -> None:
        self._check = check  # blocking (it reads the database): run on the thread pool

    async def authenticate(self, request: Request) -> Principal:
        """Who the request's token belongs to, or the ``ServiceError`` that refuses it."""
        checked: dict[Authenticator[Any], Any] = request.scope.setdefault(_CHECKED, {})
        if self not in checked:
            credentials = await bearer(request)
            token = credentials.credentials if credentials is not None else None
            checked[self] = await run_in_threadpool(self._check, settings_of(request), token)
        principal: Principal = checked[self]
        return principal

    async def dependency(self, request: Request, credentials: Credentials) -> Principal:
        """The FastAPI dependency (``credentials`` puts the bearer scheme into the OpenAPI
        document; the token itself is read by ``authenticate``)."""
        return await self.authenticate(request)


def _unit(settings: Settings, token: str | None) -> Checkpoint:
    return auth.device(settings.db, token, now=settings.clock())


unit_token = Authenticator(_unit)
CurrentUnit = Annotated[Checkpoint, Depends(unit_token.dependency)]


def require_role(*allowed: str) -> Any:
    """A route's dependency on a role token of one of ``allowed`` (admin may do everything)."""

    def check(settings: Settings, token: str | None) -> str:
        return auth.role(settings.db, token, allowed, now=settings.clock())

    return Depends(Authenticator(check).dependency)


def authenticators(route_dependencies: list[Any]) -> list[Authenticator[Any]]:
    """The authenticators among a route's dependencies (``Dependant.dependencies``), nested
    ones included."""
    found: list[Authenticator[Any]] = []
    for dependency in route_dependencies:
        owner = getattr(dependency.call, "__self__", None)
        if isinstance(owner, Authenticator):
            found.append(owner)
        found += authenticators(dependency.dependencies)
    return found
