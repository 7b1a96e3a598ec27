"""sd_notify and the watchdog against a real AF_UNIX datagram socket, as systemd listens."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.sdnotify import Notifier
from tests.test_daemon import runtime_env, write_config


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_ready_status_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("recording at TQ-01")
    assert received(sock) == {"READY": "1", "MAINPID": str(os.getpid()),
                              "STATUS": "recording at TQ-01"}  # fmt: skip
    assert notifier.status("ok") and received(sock) == {"STATUS": "ok"}
    assert notifier.stopping() and received(sock) == {"STOPPING": "1"}
    notifier.close()


def test_the_abstract_namespace_works_too() -> None:
    name = f"checkpoint-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock)["READY"] == "1"
    finally:
        sock.close()


def test_watchdog_pings_at_half_the_interval_and_only_for_this_process(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    assert notifier.watchdog_s == 1.0
    assert notifier.watchdog(now=100.0) and received(sock) == {"WATCHDOG": "1"}
    assert not notifier.watchdog(now=100.4)  # less than half the interval since
    assert notifier.watchdog(now=100.5) and received(sock) == {"WATCHDOG": "1"}
    other = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None and not other.watchdog()  # meant for another process


def test_outside_systemd_or_with_the_socket_gone_nothing_breaks(tmp_path: Path) -> None:
    quiet = Notifier({})
    assert not quiet.enabled and not quiet.ready() and not quiet.watchdog()
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not gone.ready()  # logged once, never raised
    assert not gone.stopping()


@pytest.mark.slow
def test_the_daemon_says_ready_pings_from_its_loop_and_says_stopping(
    listener: tuple[socket.socket, str], tmp_path: Path
) -> None:
    sock, path = listener
    config = write_config(tmp_path)
    env = {**os.environ, **runtime_env(config), "CHECKPOINT_LOG_LEVEL": "WARNING",
           "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}  # fmt: skip
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--simulate", "--config", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        messages = [received(sock)]
        ready_at = time.monotonic()
        pings = []
        while len(pings) < 4 and time.monotonic() - ready_at < 15:
            message = received(sock)
            messages.append(message)
            if message.get("WATCHDOG") == "1":
                pings.append(time.monotonic())
        assert "READY" in messages[0] and messages[0]["MAINPID"] == str(proc.pid)
        assert (config.parent / "data" / "visits.db").exists()  # ready means recording
        assert len(pings) == 4
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        # Half the 2 s interval, on a loop that ticks every 0.5 s: well inside the 2 s.
        assert all(0.8 < gap < 1.8 for gap in gaps), gaps
        proc.send_signal(signal.SIGTERM)
        while "STOPPING" not in (message := received(sock)):
            pass
        assert message["STOPPING"] == "1"
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
