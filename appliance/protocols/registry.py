"""Find the app decoders and run them over advertisements in priority order.

Each app format is one module in ``appliance.protocols.decoders`` that defines ``DECODER``;
the registry discovers them, so adding a format means adding one module and its tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from appliance.models import Detection
from appliance.protocols.adstructs import Advertisement, parse


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """Knobs a decoder may need from the configuration."""

    # iPhone background advertisements hide service UUIDs in Apple's overflow bitmap; Bluezone's
    # authors found its bit empirically (byte 0, mask 0x08), so it is configurable.
    ios_overflow_byte: int = 0
    ios_overflow_mask: int = 0x08


@dataclass(frozen=True, slots=True)
class Decoder:
    """One app format: a name, an order, and a pure function over a parsed advertisement."""

    name: str
    priority: int  # lower runs first; the first decoder that recognises the report wins
    decode: Callable[[Advertisement, DecodeOptions], Detection | None]
    summary: str


def load_decoders() -> tuple[Decoder, ...]:
    """Every decoder module's ``DECODER``, sorted by priority then name."""
    from appliance.protocols import decoders as package

    found: list[Decoder] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        decoder = getattr(module, "DECODER", None)
        if not isinstance(decoder, Decoder):
            raise TypeError(f"{module.__name__} defines no DECODER")
        found.append(decoder)
    names = [d.name for d in found]
    if len(set(names)) != len(names):
        raise TypeError(f"duplicate decoder names: {sorted(names)}")
    return tuple(sorted(found, key=lambda d: (d.priority, d.name)))


class Classifier:
    """Says which app, if any, sent an advertisement."""

    __slots__ = ("_functions", "decoders", "options")

    def __init__(
        self, options: DecodeOptions | None = None, decoders: Iterable[Decoder] | None = None
    ) -> None:
        self.options = options or DecodeOptions()
        self.decoders = tuple(decoders) if decoders is not None else load_decoders()
        self._functions = tuple(d.decode for d in self.decoders)

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.decoders)

    def classify(self, adv: Advertisement) -> Detection | None:
        """The first decoder's detection, or None for "not an app"."""
        options = self.options
        for decode in self._functions:
            detection = decode(adv, options)
            if detection is not None:
                return detection
        return None

    def classify_bytes(self, data: bytes) -> Detection | None:
        """Parse raw advertising data (plus scan response) and classify it."""
        return self.classify(parse(data))
