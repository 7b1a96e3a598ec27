"""The worked examples in docs/protocols.md are recomputed here from the project's own functions.

Each example is a fenced block opened with ```` ```example KIND ````, holding ``name = value``
lines: some are the example's inputs, every other line is a result. A result that differs from
what the code computes, a result missing, or one the code does not produce, fails the test, so
the document cannot drift from the derivations. The design docs must also name every command.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from appliance.cli import build_parser
from appliance.core import tokens
from appliance.protocols import bluezone_keys, gaen_keys
from appliance.protocols.adstructs import parse, parse_hex, uuid_text
from appliance.protocols.others import describe
from appliance.protocols.registry import Classifier
from collector.cli import build_parser as build_collector_parser
from tests.builders import subcommands
from tests.conftest import REPO

PROTOCOLS = (REPO / "docs" / "protocols.md").read_text(encoding="utf-8")
ARCHITECTURE = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```example (?P<kind>[a-z0-9-]+)\n(?P<body>.*?)^```$", re.M | re.S)

Pairs = list[tuple[str, str]]


def _pairs(body: str) -> Pairs:
    pairs = []
    for line in body.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition(" = ")
        assert sep, f"not a 'name = value' line: {line!r}"
        pairs.append((name.strip(), value.strip()))
    return pairs


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _spaced(data: bytes) -> str:
    return data.hex(" ").upper()


# -- what each kind of example computes -----------------------------------------------------


def bluezone_id(given: dict[str, str], pairs: Pairs) -> Pairs:
    """A phone's (or the checkpoint beacon's) Bluezone ID at a moment, step by step."""
    base_key = bytes.fromhex(given["base_key"])
    base_day = date.fromisoformat(given["base_day"])
    at = _utc(given["at"])
    days_after = (at.date() - base_day).days
    daily = bluezone_keys.daily_key(base_key, days_after)
    slot = bluezone_keys.slot_of(at)
    subkeys = [hashlib.sha256(daily + bluezone_keys.SUBKEY_SALT).digest()]
    while len(subkeys) <= slot:
        subkeys.append(hashlib.sha256(subkeys[-1]).digest())
    raw_id = bluezone_keys.id_at(base_key, base_day, at)
    # The steps shown must be the ones the code takes.
    assert raw_id == bytes(subkeys[slot][o] for o in bluezone_keys.ID_OFFSETS)
    assert raw_id == bluezone_keys.slot_id(daily, slot)
    return [
        ("day", at.date().isoformat()),
        ("days_after", str(days_after)),
        ("daily_key", daily.hex()),
        ("subkey_0", subkeys[0].hex()),
        ("slot", str(slot)),
        (f"subkey_{slot}", subkeys[slot].hex()),
        ("slot_start", _iso(bluezone_keys.slot_start(at.date(), slot))),
        ("id", raw_id.hex().upper()),
    ]


def bluezone_day(given: dict[str, str], pairs: Pairs) -> Pairs:
    """Several slots' IDs of one day: every ``slot N`` line's value is recomputed."""
    daily = bluezone_keys.daily_key(bytes.fromhex(given["base_key"]), int(given["days_after"]))
    ids = bluezone_keys.day_ids(daily)
    out = [("daily_key", daily.hex())]
    for name, _ in pairs:
        if name.startswith("slot "):
            out.append((name, ids[int(name.removeprefix("slot "))].hex().upper()))
    return out


def gaen_rpi(given: dict[str, str], pairs: Pairs) -> Pairs:
    """A TEK's RPIK, and the RPI of the interval holding a moment, and of the next one."""
    tek = bytes.fromhex(given["tek"])
    interval = gaen_keys.interval_of(_utc(given["at"]))
    key = gaen_keys.rpik(tek)
    padded = b"EN-RPI" + bytes(6) + interval.to_bytes(4, "little")
    rpi, following = gaen_keys.rpis(tek, interval, 2)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    assert encryptor.update(padded) + encryptor.finalize() == rpi
    return [
        ("rpik", key.hex()),
        ("interval", str(interval)),
        ("interval_start", _iso(gaen_keys.interval_start(interval))),
        ("padded_data", padded.hex()),
        ("rpi", rpi.hex()),
        ("rpi_next", following.hex()),
    ]


