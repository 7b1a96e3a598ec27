"""``checkpoint enroll``: exchange a one-time code for this unit's identity and token.

Afterwards sync works with no editing: the token (and the pinned CA, and the province key when
the collector hands it out) sit beside the configuration with mode 0600, and the configuration
records the collector's URL and the unit's ID, agency and door. Everything that can fail locally
is checked *before* the code is spent, because a code works once.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from appliance.config import CA_FILE_NAME, TOKEN_FILE_NAME, Config, parse_config
from appliance.core.tokens import SECRET_LENGTH
from appliance.errors import CheckpointError, ConfigError
from appliance.keyfile import read_province_key
from appliance.sync.client import CollectorClient, normalise_url


@dataclass(frozen=True, slots=True)
class Enrolled:
    checkpoint_id: str
    agency: str
    door: str
    token_file: Path
    ca_file: Path | None
    key_file: Path | None
    key_note: str | None


def write_atomically(
    path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None
) -> None:
    """Replace ``path`` in one step with ``data``, created with ``mode`` (never readable by
    others, not even for a moment), synced to the card before it takes the name.

    The new file belongs to ``owner`` (uid, gid) when given, else to the replaced file's owner
    and group: root rewriting /etc/checkpoint/checkpoint.toml (root:checkpoint 0640) must not
    leave it root:root, unreadable to every service."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if owner is None:
        try:
            info = path.stat()
            owner = (info.st_uid, info.st_gid)
        except FileNotFoundError:
            pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        if owner is not None:
            # Not root: the file stays the writer's, as it was theirs to replace.
            with contextlib.suppress(PermissionError):
                os.fchown(fd, *owner)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes, owner: tuple[int, int] | None = None) -> None:
    write_atomically(path, data, 0o600, owner)


def check_ca_pem(pem: str, where: str) -> None:
    """``pem`` must hold at least one CA certificate Python's ssl accepts."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise CheckpointError(f"{where} is not a PEM CA certificate")
    if "PRIVATE KEY-----" in pem:
        raise CheckpointError(f"{where} holds a private key: give only the CA certificate")
    try:
        ssl.create_default_context(cadata=certificates(pem))
    except (ssl.SSLError, ValueError, CheckpointError):
        raise CheckpointError(f"{where} is not a PEM CA certificate") from None


_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----"
)


def certificates(pem: str) -> str:
    """Only the certificate blocks of a PEM file (no explanatory text), one after another."""
    blocks = [b.replace("\r\n", "\n") for b in _CERTIFICATE.findall(pem)]
    if not blocks:
        raise CheckpointError("no PEM certificate in the CA")
    return "\n".join(blocks) + "\n"


def read_ca(path: Path) -> str:
    """The CA file to pin, as PEM text, checked (one line saying what is wrong otherwise)."""
    try:
        text = path.read_bytes().decode("ascii")
    except OSError as exc:
        raise CheckpointError(f"cannot read the CA file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path} is not a PEM CA certificate") from None
    check_ca_pem(text, str(path))
    return text


def enroll(
    config_file: Path,
    config: Config,
    *,
    server: str,
    code: str,
    ca: Path | None,
    hostname: str | None = None,
    owner: tuple[int, int] | None = None,
) -> Enrolled:
    """Enroll with ``code``; ``hostname`` is the name the collector records (default: this
    machine's, which at first boot is still the image's). The secrets are written for
    ``owner`` (uid, gid) from the start, so an interruption cannot leave them root's only."""
    url = normalise_url(server)
    ca_data = read_ca(ca).encode("ascii") if ca is not None else None
    directory = config_file.resolve().parent
    # Preflight: the configuration must parse and the directory must be writable, or the code
    # would be spent for nothing.
    document = _read_document(config_file)
    for place in {directory, config.privacy.key_file.parent}:
        try:
            place.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=place, prefix=".enroll-probe-"):
                pass
        except OSError as exc:
            raise CheckpointError(
                f"cannot write in {place} ({exc.strerror or exc}): run as the user that owns it"
            ) from None
    key = config.privacy.key_file
    if key.exists() and not os.access(key, os.R_OK):
        raise CheckpointError(f"cannot read {key}: run as the user that owns it")
    if key.exists():
        _check_province_key(key)

    token_file = directory / TOKEN_FILE_NAME
    ca_file = directory / CA_FILE_NAME if ca_data is not None else None
    pinned = ca if ca is not None else None
    client = CollectorClient(url, ca_file=pinned)
    try:
        reply = client.enroll(code, hostname=hostname)
    finally:
        client.close()

    # The code is spent now: whatever fails from here on must not lose what the collector
    # gave, so each step goes on whatever the one before did, and the error says what is left.
    write_private(token_file, reply["token"].encode() + b"\n", owner)
    if ca_file is not None and ca_data is not None:
        write_private(ca_file, ca_data, owner)
    try:
        key_file, key_note = _province_key(config, reply, owner)
    except OSError as exc:
        key_file, key_note = None, f"the province key could not be written ({exc})"

    checkpoint = document.setdefault("checkpoint", tomlkit.table())
    checkpoint["id"] = reply["checkpoint_id"]
    checkpoint["agency"] = reply["agency"]
    checkpoint["door"] = reply["door"]
    sync = document.setdefault("sync", tomlkit.table())
    sync["url"] = url
    # Relative, so from the configuration's directory: right also on a card enrolled through
    # `provision apply --root`, where that directory is not where the unit will see it.
    sync["token_file"] = TOKEN_FILE_NAME
    if ca_file is not None:
        sync["ca_file"] = CA_FILE_NAME
    text = tomlkit.dumps(document)
    parse_config(tomlkit.parse(text).unwrap(), directory)  # what we write must load
    mode = config_file.stat().st_mode & 0o777 if config_file.exists() else 0o644
    write_atomically(config_file, text.encode("utf-8"), mode)
    return Enrolled(
        reply["checkpoint_id"], reply["agency"], reply["door"], token_file, ca_file, key_file,
        key_note,
    )  # fmt: skip


