"""Pipeline throughput: decode → track → doorway → store with 10,000 phones present.

Every phone is near the door (present in the tracker, an open entry in the doorway and in the
visit log on disk); the stream is their advertisements in random order plus 30 % of lobby noise,
with virtual time advancing as a busy scanner would hear it and the daemon's half-second tick
and one-second commit. Peak memory is measured in a second pass under tracemalloc.
"""

from __future__ import annotations

import random
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from appliance.core.doorway import DoorTuning, Doorway
from appliance.core.pipeline import Pipeline
from appliance.core.presence import PresenceTracker
from appliance.core.tokens import TokenMaker
from appliance.models import Sighting
from appliance.protocols import frames
from appliance.protocols.registry import Classifier
from appliance.store import VisitLog
from bench.decode import realistic_mix
from bench.results import Figure

PHONES = 10_000
REPORTS = 300_000
NOISE_SHARE = 0.30
REPORTS_PER_SECOND = 20_000  # virtual: 10,000 phones heard about twice a second each
TARGET_PER_SECOND = 50_000
REPEATS = 3
START = datetime(2020, 8, 20, 2, 1, tzinfo=UTC).timestamp()  # well inside one Bluezone slot


def _phones(rng: random.Random) -> list[tuple[str, bytes]]:
    phones = []
    for n in range(PHONES):
        mac = "4A:" + ":".join(f"{b:02X}" for b in n.to_bytes(5, "big"))
        kind = n % 10
        if kind < 6:
            data = frames.bluezone_android(rng.randbytes(12))
        elif kind < 9:
            data = frames.gaen(rng.randbytes(16), rng.randbytes(4))
        else:
            data = frames.bluezone_ios_background()  # keyed by its MAC
        phones.append((mac, data))
    return phones


def _stream(rng: random.Random, phones: list[tuple[str, bytes]], t: float) -> list[Sighting]:
    noise = realistic_mix(int(REPORTS * NOISE_SHARE), app_share=0.0, seed=5)
    stream: list[Sighting] = []
    step = 1.0 / REPORTS_PER_SECOND
    noise_iter = iter(noise)
    for _ in range(REPORTS):
        t += step
        if rng.random() < NOISE_SHARE:
            data = next(noise_iter, noise[0])
            stream.append(Sighting(t, "6C:00:00:00:00:01", rng.randint(-95, -60), data))
        else:
            mac, data = phones[rng.randrange(PHONES)]
            stream.append(Sighting(t, mac, rng.randint(-66, -54), data))
    return stream


def _pipeline(database: Path) -> tuple[Pipeline, VisitLog]:
    tokens = TokenMaker(bytes(range(32)))
    tracker = PresenceTracker(
        lambda scheme, raw, when: tokens.token(scheme, raw, datetime.fromtimestamp(when, UTC))
    )
    store = VisitLog(database)
    pipeline = Pipeline(Classifier(), tracker, Doorway(DoorTuning(sensor=False)), store)
    return pipeline, store


def _warm(pipeline: Pipeline, store: VisitLog, phones: list[tuple[str, bytes]]) -> float:
    """Bring every phone near the door: all of them heard in turn for a few virtual seconds,
    as a scanner hears a crowd, until each is present; then commit. Returns the time reached."""
    t = START
    step = 1.0 / REPORTS_PER_SECOND
    for _round in range(24):
        for mac, data in phones:
            t += step
            pipeline.on_sighting(Sighting(t, mac, -60, data))
        pipeline.tick(t)
    store.flush()
    return t


def _run(stream: list[Sighting], pipeline: Pipeline, store: VisitLog) -> None:
    next_tick = next_flush = stream[0].time
    on_sighting = pipeline.on_sighting
    for sighting in stream:
        if sighting.time >= next_tick:
            pipeline.tick(sighting.time)
            next_tick = sighting.time + 0.5
            if sighting.time >= next_flush:
                store.flush()
                next_flush = sighting.time + 1.0
        on_sighting(sighting)
    store.flush()


def run() -> list[Figure]:
    rng = random.Random(11)
    phones = _phones(rng)
    rates = []
    stream: list[Sighting] = []
    present = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(REPEATS):
            pipeline, store = _pipeline(Path(tmp) / f"run{k}.db")
            reached = _warm(pipeline, store, phones)
            present = pipeline.tracker.present
            if not stream:
                stream = _stream(rng, phones, reached)
            start = time.perf_counter()
            _run(stream, pipeline, store)
            rates.append(len(stream) / (time.perf_counter() - start))
            store.close()
        rates.sort()
        rate = rates[len(rates) // 2]

        tracemalloc.start()
        pipeline, store = _pipeline(Path(tmp) / "memory.db")
        _warm(pipeline, store, phones)
        _run(stream, pipeline, store)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        store.close()
    if present != PHONES:
        raise RuntimeError(f"only {present} of {PHONES} phones were present")
    note = f"{PHONES:,} phones present, {len(stream):,} reports ({NOISE_SHARE:.0%} noise)"
    return [
        Figure("pipeline_throughput", round(rate), "advertisements/s", TARGET_PER_SECOND,
               "higher", f"median of {REPEATS} runs, one core, {note}"),
        Figure("pipeline_peak_memory", round(peak / 2**20, 1), "MiB", None, "lower",
               "tracemalloc peak of the pipeline (tracker, doorway, store) during the run"),
    ]  # fmt: skip