def visit_token(given: dict[str, str], pairs: Pairs) -> Pairs:
    """The visit token stored instead of an identifier, step by step."""
    secret = bytes.fromhex(given["secret"])
    raw_id = bytes.fromhex(given["raw_id"])
    seen = _utc(given["seen_at"])
    key = tokens.day_key(secret, seen.date())
    made = tokens.token(secret, given["scheme"], raw_id, seen)
    assert made == tokens.token_with_day_key(key, given["scheme"], raw_id)
    tag = given["scheme"].encode("ascii") + b":"
    return [
        ("utc_day", seen.date().isoformat()),
        ("day_key_message", (tokens.DAY_KEY_PREFIX + seen.date().isoformat().encode()).hex()),
        ("day_key", key.hex()),
        ("token_message", (tag + raw_id).hex()),
        ("token", made),
    ]


def advertisement(given: dict[str, str], pairs: Pairs) -> Pairs:
    """Advertising data split into its AD structures, parsed, and classified."""
    data = parse_hex(given["data"])
    out: Pairs = []
    i = 0
    while i < len(data):
        end = i + 1 + data[i]
        out.append(("ad", _spaced(data[i:end])))
        i = end
    adv = parse(data)
    if adv.flags is not None:
        out.append(("flags", f"0x{adv.flags:02X}"))
    out += [("uuid16", f"0x{u:04X}") for u in adv.uuid16]
    out += [("uuid128", uuid_text(u)) for u in adv.uuid128]
    out += [("manufacturer", f"0x{c:04X} {_spaced(p)}") for c, p in adv.manufacturer]
    out += [("service_data16", f"0x{u:04X} {_spaced(p)}") for u, p in adv.service_data16]
    if adv.local_name is not None:
        out.append(("local_name", adv.local_name))
    if adv.malformed:
        out.append(("malformed", "true"))
    detection = Classifier().classify(adv)
    if detection is None:
        out += [("protocol", "none"), ("other", describe(adv) or "none")]
        return out
    out += [
        ("protocol", detection.protocol),
        ("id", detection.id_hex or "none"),
        ("id_scheme", detection.id_scheme or "none"),
        ("needs_gatt", str(detection.needs_gatt).lower()),
    ]
    if detection.metadata is not None:
        out.append(("metadata", _spaced(detection.metadata)))
    return out


KINDS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, str], Pairs], Pairs]]] = {
    "bluezone-id": (("base_key", "base_day", "at"), bluezone_id),
    "bluezone-day": (("base_key", "days_after"), bluezone_day),
    "gaen-rpi": (("tek", "at"), gaen_rpi),
    "token": (("secret", "scheme", "raw_id", "seen_at"), visit_token),
    "advertisement": (("data",), advertisement),
}

EXAMPLES = [(m["kind"], _pairs(m["body"])) for m in BLOCK.finditer(PROTOCOLS)]


def test_the_protocols_doc_has_its_worked_examples() -> None:
    kinds = [kind for kind, _ in EXAMPLES]
    assert set(kinds) == set(KINDS), "every kind of example appears, and no unknown kind"
    assert len(kinds) >= 8


@pytest.mark.parametrize(
    ("kind", "pairs"), EXAMPLES, ids=[f"{k}-{n}" for n, (k, _) in enumerate(EXAMPLES)]
)
def test_worked_example_matches_the_code(kind: str, pairs: Pairs) -> None:
    inputs, compute = KINDS[kind]
    given = {name: value for name, value in pairs if name in inputs}
    assert sorted(given) == sorted(inputs), f"the example gives exactly {inputs}"
    results = [(name, value) for name, value in pairs if name not in inputs]
    assert results == compute(given, pairs)


def test_a_wrong_number_in_an_example_is_caught() -> None:
    kind, pairs = next((k, p) for k, p in EXAMPLES if k == "bluezone-id")
    inputs, compute = KINDS[kind]
    given = {name: value for name, value in pairs if name in inputs}
    wrong = [(n, "0" * len(v) if n == "id" else v) for n, v in pairs if n not in inputs]
    assert wrong != compute(given, pairs)


# -- the architecture doc names every command ------------------------------------------------


def test_every_command_is_in_the_architecture_doc() -> None:
    commands = list(subcommands(build_parser(), "checkpoint"))
    commands += list(subcommands(build_collector_parser(), "checkpoint-collector"))
    assert len(commands) >= 20
    missing = [c for c in commands if f"| `{c}" not in ARCHITECTURE]
    assert missing == []
