"""provisioning/install.sh, run for real: inside Debian 12 and 13 trees made with debootstrap (the
installer's ``--root`` chroots into it), with Debian's packages and PyPI, then checked from the
outside: users and groups, the virtual environment (which must import BlueZ's and GLib's
bindings from Debian and run ``checkpoint``), the configuration, the units and their enablement,
and the file modes. A second run must report no changes and leave every file as it was; the
pi-gen stage, which calls the same installer, must agree.

Needs root (chroot), debootstrap and the Debian mirror: on a laptop without them the tests are
skipped, in CI (``CI`` set) their absence is a failure. A TLS-inspecting proxy's CA certificates
in /usr/local/share/ca-certificates are copied into the tree, as a site with such a proxy would
do on its cards; without one there are none to copy."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

# The installer runs from a copy of the checkout taken once, as IT staff's clone would be: the
# idempotence checks then compare runs of one and the same source.
PARTS = ("pyproject.toml", "README.md", "appliance", "collector", "systemd", "provisioning")
PI_GEN_RUN = Path("provisioning/pi-gen/stage-checkpoint/00-checkpoint/00-run.sh")
MIRROR = os.environ.get("CHECKPOINT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Debian 12 and 13, what Raspberry Pi OS 12 and 13 are built on.
SUITES = ("bookworm", "trixie")
UNITS = sorted(p.name for p in (REPO / "systemd").glob("checkpoint*.*"))
WATCHED = ("opt/checkpoint", "etc/checkpoint", "var/lib/checkpoint", "etc/systemd",
           "usr/local/lib/systemd", "etc/udev/rules.d", "etc/passwd", "etc/group",
           "etc/shadow", "etc/gshadow")  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the installer test cannot run in CI: {reason}")
    pytest.skip(reason)


def _install(checkout: Path, tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [str(checkout / "provisioning" / "install.sh"), "--root", str(tree), *args],
        capture_output=True,
        text=True,
        timeout=1100,
        env=env,
    )


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("checkout")
    for part in PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(
                source, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(source, copy / part)
    return copy


@pytest.fixture(scope="module", params=SUITES)
def tree(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    suite = request.param
    if os.geteuid() != 0:
        _unavailable("the installer's --root needs root (chroot)")
    if shutil.which("debootstrap") is None:
        _unavailable("debootstrap is missing (provisioning/system-deps.sh installs it)")
    root = tmp_path_factory.mktemp("debian") / suite
    made = subprocess.run(
        ["debootstrap", "--variant=minbase", suite, str(root), MIRROR],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if made.returncode != 0:
        _unavailable(f"debootstrap failed: {made.stdout[-2000:]}{made.stderr[-2000:]}")
    local_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    target = root / "usr/local/share/ca-certificates"
    target.mkdir(parents=True, exist_ok=True)
    for ca in local_cas:
        shutil.copy2(ca, target / ca.name)
    yield root
    if os.path.ismount(root / "proc"):
        subprocess.run(["umount", str(root / "proc")], check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def first_run(checkout: Path, tree: Path) -> subprocess.CompletedProcess[str]:
    result = _install(checkout, tree, "--no-start")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _ids(tree: Path, database: str) -> dict[str, list[str]]:
    rows = (tree / "etc" / database).read_text().splitlines()
    return {fields[0]: fields for fields in (row.split(":") for row in rows if row)}


def _owner(tree: Path, path: Path) -> tuple[str, str, str]:
    users = {int(f[2]): name for name, f in _ids(tree, "passwd").items()}
    groups = {int(f[2]): name for name, f in _ids(tree, "group").items()}
    info = path.stat()
    return oct(stat.S_IMODE(info.st_mode))[2:], users[info.st_uid], groups[info.st_gid]


def _snapshot(tree: Path) -> dict[str, tuple[int, int, int, int, int, str]]:
    shot = {}
    for name in WATCHED:
        top = tree / name
        paths = [top, *top.rglob("*")] if top.is_dir() else [top]
        for path in paths:
            info = path.lstat()
            target = os.readlink(path) if path.is_symlink() else ""
            shot[str(path.relative_to(tree))] = (
                info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns, target
            )  # fmt: skip
    return shot


def _chroot(tree: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chroot", str(tree), *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
    )


def test_the_first_run_says_what_it_did(first_run: subprocess.CompletedProcess[str]) -> None:
    out = first_run.stdout
    for line in (
        "install: group checkpoint created",
        "install: user checkpoint created",
        "install: user checkpoint-console created",
        "install: user checkpoint added to group gpio",
        "install: user checkpoint added to group bluetooth",
        "install: virtual environment /opt/checkpoint/venv",
        "install: configuration /etc/checkpoint/checkpoint.toml (from the template)",
        "install: enabled checkpoint.service",
    ):
        assert line in out, out
    assert "install: done:" in out.splitlines()[-1]


def test_users_and_groups(tree: Path, first_run: object) -> None:
    passwd, group = _ids(tree, "passwd"), _ids(tree, "group")
    daemon, console = passwd["checkpoint"], passwd["checkpoint-console"]
    assert daemon[5:] == ["/var/lib/checkpoint", "/usr/sbin/nologin"]
    assert console[6] == "/usr/sbin/nologin"
    assert int(daemon[2]) < 1000 and int(console[2]) < 1000  # system users
    assert daemon[3] == console[3] == group["checkpoint"][2]  # one shared group
    assert "checkpoint" in group["gpio"][3].split(",")
    assert "checkpoint" in group["bluetooth"][3].split(",")


def test_files_have_their_owners_and_modes(checkout: Path, tree: Path, first_run: object) -> None:
    expected = {
        "etc/checkpoint": ("750", "root", "checkpoint"),
        "etc/checkpoint/checkpoint.toml": ("640", "root", "checkpoint"),
        "var/lib/checkpoint": ("2770", "checkpoint", "checkpoint"),
        "opt/checkpoint/libexec/checkpoint-bt-recover": ("755", "root", "root"),
        "etc/systemd/system/bluetooth.service.d/checkpoint.conf": ("644", "root", "root"),
        "etc/systemd/journald.conf.d/checkpoint.conf": ("644", "root", "root"),
        "etc/udev/rules.d/60-checkpoint-gpio.rules": ("644", "root", "root"),
    }
    for unit in UNITS:
        expected[f"usr/local/lib/systemd/system/{unit}"] = ("644", "root", "root")
    for path, want in expected.items():
        assert _owner(tree, tree / path) == want, path
    assert (tree / "etc/checkpoint/checkpoint.toml").read_bytes() == (
        checkout / "provisioning" / "checkpoint.toml"
    ).read_bytes()
    for unit in UNITS:
        assert (tree / "usr/local/lib/systemd/system" / unit).read_bytes() == (
            checkout / "systemd" / unit
        ).read_bytes()
    dropin = (tree / "etc/systemd/system/bluetooth.service.d/checkpoint.conf").read_text()
    assert "ExecStart=\nExecStart=/usr/libexec/bluetooth/bluetoothd --experimental" in dropin
    assert "SystemMaxUse=" in (tree / "etc/systemd/journald.conf.d/checkpoint.conf").read_text()


def test_units_are_enabled_and_tty1_belongs_to_the_console(tree: Path, first_run: object) -> None:
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    for unit in ("checkpoint.service", "checkpoint-beacon.service",
                 "checkpoint-enroll.service", "checkpoint-console.service"):  # fmt: skip
        assert os.readlink(wants / unit) == f"/usr/local/lib/systemd/system/{unit}"
    timer = tree / "etc/systemd/system/timers.target.wants/checkpoint-maintenance.timer"
    assert timer.is_symlink()
    assert not (tree / "etc/systemd/system/getty.target.wants/getty@tty1.service").exists()
    enabled = _chroot(tree, "systemctl", "is-enabled", "checkpoint.service")
    assert enabled.stdout.strip() == "enabled", enabled.stdout + enabled.stderr


def test_the_venv_runs_checkpoint_with_debians_bindings(tree: Path, first_run: object) -> None:
    venv = tree / "opt/checkpoint/venv"
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    imports = _chroot(
        tree, "/opt/checkpoint/venv/bin/python", "-c",
        "import dbus, gi, bleak, bluezero, gpiozero, sqlite_utils, rich, appliance;"
        "print(dbus.__file__); print(gi.__file__)",
    )  # fmt: skip
    assert imports.returncode == 0, imports.stderr
    # dbus-python and PyGObject are Debian's, not compiled by pip.
    assert all(line.startswith("/usr/lib/python3/dist-packages/") for line in
               imports.stdout.split()), imports.stdout  # fmt: skip
    decoded = _chroot(tree, "/opt/checkpoint/venv/bin/checkpoint", "decode", "--json", "0303564E")
    assert decoded.returncode == 0, decoded.stderr
    assert json.loads(decoded.stdout)["protocol"] == "bluezone"
    config = _chroot(
        tree, "/opt/checkpoint/venv/bin/python", "-c",
        "from appliance.config import load_config;"
        "c = load_config('/etc/checkpoint/checkpoint.toml');"
        "print(c.ble.scanning, c.checkpoint.id)",
    )  # fmt: skip
    assert config.stdout.split() == ["passive", "UNENROLLED"], config.stderr


def test_a_second_run_changes_nothing(checkout: Path, tree: Path, first_run: object) -> None:
    before = _snapshot(tree)
    again = _install(checkout, tree, "--no-start")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().splitlines() == [
        "install: nothing to change: Checkpoint is installed as this checkout describes"
    ], again.stdout
    assert _snapshot(tree) == before
    assert not (tree / "var/tmp/checkpoint-install").exists()  # the staged source is gone
    assert not os.path.ismount(tree / "proc")


def test_the_pi_gen_stage_runs_the_same_installer(
    checkout: Path, tree: Path, first_run: object
) -> None:
    env = {"PATH": os.environ["PATH"], "ROOTFS_DIR": str(tree)}
    result = subprocess.run(
        ["bash", str(checkout / PI_GEN_RUN)], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to change" in result.stdout


def test_an_edited_config_is_kept_and_a_damaged_unit_is_mended(
    checkout: Path, tree: Path, first_run: object
) -> None:
    config = tree / "etc/checkpoint/checkpoint.toml"
    config.write_text(config.read_text() + "\n# edited by IT\n")
    unit = tree / "usr/local/lib/systemd/system/checkpoint.service"
    unit.write_text("broken")
    os.chmod(tree / "var/lib/checkpoint", 0o777)
    os.chown(config, 0, 0)  # as an editor run as root may leave it
    result = _install(checkout, tree, "--no-start")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# edited by IT" in config.read_text()
    assert _owner(tree, config) == ("640", "root", "checkpoint")
    assert unit.read_bytes() == (checkout / "systemd/checkpoint.service").read_bytes()
    assert "install: file /usr/local/lib/systemd/system/checkpoint.service" in result.stdout
    assert _owner(tree, tree / "var/lib/checkpoint") == ("2770", "checkpoint", "checkpoint")
    assert "install: done: 3 changes" in result.stdout


def test_no_console_gives_tty1_back_and_the_console_can_take_it_again(
    checkout: Path, tree: Path, first_run: object
) -> None:
    wants = tree / "etc/systemd/system"
    console = wants / "multi-user.target.wants/checkpoint-console.service"
    getty = wants / "getty.target.wants/getty@tty1.service"
    result = _install(checkout, tree, "--no-console")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not console.exists() and getty.is_symlink()
    assert "install: done: 1 changes" in result.stdout
    result = _install(checkout, tree, "--no-start")
    assert result.returncode == 0, result.stdout + result.stderr
    assert console.is_symlink() and not getty.exists()
    assert "install: done: 2 changes" in result.stdout


def test_nothing_is_left_behind_for_an_image(tree: Path, first_run: object) -> None:
    """What a pi-gen image would carry: no download caches, no build files, no staged source."""
    assert not list((tree / "var/cache/apt/archives").glob("*.deb"))
    assert not (tree / "root/.cache/pip").exists()
    assert not (tree / "usr/sbin/policy-rc.d").exists()
    assert not (tree / "var/tmp/checkpoint-install").exists()
    assert not os.path.ismount(tree / "proc")


def test_clear_errors_for_a_bad_root(checkout: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the installer refuses to run without root before anything else")
    result = _install(checkout, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"install: error: --root: {tmp_path} is not a Debian tree (no etc/os-release or bin/bash)"
    )
    result = _install(checkout, tmp_path / "absent")
    assert result.returncode == 1
    assert "no directory" in result.stderr
    bad = subprocess.run(
        [str(checkout / "provisioning" / "install.sh"), "--frobnicate"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "unknown option --frobnicate" in bad.stderr
