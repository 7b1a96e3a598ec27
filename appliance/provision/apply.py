"""``checkpoint provision apply``: the first-boot step. Reads the provision file from the boot
partition, names the unit, enrolls it with the collector, gives the secrets to the daemon's
user, and deletes the file (it holds a one-time secret) only once the unit is enrolled.

Its exit code tells the systemd unit what to do: 0 done; 75 (EX_TEMPFAIL) the collector could
not be reached, or TLS failed (the clock not set yet, a proxy in the way), so try again later
with the file kept; 2 the file (or an option) is bad; 77 the collector refused the code for good
(used, expired, unknown), so the file is kept and a person must make a new bundle. Anything else
(1: a local failure, or a bug) is tried again too: the unit only gives up on 2 and 77.

Interrupted after the collector took the code (a power cut at first boot), the next start is
told by the collector that the code was used by this very checkpoint, and the unit's token
proves it: it finishes the job (the secrets' owner, the beacon key, the file's removal)
instead of failing on a spent code.

With ``--root DIR`` (a card's file system mounted on another machine) everything it writes lands
under DIR: the configuration is DIR's, its absolute paths are the unit's and so are taken under
DIR, and a path that leads out of DIR (``..``, a link) is refused before anything is written."""

from __future__ import annotations

import os
import pwd
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from appliance.config import CA_FILE_NAME, TOKEN_FILE_NAME, Config
from appliance.errors import (
    BundleFileError,
    CheckpointError,
    CodeRefused,
    Refused,
    RetryLater,
    SyncError,
    TlsError,
    Transient,
    UsageError,
)
from appliance.provision.bundle_file import FILE_NAME, ProvisionFile, read
from appliance.sync import read_token
from appliance.sync.client import CollectorClient, normalise_url
from appliance.sync.enroll import Enrolled, enroll, write_atomically

# Raspberry Pi OS 12 and later mount the boot partition at /boot/firmware; older ones at /boot.
LOCATIONS = (Path("boot/firmware") / FILE_NAME, Path("boot") / FILE_NAME)
DAEMON_USER = "checkpoint"
LOOPBACK_NAME_ADDRESS = "127.0.1.1"  # Debian's address for the machine's own name


@dataclass(frozen=True, slots=True)
class Applied:
    enrolled: Enrolled
    hostname: str
    owner: str | None
    removed: Path
    notes: tuple[str, ...]


def find_provision_file(root: Path) -> Path:
    """The first of the boot partition's provision files that exists."""
    for location in LOCATIONS:
        if (root / location).is_file():
            return root / location
    raise BundleFileError(
        "no provision file: looked for " + " and ".join(str(root / p) for p in LOCATIONS)
    )


def resolve_owner(owner: str | None) -> pwd.struct_passwd | None:
    """Who gets the secrets: ``owner``, else the daemon's user if it exists; only root can give
    files away, so for anyone else the secrets stay theirs."""
    if owner is None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(DAEMON_USER)
        except KeyError:
            return None
    try:
        account = pwd.getpwnam(owner)
    except KeyError:
        raise UsageError(f"--owner {owner}: no such user") from None
    if os.geteuid() != 0 and account.pw_uid != os.geteuid():
        raise UsageError(f"--owner {owner}: only root can give the secrets to another user")
    return account


