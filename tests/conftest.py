"""Shared fixtures: run the real ``checkpoint`` command in-process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.cli import main

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def real_capture(name: str) -> Path:
    """A real capture from ``../shared/captures``: skipped on a laptop without it, but a
    failure in CI, where shared/ is always laid beside the repository."""
    path = SHARED / "captures" / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"real capture {path} is missing in CI")
        pytest.skip(f"real capture {path} is not on this machine")
    return path


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Call ``checkpoint`` in-process: ``cli("decode", "0303564E")`` → Result."""
    monkeypatch.setenv("CHECKPOINT_CONFIG", "")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Result:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_checkpoint(args: Sequence[str], **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """Run the installed console script as a separate process."""
    env = {**os.environ, **kwargs.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        env=env,
        **kwargs,
    )
