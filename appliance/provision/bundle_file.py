"""``checkpoint-provision.toml``: everything one door unit needs to enroll itself at first boot
(the collector, its one-time code, the CA to pin) and to name itself. It is made by
``checkpoint provision bundle`` and consumed by ``checkpoint provision apply``, which refuses a
file of a format version it does not know, or with a key it does not know."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from appliance.errors import BundleFileError, CheckpointError
from appliance.provision.inventory import hostname_problem
from appliance.sync.client import normalise_url
from appliance.sync.enroll import certificates, check_ca_pem

FILE_NAME = "checkpoint-provision.toml"
FORMAT_VERSION = 1
HEADER = (
    "Checkpoint: first-boot enrollment of one door unit (checkpoint provision apply).",
    "Copy it to the boot partition of this unit's card, as checkpoint-provision.toml.",
    "The code works once: keep the file private. The unit deletes it once enrolled.",
)


@dataclass(frozen=True, slots=True)
class ProvisionFile:
    collector_url: str
    code: str
    code_expires_at: str
    ca_pem: str
    hostname: str
    agency: str
    door: str
    checkpoint_id: str | None = None


def render(bundle: ProvisionFile) -> str:
    document = tomlkit.document()
    for line in HEADER:
        document.add(tomlkit.comment(line))
    document.add("format", FORMAT_VERSION)
    document.add("hostname", bundle.hostname)
    document.add("agency", bundle.agency)
    document.add("door", bundle.door)
    if bundle.checkpoint_id is not None:
        document.add("checkpoint_id", bundle.checkpoint_id)
    collector = tomlkit.table()
    collector.add("url", bundle.collector_url)
    collector.add("code", bundle.code)
    collector.add("code_expires_at", bundle.code_expires_at)
    document.add(tomlkit.nl())
    document.add("collector", collector)
    # The certificates as they look in a .pem file; only base64, dashes and newlines, so
    # nothing in them needs escaping. [collector] is the last table: the key lands in it.
    return tomlkit.dumps(document) + f'ca = """\n{certificates(bundle.ca_pem)}"""\n'


_TOP = {"format", "hostname", "agency", "door", "checkpoint_id", "collector"}
_COLLECTOR = {"url", "code", "code_expires_at", "ca"}


def parse(text: str, where: str) -> ProvisionFile:
    """The file's content, checked; a BundleFileError names the first thing wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BundleFileError(f"{where}: not TOML ({exc})") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays
        raise BundleFileError(f"{where}: not TOML (nested too deeply)") from None
    version = data.get("format")
    if version != FORMAT_VERSION:
        raise BundleFileError(
            f"{where}: format {version!r} is not {FORMAT_VERSION}: make the bundle with this"
            " version of checkpoint (or update the unit's software)"
        )
    collector = data.get("collector")
    if not isinstance(collector, dict):
        raise BundleFileError(f"{where}: no [collector] table")
    for table, known, prefix in ((data, _TOP, ""), (collector, _COLLECTOR, "collector.")):
        unknown = sorted(set(table) - known)
        if unknown:
            raise BundleFileError(f"{where}: unknown key {prefix}{unknown[0]}")

    def text_of(table: dict[str, Any], key: str, prefix: str = "") -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BundleFileError(f"{where}: {prefix}{key} is missing or empty")
        return value.strip()

    checkpoint_id = data.get("checkpoint_id")
    if checkpoint_id is not None and (not isinstance(checkpoint_id, str) or not checkpoint_id):
        raise BundleFileError(f"{where}: checkpoint_id must be text")
    hostname = text_of(data, "hostname")
    problem = hostname_problem(hostname)
    if problem:
        raise BundleFileError(f"{where}: {problem}")
    ca = text_of(collector, "ca", "collector.")
    try:
        url = normalise_url(text_of(collector, "url", "collector."))
        check_ca_pem(ca, f"{where}: collector.ca")
    except CheckpointError as exc:
        raise BundleFileError(
            str(exc) if str(exc).startswith(where) else f"{where}: {exc}"
        ) from None
    return ProvisionFile(
        collector_url=url,
        code=text_of(collector, "code", "collector."),
        code_expires_at=text_of(collector, "code_expires_at", "collector."),
        ca_pem=ca + "\n",
        hostname=hostname,
        agency=text_of(data, "agency"),
        door=text_of(data, "door"),
        checkpoint_id=checkpoint_id,
    )


def read(path: Path) -> ProvisionFile:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BundleFileError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BundleFileError(f"{path}: not UTF-8 text") from None
    return parse(text, str(path))
