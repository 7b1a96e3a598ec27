"""`appliance.commands`: every module adds a subcommand, `cli.py` wires them all, and README.md's
command list documents exactly the subcommands the parser has."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from types import ModuleType

import appliance.commands
from appliance.cli import COMMANDS, build_parser
from tests.builders import subcommands
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _command_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"appliance.commands.{info.name}")
        for info in pkgutil.iter_modules(appliance.commands.__path__)
        if not info.name.startswith("_")
    ]


def _readme_command_list() -> set[str]:
    """The commands named in the headings of README.md's "## Commands" section."""
    section = README.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    headings = [line for line in section.splitlines() if line.startswith("### ")]
    names = set()
    for heading in headings:
        for usage in re.findall(r"`(checkpoint [^`]*)`", heading):
            # The name is the leading words; options and placeholders (--x, [..], HEX) follow.
            names.add(re.match(r"checkpoint(?: [a-z][a-z-]*)+", usage)[0])  # type: ignore[index]
    return names


def test_every_subcommand_has_a_heading_in_the_readme_command_list() -> None:
    commands = set(subcommands(build_parser()))
    assert len(commands) >= 15
    assert sorted(commands - _readme_command_list()) == []


def test_the_readme_command_list_names_no_command_that_does_not_exist() -> None:
    assert sorted(_readme_command_list() - set(subcommands(build_parser()))) == []


def test_every_commands_module_registers_a_subcommand_with_its_own_handler() -> None:
    modules = _command_modules()
    assert len(modules) >= 10
    for module in modules:
        parser = argparse.ArgumentParser(prog="checkpoint")
        module.register(parser.add_subparsers())
        leaves = subcommands(parser)
        assert leaves, f"{module.__name__} registers no subcommand"
        for name, leaf in leaves.items():
            handler = leaf.get_default("handler")
            assert callable(handler), f"{name} has no handler"
            assert handler.__module__ == module.__name__, f"{name} runs another module's handler"


def test_the_parser_is_built_from_every_commands_module() -> None:
    assert sorted(m.__name__ for m in COMMANDS) == sorted(m.__name__ for m in _command_modules())


def test_every_subcommand_takes_config() -> None:
    for name, leaf in subcommands(build_parser()).items():
        options = {o for action in leaf._actions for o in action.option_strings}
        assert "--config" in options, f"{name} has no --config"


def test_provision_apply_help_gives_the_exit_codes_the_enrollment_unit_acts_on() -> None:
    from appliance.errors import EXIT_BAD_FILE, EXIT_REFUSED, EXIT_RETRY, CodeRefused, RetryLater

    description = " ".join(
        (subcommands(build_parser())["checkpoint provision apply"].description or "").split()
    )
    assert CodeRefused.exit_code == EXIT_REFUSED and RetryLater.exit_code == EXIT_RETRY
    assert f"{EXIT_RETRY} the collector (or the clock) is not ready" in description
    assert f"{EXIT_BAD_FILE} a bad file or option" in description
    assert f"{EXIT_REFUSED} the collector refused the code for good" in description
