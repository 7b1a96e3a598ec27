"""`checkpoint console` run by a user who cannot write the daemon's inbox (not in its group): a
view-only screen that says why and how to fix it, `n` and `m` refused with a notice, never a
traceback. Run as the real unprivileged user `nobody` (root can write anywhere)."""

from __future__ import annotations

import fcntl
import grp
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import inbox
from appliance.i18n import text
from tests.builders import as_user
from tests.test_daemon import write_config

REPO = Path(__file__).resolve().parent.parent
GROUP = "daemon"  # stands for `checkpoint`: a group `nobody` is not in
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the console as nobody")


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Path]:
    """A folder `nobody` may enter (pytest's own are root's only)."""
    place = Path(tempfile.mkdtemp(prefix="checkpoint-view-only-"))
    place.chmod(0o755)
    try:
        yield place
    finally:
        shutil.rmtree(place)


def locked_out(tmp_path: Path) -> Path:
    """A unit's state folder as installed: the data readable by all here (so that the screen
    has something to show), the inbox the daemon's group's only (2770)."""
    config = write_config(tmp_path)
    data = tmp_path / "data"
    directory = inbox.inbox_dir(data / "visits.db")
    directory.mkdir(parents=True)
    data.chmod(0o755)
    os.chown(directory, 0, grp.getgrnam(GROUP).gr_gid)
    directory.chmod(0o2770)
    return config


def as_nobody(*args: str) -> list[str]:
    return as_user("nobody", *args)


def env_for(config: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "RUNTIME_DIRECTORY": str(config.parent / "data"),
            "HOME": "/tmp", **extra}  # fmt: skip


def test_a_user_outside_the_group_gets_a_view_only_screen_that_says_why(unit: Path) -> None:
    config = locked_out(unit)
    result = subprocess.run(
        as_nobody("console", "--once", "--config", str(config)),
        capture_output=True, text=True, env=env_for(config, COLUMNS="300"), timeout=60,
        cwd="/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no traceback (a PermissionError one before)
    expected = text("fault_view_only", "vi").format(user="nobody", group=GROUP)
    assert expected in result.stdout.splitlines()
    assert "usermod -aG daemon nobody" in expected


def read_until(fd: int, wanted: str, timeout: float) -> str:
    """The terminal's output (escape sequences removed) until ``wanted`` shows in it."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the console exited: the terminal's other side is closed
                break
            shown = ANSI.sub(b"", seen).decode("utf-8", "replace")
            if wanted in shown:
                return shown
    raise AssertionError(f"{wanted!r} never shown in {ANSI.sub(b'', seen)[-2000:]!r}")


def test_the_keys_that_would_write_say_view_only_instead(unit: Path) -> None:
    """On a real terminal: `n` shows the notice instead of a form typed in for nothing;
    nothing is written into the inbox."""
    config = locked_out(unit)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        as_nobody("console", "--duration", "60", "--config", str(config)),
        stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env_for(config, TERM="linux"),
        cwd="/", start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        alert = text("fault_view_only", "vi").format(user="nobody", group=GROUP)
        read_until(master, alert[:60], timeout=30)
        os.write(master, b"n")
        shown = read_until(master, text("view_only_notice", "vi"), timeout=15)
        assert text("form_title", "vi") not in shown
        os.write(master, b"q")
        assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None and proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
        os.close(master)
    assert sorted(os.listdir(inbox.inbox_dir(unit / "data" / "visits.db"))) == []
