"""The doctor's building blocks: a check's result, and whose file access counts."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import CheckpointError

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    status: str  # PASS | WARN | FAIL
    name: str
    detail: str
    advice: str | None = None  # what to run; every FAIL has one

    def __post_init__(self) -> None:
        if self.status == FAIL and not self.advice:
            raise ValueError(f"a failing check needs advice: {self.name}")

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name}: {self.detail}"
        return f"{text}: {self.advice}" if self.advice else text

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "check",
            "status": self.status,
            "name": self.name,
            "detail": self.detail,
            "advice": self.advice,
        }


def failed(name: str, exc: CheckpointError, fallback: str) -> Check:
    return Check(FAIL, name, " ".join(exc.message.split()), exc.advice or fallback)


# ---------------------------------------------------------------------------------------------
# Whose access matters


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@dataclass(frozen=True, slots=True)
class Account:
    """The daemon's user, as far as file modes go."""

    uid: int
    gids: frozenset[int]
    name: str
    group: str  # its primary group's name, for advice

    def can(self, st: os.stat_result, *, read: bool = False, write: bool = False) -> bool:
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            bits = st.st_mode >> 6
        elif st.st_gid in self.gids:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        need = (4 if read else 0) | (2 if write else 0)
        return bits & need == need


def nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def daemon_account(state_dir: Path) -> Account:
    """The current user; as root, the owner of the state directory (the daemon's user)."""
    euid = os.geteuid()
    if euid != 0:
        gid = os.getegid()
        return Account(euid, frozenset(os.getgroups()) | {gid}, user_name(euid), group_name(gid))
    try:
        st = state_dir.stat()
    except OSError:
        st = None
    if st is None or st.st_uid == 0:
        return Account(0, frozenset({0}), "root", "root")
    name = user_name(st.st_uid)
    gids = {st.st_gid}  # systemd's Group= for the daemon
    try:
        gids.add(pwd.getpwuid(st.st_uid).pw_gid)
        gids |= {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    except KeyError:
        pass
    return Account(st.st_uid, frozenset(gids), name, group_name(st.st_gid))


# ---------------------------------------------------------------------------------------------
# Files: secrets, the configuration, the state directory, the visit log


def owner(st: os.stat_result) -> str:
    return f"{user_name(st.st_uid)}:{group_name(st.st_gid)}"


def described(path: Path, st: os.stat_result) -> str:
    """``path (user:group, mode 0640)``: how each check names a file it judges."""
    return f"{path} ({owner(st)}, mode {stat.S_IMODE(st.st_mode):04o})"
