"""What door units call: enrollment, the visit batches, who am I, the heartbeat."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from fastapi import APIRouter

from appliance.errors import ServiceError
from appliance.records import VisitRecord
from collector import models
from collector.api.deps import AppSettings, CurrentUnit
from collector.api.errors import refusals
from collector.api.routing import CONTENT_ENCODING, GzipRoute
from collector.services import alerts, enrollment, ingest
from collector.services.base import iso

log = logging.getLogger("collector")
MAX_HEALTH_BYTES = 64 * 1024  # a health report is a few hundred bytes; more is a bug or abuse

router = APIRouter(route_class=GzipRoute, tags=["device"])


@router.post(
    "/v1/enroll",
    response_model=models.EnrollReply,
    responses=refusals(400, 403, 409, 410, 413, 415, 422),
    openapi_extra=CONTENT_ENCODING,
)
def enroll(body: models.EnrollRequest, settings: AppSettings) -> dict[str, Any]:
    """Exchange a one-time enrollment code for the unit's ID and bearer token."""
    result = enrollment.enroll(settings.db, body.code, now=settings.clock(), hostname=body.hostname)
    log.info("enrolled %s (%s, %s)", result.checkpoint_id, result.agency, result.door)
    secret = settings.province_secret
    return {
        "checkpoint_id": result.checkpoint_id,
        "token": result.token,
        "agency": result.agency,
        "door": result.door,
        "token_expires_at": iso(result.token_expires_at),
        "province_key": base64.b64encode(secret).decode() if secret is not None else None,
    }


@router.post(
    "/v1/visits",
    response_model=models.IngestReply,
    responses=refusals(400, 401, 413, 415, 422),
    openapi_extra=CONTENT_ENCODING,
)
def visits(body: models.VisitBatch, unit: CurrentUnit, settings: AppSettings) -> dict[str, Any]:
    """Store a batch of visits. Idempotent: a UUID already stored counts as a duplicate, and a
    copy that contradicts it is refused (listed in ``refused``), the stored record unchanged."""
    records = [
        VisitRecord(
            uuid=r.uuid,
            kind=r.kind,
            entered_at=r.entered_at,
            clock_synced=r.clock_synced,
            left_at=r.left_at,
            via_sensor=r.via_sensor,
            protocol=r.protocol,
            tokens=tuple(r.tokens),
            key_days={t: day.isoformat() for t, day in r.key_days.items()},
        )
        for r in body.records
    ]
    result = ingest.ingest(settings.db, unit, records, now=settings.clock(), zone=settings.zone)
    if result.refused:
        log.warning(
            "refused %d record(s) from %s that contradict the stored ones, first %s: %s",
            len(result.refused), unit.id, result.refused[0].uuid, result.refused[0].reason,
        )  # fmt: skip
    return {
        "received": result.received,
        "new": result.new,
        "duplicates": result.duplicates,
        "refused": [{"uuid": r.uuid, "reason": r.reason} for r in result.refused],
    }


@router.get("/v1/device", response_model=models.DeviceReply, responses=refusals(401))
def whoami(unit: CurrentUnit) -> dict[str, Any]:
    """Who this token belongs to and until when (for `checkpoint doctor`); changes nothing."""
    return {
        "checkpoint_id": unit.id,
        "agency": unit.agency,
        "door": unit.door,
        "token_expires_at": iso(unit.token_expires_at),
    }


@router.post(
    "/v1/heartbeat",
    response_model=models.HeartbeatReply,
    responses=refusals(400, 401, 413, 415, 422),
    openapi_extra=CONTENT_ENCODING,
)
def heartbeat(
    body: models.HeartbeatRequest, unit: CurrentUnit, settings: AppSettings
) -> dict[str, Any]:
    """Report the unit's health and acknowledge alerts; the reply carries its alerts."""
    if len(json.dumps(body.health)) > MAX_HEALTH_BYTES:
        raise ServiceError(413, "health report over 64 KiB")
    pending = alerts.heartbeat(
        settings.db,
        unit,
        health=body.health,
        acked=body.acked_alerts,
        now=settings.clock(),
        hostname=body.hostname,
    )
    return {"server_time": settings.clock(), "alerts": pending}
