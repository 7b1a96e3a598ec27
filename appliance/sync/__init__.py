"""Sync with the provincial collector (docs/architecture.md §sync): the only requests importer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.config import Config
from appliance.errors import ConfigError

if TYPE_CHECKING:
    from appliance.sync.outbox import OutboxFactory
    from appliance.sync.uploader import Uploader


def read_token(config: Config) -> str:
    """The bearer token `checkpoint enroll` stored, or a ConfigError saying what to do."""
    assert config.sync is not None
    path = config.sync.token_path(config.directory)
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no sync token at {path}",
            advice="enroll the unit: checkpoint enroll --server URL --code CODE",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the sync token {path}: {exc}") from None
    if not token:
        raise ConfigError(f"the sync token file {path} is empty", advice="enroll the unit again")
    return token


def build_uploader(
    config: Config,
    *,
    outbox: OutboxFactory,
    health: Callable[[], dict[str, Any]] | None = None,
    pace_s: float | None = None,
) -> Uploader:
    """An Uploader for this configuration (sync must be configured), reading the outbox
    ``outbox()`` opens (the caller's: sync does not import the store). ``pace_s`` overrides
    the pause between batches (a person waiting at ``sync --now`` wants none)."""
    from appliance.sync.client import CollectorClient
    from appliance.sync.tuning import PACE_S, SyncTuning
    from appliance.sync.uploader import Uploader

    sync = config.sync
    if sync is None or not sync.url:
        raise ConfigError(
            "sync is off (no [sync] url)",
            advice="enroll the unit: checkpoint enroll --server URL --code CODE",
        )
    client = CollectorClient(
        sync.url,
        token=read_token(config),
        ca_file=sync.ca_path(config.directory),
        timeout=sync.timeout_s,
    )
    tuning = SyncTuning(
        interval_s=sync.interval_s,
        batch_size=sync.batch_size,
        heartbeat_s=sync.heartbeat_s,
        max_backoff_s=sync.max_backoff_s,
        pace_s=PACE_S if pace_s is None else pace_s,
    )
    return Uploader(outbox, client, tuning, health=health, token_loader=lambda: read_token(config))
