"""The root helper checkpoint.service runs from ``ExecStopPost=+``: it acts only on the
scanner's dedicated exit code, restarts bluetoothd first, then power-cycles the configured
adapter through the kernel's management interface (btmgmt), and never fails the unit.

systemctl and btmgmt need root and a real adapter, so they are replaced on PATH by recorders
that write down how they were called (in order); the script itself runs for real under bash
with the environment systemd gives ExecStopPost."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from appliance.ble.health import SCANNER_FAILED_EXIT
from tests.conftest import REPO

HELPER = REPO / "provisioning" / "libexec" / "checkpoint-bt-recover"


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for name in ("systemctl", "btmgmt"):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit "${{FAIL_{name}:-0}}"\n')
        tool.chmod(0o755)
    sleep = bin_dir / "sleep"  # keep the test quick: the helper's waits are real but short
    sleep.write_text("#!/bin/sh\nexit 0\n")
    sleep.chmod(0o755)
    return tmp_path


def run(
    tools: Path, *, code: str, status: str, config: str | None = None, **extra: str
) -> tuple[int, list[str], str]:
    env = {
        "PATH": f"{tools / 'bin'}:/usr/bin:/bin",
        "EXIT_CODE": code,
        "EXIT_STATUS": status,
        "SERVICE_RESULT": "exit-code",
        **extra,
    }
    if config is not None:
        path = tools / "checkpoint.toml"
        path.write_text(config, encoding="utf-8")
        env["CHECKPOINT_CONFIG"] = str(path)
    else:
        env["CHECKPOINT_CONFIG"] = str(tools / "absent.toml")
    result = subprocess.run(
        ["bash", str(HELPER)], env=env, capture_output=True, text=True, timeout=30
    )
    calls_file = tools / "calls"
    calls = calls_file.read_text().splitlines() if calls_file.exists() else []
    return result.returncode, calls, result.stderr


def test_the_helper_uses_the_daemons_exit_code() -> None:
    assert SCANNER_FAILED_EXIT == 75
    assert f"SCANNER_FAILED_EXIT={SCANNER_FAILED_EXIT}" in HELPER.read_text()
    unit = (REPO / "systemd" / "checkpoint.service").read_text()
    assert "ExecStopPost=+/opt/checkpoint/libexec/checkpoint-bt-recover" in unit
    assert os.access(HELPER, os.X_OK)


def test_exit_75_restarts_bluetoothd_then_power_cycles_the_default_adapter(tools: Path) -> None:
    code, calls, err = run(tools, code="exited", status="75")
    assert code == 0
    assert calls[0] == "systemctl --job-mode=ignore-dependencies restart bluetooth.service"
    assert calls[1] == "systemctl is-active --quiet bluetooth.service"
    assert calls[-2:] == ["btmgmt --index 0 power off", "btmgmt --index 0 power on"]
    assert "gave up" in err and "power-cycling hci0" in err


def test_the_adapter_comes_from_the_ble_table_of_the_configuration(tools: Path) -> None:
    config = '[checkpoint]\nadapter = "hci7"\n\n[ble]\nsource = "bluez"\nadapter = "hci1"  # usb\n'
    code, calls, _ = run(tools, code="exited", status="75", config=config)
    assert code == 0
    assert calls[-2:] == ["btmgmt --index 1 power off", "btmgmt --index 1 power on"]


@pytest.mark.parametrize(
    ("code", "status"),
    [("exited", "0"), ("exited", "1"), ("exited", "2"), ("killed", "TERM"), ("dumped", "ABRT"),
     ("", "")],
)  # fmt: skip
def test_any_other_stop_is_left_alone(tools: Path, code: str, status: str) -> None:
    rc, calls, err = run(tools, code=code, status=status)
    assert rc == 0 and calls == [] and err == ""


def test_failures_are_reported_but_never_fail_the_unit(tools: Path) -> None:
    rc, calls, err = run(tools, code="exited", status="75", FAIL_systemctl="1", FAIL_btmgmt="1")
    assert rc == 0
    assert "could not restart bluetooth.service" in err
    assert "btmgmt power off failed" in err and "btmgmt power on failed" in err
    assert calls[0] == "systemctl --job-mode=ignore-dependencies restart bluetooth.service"
