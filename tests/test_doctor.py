"""`checkpoint doctor` on real files with real modes, a real SQLite file, a fake /dev with GPIO
chips, and the real collector over TLS. Access is judged for the daemon's user: as root that is
the state directory's owner, so these tests hand it to `nobody` to stand for `checkpoint`."""

# ruff: noqa: F811

from __future__ import annotations

import grp
import json
import os
import pwd
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

from appliance.config import GpioSection, load_config
from appliance.core.doorway import Entry
from appliance.doctor import Check, collect_checks, daemon_account, gpio_checks, run_doctor
from appliance.store import VisitLog
from tests.collector_harness import Collector, Tls, collector, database_url, tls  # noqa: F401
from tests.conftest import Result
from tests.test_sync import enrolled_device

ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not ROOT, reason="needs root to give files to another user")


def write_unit(tmp_path: Path, *, gpio: str = "enabled = false", key_mode: int = 0o600) -> Path:
    """A unit with its secrets in etc/ and its visit log in a 2770 state directory."""
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir()
    state.chmod(0o2770)
    key = etc / "province.key"
    key.write_bytes(bytes(range(32)))
    key.chmod(key_mode)
    config = etc / "checkpoint.toml"
    config.write_text(
        f'[storage]\ndatabase = "{state}/visits.db"\n[privacy]\nkey_file = "province.key"\n'
        f'[ble]\nsource = "none"\n[gpio]\n{gpio}\n',
        encoding="utf-8",
    )
    config.chmod(0o640)
    return config


def make_visit_log(path: Path, entries: int = 300) -> None:
    log = VisitLog(path)
    for i in range(entries):
        log.record(Entry(f"u{i}", "app", 1000.0 + i, "bluezone", ((f"{i:032x}", 0.0),)))
    log.close()


def corrupt(path: Path) -> None:
    """Overwrite part of a B-tree page, as a bad SD card sector would."""
    data = bytearray(path.read_bytes())
    data[3 * 4096 : 3 * 4096 + 200] = b"\x55" * 200
    path.write_bytes(bytes(data))


def hand_to_daemon_user(state: Path) -> str:
    """As root: the state directory belongs to another user, who becomes the daemon's user."""
    nobody = pwd.getpwnam("nobody")
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    return "nobody"


def checks_of(config: Path, **where: Path) -> dict[str, Check]:
    return {c.name: c for c in collect_checks(load_config(config), **where)}


def doctor_json(cli, config: Path) -> tuple[Result, list[dict[str, object]]]:  # type: ignore[no-untyped-def]
    result = cli("doctor", "--config", str(config), "--json")
    return result, [json.loads(line) for line in result.out.splitlines()]


# -- exit codes and --json -------------------------------------------------------------------


