"""appliance.clock.is_synchronized: the kernel's answer when it can be had, and never a
"synchronised" made up when it cannot (a seccomp filter or ProtectClock= refusing adjtimex)."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import pytest

from appliance import clock


class _Refused:
    """adjtimex as a sandbox answers it: -1 (EPERM), whatever is asked."""

    def __call__(self, timex: Any) -> int:
        ctypes.set_errno(1)
        return -1


def test_the_kernels_answer_is_used_when_there_is_one() -> None:
    function = clock._adjtimex()
    assert function is not None  # glibc on Linux
    timex = clock._Timex()
    state = function(ctypes.byref(timex))
    assert state >= 0
    assert clock.is_synchronized() is (state != clock.TIME_ERROR)


@pytest.mark.parametrize("flag", [True, False])
def test_a_refused_adjtimex_falls_back_to_timesyncds_flag_and_never_guesses(
    flag: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "_adjtimex", lambda: _Refused())
    marker = tmp_path / "synchronized"
    if flag:
        marker.touch()
    monkeypatch.setattr(clock, "TIMESYNC_FLAG", str(marker))
    assert clock.is_synchronized() is flag


def test_without_adjtimex_at_all_the_flag_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "_adjtimex", lambda: None)
    monkeypatch.setattr(clock, "TIMESYNC_FLAG", str(tmp_path / "absent"))
    assert clock.is_synchronized() is False
