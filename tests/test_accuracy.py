"""Accuracy against the simulator's ground truth for a whole office day.

About 300 visitors (30 % without the app), 40 staff all day (4 at the reception desk, in range
all day through 36 ID rotations), and passers-by at weak signal outside.
"""

from __future__ import annotations

from collections import Counter

import pytest

from appliance.ble.simulator import LobbyScenario
from tests.sim import MemorySink, person_tokens, run_lobby

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def office_day():  # type: ignore[no-untyped-def]
    sink = MemorySink()
    lobby, pipeline = run_lobby(LobbyScenario(seed=1), sink)
    return lobby, pipeline, sink


def test_entries_with_app_within_3_percent(office_day) -> None:  # type: ignore[no-untyped-def]
    lobby, _, sink = office_day
    truth = lobby.truth.count("app")
    got = sum(1 for e in sink.entries.values() if e.kind == "app")
    assert truth > 250
    assert abs(got - truth) <= 0.03 * truth, (got, truth)


def test_entries_with_no_app_within_10_percent(office_day) -> None:  # type: ignore[no-untyped-def]
    lobby, _, sink = office_day
    truth = lobby.truth.count("no_app")
    got = sum(1 for e in sink.entries.values() if e.kind == "no_app")
    assert truth > 60
    assert abs(got - truth) <= 0.10 * truth, (got, truth)


def test_each_staff_arrival_is_one_app_entry(office_day) -> None:  # type: ignore[no-untyped-def]
    lobby, _, sink = office_day
    arrivals = {round(e.time, 3) for e in lobby.truth.entries if e.role == "staff"}
    at_arrival = Counter(
        round(e.time, 3) for e in sink.entries.values() if round(e.time, 3) in arrivals
    )
    assert len(arrivals) == 40
    # Two staff walking in together within a second make one crossing: allow one such pair.
    assert sum(1 for t in arrivals if at_arrival[t] == 1) >= 39
    assert all(at_arrival[t] <= 1 for t in arrivals)


def test_passers_by_outside_are_never_entries(office_day) -> None:  # type: ignore[no-untyped-def]
    lobby, _, sink = office_day
    passers = [p for p, role in lobby.truth.roles.items() if role == "passer-by"]
    tokens = set().union(*(person_tokens(lobby, p) for p in passers))
    assert len(tokens) > 100
    assert not any(toks and toks[0] in tokens for toks in sink.tokens.values())


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_each_staff_phone_counts_once_all_day_at_the_desk(seed: int) -> None:
    # No sensor: every presence the tracker starts is an entry, so any rotation it failed to
    # follow (Bluezone at each quarter-hour, GAEN and iPhone MACs every 10-20 min, Android
    # background pauses) would show as an extra entry. Phones at similar levels rotating at
    # the same instant may swap identities between them (nothing on the air tells them
    # apart); that must never add or lose an entry.
    scenario = LobbyScenario(visitors=0, passers_by=0, staff=12, reception_staff=12, seed=seed)
    sink = MemorySink()
    _lobby, pipeline = run_lobby(scenario, sink, sensor=False)
    kinds = Counter(e.kind for e in sink.entries.values())
    assert kinds == {"app": 12}, kinds
    assert pipeline.tracker.rotations > 12 * 30
    assert all(uuid in sink.left for uuid in sink.entries)  # every stay ended once, at night
