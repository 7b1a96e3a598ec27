"""`checkpoint doctor`: what an installer needs to know, one PASS / WARN / FAIL line each.

Each check is a small function returning ``Check``s; every FAIL carries the action to take, and
any FAIL makes the exit code 1 (WARN alone exits 0). Access is judged for the daemon's user:
the current user, or, run as root, the owner of the visit log's directory (systemd's
``StateDirectory=`` gives it to the daemon's user). ``--json`` prints one object per check
(``type`` "check": status, name, detail, advice) and a last one with ``type`` "summary".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from appliance.config import Config
from appliance.doctor.base import FAIL, PASS, WARN, Account, Check, daemon_account
from appliance.doctor.files import (
    beacon_key_check,
    clock_check,
    config_file_check,
    disk_check,
    province_key_check,
    state_dir_check,
    visit_log_check,
)
from appliance.doctor.gpio import gpio_checks
from appliance.doctor.holder import daemon_check
from appliance.doctor.network import bluetooth_checks, sync_checks

__all__ = ["Account", "Check", "collect_checks", "daemon_account", "gpio_checks", "run_doctor"]


def collect_checks(
    config: Config, *, dev_dir: Path = Path("/dev"), sys_dir: Path = Path("/sys")
) -> list[Check]:
    account = daemon_account(config.storage.database.parent)
    checks = [
        config_file_check(config, account),
        province_key_check(config, account),
        *filter(None, [beacon_key_check(config, account)]),
        state_dir_check(config, account),
        visit_log_check(config, account),
        disk_check(config),
        clock_check(),
        daemon_check(config),
    ]
    checks += gpio_checks(config, account, dev_dir, sys_dir)
    checks += sync_checks(config, account)
    if config.ble.source == "bluez":
        checks += asyncio.run(bluetooth_checks(config))
    return checks


def run_doctor(
    config: Config,
    out: Callable[[str], None] = print,
    *,
    json_lines: bool = False,
    dev_dir: Path = Path("/dev"),
    sys_dir: Path = Path("/sys"),
) -> int:
    checks = collect_checks(config, dev_dir=dev_dir, sys_dir=sys_dir)
    failed = sum(1 for c in checks if c.status == FAIL)
    warned = sum(1 for c in checks if c.status == WARN)
    for check in checks:
        out(json.dumps(check.as_json(), ensure_ascii=False) if json_lines else check.line())
    if json_lines:
        overall = FAIL if failed else WARN if warned else PASS
        out(
            json.dumps(
                {
                    "type": "summary",
                    "status": overall,
                    "checks": len(checks),
                    "warnings": warned,
                    "failed": failed,
                }
            )
        )
    else:
        out(f"{len(checks)} checks, {warned} warnings, {failed} failed")
    return 1 if failed else 0
