"""The collector's HTTP API (FastAPI). ``/openapi.json`` is the sync protocol's specification.

Every refusal is a JSON ``ErrorReply``, ``{"detail": "one line", "errors": [...]}``, with a 4xx
status that says what to do and is documented on its route; a database that is down is a 503
with ``Retry-After`` (the device backs off and retries); a malformed record is a 422 naming the
record and the field, never a 500 (``errors.py``).
Authentication is a dependency of each route (``deps.py``), checked by the route class before
the body is read (``routing.py``).
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI

from collector.api import errors
from collector.api.deps import Settings
from collector.api.routes import admin, devices, exposure, operations, reports

API_VERSION: Final = "1"

__all__ = ["API_VERSION", "Settings", "create_app"]


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Checkpoint collector",
        version=API_VERSION,
        summary="The provincial server of Checkpoint door units: the sync protocol.",
        description=(
            "Door units enroll with a one-time code, then send their visits in gzip JSON"
            " batches (idempotent by record UUID) and a heartbeat that returns their alerts."
            " Officials fetch the adoption report and the entry export; the health authority"
            " runs the exposure check. Every request but enrollment carries"
            " `Authorization: Bearer <token>`."
        ),
    )
    app.state.settings = settings
    errors.install(app)
    for audience in (devices, admin, reports, exposure, operations):
        app.include_router(audience.router)
    return app
