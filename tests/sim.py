"""Run the simulated lobby through the real pipeline in virtual time (shared by tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from appliance.ble.simulator import Lobby, LobbyScenario
from appliance.core.doorway import DoorTuning, Doorway, Entry, EntryUpdate
from appliance.core.pipeline import EntrySink, Pipeline
from appliance.core.presence import PresenceTracker
from appliance.core.tokens import TokenMaker
from appliance.models import Sighting
from appliance.protocols.registry import Classifier

SECRET = bytes(range(7, 39))


@dataclass
class MemorySink:
    entries: dict[str, Entry] = field(default_factory=dict)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    left: dict[str, float] = field(default_factory=dict)

    def record(self, decision: Entry | EntryUpdate, *, clock_synced: bool = True) -> None:
        if isinstance(decision, Entry):
            self.entries[decision.uuid] = decision
            self.tokens[decision.uuid] = [token for token, _ in decision.tokens]
        else:
            if decision.token is not None:
                self.tokens[decision.uuid].append(decision.token[0])
            if decision.left_at is not None:
                self.left[decision.uuid] = decision.left_at


def tokenizer(secret: bytes = SECRET) -> Callable[[str, bytes, float], str]:
    maker = TokenMaker(secret)
    return lambda scheme, raw, when: maker.token(scheme, raw, datetime.fromtimestamp(when, UTC))


def run_lobby(
    scenario: LobbyScenario,
    sink: EntrySink,
    *,
    sensor: bool = True,
    on_sighting: Callable[[Sighting], None] | None = None,
) -> tuple[Lobby, Pipeline]:
    lobby = Lobby(scenario)
    pipeline = Pipeline(
        Classifier(), PresenceTracker(tokenizer()), Doorway(DoorTuning(sensor=sensor)), sink
    )
    next_tick = 0.0
    for event in lobby.events():
        if event.time >= next_tick:
            pipeline.tick(event.time)
            next_tick = event.time + 0.5
        if isinstance(event, Sighting):
            if on_sighting is not None:
                on_sighting(event)
            pipeline.on_sighting(event)
        else:
            pipeline.on_sensor(event)
    pipeline.close(lobby.end + 120)
    return lobby, pipeline


def person_tokens(lobby: Lobby, person: int, secret: bytes = SECRET) -> set[str]:
    """Every token the person's phone could have been stored under on the scenario's days."""
    maker = TokenMaker(secret)
    day = lobby.scenario.day
    days = [
        datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp() + k * 86400
        for k in (-1, 0, 1)
    ]
    return {
        maker.token(scheme, raw, datetime.fromtimestamp(t, UTC))
        for scheme, raw in lobby.truth.identifiers.get(person, set())
        for t in days
    }