def test_a_well_installed_unit_exits_0_and_json_is_one_object_per_check(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_unit(tmp_path)
    make_visit_log(tmp_path / "state" / "visits.db")
    result, objects = doctor_json(cli, config)
    assert result.code == 0, result.out
    *checks, summary = objects
    assert all(o["type"] == "check" and set(o) == {"type", "status", "name", "detail", "advice"}
               for o in checks)  # fmt: skip
    status = {o["name"]: o["status"] for o in checks}
    assert status["province key"] == "PASS" and status["visit log"] == "PASS"
    assert status["state directory"] == "PASS" and status["configuration"] == "PASS"
    assert status["GPIO"] == "PASS"  # off, and [ble] source is not bluez: not a door unit
    assert "FAIL" not in status.values()
    assert summary == {"type": "summary", "status": summary["status"], "checks": len(checks),
                       "warnings": list(status.values()).count("WARN"), "failed": 0}  # fmt: skip


def test_a_corrupt_visit_log_fails_with_advice_and_exit_1(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_unit(tmp_path)
    make_visit_log(tmp_path / "state" / "visits.db")
    corrupt(tmp_path / "state" / "visits.db")
    result, objects = doctor_json(cli, config)
    assert result.code == 1
    log = next(o for o in objects if o["name"] == "visit log")
    assert log["status"] == "FAIL" and "integrity check" in str(log["detail"])
    assert "\n" not in str(log["detail"]) and "restore a backup" in str(log["advice"])
    assert objects[-1]["status"] == "FAIL" and objects[-1]["failed"] == 1
    text = cli("doctor", "--config", str(config))
    assert text.code == 1 and text.out.splitlines()[-1].endswith("1 failed")
    assert any(line.startswith("FAIL  visit log: ") for line in text.out.splitlines())


def test_every_failure_carries_advice(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_unit(tmp_path, gpio="enabled = true\nbuzzer_pin = 17", key_mode=0o666)
    config.chmod(0o666)
    (tmp_path / "state").rmdir()
    (tmp_path / "state").write_text("not a directory")
    result, objects = doctor_json(cli, config)
    failures = [o for o in objects if o.get("status") == "FAIL" and o["type"] == "check"]
    assert result.code == 1 and len(failures) >= 4
    assert all(o["advice"] for o in failures), failures


# -- secrets, the configuration, the state directory ------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "says"),
    [
        (0o600, "PASS", "mode 0600"),
        (0o400, "PASS", "mode 0400"),
        (0o640, "PASS", "readable by group"),
        (0o644, "FAIL", "other users"),
        (0o660, "FAIL", "other users"),
        (0o604, "FAIL", "other users"),
    ],
)
def test_the_province_key_must_be_0600_or_0640(
    tmp_path: Path, mode: int, status: str, says: str
) -> None:
    config = write_unit(tmp_path, key_mode=mode)
    check = checks_of(config)["province key"]
    assert (check.status, says in check.detail) == (status, True), check
    if status == "FAIL":
        assert check.advice == f"chmod 600 {tmp_path / 'etc' / 'province.key'}"


def test_the_beacon_key_is_a_secret_too_and_must_exist_when_there_is_a_beacon(
    tmp_path: Path,
) -> None:
    config = write_unit(tmp_path)
    assert "beacon key" not in checks_of(config)  # no [beacon]: no beacon, no key
    config.write_text(config.read_text() + '[beacon]\nkey_file = "beacon.key"\n')
    missing = checks_of(config)["beacon key"]
    assert missing.status == "FAIL" and "--new-key" in str(missing.advice)
    key = tmp_path / "etc" / "beacon.key"
    key.write_text('{"base_key": "' + "00" * 33 + '", "base_day": "2026-11-28"}')
    key.chmod(0o600)
    long = checks_of(config)["beacon key"]  # a base key is 32 bytes: it was passed as present
    assert (
        long.status == "FAIL" and "holds a 33-byte base key; it must be exactly 32" in long.line()
    )
    key.write_text('{"base_key": "' + "00" * 32 + '", "base_day": "2026-11-28"}')
    key.chmod(0o644)
    loose = checks_of(config)["beacon key"]
    assert loose.status == "FAIL" and loose.advice == f"chmod 600 {key}"
    key.chmod(0o600)
    assert checks_of(config)["beacon key"].status == "PASS"


@root_only
def test_the_daemons_user_must_be_able_to_read_the_key(tmp_path: Path) -> None:
    config = write_unit(tmp_path)
    user = hand_to_daemon_user(tmp_path / "state")
    key = tmp_path / "etc" / "province.key"
    check = checks_of(config)["province key"]
    assert check.status == "FAIL" and f"not readable by {user}" in check.detail
    assert check.advice is not None and check.advice.startswith(f"chown {user}:")
    nobody = pwd.getpwnam(user)
    os.chown(key, nobody.pw_uid, nobody.pw_gid)
    assert checks_of(config)["province key"].status == "PASS"


def test_the_configuration_must_not_be_writable_by_others(tmp_path: Path) -> None:
    config = write_unit(tmp_path)
    config.chmod(0o646)
    check = checks_of(config)["configuration"]
    assert check.status == "FAIL" and check.advice == f"chmod o-w {config}"
    config.chmod(0o664)
    assert checks_of(config)["configuration"].status == "WARN"
    config.chmod(0o644)  # no secret in it: readable by all is fine
    assert checks_of(config)["configuration"].status == "PASS"


def test_the_state_directory_should_be_setgid_and_must_be_writable(tmp_path: Path) -> None:
    config = write_unit(tmp_path)
    state = tmp_path / "state"
    assert checks_of(config)["state directory"].status == "PASS"
    state.chmod(0o770)
    check = checks_of(config)["state directory"]
    assert check.status == "WARN" and "not setgid" in check.detail
    assert check.advice == f"chmod 2770 {state}"
    state.chmod(0o2550)
    if ROOT:
        hand_to_daemon_user(state)
    check = checks_of(config)["state directory"]
    assert check.status == "FAIL" and "not writable" in check.detail
    assert check.advice is not None and "chmod 2770" in check.advice


@root_only
def test_a_visit_log_left_owned_by_root_fails_for_the_daemons_user(tmp_path: Path) -> None:
    config = write_unit(tmp_path)
    make_visit_log(tmp_path / "state" / "visits.db", entries=3)  # as root, by a root command
    hand_to_daemon_user(tmp_path / "state")
    check = checks_of(config)["visit log"]
    assert check.status == "FAIL" and "not writable by nobody" in check.detail
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    assert check.advice == f"chown nobody:{group} {tmp_path / 'state' / 'visits.db'}*"


def test_the_daemon_account_is_the_state_directory_owner_only_for_root(tmp_path: Path) -> None:
    account = daemon_account(tmp_path)
    if ROOT:
        assert account.name == "root"
        hand_to_daemon_user(tmp_path)
        assert daemon_account(tmp_path).name == "nobody"
    else:
        assert account.uid == os.geteuid()


# -- GPIO --------------------------------------------------------------------------------------


def fake_dev(tmp_path: Path, *chips: str, mode: int = 0o660) -> Path:
    """A /dev with FIFOs standing for the GPIO character devices."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for chip in chips:
        os.mkfifo(dev / chip)
        (dev / chip).chmod(mode)
    return dev


def fake_sys(tmp_path: Path, chip: str, lines: int) -> Path:
    """The legacy sysfs class directory of a chip: its line count and its character device."""
    entry = tmp_path / "sys" / "class" / "gpio" / "gpiochip512"
    (entry / "device" / chip).mkdir(parents=True)
    (entry / "ngpio").write_text(f"{lines}\n")
    return tmp_path / "sys"


def gpio_of(config: Path, dev: Path, sys: Path | None = None, **pins: object) -> dict[str, Check]:
    loaded = load_config(config)
    if pins:
        loaded = replace(loaded, gpio=replace(loaded.gpio, **pins))
    account = daemon_account(loaded.storage.database.parent)
    found = gpio_checks(loaded, account, dev, sys or dev.parent / "no-sys")
    return {c.name: c for c in found}


def test_gpio_chip_present_and_usable_with_its_line_count(tmp_path: Path) -> None:
    config = write_unit(tmp_path, gpio="enabled = true")
    checks = gpio_of(config, fake_dev(tmp_path, "gpiochip0"), fake_sys(tmp_path, "gpiochip0", 54))
    assert checks["GPIO chip"].status == "PASS", checks["GPIO chip"]
    assert "gpiochip0" in checks["GPIO chip"].detail and "54 lines" in checks["GPIO chip"].detail
    assert checks["GPIO pins"].status == "PASS" and "buzzer GPIO22" in checks["GPIO pins"].detail


def test_gpio_prefers_the_pi5_chip_and_skips_an_unknown_line_count(tmp_path: Path) -> None:
    config = write_unit(tmp_path, gpio="enabled = true")
    checks = gpio_of(config, fake_dev(tmp_path, "gpiochip0", "gpiochip4"))
    assert checks["GPIO chip"].status == "PASS"
    assert "gpiochip4" in checks["GPIO chip"].detail
    assert "line count unknown" in checks["GPIO chip"].detail


def test_gpio_chip_too_small_for_a_pin_fails(tmp_path: Path) -> None:
    config = write_unit(tmp_path, gpio="enabled = true")
    checks = gpio_of(config, fake_dev(tmp_path, "gpiochip0"), fake_sys(tmp_path, "gpiochip0", 20))
    assert checks["GPIO chip"].status == "FAIL" and "GPIO27" in checks["GPIO chip"].detail


def test_gpio_chip_missing_or_unusable_fails_with_advice(tmp_path: Path) -> None:
    config = write_unit(tmp_path, gpio="enabled = true")
    missing = gpio_of(config, fake_dev(tmp_path))
    assert missing["GPIO chip"].status == "FAIL" and "gpiochip0" in missing["GPIO chip"].detail
    (tmp_path / "dev").rmdir()
    if ROOT:
        hand_to_daemon_user(tmp_path / "state")
    locked = gpio_of(config, fake_dev(tmp_path, "gpiochip0", mode=0o000))
    assert locked["GPIO chip"].status == "FAIL" and "cannot open it" in locked["GPIO chip"].detail
    assert locked["GPIO chip"].advice is not None
    assert locked["GPIO chip"].advice.startswith("usermod -aG ")


def test_gpio_pins_must_be_bcm_numbers_and_distinct(tmp_path: Path) -> None:
    config = write_unit(tmp_path, gpio='enabled = true\nbuzzer_pin = 17\nsensor = "two-beams"')
    dev = fake_dev(tmp_path, "gpiochip0")
    shared = gpio_of(config, dev)["GPIO pins"]
    assert shared.status == "FAIL" and "GPIO17: green LED and buzzer" in shared.detail
    wrong = gpio_of(config, dev, buzzer_pin=22, inner_beam_pin=40)["GPIO pins"]
    assert wrong.status == "FAIL" and "inner beam on 40" in wrong.detail
    unused = gpio_of(config, dev, buzzer_pin=22, sensor="none", inner_beam_pin=17)["GPIO pins"]
    assert unused.status == "PASS"  # the inner beam's pin is not claimed without two beams


def test_gpio_off_is_one_line_and_a_warning_only_on_a_bluez_unit(tmp_path: Path) -> None:
    config = write_unit(tmp_path)
    dev = fake_dev(tmp_path)
    assert list(gpio_of(config, dev)) == ["GPIO"]
    loaded = load_config(config)
    bluez = replace(loaded, ble=replace(loaded.ble, source="bluez"))
    (check,) = gpio_checks(bluez, daemon_account(tmp_path), dev)
    assert check.status == "WARN" and check.advice
    assert GpioSection().enabled  # the default is on: a door unit has its board


# -- the collector over TLS --------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_doctor_passes_the_real_collector_and_fails_a_wrong_ca(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    config = enrolled_device(tmp_path, collector, tls)
    lines: list[str] = []
    run_doctor(load_config(config), lines.append)
    assert any(line.startswith("PASS  collector: ") for line in lines), lines
    assert any(line.startswith("PASS  pinned CA: ") for line in lines), lines
    assert any(line.startswith("PASS  sync token: ") for line in lines), lines
    other = trustme.CA(organization_name="Not the province")
    other.cert_pem.write_to_path(str(config.parent / "province-ca.pem"))
    (config.parent / "province-ca.pem").chmod(0o644)
    lines.clear()
    assert run_doctor(load_config(config), lines.append) == 1
    failed = next(line for line in lines if line.startswith("FAIL  collector: "))
    assert "certificate" in failed.lower(), failed
