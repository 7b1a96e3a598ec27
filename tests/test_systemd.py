"""The systemd units pass `systemd-analyze verify` with no output at all (it exits 0 on unknown
keys, so any output is a failure), and their exposure stays low; every shell script passes
shellcheck. The units name /opt/checkpoint/venv, which only an installed unit has: here that
path is pointed at this checkout's venv, so verify can check the commands exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

UNITS = sorted((REPO / "systemd").glob("checkpoint*.*"))
INSTALLED_BIN = "/opt/checkpoint/venv/bin/"
INSTALLED_LIBEXEC = "/opt/checkpoint/libexec/"
MAX_EXPOSURE = 3.5

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is missing (provisioning/system-deps.sh installs systemd)",
)


@pytest.fixture(scope="module")
def local_units(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("units")
    here = str(Path(sys.executable).parent) + "/"
    libexec = str(REPO / "provisioning" / "libexec") + "/"
    copies = []
    for unit in UNITS:
        copy = directory / unit.name
        text = unit.read_text(encoding="utf-8")
        copy.write_text(text.replace(INSTALLED_BIN, here).replace(INSTALLED_LIBEXEC, libexec))
        copies.append(copy)
    return copies


def test_there_are_units_and_they_name_the_installed_venv() -> None:
    names = {u.name for u in UNITS}
    assert {
        "checkpoint.service",
        "checkpoint-console.service",
        "checkpoint-beacon.service",
        "checkpoint-enroll.service",
        "checkpoint-maintenance.service",
        "checkpoint-maintenance.timer",
    } <= names
    for unit in UNITS:
        if unit.suffix == ".service":
            assert INSTALLED_BIN in unit.read_text(encoding="utf-8"), unit.name


def test_each_timer_starts_a_service_that_exists() -> None:
    timers = [u for u in UNITS if u.suffix == ".timer"]
    assert timers
    for timer in timers:
        assert (REPO / "systemd" / f"{timer.stem}.service").exists(), timer.name
        text = timer.read_text(encoding="utf-8")
        assert "Persistent=true" in text and "OnCalendar=" in text


def test_nothing_at_boot_waits_for_the_network() -> None:
    """DESIGN: no start-up step waits for the network. The enrollment, the only unit that
    needs the collector, is kept out of the boot transaction's ordering and retries instead."""
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8")
        assert "network-online.target" not in text, unit.name
    enroll = (REPO / "systemd" / "checkpoint-enroll.service").read_text(encoding="utf-8")
    assert "DefaultDependencies=no" in enroll
    assert "Restart=on-failure" in enroll
    assert "ConditionPathExists=|/boot/firmware/checkpoint-provision.toml" in enroll
    assert "ConditionPathExists=|/boot/checkpoint-provision.toml" in enroll


@needs_systemd
def test_systemd_analyze_verify_says_nothing(local_units: list[Path]) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, local_units)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", (
        result.stdout + result.stderr
    )


@needs_systemd
@pytest.mark.parametrize("name", [u.name for u in UNITS if u.suffix == ".service"])
def test_exposure_is_low(name: str, local_units: list[Path]) -> None:
    (unit,) = [u for u in local_units if u.name == name]
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match[1]) <= MAX_EXPOSURE, result.stdout


def test_the_daemon_unit_is_notify_with_a_watchdog_never_gives_up_and_has_no_capabilities() -> None:
    text = (REPO / "systemd" / "checkpoint.service").read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=always",
        "StartLimitIntervalSec=0",
        "CapabilityBoundingSet=\n",
        "ProtectSystem=strict",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/gpiochip0 rw",
        "WorkingDirectory=/var/lib/checkpoint",
        "StateDirectory=checkpoint",
        "User=checkpoint",
    ):
        assert line in text, line


