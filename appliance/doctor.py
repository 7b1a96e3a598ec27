"""`checkpoint doctor`: what an installer needs to know, one PASS / WARN / FAIL line each.

Every check explains a failure with the action to take; any FAIL makes the exit code non-zero.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from appliance import clock
from appliance.config import Config, load_secret
from appliance.errors import CheckpointError

DISK_MIN_FREE_BYTES = 200 * 1024 * 1024  # a few months of visits and the journal's headroom


@dataclass(frozen=True)
class Check:
    status: str  # PASS | WARN | FAIL
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


def _local_checks(config: Config) -> list[Check]:
    from appliance.store import VisitLog

    checks = []
    try:
        load_secret(config)
        checks.append(Check("PASS", "province key", str(config.privacy.key_file)))
    except CheckpointError as exc:
        checks.append(Check("FAIL", "province key", str(exc)))
    database = config.storage.database
    if database.exists():
        try:
            VisitLog(database, readonly=True).close()
            checks.append(Check("PASS", "visit log", f"{database} passes its integrity check"))
        except CheckpointError as exc:
            checks.append(Check("FAIL", "visit log", str(exc)))
    else:
        checks.append(Check("WARN", "visit log", f"{database} does not exist yet (first start)"))
    target = database.parent if database.parent.exists() else database.anchor or "/"
    free = shutil.disk_usage(target).free
    checks.append(Check(
        "PASS" if free >= DISK_MIN_FREE_BYTES else "FAIL", "disk space",
        f"{free / 2**20:.0f} MiB free" + ("" if free >= DISK_MIN_FREE_BYTES else
                                          ": free space on the SD card"),
    ))  # fmt: skip
    synced = clock.is_synchronized()
    checks.append(Check(
        "PASS" if synced else "WARN", "clock",
        "synchronised" if synced else "not synchronised: records are flagged until NTP syncs "
        "(`timedatectl`)",
    ))  # fmt: skip
    return checks


def _bluez_version() -> str | None:
    debian = "/usr/libexec/bluetooth/bluetoothd"  # not on PATH on Debian
    path = shutil.which("bluetoothd") or (debian if os.path.exists(debian) else None)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


async def _bluetooth_checks(config: Config) -> list[Check]:
    from appliance.ble.health import AdapterProbe

    probe = AdapterProbe()
    checks: list[Check] = []
    try:
        if not await probe.bluez_present():
            return [
                Check("FAIL", "BlueZ", "bluetoothd is not running: `systemctl start bluetooth`")
            ]
        version = _bluez_version()
        checks.append(Check("PASS", "BlueZ", f"bluetoothd {version or '(version unknown)'}"))
        found = await probe.find_adapter(config.ble.adapter, None)
        if found is None:
            checks.append(Check("FAIL", "adapter", f"no adapter {config.ble.adapter!r}: check "
                                "`bluetoothctl list` and [ble] adapter"))  # fmt: skip
            return checks
        interfaces = await probe.adapter_interfaces(found[0])
        adapter = interfaces.get("org.bluez.Adapter1", {})
        powered = bool(adapter.get("Powered"))
        checks.append(Check(
            "PASS" if powered else "FAIL", "adapter",
            f"{found[0]} ({found[1]}) " + ("powered" if powered else
                                           "not powered: `bluetoothctl power on`"),
        ))  # fmt: skip
        monitor = "org.bluez.AdvertisementMonitorManager1" in interfaces
        checks.append(Check(
            "PASS" if monitor else ("FAIL" if config.ble.scanning == "passive" else "WARN"),
            "passive scanning",
            "advertisement monitor available" if monitor else
            "no advertisement monitor: start bluetoothd with --experimental"
            + (" (scanning actively meanwhile)" if config.ble.scanning == "passive" else ""),
        ))  # fmt: skip
        if config.beacon is not None:
            ads = interfaces.get("org.bluez.LEAdvertisingManager1", {})
            active = int(ads.get("ActiveInstances", 0) or 0)
            checks.append(Check(
                "PASS" if active else "FAIL", "beacon",
                f"{active} advertisement(s) registered" if active else
                "not advertising: `systemctl status checkpoint-beacon`",
            ))  # fmt: skip
    except OSError as exc:
        checks.append(Check("FAIL", "D-Bus", f"the system bus does not answer ({exc})"))
    finally:
        probe.close()
    return checks


def _sync_checks(config: Config) -> list[Check]:
    """The token's file mode, the pinned CA, and the collector answering over TLS."""
    import stat

    from appliance.sync import read_token
    from appliance.sync.client import CollectorClient, SyncError

    sync = config.sync
    if sync is None or not sync.url:
        return [Check("WARN", "sync", "off (no [sync] url): enroll with `checkpoint enroll`")]
    checks = []
    path = sync.token_path(config.directory)
    try:
        token = read_token(config)
    except CheckpointError as exc:
        return [Check("FAIL", "sync token", str(exc))]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        checks.append(Check("FAIL", "sync token", f"{path} is mode {mode:o}: chmod 600 {path}"))
    else:
        checks.append(Check("PASS", "sync token", f"{path} (mode {mode:o})"))
    ca = sync.ca_path(config.directory)
    if ca is None:
        checks.append(Check("WARN", "pinned CA", "none: the system's CAs are trusted"))
    client = CollectorClient(sync.url, token=token, ca_file=ca, timeout=min(sync.timeout_s, 10))
    try:
        me = client.whoami()
    except SyncError as exc:
        checks.append(Check("FAIL", "collector", str(exc)))
    else:
        checks.append(Check(
            "PASS", "collector",
            f"{sync.url} answers over TLS; this unit is {me['checkpoint_id']}, token valid until"
            f" {me.get('token_expires_at')}",
        ))  # fmt: skip
        if me["checkpoint_id"] != config.checkpoint.id:
            checks.append(Check(
                "FAIL", "checkpoint id",
                f"the configuration says {config.checkpoint.id}, the collector"
                f" {me['checkpoint_id']}: enroll again",
            ))  # fmt: skip
    finally:
        client.close()
    return checks


def run_doctor(config: Config, out: Callable[[str], None] = print) -> int:
    checks = _local_checks(config) + _sync_checks(config)
    if config.ble.source == "bluez":
        checks += asyncio.run(_bluetooth_checks(config))
    for check in checks:
        out(check.line())
    failed = sum(1 for c in checks if c.status == "FAIL")
    out(f"{len(checks)} checks, {failed} failed")
    return 1 if failed else 0
