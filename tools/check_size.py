"""Fail when a module or a function has grown too big to read in one sitting.

`make lint` runs this over appliance/, collector/ and bench/. There is deliberately no exemption
list: a file over the limits gets split, not excused. Test directories and files marked
`@generated` in their first lines are skipped. Standard library only, so it runs before any
install.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
DEFAULT_PATHS = ("appliance", "collector", "bench")
# Looked for in a file's first lines; tools that write code put it there.
GENERATED_MARKER = "@generated"
GENERATED_HEADER_LINES = 5


def python_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Every .py file under `paths`, tests aside, in a stable order."""
    for root in paths:
        candidates = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in candidates:
            if not _is_test(path):
                yield path


def _is_test(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test_") or path.name == "conftest.py"


def _is_generated(lines: Sequence[str]) -> bool:
    return any(GENERATED_MARKER in line for line in lines[:GENERATED_HEADER_LINES])


def check_source(path: str, source: str) -> list[str]:
    """The problems in one module's source, as `path:line: ...` messages."""
    lines = source.splitlines()
    if _is_generated(lines):
        return []
    problems = []
    if len(lines) > MAX_MODULE_LINES:
        problems.append(
            f"{path}:1: module is {len(lines)} lines (limit {MAX_MODULE_LINES})",
        )
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        return [*problems, f"{path}:{error.lineno or 1}: cannot parse: {error.msg}"]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # From the `def` line to the last line of the body; decorators are not counted.
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(
                    f"{path}:{node.lineno}: function {node.name} is {length} lines "
                    f"(limit {MAX_FUNCTION_LINES})",
                )
    return sorted(problems, key=_line_number)


def _line_number(problem: str) -> int:
    return int(problem.split(":")[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path(p) for p in DEFAULT_PATHS],
        help=f"files or directories to check (default: {' '.join(DEFAULT_PATHS)})",
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"no such file or directory: {', '.join(missing)}")
    problems = [
        problem
        for path in python_files(args.paths)
        for problem in check_source(str(path), path.read_text(encoding="utf-8"))
    ]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
