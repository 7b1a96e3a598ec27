"""What the uploader needs from the outbox, as a type: the store provides it, sync never imports
the store (adapters stay independent). Whoever builds an uploader hands it a factory, because
the outbox opens its own SQLite connection in the thread that uses it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from appliance.records import OutboxRecord


class SyncOutbox(Protocol):
    """The outbox's side the uploader uses (``appliance.store.outbox.Outbox`` is one)."""

    def batch(self, limit: int) -> list[OutboxRecord]: ...

    def backlog(self) -> int: ...

    def rejected(self) -> int: ...

    def mark_synced(self, records: Iterable[OutboxRecord], when: float) -> int: ...

    def mark_rejected(self, record: OutboxRecord, reason: str) -> None: ...

    def unacked_alerts(self) -> list[str]: ...

    def mark_acked(self, ids: Iterable[str]) -> None: ...

    def save_alerts(self, alerts: Iterable[dict[str, Any]], when: float) -> int: ...

    def alerts(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


OutboxFactory = Callable[[], SyncOutbox]
