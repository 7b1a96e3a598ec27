"""``checkpoint provision bundle``: one enrollment code per inventory row, asked of the
collector's admin API, each written into ``OUT/<hostname>/checkpoint-provision.toml`` (mode 0600)
with a ``manifest.csv`` beside them that holds no code.

Everything local is checked before the first code is asked for (the inventory, the CA, the admin
token, the output directory, bundles already made), because every code asked for is a live
secret. A re-run keeps the bundles already made (``force`` replaces them). A refusal that
concerns one row (an ID already enrolled) is reported and the batch goes on; anything else (the
network, the token, TLS) stops it, and what was written before is kept."""

from __future__ import annotations

import csv
import io
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.errors import (
    BundleFileError,
    CheckpointError,
    InventoryProblem,
    Refused,
    SyncError,
    Unauthorized,
    UsageError,
)
from appliance.provision.bundle_file import FILE_NAME, ProvisionFile, read, render
from appliance.provision.inventory import Device
from appliance.sync.client import CollectorClient
from appliance.sync.enroll import read_ca as enroll_read_ca
from appliance.sync.enroll import write_atomically, write_private

ADMIN_TOKEN_ENV = "CHECKPOINT_ADMIN_TOKEN"
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "hostname", "agency", "door", "checkpoint_id", "code_expires_at", "file", "status", "notes",
)  # fmt: skip
ROW_REFUSALS = (409, 422)  # the collector's answer concerns this row only: the batch goes on
MAKE_ADMIN_TOKEN = "checkpoint-collector tokens create --role admin"


def read_admin_token(token_file: Path | None) -> str:
    """The admin token from ``token_file`` (which others must not be able to read) or from
    $CHECKPOINT_ADMIN_TOKEN; never from the command line, where ``ps`` would show it."""
    if token_file is None:
        token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
        if not token:
            raise UsageError(
                f"no admin token: pass --token-file F (mode 0600) or set {ADMIN_TOKEN_ENV}"
                f" (make one with `{MAKE_ADMIN_TOKEN}`)"
            )
        return token
    try:
        mode = stat.S_IMODE(token_file.stat().st_mode)
        token = token_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise UsageError(f"cannot read the admin token {token_file}: {reason}") from None
    if mode & 0o077:
        raise UsageError(
            f"the admin token {token_file} is mode {mode:o}, readable by others:"
            f" chmod 600 {token_file}"
        )
    if not token:
        raise UsageError(f"the admin token file {token_file} is empty")
    return token


def read_ca(path: Path) -> str:
    """The CA to pin, as PEM text, checked as `checkpoint enroll` checks it."""
    try:
        return enroll_read_ca(path)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None


def bundle_path(out: Path, hostname: str) -> Path:
    return out / hostname / FILE_NAME


def prepare_output(out: Path) -> None:
    """The output directory exists, is private and writable (checked before any code)."""
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write in {out}: {exc.strerror or exc}") from None


def existing_bundles(
    devices: list[Device], out: Path, *, force: bool
) -> tuple[dict[str, ProvisionFile], list[InventoryProblem]]:
    """Bundles already in ``out`` (kept unless ``force``); one that cannot be read is a
    problem to report with the inventory's, before anything is asked of the collector."""
    found: dict[str, ProvisionFile] = {}
    problems: list[InventoryProblem] = []
    for device in devices:
        path = bundle_path(out, device.hostname)
        if force or not path.exists():
            continue
        try:
            found[device.hostname] = read(path)
        except BundleFileError as exc:
            problems.append(InventoryProblem(device.line, f"{exc}: --force replaces it"))
    return found, problems


@dataclass
class Outcome:
    device: Device
    status: str  # written | kept | failed | not made
    bundle: ProvisionFile | None = None
    error: str | None = None

    def as_json(self, out: Path) -> dict[str, Any]:
        return {
            "line": self.device.line,
            "hostname": self.device.hostname,
            "status": self.status,
            "checkpoint_id": self.bundle.checkpoint_id if self.bundle else None,
            "code_expires_at": self.bundle.code_expires_at if self.bundle else None,
            "file": str(bundle_path(out, self.device.hostname)) if self.bundle else None,
            "error": self.error,
        }


@dataclass
class Summary:
    out: Path
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: str | None = None  # why the batch stopped before its end

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST_NAME

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def as_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "manifest": str(self.manifest),
            "devices": len(self.outcomes),
            **{s.replace(" ", "_"): self.count(s) for s in ("written", "kept", "failed")},
            "stopped": self.stopped,
            "results": [o.as_json(self.out) for o in self.outcomes],
        }