def set_hostname(root: Path, hostname: str) -> str | None:
    """``/etc/hostname`` and the 127.0.1.1 line of ``/etc/hosts`` under ``root``; a note
    for the person when the running name is not the new one yet."""
    etc = root / "etc"
    write_atomically(etc / "hostname", f"{hostname}\n".encode("ascii"), 0o644)
    hosts = etc / "hosts"
    short = hostname.split(".", 1)[0]
    names = hostname if short == hostname else f"{hostname} {short}"
    ours = f"{LOOPBACK_NAME_ADDRESS}\t{names}"
    try:
        lines = hosts.read_text(encoding="utf-8").splitlines()
        mode = hosts.stat().st_mode & 0o777
    except FileNotFoundError:
        lines, mode = ["127.0.0.1\tlocalhost"], 0o644
    replaced = [ours if line.split()[:1] == [LOOPBACK_NAME_ADDRESS] else line for line in lines]
    if ours not in replaced:
        replaced.append(ours)
    write_atomically(hosts, ("\n".join(replaced) + "\n").encode("utf-8"), mode)
    # The running kernel's name is left alone: sethostname(2) needs CAP_SYS_ADMIN and is
    # outside systemd's @system-service filter (a call would kill the process). The name is
    # the kernel's from the next boot, or at once with `hostname -F /etc/hostname` as root.
    running = socket.gethostname()
    if root.resolve() == Path("/") and running != hostname:
        return f"the running name is still {running} until the next boot"
    return None


def _enrolled_by_this_code(
    config: Config, bundle: ProvisionFile, refusal: Refused
) -> Enrolled | None:
    """What an interrupted first boot left, recognised with the collector's help: it refused
    the code as already used *by this unit's checkpoint*, and this unit's token, checked with
    the collector, belongs to that checkpoint. A cloned card or a unit moved to another door
    has a fresh code, which enrolls as usual; an expired or revoked token proves nothing."""
    current = config.checkpoint.id
    sync = config.sync
    if refusal.status != 410 or current == "UNENROLLED" or sync is None or not sync.url:
        return None
    if f" by {current}:" not in str(refusal):
        return None
    try:
        same = normalise_url(sync.url) == normalise_url(bundle.collector_url)
        token = read_token(config)
    except CheckpointError:
        return None
    if not same:
        return None
    client = CollectorClient(
        sync.url, token=token, ca_file=sync.ca_path(config.directory), timeout=sync.timeout_s
    )
    try:
        who = client.whoami()
    except SyncError:
        return None
    finally:
        client.close()
    if who.get("checkpoint_id") != current:
        return None
    key = config.privacy.key_file
    return Enrolled(
        current, config.checkpoint.agency, config.checkpoint.door,
        sync.token_path(config.directory), sync.ca_path(config.directory),
        key if key.is_file() else None,
        "this unit had already enrolled with this code (an earlier start was interrupted):"
        " finished what it left",
    )  # fmt: skip


def _enroll(
    config_file: Path,
    config: Config,
    bundle: ProvisionFile,
    where: Path,
    owner: tuple[int, int] | None,
) -> Enrolled:
    """Enroll with the file's code and CA; the collector's answer turned into what the unit
    should do next."""
    with tempfile.TemporaryDirectory(prefix="checkpoint-provision-") as tmp:
        ca = Path(tmp) / CA_FILE_NAME
        ca.write_text(bundle.ca_pem, encoding="ascii")
        try:
            return enroll(
                config_file,
                config,
                server=bundle.collector_url,
                code=bundle.code,
                ca=ca,
                hostname=bundle.hostname,
                owner=owner,
            )
        except Transient as exc:
            raise RetryLater(f"{exc}; {where} is kept for the next try") from None
        except TlsError as exc:
            from appliance.clock import is_synchronized

            if not is_synchronized():
                # No real-time clock: before NTP, a valid certificate can look not yet valid.
                raise RetryLater(
                    f"{exc}; the clock is not synchronised yet, so {where} is kept for the next try"
                ) from None
            # A proxy or a captive portal in the way passes; a wrong CA in the bundle does not,
            # and the journal says so every minute.
            raise RetryLater(
                f"{exc}; {where} is kept for the next try",
                advice="if this goes on, the bundle's CA is not the collector's: make a new one",
            ) from None
        except Refused as exc:
            finished = _enrolled_by_this_code(config, bundle, exc)
            if finished is not None:
                return finished
            if exc.status == 422:
                raise BundleFileError(f"{where}: the collector refused it: {exc}") from None
            advice = (
                "make a new bundle for this unit (checkpoint provision bundle --force) and"
                f" replace {where}"
            )
            if exc.status == 409 or (exc.status == 410 and "used" in str(exc)):
                advice += (
                    "; if the unit was enrolled before, a re-enrollment code"
                    " (checkpoint-collector codes reenroll --id ID) and `checkpoint enroll`"
                )
            raise CodeRefused(f"{exc}", advice=advice) from None


