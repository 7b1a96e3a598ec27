"""What the health authority calls: the exposure check of a confirmed case's published key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from appliance.core.exposure import BluezoneCase, Case, GaenCase
from appliance.errors import ServiceError
from collector import models
from collector.api.deps import AppSettings, require_role
from collector.api.errors import refusals
from collector.api.routing import CONTENT_ENCODING, GzipRoute
from collector.services.exposure import exposure_check

router = APIRouter(route_class=GzipRoute, tags=["health"])


def _case(body: models.BluezoneCase | models.GaenCase) -> Case:
    key = bytes.fromhex(body.key)
    if isinstance(body, models.BluezoneCase):
        return BluezoneCase(daily_key=key, first_day=body.first_day, days=body.days)
    return GaenCase(tek=key, first_interval=body.interval)


@router.post(
    "/v1/exposure/check",
    response_model=models.ExposureReply,
    dependencies=[require_role("health")],
    responses=refusals(400, 401, 403, 413, 415, 422),
    openapi_extra=CONTENT_ENCODING,
)
def exposure(body: models.ExposureRequest, settings: AppSettings) -> dict[str, Any]:
    """Find a confirmed case's visits at every checkpoint, with who else was there; each
    checkpoint visited gets an exposure alert on its next heartbeat."""
    secret = settings.province_secret
    if secret is None:
        raise ServiceError(503, "the collector has no province key (serve --province-key FILE)")
    matches = exposure_check(settings.db, secret, _case(body), now=settings.clock())
    return {
        "matches": [m.as_json(settings.zone) for m in matches],
        "checkpoints_alerted": len({m.checkpoint_id for m in matches}),
    }
