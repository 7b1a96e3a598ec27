"""Configuration: a TOML file (docs/architecture.md §configuration) turned into frozen dataclasses.

Every key is declared once here with its default, its allowed values and why it exists; an
unknown or bad key, or a path no file can have (a NUL, a control character, too long), gives one
``ConfigError`` that names it. Relative paths are taken from the configuration file's directory,
and so are the secrets' default files (beside it). A missing default file
(``/etc/checkpoint/checkpoint.toml``) means defaults, so that laptop commands such as ``decode``
work anywhere; a missing file named explicitly is an error.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
import zoneinfo
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from appliance.core.days import DEFAULT_TIMEZONE
from appliance.core.quiet_hours import parse_quiet_hours
from appliance.core.settings import (
    control_character,
    kind_name,
    path_problem,
    rerooted,
    shown,
    typed,
)
from appliance.errors import ConfigError
from appliance.keyfile import read_province_key

TOKEN_FILE_NAME = "sync.token"  # the unit's bearer token, beside the configuration
CA_FILE_NAME = "province-ca.pem"  # the pinned province CA, beside the configuration

DEFAULT_CONFIG_PATH = Path("/etc/checkpoint/checkpoint.toml")
CONFIG_ENV = "CHECKPOINT_CONFIG"


def key(
    default: Any,
    why: str,
    *,
    choices: tuple[Any, ...] = (),
    low: float | None = None,
    high: float | None = None,
    path: bool = False,
    beside: str | None = None,
) -> Any:
    """Declare one configuration key; ``beside`` names a file whose default is beside the
    configuration file (``default`` is that file beside the default configuration)."""
    meta = {"why": why, "choices": choices, "low": low, "high": high, "path": path,
            "beside": beside}  # fmt: skip
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class CheckpointSection:
    id: str = key("UNENROLLED", "the door unit's ID, assigned at enrollment")
    agency: str = key("", "the agency shown on the console and in exports")
    door: str = key("", "which door of the agency this unit watches")
    timezone: str = key(DEFAULT_TIMEZONE, "local time for the console and exports")
    language: str = key("vi", "what receptionists and officials read", choices=("vi", "en"))


@dataclass(frozen=True, slots=True)
class StorageSection:
    database: Path = key(Path("/var/lib/checkpoint/checkpoint.db"), "the visit log", path=True)
    retention_days: int = key(
        21, "the incubation-based window health authorities asked for", low=1, high=3650
    )
    runtime_dir: Path | None = key(
        None,
        "where the daemon's status file lives (in memory: it changes every second); default:"
        " $RUNTIME_DIRECTORY, else beside the database (whoever runs it)",
        path=True,
    )


@dataclass(frozen=True, slots=True)
class PrivacySection:
    key_file: Path = key(
        DEFAULT_CONFIG_PATH.parent / "province.key",
        "32 random bytes shared with the collector for visit tokens (default: province.key"
        " beside this file)",
        path=True,
        beside="province.key",
    )


@dataclass(frozen=True, slots=True)
class BleSection:
    source: str = key(
        "bluez", "where advertisements come from", choices=("bluez", "simulate", "none")
    )
    adapter: str = key("hci0", "BlueZ adapter name or address")
    scanning: str = key(
        "active", "passive needs bluetoothd --experimental", choices=("active", "passive")
    )
    gatt_reads: bool = key(True, "read iPhones' Bluezone IDs over GATT (a brief connection)")
    gatt_min_interval_s: float = key(
        5.0,
        "seconds between two GATT connections: they hurt Wi-Fi on the Pi's radio",
        low=1.0,
        high=3600.0,
    )


@dataclass(frozen=True, slots=True)
class BeaconSection:
    key_file: Path = key(
        DEFAULT_CONFIG_PATH.parent / "beacon.key",
        "the checkpoint's own Bluezone base key, made at enrollment (default: beacon.key beside"
        " this file)",
        path=True,
        beside="beacon.key",
    )
    format: str = key(
        "bluezone", "Bluezone's Android format, or a plain iBeacon", choices=("bluezone", "ibeacon")
    )
    ibeacon_uuid: str = key("C7AFEF7B-1788-4F4A-A87D-691D53BF21C4", "iBeacon proximity UUID")
    ibeacon_major: int = key(20, "iBeacon major", low=0, high=65535)
    ibeacon_minor: int = key(20, "iBeacon minor", low=0, high=65535)


@dataclass(frozen=True, slots=True)
class GpioSection:
    enabled: bool = key(True, "false: no pins at all (laptops, replay, tests)")
    green_pin: int = key(17, "green LED (BCM numbering), through a 330 Ω resistor", low=0, high=27)
    red_pin: int = key(27, "red LED (BCM numbering), through a 330 Ω resistor", low=0, high=27)
    led: str = key(
        "separate",
        "two LEDs, or one common-cathode RGB LED on red/green/blue pins",
        choices=("separate", "rgb"),
    )
    blue_pin: int = key(18, "the RGB LED's blue leg (led = rgb)", low=0, high=27)
    buzzer_pin: int = key(22, "buzzer (BCM numbering)", low=0, high=27)
    buzzer: str = key(
        "active", "active buzzer (on/off) or passive one (tones)", choices=("active", "tonal")
    )
    sensor: str = key(
        "pir",
        "presence sensor: PIR, one break-beam, two beams (direction)",
        choices=("pir", "beam", "two-beams", "none"),
    )
    sensor_pin: int = key(23, "PIR output, or the outer beam's receiver", low=0, high=27)
    inner_beam_pin: int = key(24, "the inner beam's receiver (two-beams)", low=0, high=27)
    button_pin: int | None = key(25, "receptionist button to ground", low=0, high=27)
    long_press_s: float = key(
        2.0, "hold this long: a visitor registered on paper", low=0.5, high=10.0
    )
    mute_minutes: float = key(
        30.0, "a short press silences the buzzer this long", low=1.0, high=1440.0
    )
    quiet_hours: str = key("", "local HH:MM-HH:MM when the buzzer stays silent, e.g. 12:00-13:30")


@dataclass(frozen=True, slots=True)
class SyncSection:
    url: str | None = key(None, "the collector's base URL; `checkpoint enroll` fills it in")
    token_file: Path | None = key(
        None, "the unit's bearer token (default: sync.token beside this file)", path=True
    )
    ca_file: Path | None = key(
        None,
        "the pinned province CA (default: province-ca.pem beside this file, if present;"
        " otherwise the system's CAs)",
        path=True,
    )
    interval_s: float = key(60.0, "how often the outbox is sent", low=5.0, high=86400.0)
    batch_size: int = key(500, "records per request", low=1, high=5000)
    timeout_s: float = key(15.0, "how long one request may take", low=1.0, high=300.0)
    heartbeat_s: float = key(300.0, "how often the unit reports its health", low=10.0, high=86400.0)
    max_backoff_s: float = key(
        900.0, "the longest wait between retries when the collector fails", low=10.0, high=86400.0
    )

    def token_path(self, base: Path) -> Path:
        return self.token_file if self.token_file is not None else base / TOKEN_FILE_NAME

    def ca_path(self, base: Path) -> Path | None:
        if self.ca_file is not None:
            return self.ca_file
        default = base / CA_FILE_NAME
        return default if default.exists() else None


@dataclass(frozen=True, slots=True)
class ProtocolsSection:
    bluezone_ios_overflow_byte: int = key(
        0,
        "byte of Apple's overflow bitmap holding Bluezone's bit (found empirically)",
        low=0,
        high=15,
    )
    bluezone_ios_overflow_mask: int = key(
        0x08,
        "mask of Bluezone's bit in that byte (test with a mask: other apps set others)",
        low=1,
        high=255,
    )


@dataclass(frozen=True, slots=True)
class Config:
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    storage: StorageSection = field(default_factory=StorageSection)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    ble: BleSection = field(default_factory=BleSection)
    gpio: GpioSection = field(default_factory=GpioSection)
    beacon: BeaconSection | None = None  # an absent [beacon] section means no beacon
    sync: SyncSection | None = None  # an absent [sync] section means sync is off
    protocols: ProtocolsSection = field(default_factory=ProtocolsSection)
    path: Path | None = None  # where it was read from, if anywhere

    @property
    def directory(self) -> Path:
        """Where the configuration lives: secrets written by `checkpoint enroll` go here."""
        return self.path.resolve().parent if self.path is not None else DEFAULT_CONFIG_PATH.parent


SECTIONS: dict[str, type[Any]] = {
    "checkpoint": CheckpointSection,
    "storage": StorageSection,
    "privacy": PrivacySection,
    "ble": BleSection,
    "gpio": GpioSection,
    "beacon": BeaconSection,
    "sync": SyncSection,
    "protocols": ProtocolsSection,
}


def _convert(
    section: str, name: str, kind: Any, meta: Any, value: Any, base: Path, root: Path | None
) -> Any:
    where = f"[{section}] {name}"
    optional = False
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional, kind = True, args[0]
    if value is None and optional:
        return None
    ok, value = typed(kind, value)
    if not ok:
        raise ConfigError(f"{where} must be {kind_name(kind)}, got {shown(value)}")
    if meta["choices"] and value not in meta["choices"]:
        allowed = ", ".join(map(str, meta["choices"]))
        raise ConfigError(f"{where} must be one of {allowed}, got {shown(value)}")
    if meta["low"] is not None and value < meta["low"]:
        raise ConfigError(f"{where} must be at least {meta['low']}, got {value!r}")
    if meta["high"] is not None and value > meta["high"]:
        raise ConfigError(f"{where} must be at most {meta['high']}, got {value!r}")
    if kind is Path:
        problem = path_problem(value)
        if problem:
            raise ConfigError(f"{where} {problem}")
        return _placed(Path(value).expanduser(), base, root)
    if kind is str and control_character(value):
        raise ConfigError(f"{where} holds a control character, {control_character(value)}")
    return value


def _placed(path: Path, base: Path, root: Path | None) -> Path:
    """A relative path is the configuration's directory's; an absolute one is the unit's, found
    under ``root`` when its file system is mounted there."""
    if not path.is_absolute():
        return base / path
    return rerooted(root, path) if root is not None else path


def _build_section(name: str, cls: type[Any], table: Any, base: Path, root: Path | None) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for item, value in table.items():
        if item not in known:
            raise ConfigError(f"unknown key [{name}] {item}; known keys: {', '.join(known)}")
        values[item] = _convert(name, item, hints[item], known[item].metadata, value, base, root)
    for item, f in known.items():  # defaults that are paths: beside this file, or under root
        if item in values or not isinstance(f.default, Path):
            continue
        beside = f.metadata["beside"]
        values[item] = base / beside if beside else _placed(f.default, base, root)
    return cls(**values)


OPTIONAL_SECTIONS = ("beacon", "sync")  # absent: no beacon, no sync


def parse_config(
    data: dict[str, Any], base: Path, path: Path | None = None, *, root: Path | None = None
) -> Config:
    """Build a Config from parsed TOML; ``base`` resolves relative paths, and ``root`` is where
    the unit's ``/`` is (absolute paths are found under it), if not at ``/``."""
    for name in data:
        if name not in SECTIONS:
            raise ConfigError(f"unknown section [{name}]; known: {', '.join(SECTIONS)}")
    sections = {
        name: _build_section(name, cls, data.get(name, {}), base, root)
        for name, cls in SECTIONS.items()
        if name in data or name not in OPTIONAL_SECTIONS
    }
    config = Config(**sections, path=path)
    try:
        parse_quiet_hours(config.gpio.quiet_hours)
    except ValueError:
        raise ConfigError(
            f"[gpio] quiet_hours must look like 12:00-13:30, got {config.gpio.quiet_hours!r}"
        ) from None
    try:
        zoneinfo.ZoneInfo(config.checkpoint.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"[checkpoint] timezone: unknown time zone {config.checkpoint.timezone!r}"
        ) from None
    return config


