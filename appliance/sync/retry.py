"""When to try the collector again: exponential backoff with jitter, and a cheap signature of
the network that changes when a link, an address or a route does (then the wait is cut short)."""

from __future__ import annotations

import random
from pathlib import Path


class Backoff:
    """Exponential backoff with "equal jitter": a wait in [d/2, d], d doubling up to ``cap``."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self.rng = rng or random.Random()

    def next(self, retry_after: float | None = None) -> float:
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        delay = self.rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay

    def reset(self) -> None:
        self.failures = 0


def network_signature() -> int:
    """Changes when a link, an address or a route changes (a cable, Wi-Fi, a DHCP lease)."""
    parts = []
    for name in ("/proc/net/route", "/proc/net/if_inet6", "/proc/net/ipv6_route"):
        try:
            parts.append(Path(name).read_text())
        except OSError:
            parts.append("")
    return hash(tuple(parts))
