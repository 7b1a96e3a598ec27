"""What the province's operators and their monitoring call: liveness."""

from __future__ import annotations

from fastapi import APIRouter

from collector.api.deps import AppSettings
from collector.api.errors import refusals
from collector.api.routing import GzipRoute

router = APIRouter(route_class=GzipRoute, tags=["operations"])


@router.get("/healthz", responses=refusals())
def healthz(settings: AppSettings) -> dict[str, str]:
    """Liveness, and whether the database answers."""
    with settings.db.transaction() as tx:
        tx.one("SELECT 1")
    return {"status": "ok", "database": settings.db.engine}