def inside_root(root: Path, path: Path) -> None:
    """Refuse ``path`` unless it stays under ``root`` once its links and ``..`` are followed:
    a card prepared on another machine must not have its secrets written to that machine."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real_root != Path("/") and real != real_root and real_root not in real.parents:
        raise UsageError(
            f"{path} leads outside --root {root} (to {real}): everything provision apply writes"
            f" stays under {root}; fix the configuration or the link"
        )


def targets(config_file: Path, config: Config, root: Path) -> list[Path]:
    """Every file apply writes (or replaces), for ``inside_root`` to check first."""
    directory = Path(os.path.realpath(config_file)).parent  # where enroll puts the token
    key = config.privacy.key_file
    paths = [root / "etc" / "hostname", root / "etc" / "hosts", config_file]
    paths += [directory / TOKEN_FILE_NAME, directory / CA_FILE_NAME, key]
    paths.append(key.with_name(key.name + ".old"))  # a replaced province key is kept there
    if config.beacon is not None:
        paths.append(config.beacon.key_file)
    return paths


def _make_beacon_key(config_file: Path, root: Path) -> tuple[bool, Path | None]:
    """The checkpoint's own beacon key is made at enrollment, when the configuration has a
    [beacon] section and no key yet (an existing one is never replaced). Returns whether it
    was made now, and the key's path when there is one."""
    from appliance.ble.beacon import create_beacon_key
    from appliance.config import load_config

    beacon = load_config(config_file, root=root).beacon  # as enrollment left it
    if beacon is None:
        return False, None
    inside_root(root, beacon.key_file)
    if beacon.key_file.exists():
        return False, beacon.key_file
    create_beacon_key(beacon.key_file)
    return True, beacon.key_file


def apply_provision_file(
    path: Path, *, config_file: Path, config: Config, root: Path, owner: str | None
) -> Applied:
    for target in targets(config_file, config, root):
        inside_root(root, target)
    bundle = read(path)
    account = resolve_owner(owner)
    # The name first: it is local, repeatable, and the collector records it at enrollment.
    try:
        hostname_note = set_hostname(root, bundle.hostname)
    except OSError as exc:
        raise CheckpointError(f"cannot set the hostname {bundle.hostname}: {exc}") from None
    ids = (account.pw_uid, account.pw_gid) if account is not None else None
    enrolled = _enroll(config_file, config, bundle, path, ids)
    notes = [n for n in (hostname_note, enrolled.key_note) if n]
    made, beacon_key = _make_beacon_key(config_file, root)
    if made:
        notes.append(f"beacon key made: {beacon_key} (mode 0600)")
    if account is not None:
        for secret in (enrolled.token_file, enrolled.ca_file, enrolled.key_file, beacon_key):
            if secret is None:
                continue
            try:
                os.chown(secret, account.pw_uid, account.pw_gid)
                os.chmod(secret, 0o600)
            except OSError as exc:
                raise CheckpointError(
                    f"enrolled, but cannot give {secret} to {account.pw_name}: {exc.strerror}",
                    advice=f"chown {account.pw_name}: {secret} && chmod 600 {secret}",
                ) from None
    # Last: until here, an interrupted start finds the file again and finishes the job.
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        # The code is spent, so the file is harmless now; the enrollment stands.
        notes.append(f"{path} could not be deleted ({exc.strerror}): delete it by hand")
    owner_name = account.pw_name if account else None
    return Applied(enrolled, bundle.hostname, owner_name, path, tuple(notes))
