"""Decode throughput: parse + classify a realistic mix of advertisements on one core."""

from __future__ import annotations

import random

from appliance.protocols import frames
from appliance.protocols.registry import Classifier
from bench.results import Figure, median_rate

APP_SHARE = 0.30
COUNT = 200_000
REPEATS = 7
TARGET_PER_SECOND = 200_000


def realistic_mix(count: int, app_share: float = APP_SHARE, seed: int = 1) -> list[bytes]:
    """Distinct advertisements as a lobby hears them: ``app_share`` of them app phones.

    Every report has fresh random bytes (IDs, RPIs, Continuity payloads), so nothing can be
    answered from a cache. The rest is what a city lobby is full of: Apple Continuity, iBeacons,
    Microsoft CDP, wearables and unknown manufacturers.
    """
    rng = random.Random(seed)

    def rand(n: int) -> bytes:
        return rng.randbytes(n)

    apps = [
        (0.40, lambda: frames.bluezone_android(rand(12))),
        (0.25, lambda: frames.gaen(rand(16), rand(4))),
        (
            0.20,
            lambda: frames.bluezone_ios_background(
                other_bits=bytes([rng.randrange(256) & 0xF7]) + rand(15)
            ),
        ),
        (0.10, lambda: frames.bluezone_ios_foreground()),
        (0.05, lambda: frames.bluezone_beacon()),
    ]
    others = [
        (0.40, lambda: frames.apple_nearby_info(rng.randrange(256), rand(5))),
        (0.10, lambda: frames.apple_continuity((0x07, rand(25)))),
        (0.10, lambda: frames.apple_overflow(bytes([rng.randrange(256) & 0xF7]) + rand(15))),
        (
            0.10,
            lambda: frames.ibeacon("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", rng.randrange(65536), 1),
        ),
        (0.10, lambda: frames.microsoft_cdp(rand(19))),
        (
            0.10,
            lambda: (
                frames.flags()
                + frames.local_name("Mi Band 4")
                + frames.manufacturer(0x0157, rand(10))
            ),
        ),
        (
            0.10,
            lambda: (
                frames.flags() + frames.uuid16_list(0xFE2C) + frames.service_data16(0xFE2C, rand(3))
            ),
        ),
    ]

    def pick(table: list[tuple[float, object]]) -> bytes:
        r = rng.random()
        for weight, make in table:
            r -= weight
            if r <= 0:
                return make()  # type: ignore[operator,no-any-return]
        return table[-1][1]()  # type: ignore[operator,no-any-return]

    return [pick(apps) if rng.random() < app_share else pick(others) for _ in range(count)]


def run() -> list[Figure]:
    data = realistic_mix(COUNT)
    classifier = Classifier()
    classify = classifier.classify_bytes
    apps = sum(1 for d in data if classify(d) is not None)

    def work() -> int:
        for report in data:
            classify(report)
        return len(data)

    rate, _ = median_rate(work, REPEATS)
    return [
        Figure(
            "decode_throughput",
            round(rate),
            "advertisements/s",
            TARGET_PER_SECOND,
            "higher",
            f"median of {REPEATS} runs over {COUNT:,} distinct reports, "
            f"{apps / COUNT:.0%} app phones, one core",
        )
    ]
