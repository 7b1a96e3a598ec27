"""Provisioning a batch against the real collector (uvicorn, TLS, trustme; SQLite and
PostgreSQL): `checkpoint provision bundle` turns an inventory spreadsheet into one first-boot
file per unit, and `checkpoint provision apply` enrolls a unit with one, in a temporary root."""

# ruff: noqa: F811

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pwd
import shutil
import stat
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.errors import InventoryError
from appliance.provision.bundle_file import FORMAT_VERSION, parse
from appliance.provision.inventory import read_inventory
from appliance.sync.client import CollectorClient
from tests.collector_harness import (  # noqa: F401
    Collector,
    Tls,
    collector,
    database_url,
    postgres_server,
    tls,
)
from tests.conftest import REPO, Result, run_checkpoint

BOM = "\ufeff"
STTTT = "Sở Thông tin và Truyền thông"
SYT = "Sở Y tế tỉnh Tuyên Quang"
UBND = "Ủy ban nhân dân huyện Hàm Yên"
Run = Callable[..., Result]


def inventory(tmp_path: Path, *rows: str, header: str = "agency,door,hostname,checkpoint_id,notes"
              ) -> Path:  # fmt: skip
    """An inventory as Excel's "CSV UTF-8" writes it: a BOM, CRLF line ends."""
    path = tmp_path / "devices.csv"
    path.write_bytes((BOM + "\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))
    return path


def three_units(tmp_path: Path) -> Path:
    return inventory(
        tmp_path,
        f"{STTTT},Cửa chính,tq-stttt-01,TQ-STTTT-01,tầng 1",
        ",,,,",  # a row Excel leaves behind: skipped
        f'"{SYT}","Cửa phụ, phía đông",tq-syt-01,,',
        f"{UBND},Cổng,TQ-HAMYEN-01,,",
    )


def admin_token_file(tmp_path: Path, server: Collector, mode: int = 0o600) -> Path:
    path = tmp_path / "admin.token"
    path.write_text(server.role_token("admin") + "\n", encoding="ascii")
    path.chmod(mode)
    return path


def bundle(run: Run, server: Collector, tls: Tls, inventory_file: Path, out: Path,
           *extra: str) -> Result:  # fmt: skip
    return run(
        "provision", "bundle", "--inventory", str(inventory_file), "--collector", server.url,
        "--ca", str(tls.ca_file), "--out", str(out), *extra,
    )  # fmt: skip


def codes_made(server: Collector) -> int:
    return int(str(server.query("SELECT count(*) FROM enrollment_codes")[0][0]))


def device_config(tmp_path: Path) -> Path:
    """The configuration on the card whose root ``boot_partition`` makes (apply writes nothing
    outside that root)."""
    config = tmp_path / "card" / "etc" / "checkpoint" / "checkpoint.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '[checkpoint]\nagency = "(not enrolled)"\n[storage]\ndatabase = "visits.db"\n'
        '[privacy]\nkey_file = "province.key"\n[ble]\nsource = "none"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    return config


def boot_partition(tmp_path: Path, bundle_file: Path) -> Path:
    """A card's root with the bundle on its boot partition, where Raspberry Pi OS 12 has it."""
    root = tmp_path / "card"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
    (root / "boot" / "firmware").mkdir(parents=True)
    shutil.copy(bundle_file, root / "boot" / "firmware" / "checkpoint-provision.toml")
    return root


def apply(root: Path, config: Path, *extra: str) -> Result:
    """`provision apply` as the first-boot unit runs it: a process of its own."""
    done = run_checkpoint(
        ["provision", "apply", "--root", str(root), "--config", str(config), *extra]
    )
    return Result(done.returncode, done.stdout, done.stderr)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- bundle -----------------------------------------------------------------------------------


def test_an_inventory_becomes_private_bundles_and_a_manifest_without_codes(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    out = tmp_path / "bundles"
    token = admin_token_file(tmp_path, collector)
    result = bundle(cli, collector, tls, three_units(tmp_path), out, "--token-file", str(token))
    assert result.code == 0, result.err
    progress = result.err.strip().splitlines()
    assert [line.split(":")[0] for line in progress] == [
        "[1/3] tq-stttt-01", "[2/3] tq-syt-01", "[3/3] tq-hamyen-01",
    ]  # fmt: skip
    assert "3 bundle(s) written, 0 kept, 0 failed" in result.out
    assert codes_made(collector) == 3

    bundles = {}
    for hostname in ("tq-stttt-01", "tq-syt-01", "tq-hamyen-01"):
        path = out / hostname / "checkpoint-provision.toml"
        assert mode_of(path) == 0o600
        bundles[hostname] = parse(path.read_text(encoding="utf-8"), str(path))
        assert tomllib.loads(path.read_text(encoding="utf-8"))["format"] == FORMAT_VERSION
    first = bundles["tq-stttt-01"]
    assert (first.agency, first.door, first.checkpoint_id) == (STTTT, "Cửa chính", "TQ-STTTT-01")
    assert first.collector_url == collector.url
    assert first.ca_pem == tls.ca_file.read_text()
    assert bundles["tq-syt-01"].door == "Cửa phụ, phía đông"
    assert bundles["tq-hamyen-01"].checkpoint_id is None  # the collector assigns one

    raw = (out / "manifest.csv").read_bytes()
    assert raw.startswith(BOM.encode())
    text = raw.decode("utf-8-sig")
    for b in bundles.values():
        assert b.code not in text and b.code.replace("-", "") not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["hostname"], r["agency"], r["status"]) for r in rows] == [
        ("tq-stttt-01", STTTT, "written"), ("tq-syt-01", SYT, "written"),
        ("tq-hamyen-01", UBND, "written"),
    ]  # fmt: skip
    assert rows[0]["checkpoint_id"] == "TQ-STTTT-01" and rows[0]["notes"] == "tầng 1"
    assert rows[1]["file"] == "tq-syt-01/checkpoint-provision.toml"
    assert rows[2]["code_expires_at"] == bundles["tq-hamyen-01"].code_expires_at

    # A re-run keeps what is there and asks for nothing.
    before = (out / "tq-syt-01" / "checkpoint-provision.toml").read_text()
    again = bundle(cli, collector, tls, three_units(tmp_path), out, "--token-file", str(token))
    assert again.code == 0, again.err
    assert "0 bundle(s) written, 3 kept" in again.out
    assert codes_made(collector) == 3
    assert (out / "tq-syt-01" / "checkpoint-provision.toml").read_text() == before


def test_every_bad_row_is_reported_with_its_line_before_any_code_is_requested(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    bad = inventory(
        tmp_path,
        f"{STTTT},Cửa chính,tq-01,,",  # line 2: fine
        ",Cửa chính,tq-02,,",  # line 3: no agency
        f"{SYT},,tq-03,,",  # line 4: no door
        f"{SYT},Cổng,tq_04.local,,",  # line 5: underscore
        "",  # line 6: skipped
        f"{UBND},Cổng,TQ-01,,",  # line 7: duplicate (host names ignore case)
        f"{UBND},Cổng,-tq-08,,",  # line 8: leading hyphen
        f"{UBND},Cổng,tq-09,,x,y",  # line 9: a comma that should have been quoted
    )
    out = tmp_path / "bundles"
    result = bundle(cli, collector, tls, bad, out)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    where = [line.split(": ")[1].rsplit(":", 1)[1] for line in lines[:-1]]
    assert where == ["3", "4", "5", "7", "8", "9"]
    assert "no agency" in lines[0] and "no door" in lines[1]
    assert "RFC 1123" in lines[2] and "also on line 2" in lines[3]
    assert "must be quoted" in lines[5]
    assert "no enrollment code was requested" in lines[-1]
    assert "Traceback" not in result.err
    assert codes_made(collector) == 0
    assert not out.exists() or not any(out.iterdir())

    missing = inventory(tmp_path, f"{STTTT},tq-01", header="agency,hostname")
    result = bundle(cli, collector, tls, missing, out)
    assert result.code == 2 and ":1: no door column" in result.err
    assert codes_made(collector) == 0


def test_a_wrong_or_unsafe_admin_token_is_one_clear_line(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    units, out = three_units(tmp_path), tmp_path / "bundles"
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", "not-a-token")
    wrong = bundle(cli, collector, tls, units, out)
    assert wrong.code == 1
    error = [line for line in wrong.err.splitlines() if line.startswith("checkpoint:")]
    assert len(error) == 1 and "unknown token" in error[0]
    assert "tokens create --role admin" in error[0] and "line 2 (tq-stttt-01)" in error[0]
    assert codes_made(collector) == 0
    assert not list(out.glob("*/checkpoint-provision.toml"))

    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("official"))
    official = bundle(cli, collector, tls, units, out)
    assert official.code == 1 and "needs an admin token" in official.err

    monkeypatch.delenv("CHECKPOINT_ADMIN_TOKEN")
    readable = admin_token_file(tmp_path, collector, mode=0o644)
    loose = bundle(cli, collector, tls, units, out, "--token-file", str(readable))
    assert loose.code == 2 and f"chmod 600 {readable}" in loose.err
    none = bundle(cli, collector, tls, units, out)
    assert none.code == 2 and "CHECKPOINT_ADMIN_TOKEN" in none.err
    assert codes_made(collector) == 0


def test_the_collector_failing_mid_batch_keeps_what_was_written_and_names_the_row(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    first = inventory(tmp_path, f"{STTTT},Cửa chính,tq-stttt-01,,")
    assert bundle(cli, collector, tls, first, out).code == 0
    kept = (out / "tq-stttt-01" / "checkpoint-provision.toml").read_text()
    collector.stop()
    result = bundle(cli, collector, tls, three_units(tmp_path), out, "--json")
    assert result.code == 1
    assert "stopped at line 4 (tq-syt-01)" in result.err and "connection refused" in result.err
    assert "run the same command again" in result.err
    assert (out / "tq-stttt-01" / "checkpoint-provision.toml").read_text() == kept
    summary = json.loads(result.out)
    assert (summary["kept"], summary["written"], summary["failed"]) == (1, 0, 1)
    assert [r["status"] for r in summary["results"]] == ["kept", "failed", "not made"]
    manifest = (out / "manifest.csv").read_text(encoding="utf-8-sig")
    assert "tq-hamyen-01" in manifest and "not made" in manifest

    collector.start()
    resumed = bundle(cli, collector, tls, three_units(tmp_path), out)
    assert resumed.code == 0, resumed.err
    assert "2 bundle(s) written, 1 kept" in resumed.out


# -- apply --------------------------------------------------------------------------------------


def test_apply_enrolls_the_unit_names_it_hands_over_the_secrets_and_deletes_the_file(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    assert bundle(cli, collector, tls, three_units(tmp_path), out).code == 0
    made = out / "tq-stttt-01" / "checkpoint-provision.toml"
    root, config = boot_partition(tmp_path, made), device_config(tmp_path)
    provision_file = root / "boot" / "firmware" / "checkpoint-provision.toml"
    # Root hands the secrets to the daemon's user; `nobody` stands in for `checkpoint` here.
    owner = ["--owner", "nobody"] if os.geteuid() == 0 else []

    # The door's own beacon is configured: its base key is made at enrollment.
    config.write_text(config.read_text() + '[beacon]\nkey_file = "beacon.key"\n')

    result = apply(root, config, *owner)
    assert result.code == 0, result.err
    assert "enrolled as TQ-STTTT-01" in result.out
    assert "beacon key made" in result.out
    assert not provision_file.exists()
    assert (root / "etc" / "hostname").read_text() == "tq-stttt-01\n"
    hosts = (root / "etc" / "hosts").read_text().splitlines()
    assert hosts == ["127.0.0.1\tlocalhost", "127.0.1.1\ttq-stttt-01"]
    directory = config.parent
    for name in ("sync.token", "province-ca.pem", "province.key", "beacon.key"):
        assert mode_of(directory / name) == 0o600, name
        if owner:
            assert (directory / name).stat().st_uid == pwd.getpwnam("nobody").pw_uid
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    assert data["checkpoint"]["id"] == "TQ-STTTT-01" and data["sync"]["url"] == collector.url

    # The collector knows the unit, by its new name, and takes its token.
    assert collector.query("SELECT id, agency, hostname FROM checkpoints") == [
        ("TQ-STTTT-01", STTTT, "tq-stttt-01")
    ]
    token = (directory / "sync.token").read_text().strip()
    client = CollectorClient(collector.url, token=token, ca_file=directory / "province-ca.pem")
    try:
        assert client.whoami()["checkpoint_id"] == "TQ-STTTT-01"
    finally:
        client.close()

    # The same file on another card (a copy kept somewhere): the code is spent, for good. It
    # is kept, since deleting it would hide that this card has not been enrolled by it.
    other = tmp_path / "other"
    other_root, config = boot_partition(other, made), device_config(other)
    provision_file = other_root / "boot" / "firmware" / "checkpoint-provision.toml"
    used = apply(other_root, config, str(provision_file))
    assert used.code == 77
    assert len(used.err.strip().splitlines()) == 1
    assert "already used" in used.err and "checkpoint provision bundle --force" in used.err
    assert provision_file.exists()


def test_a_first_boot_cut_short_after_enrolling_is_finished_on_the_next_start(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power lost after the collector took the code: the file is still on the boot partition
    and the code is spent. The next start finishes the job instead of failing for good; and a
    configuration rewritten as root keeps its owner and group (root:checkpoint on a unit)."""
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    assert bundle(cli, collector, tls, three_units(tmp_path), out).code == 0
    made = out / "tq-stttt-01" / "checkpoint-provision.toml"
    root, config = boot_partition(tmp_path, made), device_config(tmp_path)
    provision_file = root / "boot" / "firmware" / "checkpoint-provision.toml"
    as_root = os.geteuid() == 0
    owner = ["--owner", "nobody"] if as_root else []
    if as_root:  # the installer's root:checkpoint 0640; `nogroup` stands in for checkpoint
        os.chown(config, 0, pwd.getpwnam("nobody").pw_gid)
        config.chmod(0o640)
    group_before = config.stat().st_gid
    assert apply(root, config, *owner).code == 0
    assert config.stat().st_gid == group_before
    if as_root:
        assert mode_of(config) == 0o640

    # The cut: the file back in place, the secrets not yet handed over.
    shutil.copy(made, provision_file)
    token = config.parent / "sync.token"
    if as_root:
        os.chown(token, 0, 0)
    again = apply(root, config, *owner)
    assert again.code == 0, again.err
    assert "had already enrolled with this code" in again.out
    assert not provision_file.exists()
    if as_root:
        assert token.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert collector.query("SELECT count(*) FROM checkpoints") == [(1,)]

    # The same card given another unit's bundle (a cloned card, a unit moved to another door):
    # its fresh code enrolls it as that unit, whatever identity the card had.
    shutil.copy(out / "tq-syt-01" / "checkpoint-provision.toml", provision_file)
    moved = apply(root, config, *owner)
    assert moved.code == 0, moved.err
    assert "had already enrolled" not in moved.out
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    assert data["checkpoint"]["id"] != "TQ-STTTT-01" and data["checkpoint"]["door"] == (
        "Cửa phụ, phía đông"
    )
    assert collector.query("SELECT count(*) FROM checkpoints") == [(2,)]


def test_apply_while_the_collector_is_down_asks_to_be_retried_and_keeps_the_file(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    assert bundle(cli, collector, tls, three_units(tmp_path), out).code == 0
    root = boot_partition(tmp_path, out / "tq-syt-01" / "checkpoint-provision.toml")
    config = device_config(tmp_path)
    provision_file = root / "boot" / "firmware" / "checkpoint-provision.toml"
    collector.stop()
    down = apply(root, config)
    assert down.code == 75, down.err
    assert "connection refused" in down.err and "kept for the next try" in down.err
    assert provision_file.exists() and not (config.parent / "sync.token").exists()
    collector.start()
    up = apply(root, config)
    assert up.code == 0, up.err
    assert not provision_file.exists()
    assert collector.query("SELECT agency, door, hostname FROM checkpoints") == [
        (SYT, "Cửa phụ, phía đông", "tq-syt-01")
    ]


def test_reprovisioning_an_enrolled_checkpoint_id_says_to_ask_for_a_reenrollment_code(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    units = three_units(tmp_path)
    assert bundle(cli, collector, tls, units, out).code == 0
    root = boot_partition(tmp_path, out / "tq-stttt-01" / "checkpoint-provision.toml")
    assert apply(root, device_config(tmp_path)).code == 0

    # The card of tq-stttt-01 is replaced: a new batch for everyone.
    again = bundle(cli, collector, tls, units, out, "--force")
    assert again.code == 1
    progress = [line for line in again.err.splitlines() if line.startswith("[")]
    assert [line.split(" (")[0] for line in progress] == [
        "[1/3] tq-stttt-01: FAILED: checkpoint TQ-STTTT-01 is already enrolled at the collector:"
        " a replaced card needs a re-enrollment code",
        "[2/3] tq-syt-01: tq-syt-01/checkpoint-provision.toml",
        "[3/3] tq-hamyen-01: tq-hamyen-01/checkpoint-provision.toml",
    ]
    assert "checkpoint-collector codes reenroll --id TQ-STTTT-01" in progress[0]
    assert "2 bundle(s) written, 0 kept, 1 failed" in again.out  # the others went on
    rows = list(csv.DictReader(io.StringIO((out / "manifest.csv").read_text("utf-8-sig"))))
    assert rows[0]["status"].startswith("failed: checkpoint TQ-STTTT-01 is already enrolled")
    assert rows[0]["file"] == ""


HOST_ETC = Path("/etc/checkpoint")
HOST_FILES = (
    *(HOST_ETC / name for name in ("checkpoint.toml", "province.key", "province.key.old",
                                   "beacon.key", "sync.token", "province-ca.pem")),
    Path("/etc/hostname"),
    Path("/etc/hosts"),
)  # fmt: skip
TEMPLATE = REPO / "provisioning" / "checkpoint.toml"  # what the installer puts on a card


def host_state() -> dict[Path, tuple[int, int, int] | None]:
    """What the machine running the test has at the paths a card's template names."""
    state: dict[Path, tuple[int, int, int] | None] = {}
    for path in HOST_FILES:
        try:
            st = path.stat()
        except FileNotFoundError:
            state[path] = None
        else:
            state[path] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return state


@contextlib.contextmanager
def host_untouched() -> Iterator[None]:
    """Assert that the host's own /etc/checkpoint and names are as they were; the code before the
    fix wrote there (as root, really), so whatever it made is removed again."""
    had_dir, before = HOST_ETC.exists(), host_state()
    try:
        yield
        assert host_state() == before
    finally:
        for path, was in before.items():
            if was is None and path.parent == HOST_ETC:
                path.unlink(missing_ok=True)
        if not had_dir and HOST_ETC.is_dir() and not any(HOST_ETC.iterdir()):
            HOST_ETC.rmdir()


def card_with_template(tmp_path: Path, bundle_file: Path) -> tuple[Path, Path]:
    """A card as the installer leaves it: the template's absolute /etc/checkpoint paths."""
    root = boot_partition(tmp_path, bundle_file)
    config = root / "etc" / "checkpoint" / "checkpoint.toml"
    config.parent.mkdir(parents=True)
    shutil.copy(TEMPLATE, config)
    return root, config


def apply_default_config(root: Path, *extra: str) -> Result:
    """`provision apply --root DIR` with no --config: the card's own configuration; run from
    beside the card, so that a path taken from the working directory would show too."""
    done = run_checkpoint(
        ["provision", "apply", "--root", str(root), *extra],
        env={"CHECKPOINT_CONFIG": ""},
        cwd=root.parent,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def files_outside(machine: Path, root: Path) -> dict[str, int]:
    """Everything in ``machine`` (the card's surroundings) but the card at ``root``."""
    return {
        str(p.relative_to(machine)): p.lstat().st_mtime_ns
        for p in machine.rglob("*")
        if root not in (p, *p.parents)
    }


def test_apply_with_a_root_writes_everything_under_it_even_the_templates_absolute_keys(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template names /etc/checkpoint/province.key and beacon.key: with --root they are the
    card's, not the host's (they were written to the host's /etc/checkpoint)."""
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    assert bundle(cli, collector, tls, three_units(tmp_path), out).code == 0
    machine = tmp_path / "machine"
    root, config = card_with_template(machine, out / "tq-stttt-01" / "checkpoint-provision.toml")
    (machine / "etc" / "checkpoint").mkdir(parents=True)  # where a path taken from "." would go
    outside = files_outside(machine, root)
    with host_untouched():
        result = apply_default_config(root)
        assert result.code == 0, result.err
    assert files_outside(machine, root) == outside
    etc = root / "etc" / "checkpoint"
    for name in ("sync.token", "province-ca.pem", "province.key", "beacon.key"):
        assert mode_of(etc / name) == 0o600, name
    assert (etc / "province.key").read_bytes() == collector.province_key
    assert (root / "etc" / "hostname").read_text() == "tq-stttt-01\n"
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    # The configuration names what the unit will see once it boots from the card.
    assert data["privacy"]["key_file"] == "/etc/checkpoint/province.key"
    assert data["sync"]["token_file"] == "sync.token"
    assert data["sync"]["ca_file"] == "province-ca.pem"


def test_apply_refuses_paths_that_lead_out_of_the_root_before_writing_anything(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    assert bundle(cli, collector, tls, three_units(tmp_path), out).code == 0
    made = out / "tq-stttt-01" / "checkpoint-provision.toml"
    victim = tmp_path / "victim"
    victim.mkdir()
    cases = {
        "dots": ('key_file = "/etc/checkpoint/province.key"', 'key_file = "/../../../../x.key"'),
        "relative": ('key_file = "/etc/checkpoint/beacon.key"', 'key_file = "../../../../b.key"'),
        "link": ('key_file = "/etc/checkpoint/province.key"', 'key_file = "/etc/keys/p.key"'),
    }
    for number, (case, (old, new)) in enumerate(cases.items()):
        root, config = card_with_template(tmp_path / case, made)
        config.write_text(config.read_text().replace(old, new))
        (root / "etc" / "keys").symlink_to(victim)  # an absolute link, as images have
        outside = files_outside(tmp_path / case, root)
        with host_untouched():
            result = apply_default_config(root)
        assert result.code == 2, (case, result.err)
        assert len(result.err.strip().splitlines()) == 1 and "leads outside --root" in result.err
        assert files_outside(tmp_path / case, root) == outside, case
        assert not any(victim.iterdir()), case
        assert not (root / "etc" / "hostname").exists(), case  # refused before the first write
        assert (root / "boot" / "firmware" / "checkpoint-provision.toml").exists()
        assert codes_used(collector) == 0, number


def test_an_explicit_configuration_outside_the_root_is_refused(
    cli: Run, collector: Collector, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", collector.role_token("admin"))
    out = tmp_path / "bundles"
    assert bundle(cli, collector, tls, three_units(tmp_path), out).code == 0
    root = boot_partition(tmp_path, out / "tq-stttt-01" / "checkpoint-provision.toml")
    config = device_config(tmp_path / "elsewhere")
    result = apply(root, config)
    assert result.code == 2 and "leads outside --root" in result.err, result.err
    assert sorted(p.name for p in config.parent.iterdir()) == ["checkpoint.toml"]


def codes_used(server: Collector) -> int:
    return int(str(server.query("SELECT count(*) FROM checkpoints")[0][0]))


# -- enroll: beside the configuration, and a key it cannot use refused before the code is spent


def enroll_unit(server: Collector, tls: Tls, config: Path, code: str) -> Result:
    done = run_checkpoint(
        ["enroll", "--server", server.url, "--code", code, "--ca", str(tls.ca_file),
         "--config", str(config)],
    )  # fmt: skip
    return Result(done.returncode, done.stdout, done.stderr)


def test_enroll_without_a_key_file_setting_writes_the_province_key_beside_the_configuration(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    """The README says so; it went to /etc/checkpoint/province.key whatever the configuration."""
    config = tmp_path / "unit" / "checkpoint.toml"
    config.parent.mkdir()
    config.write_text('[storage]\ndatabase = "visits.db"\n[ble]\nsource = "none"\n')
    with host_untouched():
        result = enroll_unit(collector, tls, config, collector.code())
        assert result.code == 0, result.err
    assert (config.parent / "province.key").read_bytes() == collector.province_key
    assert mode_of(config.parent / "province.key") == 0o600
    assert f"province key: {config.parent / 'province.key'}" in result.out


def test_enroll_refuses_a_province_key_with_a_newline_before_spending_the_code(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    config = device_config(tmp_path)
    key = config.parent / "province.key"
    key.write_bytes(collector.province_key + b"\n")
    code = collector.code()
    refused = enroll_unit(collector, tls, config, code)
    assert refused.code == 2 and "Traceback" not in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert f"province key {key} is 33 bytes; it must be exactly 32" in refused.err
    assert codes_used(collector) == 0 and not (config.parent / "sync.token").exists()
    key.unlink()  # the code was not spent: the same one enrolls once the key is fixed
    assert enroll_unit(collector, tls, config, code).code == 0
    assert key.read_bytes() == collector.province_key


def test_a_bad_or_missing_provision_file_is_exit_2_and_kept(tmp_path: Path) -> None:
    config = device_config(tmp_path)
    root = tmp_path / "card"
    (root / "boot").mkdir(parents=True)
    none = apply(root, config)
    assert none.code == 2 and "no provision file" in none.err
    assert "boot/firmware/checkpoint-provision.toml" in none.err

    # The older place, /boot, is found too.
    broken = root / "boot" / "checkpoint-provision.toml"
    broken.write_text('format = 1\nhostname = "tq-01"\n', encoding="utf-8")
    result = apply(root, config)
    assert result.code == 2 and "no [collector] table" in result.err
    broken.write_text("format = 9\n", encoding="utf-8")
    result = apply(root, config)
    assert result.code == 2 and "format 9" in result.err
    assert broken.exists() and not (root / "etc" / "hostname").exists()


# -- the inventory on its own ---------------------------------------------------------------


def test_inventory_from_a_vietnamese_excel_with_semicolons_and_vietnamese_headers(
    tmp_path: Path,
) -> None:
    path = inventory(
        tmp_path,
        f"{STTTT};Cửa chính;TQ-01;tầng 1",
        ";;;",
        f"{SYT};Cổng;tq-02;",
        header="Cơ quan;Cửa;Tên máy;Ghi chú",
    )
    devices = read_inventory(path)
    assert [(d.line, d.hostname, d.agency, d.door, d.notes) for d in devices] == [
        (2, "tq-01", STTTT, "Cửa chính", "tầng 1"),
        (4, "tq-02", SYT, "Cổng", ""),
    ]


def test_inventory_in_a_legacy_encoding_says_how_to_save_it(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_bytes("agency,door,hostname\r\nSở Y tế,Cổng,tq-01\r\n".encode("utf-16"))
    with pytest.raises(Exception, match="CSV UTF-8"):
        read_inventory(path)
    only_header = inventory(tmp_path)
    with pytest.raises(InventoryError, match="1 problem"):
        read_inventory(only_header)


def test_a_ca_file_holding_a_private_key_is_refused_before_anything_is_asked(
    cli: Run, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_ADMIN_TOKEN", "unused")
    both = tmp_path / "ca-and-key.pem"
    both.write_text(tls.ca_file.read_text() + tls.key_file.read_text())
    result = cli(
        "provision", "bundle", "--inventory", str(three_units(tmp_path)), "--collector",
        "https://127.0.0.1:9", "--ca", str(both), "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.code == 2 and "holds a private key" in result.err
    assert not (tmp_path / "out").exists()