def config_path(
    explicit: str | os.PathLike[str] | None, root: Path | None = None
) -> tuple[Path, bool]:
    """The file to read and whether the person asked for it explicitly; the default one is
    the unit's under ``root``, when given."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env), True
    return (rerooted(root, DEFAULT_CONFIG_PATH) if root else DEFAULT_CONFIG_PATH), False


def load_config(
    explicit: str | os.PathLike[str] | None = None, *, root: Path | None = None
) -> Config:
    """Read the configuration (see module docstring for which file); ``root`` as for
    ``parse_config``."""
    path, required = config_path(explicit, root)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"configuration file not found: {path}") from None
        return Config() if root is None else parse_config({}, path.parent, root=root)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in $CHECKPOINT_CONFIG or --config
        reason = exc.strerror if isinstance(exc, OSError) else "not a path"
        raise ConfigError(f"cannot read configuration {path}: {reason}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        raise ConfigError(f"{path}: the file is nested too deeply to be a configuration") from None
    return parse_config(data, path.resolve().parent, path, root=root)


def with_section(config: Config, **sections: Any) -> Config:
    """A copy of ``config`` with whole sections replaced (for commands that force settings)."""
    return replace(config, **sections)


def documented_keys() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, why) for every key, for docs and their test."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            default = f.default if f.default is not MISSING else None
            rows.append((section, f.name, default, f.metadata["why"]))
    return rows


def load_secret(config: Config, *, create: bool = False) -> bytes:
    """The province secret for visit tokens, exactly 32 bytes; ``create`` makes one
    (simulation only)."""
    return read_province_key(config.privacy.key_file, create=create)
