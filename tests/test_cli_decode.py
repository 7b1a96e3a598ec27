"""`checkpoint decode` and `checkpoint exposure ids`: outputs, JSON shape and one-line errors."""

from __future__ import annotations

import json

import pytest

from appliance.protocols import frames
from appliance.status import status_file_name
from tests.conftest import run_checkpoint

BLUEZONE = frames.bluezone_android(bytes.fromhex("130CEA6472130C185D8643DF")).hex()
DAILY_KEY = bytes(range(32)).hex()
TEK = bytes(range(16)).hex()


def test_decode_prints_one_line_per_report(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("decode", BLUEZONE, frames.apple_nearby_info().hex(), frames.gaen(bytes(16)).hex())
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["bluezone", "ID", "130CEA6472130C185D8643DF"]
    assert "not an app" in lines[1] and "Nearby Info" in lines[1]
    assert lines[2].startswith("gaen")


def test_decode_accepts_spaces_and_colons(cli) -> None:  # type: ignore[no-untyped-def]
    spaced = " ".join(BLUEZONE[i : i + 2] for i in range(0, len(BLUEZONE), 2))
    coloned = spaced.replace(" ", ":")
    result = cli("decode", "--json", spaced, coloned)
    ids = [json.loads(line)["id"] for line in result.out.splitlines()]
    assert ids == ["130CEA6472130C185D8643DF"] * 2


def test_decode_json_fields(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "decode",
        "--json",
        BLUEZONE,
        frames.bluezone_ios_background().hex(),
        frames.microsoft_cdp().hex(),
    )
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert [(r["protocol"], r["id"], r["needs_gatt"]) for r in rows] == [
        ("bluezone", "130CEA6472130C185D8643DF", False),
        ("bluezone-ios", None, True),
        (None, None, False),
    ]
    assert rows[2]["other"].startswith("Microsoft CDP")


def test_decode_flags_malformed_reports(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("decode", "--json", "0303564E1FFF")
    row = json.loads(result.out)
    assert row["protocol"] == "bluezone" and row["malformed"] is True


@pytest.mark.parametrize("bad", ["zz", "030", "", "03 03 5G 4E"])
def test_decode_bad_hex_is_one_line_exit_2_and_prints_nothing(cli, bad: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("decode", BLUEZONE, bad)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1 and "argument 2" in result.err


def test_decode_reads_stdin_lines() -> None:
    text = f"# a comment\n{BLUEZONE}\n\n{frames.gaen(bytes(16)).hex()}\n"
    proc = run_checkpoint(["decode", "--json", "-"], input=text)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["protocol"] for line in proc.stdout.splitlines()] == [
        "bluezone",
        "gaen",
    ]


def test_exposure_ids_bluezone_text(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "exposure",
        "ids",
        "--protocol",
        "bluezone",
        "--daily-key",
        DAILY_KEY,
        "--date",
        "2020-08-20",
    )
    lines = result.out.splitlines()
    assert result.code == 0 and len(lines) == 96
    assert lines[0].split() == ["2020-08-20T00:00:00Z", "0", "130CEA6472130C185D8643DF"]
    assert lines[95].split() == ["2020-08-20T23:45:00Z", "95", "0AE9AB99C50104E835045ABF"]


def test_exposure_ids_bluezone_json_hashes_forward(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "exposure", "ids", "--protocol", "bluezone", "--daily-key", DAILY_KEY,
        "--date", "2020-08-20", "--days", "2", "--json",
    )  # fmt: skip
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert len(rows) == 192
    assert rows[96] == {
        "date": "2020-08-21",
        "slot": 0,
        "start": "2020-08-21T00:00:00Z",
        "id": "970E23C0E19DE93F8CC4057B",
    }


def test_exposure_ids_gaen(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "exposure", "ids", "--protocol", "gaen", "--tek", TEK, "--interval", "2650032", "--json"
    )
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert len(rows) == 144
    assert rows[0] == {
        "interval": 2650032,
        "start": "2020-05-21T00:00:00Z",
        "rpi": "4B0CF5C1F7DF9C034746E5D13E84DE55",
    }
    assert rows[1]["rpi"] == "8BB413946AADB7085C53E636B24F2892"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--protocol", "bluezone", "--daily-key", DAILY_KEY[:-2], "--date", "2020-08-20"],
            "32 bytes",
        ),
        (["--protocol", "bluezone", "--daily-key", "xyz", "--date", "2020-08-20"], "--daily-key"),
        (
            ["--protocol", "bluezone", "--daily-key", DAILY_KEY, "--date", "2020-02-30"],
            "not a valid date",
        ),
        (
            ["--protocol", "bluezone", "--daily-key", DAILY_KEY, "--date", "20/08/2020"],
            "like 2020-08-20",
        ),
        (
            [
                "--protocol",
                "bluezone",
                "--daily-key",
                DAILY_KEY,
                "--date",
                "2020-08-20",
                "--days",
                "0",
            ],
            "--days",
        ),
        (["--protocol", "bluezone", "--date", "2020-08-20"], "needs --daily-key"),
        (["--protocol", "gaen", "--tek", TEK + "00", "--interval", "1"], "16 bytes"),
        (["--protocol", "gaen", "--tek", TEK, "--interval", "-5"], "--interval"),
        (["--protocol", "gaen", "--tek", TEK], "needs --tek HEX and --interval"),
    ],
)
def test_exposure_ids_bad_input_is_one_line_exit_2(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("exposure", "ids", *args)
    assert result.code == 2
    assert result.out == ""
    assert message in result.err and result.err.count("\n") == 1


def test_console_script_runs_as_a_process() -> None:
    proc = run_checkpoint(["decode", BLUEZONE])
    assert proc.returncode == 0 and "130CEA6472130C185D8643DF" in proc.stdout


def test_config_given_before_the_exposure_action_is_not_ignored(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("exposure", "--config", "/nonexistent.toml", "check", "--protocol", "gaen",
                 "--tek", TEK, "--interval", "1")  # fmt: skip
    assert result.code == 2  # argparse: --config belongs after the action
    result = cli("exposure", "check", "--config", "/nonexistent.toml", "--protocol", "gaen",
                 "--tek", TEK, "--interval", "1")  # fmt: skip
    assert result.code == 2 and "configuration file not found" in result.err


def test_dates_at_the_end_of_the_calendar_are_a_one_line_error(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("exposure", "ids", "--protocol", "bluezone", "--daily-key", DAILY_KEY,
                 "--date", "9999-12-31")  # fmt: skip
    assert result.code == 2 and result.out == "" and "calendar" in result.err


@pytest.mark.parametrize("speed", ["nan", "0", "-1", "inf"])
def test_run_refuses_a_speed_that_is_not_a_positive_number(cli, speed: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("run", "--simulate", "--speed", speed)
    assert result.code == 2 and "--speed" in result.err


@pytest.mark.parametrize(
    "content", ["null", "[1]", '{"updated_at": "x"}', '{"updated_at": 1, "health": [1]}', "{"]
)
def test_status_and_console_survive_a_damaged_status_file(  # type: ignore[no-untyped-def]
    cli, tmp_path, monkeypatch, content: str
) -> None:
    (tmp_path / status_file_name(tmp_path / "v.db")).write_text(content)
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "v.db"}"\n')
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    status = cli("status", "--config", str(config))
    console = cli("console", "--once", "--config", str(config))
    assert status.code == 3 and "no readable status" in status.out
    assert console.code == 0 and "DỊCH VỤ KHÔNG CHẠY" in console.out
