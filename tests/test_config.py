"""Configuration: defaults, relative paths, one clear line per bad key or path (naming it, from
every command), and a province key of exactly 32 bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.config import Config, load_config, load_secret
from appliance.errors import ConfigError
from tests.conftest import run_checkpoint


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


# -- what no configuration may hold: nesting, NUL and other things no path can hold ---------


UNIT = '[storage]\ndatabase = "visits.db"\n[ble]\nsource = "none"\n[gpio]\nenabled = false\n'
EXPORT = ("export", "--from", "2026-01-01", "--to", "2026-01-02", "-o", "out.csv")
CONFIG_COMMANDS = (("decode", "0303564E"), ("status",), ("doctor",), ("run",), ("sync",), EXPORT)


def one_line_refusal(config: Path, *command: str) -> str:
    """``command`` run as a process on ``config``: exit 2, one line, no traceback."""
    done = run_checkpoint([*command, "--config", str(config)], cwd=config.parent, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, (command, done.returncode, done.stderr[-500:])
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr.strip()


def test_a_configuration_nested_50000_deep_is_one_line_for_every_command(tmp_path: Path) -> None:
    """tomllib recurses once per level: the RecursionError was a traceback from every command."""
    config = write(tmp_path, "[checkpoint]\nid = " + "[" * 50_000 + "]" * 50_000 + "\n")
    for command in CONFIG_COMMANDS:
        line = one_line_refusal(config, *command)
        assert line == f"checkpoint: {config}: the file is nested too deeply to be a configuration"


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        (
            "[storage]\ndatabase",
            "visits\\u0000.db",
            "[storage] database holds a control character, U+0000 (NUL), which a path cannot hold",
        ),
        (
            "[privacy]\nkey_file",
            "province\\n.key",
            "[privacy] key_file holds a control character, U+000A",
        ),
        ("[storage]\nruntime_dir", "", "[storage] runtime_dir is empty"),
        (
            "[beacon]\nkey_file",
            "b" * 256,
            "[beacon] key_file has a name of 256 bytes; a name holds at most 255",
        ),
        ("[sync]\ntoken_file", "/t" * 2100, "[sync] token_file is 4200 bytes long"),
        (
            "[checkpoint]\nagency",
            "Sở Y tế\\u0000",
            "[checkpoint] agency holds a control character, U+0000 (NUL)",
        ),
    ],
)
def test_what_no_path_can_hold_is_refused_when_the_file_is_read_naming_the_key(
    tmp_path: Path, setting: str, value: str, says: str
) -> None:
    body = f'{setting} = "{value}"\n'
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, body))
    assert str(refused.value).startswith(says), str(refused.value)


def test_a_nul_in_the_database_path_is_one_line_before_anything_opens_it(tmp_path: Path) -> None:
    """It used to pass the configuration and end in `ValueError: embedded null byte`."""
    config = write(tmp_path, UNIT.replace('"visits.db"', '"visits\\u0000.db"'))
    for command in (("run",), ("doctor",), ("status",)):
        line = one_line_refusal(config, *command)
        assert "[storage] database holds a control character, U+0000 (NUL)" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.toml"]


def test_a_bad_value_is_quoted_short_in_its_one_line(tmp_path: Path) -> None:
    deep = "[" * 300 + "]" * 300
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, f"[checkpoint]\nid = {deep}\n"))
    assert len(str(refused.value)) < 120 and str(refused.value).startswith(
        "[checkpoint] id must be a string, got [[[["
    )


# -- the province key: exactly 32 bytes ----------------------------------------------------------


def unit_with_key(tmp_path: Path, key: bytes) -> Path:
    (tmp_path / "province.key").write_bytes(key)
    (tmp_path / "province.key").chmod(0o600)
    return write(tmp_path, UNIT + '[privacy]\nkey_file = "province.key"\n')


@pytest.mark.parametrize("key", [bytes(range(32)) + b"\n", bytes(range(64)), bytes(31)])
def test_a_province_key_of_any_length_but_32_is_refused_naming_the_file_and_its_length(
    tmp_path: Path, key: bytes
) -> None:
    """Longer keys were taken whole: other tokens than the collector's, never matching."""
    config = load_config(unit_with_key(tmp_path, key))
    with pytest.raises(ConfigError) as refused:
        load_secret(config)
    message = str(refused.value)
    assert message.startswith(
        f"province key {tmp_path / 'province.key'} is {len(key)} bytes; it must be exactly 32"
    )
    assert ("a newline" in message) == key.endswith(b"\n")
    assert len(message.splitlines()) == 1


def test_the_daemon_refuses_a_key_with_a_newline_in_one_line_before_it_starts(
    tmp_path: Path,
) -> None:
    config = unit_with_key(tmp_path, bytes(range(32)) + b"\n")
    line = one_line_refusal(config, "run")
    assert "is 33 bytes; it must be exactly 32 (the 32 bytes and a newline" in line
    assert not (tmp_path / "visits.db").exists()  # nothing recorded with the wrong tokens


def test_the_doctor_fails_a_key_with_a_newline(tmp_path: Path) -> None:
    config = unit_with_key(tmp_path, bytes(range(32)) + b"\n")
    done = run_checkpoint(["doctor", "--config", str(config)], timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = [line for line in done.stdout.splitlines() if "province key" in line]
    assert line.startswith("FAIL  province key: province key ") and "is 33 bytes" in line
