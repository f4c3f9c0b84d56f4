"""Neutralising text that came from a banner or a provider before it reaches a person.

Hostile services send ANSI escapes, control bytes and spreadsheet formulas on purpose.
Terminal and CSV output pass through here; HTML output is escaped by its own template.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def printable(text: str) -> str:
    """Control characters (escape sequences, bidi overrides) shown as \\xNN, not executed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def csv_cell(text: str) -> str:
    """A CSV cell no spreadsheet will evaluate: formula-like starts get a leading quote."""
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return printable(text)