def _starts_with_bash(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(19) == b"#!/usr/bin/env bash"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is missing")
def test_every_shell_script_passes_shellcheck() -> None:
    scripts = [
        p
        for p in REPO.rglob("*")
        if p.is_file()
        and ".venv" not in p.parts
        and ".git" not in p.parts
        and (p.suffix == ".sh" or _starts_with_bash(p))
    ]
    assert len(scripts) >= 4  # system-deps, test-postgres, demo/run.sh, .ci/run
    result = subprocess.run(
        ["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout


# Units whose code asks the kernel whether the clock is synchronised (appliance.clock, adjtimex):
# a seccomp filter without adjtimex would kill them with SIGSYS, and ProtectClock= refuses it.
ASKS_THE_CLOCK = ("checkpoint.service", "checkpoint-console.service",
                  "checkpoint-maintenance.service", "checkpoint-enroll.service")  # fmt: skip
# Units reading /proc beyond processes: the boot's ID (records before clock sync), and gpiozero
# identifying the Pi from /proc/device-tree and /proc/cpuinfo.
READS_PROC = ("checkpoint.service", "checkpoint-console.service")


def _security(unit: Path) -> dict[str, dict[str, object]]:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--json=short", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {item["name"]: item for item in json.loads(result.stdout)}


@needs_systemd
@pytest.mark.parametrize("name", ASKS_THE_CLOCK)
def test_units_that_ask_the_clock_may_call_adjtimex(name: str, local_units: list[Path]) -> None:
    """systemd's own reading of the unit's effective filter: adjtimex must be allowed."""
    (unit,) = [u for u in local_units if u.name == name]
    found = _security(unit)
    clock_filter = found["SystemCallFilter=~@clock"]
    assert clock_filter["set"] is False and "adjtimex is allowed" in str(
        clock_filter["description"]
    ), clock_filter
    assert found["ProtectClock="]["set"] is False, "ProtectClock= refuses adjtimex"
    # Still no way to set the clock: no capability for it.
    assert found["CapabilityBoundingSet=~CAP_SYS_TIME"]["set"] is True


@needs_systemd
@pytest.mark.parametrize("name", READS_PROC)
def test_units_that_read_proc_see_it(name: str, local_units: list[Path]) -> None:
    (unit,) = [u for u in local_units if u.name == name]
    assert _security(unit)["ProcSubset="]["set"] is False


def test_every_unit_that_runs_checkpoint_is_listed_by_what_it_needs() -> None:
    """A new unit must be classified above, so nobody forgets what its code calls."""
    runs_code = {u.name for u in UNITS if u.suffix == ".service"}
    assert runs_code - set(ASKS_THE_CLOCK) == {"checkpoint-beacon.service"}


def test_the_enrollment_unit_gives_up_exactly_where_provision_apply_says_it_cannot_succeed() -> (
    None
):
    from appliance.errors import EXIT_BAD_FILE, EXIT_REFUSED, EXIT_RETRY

    text = (REPO / "systemd" / "checkpoint-enroll.service").read_text(encoding="utf-8")
    (line,) = [x for x in text.splitlines() if x.startswith("RestartPreventExitStatus=")]
    codes = {int(c) for c in line.split("=", 1)[1].split()}
    assert codes == {EXIT_BAD_FILE, EXIT_REFUSED}
    assert EXIT_RETRY not in codes and 1 not in codes  # a local failure or a bug: tried again


def test_the_daemon_unit_does_not_loop_on_a_visit_log_another_daemon_holds() -> None:
    from appliance.errors import EXIT_BAD_FILE, EXIT_LOCKED, EXIT_RETRY

    text = (REPO / "systemd" / "checkpoint.service").read_text(encoding="utf-8")
    (line,) = [x for x in text.splitlines() if x.startswith("RestartPreventExitStatus=")]
    assert {int(c) for c in line.split("=", 1)[1].split()} == {EXIT_LOCKED}
    # A scanner that gave up (75, for the recovery helper) and a failure (1) are started again.
    assert EXIT_LOCKED not in (EXIT_BAD_FILE, EXIT_RETRY, 1)