def explain(exc: SyncError, device: Device) -> str:
    """The collector's refusal, with what to do about it."""
    if isinstance(exc, Unauthorized):
        return f"{exc}: make an admin token with `{MAKE_ADMIN_TOKEN}`"
    if isinstance(exc, Refused) and exc.status == 403:
        return f"{exc}: provisioning needs an admin token (`{MAKE_ADMIN_TOKEN}`)"
    if isinstance(exc, Refused) and exc.status == 409 and device.checkpoint_id:
        return (
            f"checkpoint {device.checkpoint_id} is already enrolled at the collector: a replaced"
            " card needs a re-enrollment code (on the collector: `checkpoint-collector codes"
            f" reenroll --id {device.checkpoint_id}`, then `checkpoint enroll` on the unit);"
            " a new unit needs another ID"
        )
    return str(exc)


def _kept_note(bundle: ProvisionFile, device: Device, url: str, now: datetime) -> str:
    differs = [
        name
        for name, have, want in (
            ("agency", bundle.agency, device.agency),
            ("door", bundle.door, device.door),
            ("checkpoint ID", bundle.checkpoint_id, device.checkpoint_id or bundle.checkpoint_id),
            ("collector", bundle.collector_url, url),
        )
        if have != want
    ]
    notes = []
    if differs:
        notes.append(f"its {', '.join(differs)} differ from now")
    try:
        expired = datetime.fromisoformat(bundle.code_expires_at) <= now
    except ValueError:
        expired = False
    if expired:
        notes.append(f"its code expired on {bundle.code_expires_at}")
    extra = f"; {' and '.join(notes)}: --force makes a new one" if notes else ""
    return f"kept: a bundle exists{extra}"


def make_bundles(
    devices: list[Device],
    *,
    client: CollectorClient,
    ca_pem: str,
    out: Path,
    existing: dict[str, ProvisionFile],
    expires_in_s: float | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Summary:
    """Ask for a code per device and write its bundle; the manifest is written whatever
    happens, listing every device of the inventory and what became of it."""
    summary = Summary(out)
    now = datetime.now(UTC)
    total = len(devices)
    try:
        for number, device in enumerate(devices, 1):
            prefix = f"[{number}/{total}] {device.hostname}"
            if summary.stopped is not None:
                summary.outcomes.append(Outcome(device, "not made"))
                continue
            have = existing.get(device.hostname)
            if have is not None:
                summary.outcomes.append(Outcome(device, "kept", have))
                progress(f"{prefix}: {_kept_note(have, device, client.url, now)}")
                continue
            try:
                reply = client.create_code(
                    device.agency,
                    device.door,
                    checkpoint_id=device.checkpoint_id,
                    expires_in_s=expires_in_s,
                )
                bundle = ProvisionFile(
                    collector_url=client.url,
                    code=reply["code"],
                    code_expires_at=reply["expires_at"],
                    ca_pem=ca_pem,
                    hostname=device.hostname,
                    agency=str(reply.get("agency") or device.agency),
                    door=str(reply.get("door") or device.door),
                    checkpoint_id=reply.get("checkpoint_id") or device.checkpoint_id,
                )
                path = bundle_path(out, device.hostname)
                path.parent.mkdir(mode=0o700, exist_ok=True)
                write_private(path, render(bundle).encode("utf-8"))
            except SyncError as exc:
                message = explain(exc, device)
                summary.outcomes.append(Outcome(device, "failed", error=message))
                progress(f"{prefix}: FAILED: {message}")
                if not (isinstance(exc, Refused) and exc.status in ROW_REFUSALS):
                    summary.stopped = f"line {device.line} ({device.hostname}): {message}"
                continue
            except OSError as exc:
                message = f"cannot write {bundle_path(out, device.hostname)}: {exc.strerror}"
                summary.outcomes.append(Outcome(device, "failed", error=message))
                summary.stopped = f"line {device.line} ({device.hostname}): {message}"
                progress(f"{prefix}: FAILED: {message}")
                continue
            summary.outcomes.append(Outcome(device, "written", bundle))
            progress(
                f"{prefix}: {path.relative_to(out)} (code valid until {bundle.code_expires_at})"
            )
    finally:
        write_manifest(summary)
    return summary


def write_manifest(summary: Summary) -> None:
    """What IT staff and officials open in Excel: a BOM, one row per device, no codes."""
    from appliance.formats.cells import BOM, csv_safe

    text = io.StringIO()
    text.write(BOM)
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    for outcome in summary.outcomes:
        device, bundle = outcome.device, outcome.bundle
        status = f"failed: {outcome.error}" if outcome.status == "failed" else outcome.status
        row = (
            device.hostname,
            bundle.agency if bundle else device.agency,
            bundle.door if bundle else device.door,
            (bundle.checkpoint_id if bundle else device.checkpoint_id) or "",
            bundle.code_expires_at if bundle else "",
            str(bundle_path(summary.out, device.hostname).relative_to(summary.out))
            if bundle
            else "",
            status,
            device.notes,
        )
        writer.writerow([csv_safe(value) for value in row])
    write_atomically(summary.manifest, text.getvalue().encode("utf-8"), 0o644)
