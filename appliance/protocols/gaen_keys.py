"""Exposure Notification key schedule: TEK → RPIK → Rolling Proximity Identifiers.

RPIK = HKDF-SHA256(TEK, salt=none, info="EN-RPIK", 16 bytes);
RPI(j) = AES-128-ECB(RPIK, "EN-RPI" ‖ 6 zero bytes ‖ j as uint32 little-endian),
with j the ten-minute interval number (unix seconds // 600).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TEK_LENGTH = 16
INTERVAL_SECONDS = 600
TEK_ROLLING_PERIOD = 144  # intervals a TEK is valid for (one day)


def hkdf_sha256(key: bytes, info: bytes, length: int, salt: bytes | None = None) -> bytes:
    """RFC 5869 HKDF with SHA-256 (an absent salt is HashLen zero bytes)."""
    prk = hmac.new(salt or bytes(32), key, hashlib.sha256).digest()
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def rpik(tek: bytes) -> bytes:
    """The Rolling Proximity Identifier Key of a Temporary Exposure Key."""
    if len(tek) != TEK_LENGTH:
        raise ValueError(f"a TEK is {TEK_LENGTH} bytes, got {len(tek)}")
    return hkdf_sha256(tek, b"EN-RPIK", 16)


def rpis(tek: bytes, first_interval: int, count: int = TEK_ROLLING_PERIOD) -> list[bytes]:
    """The RPIs of ``count`` consecutive intervals from ``first_interval``."""
    if first_interval < 0 or count < 0 or first_interval + count > 2**32:
        raise ValueError(f"interval number out of range: {first_interval}")
    encryptor = Cipher(algorithms.AES(rpik(tek)), modes.ECB()).encryptor()
    blocks = b"".join(
        b"EN-RPI" + bytes(6) + (first_interval + k).to_bytes(4, "little") for k in range(count)
    )
    data = encryptor.update(blocks) + encryptor.finalize()
    return [data[16 * k : 16 * k + 16] for k in range(count)]


def interval_of(when: datetime) -> int:
    """The ten-minute interval number of an aware datetime."""
    return int(when.timestamp()) // INTERVAL_SECONDS


def interval_start(interval: int) -> datetime:
    return datetime.fromtimestamp(interval * INTERVAL_SECONDS, UTC)
