"""Doctor's checks of what is reached over a bus or the network: BlueZ and the adapter, and the
collector (its token, the pinned CA, TLS)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from appliance.config import Config
from appliance.doctor.base import (
    FAIL,
    PASS,
    WARN,
    Account,
    Check,
    described,
    failed,
)
from appliance.doctor.files import secret_mode_check
from appliance.errors import CheckpointError

# ---------------------------------------------------------------------------------------------
# Bluetooth


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


async def bluetooth_checks(config: Config) -> list[Check]:
    from appliance.ble.health import AdapterProbe

    probe = AdapterProbe()
    checks: list[Check] = []
    try:
        if not await probe.bluez_present():
            return [Check(FAIL, "BlueZ", "bluetoothd is not running", "systemctl start bluetooth")]
        version = _bluez_version()
        checks.append(Check(PASS, "BlueZ", f"bluetoothd {version or '(version unknown)'}"))
        found = await probe.find_adapter(config.ble.adapter, None)
        if found is None:
            checks.append(
                Check(
                    FAIL,
                    "adapter",
                    f"no adapter {config.ble.adapter!r}",
                    "check `bluetoothctl list` and [ble] adapter",
                )
            )
            return checks
        interfaces = await probe.adapter_interfaces(found[0])
        adapter = interfaces.get("org.bluez.Adapter1", {})
        where = f"{found[0]} ({found[1]})"
        if adapter.get("Powered"):
            checks.append(Check(PASS, "adapter", f"{where} powered"))
        else:
            checks.append(
                Check(
                    FAIL,
                    "adapter",
                    f"{where} not powered",
                    "`bluetoothctl power on`; `rfkill list` if it stays off",
                )
            )
        if "org.bluez.AdvertisementMonitorManager1" in interfaces:
            checks.append(Check(PASS, "passive scanning", "advertisement monitor available"))
        else:
            passive = config.ble.scanning == "passive"
            checks.append(
                Check(
                    FAIL if passive else WARN,
                    "passive scanning",
                    "no advertisement monitor"
                    + (" (scanning actively meanwhile)" if passive else ""),
                    "start bluetoothd with --experimental",
                )
            )
        if config.beacon is not None:
            ads = interfaces.get("org.bluez.LEAdvertisingManager1", {})
            active = int(ads.get("ActiveInstances", 0) or 0)
            checks.append(
                Check(PASS, "beacon", f"{active} advertisement(s) registered")
                if active
                else Check(FAIL, "beacon", "not advertising", "systemctl status checkpoint-beacon")
            )
    except OSError as exc:
        checks.append(
            Check(FAIL, "D-Bus", f"the system bus does not answer ({exc})", "systemctl status dbus")
        )
    finally:
        probe.close()
    return checks


# ---------------------------------------------------------------------------------------------
# Sync


def ca_check(path: Path, account: Account) -> Check:
    """The pinned CA is public, but whoever can replace it can impersonate the collector."""
    try:
        st = path.stat()
    except OSError as exc:
        return Check(
            FAIL,
            "pinned CA",
            f"{path}: {exc.strerror}",
            "copy the province CA there, or enroll again with --ca",
        )
    mode = stat.S_IMODE(st.st_mode)
    where = described(path, st)
    if mode & 0o022:
        return Check(FAIL, "pinned CA", f"{where}: others can replace it", f"chmod 644 {path}")
    if not account.can(st, read=True):
        return Check(
            FAIL,
            "pinned CA",
            f"{where} is not readable by {account.name}",
            f"chown {account.name}:{account.group} {path}",
        )
    return Check(PASS, "pinned CA", where)


def sync_checks(config: Config, account: Account) -> list[Check]:
    """The token and its file mode, the pinned CA, and the collector answering over TLS."""
    from appliance.errors import SyncError
    from appliance.sync import read_token
    from appliance.sync.client import CollectorClient

    sync = config.sync
    if sync is None or not sync.url:
        return [Check(WARN, "sync", "off (no [sync] url)", "enroll with `checkpoint enroll`")]
    path = sync.token_path(config.directory)
    try:
        token = read_token(config)
    except CheckpointError as exc:
        return [failed("sync token", exc, "enroll the unit again (`checkpoint enroll`)")]
    checks = [secret_mode_check("sync token", path, account, "present")]
    ca = sync.ca_path(config.directory)
    if ca is None:
        checks.append(
            Check(
                WARN,
                "pinned CA",
                "none: the system's CAs are trusted",
                "enroll with --ca to pin the province CA",
            )
        )
    else:
        checks.append(ca_check(ca, account))
    client = CollectorClient(sync.url, token=token, ca_file=ca, timeout=min(sync.timeout_s, 10))
    try:
        me = client.whoami()
    except SyncError as exc:
        checks.append(
            failed(
                "collector",
                exc,
                f"is {sync.url} reachable from here, and is "
                "the pinned CA the one that signed its certificate?",
            )
        )
    else:
        checks.append(
            Check(
                PASS,
                "collector",
                f"{sync.url} answers over TLS; this unit is {me['checkpoint_id']}, token valid"
                f" until {me.get('token_expires_at')}",
            )
        )
        if me["checkpoint_id"] != config.checkpoint.id:
            checks.append(
                Check(
                    FAIL,
                    "checkpoint id",
                    f"the configuration says {config.checkpoint.id}, the collector"
                    f" {me['checkpoint_id']}",
                    "enroll again (`checkpoint enroll`)",
                )
            )
    finally:
        client.close()
    return checks