def _read_document(config_file: Path) -> Any:
    if not config_file.exists():
        return tomlkit.document()
    try:
        text = config_file.read_text(encoding="utf-8")
        document = tomlkit.parse(text)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {config_file}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise ConfigError(f"{config_file}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{config_file}: the file is nested too deeply") from None
    parse_config(document.unwrap(), config_file.resolve().parent, config_file)
    return document


def _check_province_key(path: Path) -> None:
    """A key already there must be one tokens can be made with, or the unit would enroll and
    then never start (or, if it started, make tokens the province cannot match)."""
    try:
        read_province_key(path)
    except ConfigError as exc:
        raise ConfigError(
            exc.message,
            advice="move it aside and enroll again (the collector installs its key, if it hands"
            " one out), or install the 32-byte key the province issued first",
        ) from None


def _province_key(
    config: Config, reply: dict[str, Any], owner: tuple[int, int] | None = None
) -> tuple[Path | None, str | None]:
    """Install the province key the collector handed out, if it did."""
    encoded = reply.get("province_key")
    if not isinstance(encoded, str):
        return None, None
    try:
        secret = base64.b64decode(encoded, validate=True)
    except ValueError:
        return None, "the collector's province key is not base64; key left as it was"
    if len(secret) != SECRET_LENGTH:
        return None, "the collector's province key has the wrong length; key left as it was"
    path = config.privacy.key_file
    note = None
    if path.exists():
        try:
            current = path.read_bytes()
        except OSError as exc:
            return None, f"cannot read {path} ({exc.strerror}); key left as it was"
        if current == secret:
            return path, None
        old = path.with_name(path.name + ".old")
        write_private(old, current, owner)
        note = f"the province key differed from the collector's; the old one is in {old}"
    write_private(path, secret, owner)
    return path, note
