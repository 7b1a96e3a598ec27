"""The province key file: the secret every visit token is made with (docs/protocols.md §4), read
exactly as the collector reads its copy, or made for a simulation. Its length is checked here
because a key with one byte more (a newline) makes other tokens: the province's exposure checks
would silently never match this unit."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from appliance.core.tokens import SECRET_LENGTH
from appliance.errors import ConfigError

INSTALL_ADVICE = "install the key the collector issued (`checkpoint enroll` does)"


def read_province_key(path: Path, *, create: bool = False) -> bytes:
    """The 32 bytes of ``path``; ``create`` makes the file when it is missing (simulation
    only). Anything else is a ConfigError of one line naming the file and its length."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            secret = handle.read(SECRET_LENGTH + 1)  # a byte more tells a longer file
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                f"province key not found: {path}",
                advice="enroll the unit (`checkpoint enroll`) or install the key the collector "
                "issued",
            ) from None
        return _create_key(path)
    except OSError as exc:
        raise ConfigError(f"cannot read province key {path}: {exc.strerror}") from None
    if len(secret) != SECRET_LENGTH:
        problem = length_problem(path, secret, max(size, len(secret)))
        raise ConfigError(problem, advice=INSTALL_ADVICE)
    return secret


def length_problem(path: Path, secret: bytes, size: int) -> str:
    """What is wrong with a key file of ``size`` bytes that starts with ``secret``."""
    text = f"province key {path} is {size} bytes; it must be exactly {SECRET_LENGTH}"
    if size == SECRET_LENGTH + 1 and secret.endswith(b"\n"):
        text += " (the 32 bytes and a newline: the key is raw bytes, not a line of text)"
    return text


def _create_key(path: Path) -> bytes:
    secret = os.urandom(SECRET_LENGTH)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
    except OSError as exc:
        raise ConfigError(f"cannot create simulation key {path}: {exc.strerror}") from None
    logging.getLogger("checkpoint").warning("created a new simulation key at %s", path)
    return secret
