"""Configuration: defaults, relative paths, and one clear line per bad key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.config import Config, load_config
from appliance.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checkpoint.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_design_example_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[checkpoint]
id = "TQ-STTTT-01"
agency = "Sở Thông tin và Truyền thông"
timezone = "Asia/Ho_Chi_Minh"
language = "vi"

[storage]
database = "/var/lib/checkpoint/checkpoint.db"
retention_days = 21

[privacy]
key_file = "/etc/checkpoint/province.key"

[ble]
source = "bluez"
adapter = "hci0"
scanning = "active"

[gpio]
enabled = true

[sync]
url = "https://collector.example"
""",
    )
    config = load_config(path)
    assert config.checkpoint.agency == "Sở Thông tin và Truyền thông"
    assert config.storage.database == Path("/var/lib/checkpoint/checkpoint.db")
    assert config.sync is not None and config.sync.url == "https://collector.example"


def test_absent_sync_section_means_sync_off(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[gpio]\nenabled = false\n")).sync is None


def test_relative_paths_are_from_the_config_directory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[storage]\ndatabase = "data/visits.db"\n'))
    assert config.storage.database == tmp_path.resolve() / "data/visits.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ble]\nsorce = 'bluez'\n", "unknown key [ble] sorce"),
        ("[bluetooth]\n", "unknown section [bluetooth]"),
        ("[ble]\nscanning = 'aggressive'\n", "[ble] scanning must be one of active, passive"),
        ("[storage]\nretention_days = '21'\n", "[storage] retention_days must be an integer"),
        ("[storage]\nretention_days = 0\n", "[storage] retention_days must be at least 1"),
        ("[gpio]\nenabled = 1\n", "[gpio] enabled must be true or false"),
        ("[checkpoint]\ntimezone = 'Mars/Olympus'\n", "[checkpoint] timezone"),
        ("[checkpoint\n", ".*checkpoint.toml: Expected ']'"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, text: str, message: str) -> None:
    pattern = message if message.startswith(".*") else re.escape(message)
    with pytest.raises(ConfigError, match="^" + pattern):
        load_config(write(tmp_path, text))


def test_missing_explicit_file_is_an_error_but_missing_default_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.delenv("CHECKPOINT_CONFIG", raising=False)
    monkeypatch.setattr("appliance.config.DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    assert load_config(None) == Config()


def test_bad_config_through_the_cli_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "[protocols]\nbluezone_ios_overflow_byte = 16\n")
    result = cli("decode", "--config", str(path), "0303564E")
    assert result.code == 2
    assert result.err.strip() == (
        "checkpoint: [protocols] bluezone_ios_overflow_byte must be at most 15, got 16"
    )


def test_overflow_bit_from_config_reaches_decode(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from appliance.protocols import frames

    path = write(
        tmp_path, "[protocols]\nbluezone_ios_overflow_byte = 2\nbluezone_ios_overflow_mask = 0x10\n"
    )
    moved = frames.bluezone_ios_background(byte=2, mask=0x10).hex()
    assert cli("decode", moved).out.startswith("-")
    assert cli("decode", "--config", str(path), moved).out.startswith("bluezone-ios")


def test_the_status_file_follows_runtime_dir_before_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed unit's configuration names /run/checkpoint, so a console or `status` run from
    a login shell (no $RUNTIME_DIRECTORY) reads the file the daemon writes; with neither, it is
    beside the database, whoever asks (root included)."""
    from appliance.status import status_file_name, status_path

    plain = load_config(write(tmp_path, '[storage]\ndatabase = "db/checkpoint.db"\n'))
    name = status_file_name(tmp_path / "db" / "checkpoint.db")
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run-a"))
    assert status_path(plain) == tmp_path / "run-a" / name
    named = load_config(
        write(tmp_path, '[storage]\ndatabase = "db/checkpoint.db"\nruntime_dir = "run-b"\n')
    )
    assert status_path(named) == tmp_path / "run-b" / name
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    assert status_path(named) == tmp_path / "run-b" / name
    assert status_path(plain) == tmp_path / "db" / name
