"""Cells a spreadsheet opens safely: a text cell Excel would run as a formula is neutralised,
and CSV files start with the byte-order mark that makes Excel read UTF-8."""

from __future__ import annotations

from typing import Any, Final

# OWASP's list of the first characters that make Excel, LibreOffice and Sheets evaluate a cell.
FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
BOM: Final = "\ufeff"  # Excel reads a CSV file as UTF-8 only with it


def csv_safe(value: Any) -> Any:
    """A cell Excel would run as a formula, neutralised with a leading ``'`` (OWASP)."""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value
