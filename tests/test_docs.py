"""The README is the front door: every command and configuration key must be in it."""

from __future__ import annotations

from appliance.cli import build_parser
from appliance.config import documented_keys
from tests.builders import subcommands
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_command_is_documented_in_the_readme() -> None:
    commands = list(subcommands(build_parser()))
    assert len(commands) >= 7
    missing = [c for c in commands if f"`{c}" not in README]
    assert missing == []


def test_every_config_key_is_documented_in_the_readme() -> None:
    missing = [f"[{s}] {k}" for s, k, _, _ in documented_keys() if f"`{k}`" not in README]
    assert missing == []


def test_readme_gives_the_two_setup_commands() -> None:
    assert "make demo" in README and "make test" in README
