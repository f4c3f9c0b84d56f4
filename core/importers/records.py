"""What an import produces: claims that remember where they came from, and a report.

An `ImportedClaim` is one third-party claim about one endpoint: the Observation portintel
reasons with, plus its origin (file, line, record number) and the original row's values, so
a verdict can be printed beside the row the user gave us. The `ImportReport` says what
happened to every record: imported, duplicate, skipped (with the reason and line) or
ignored (not a port claim at all), so nothing is half-imported without saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from core.models import Observation, RawRecord

Scalar = str | int | float | bool | None
Values = Mapping[str, Scalar]
LazyValues = Values | Callable[[], Values]
"""Values, or how to get them: most imports never read them (only verdicts print them)."""


def worked_out(values: LazyValues) -> Values:
    """The values themselves, calling for them if they are not worked out yet."""
    return values() if callable(values) else values


Normalizer = Callable[[RawRecord], list[Observation]]
"""A provider's pure mapping of one raw record onto observations (a connector's `normalize`)."""

EXAMPLES_KEPT = 20
"""Lines remembered per skip reason: the count is exact, the examples are capped."""


class Format(StrEnum):
    """The formats `import` understands, told apart by content (core.importers.detect)."""

    NMAP_XML = "nmap"
    MASSCAN_JSON = "masscan"
    MASSCAN_LIST = "masscan-list"
    NAABU = "naabu"
    SHODAN = "shodan"
    CENSYS = "censys"
    NETLAS = "netlas"
    CSV = "csv"


PROVIDER_FORMATS = frozenset({Format.SHODAN, Format.CENSYS, Format.NETLAS})
"""Formats whose records are mapped by an injected provider normalizer, not by core."""


class Origin(NamedTuple):
    """Where a claim was read: the file, its line (1-based) and the record's number in it.

    A named tuple, made once per claim (see core.importers.parsed.ProviderRow)."""

    file: str
    line: int
    record: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class ImportedClaim:
    """One imported claim: the observation, where it came from and the row as written.

    The row's values are worked out on first use: `portintel import` stores only the
    observation, and working them out for every line cost about a tenth of a Shodan import.
    """

    __slots__ = ("_values", "observation", "origin")

    def __init__(self, observation: Observation, origin: Origin, values: LazyValues) -> None:
        self.observation = observation
        self.origin = origin
        self._values = values

    @property
    def values(self) -> Values:
        self._values = worked_out(self._values)
        return self._values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImportedClaim):
            return NotImplemented
        return (self.observation, self.origin, self.values) == (
            other.observation,
            other.origin,
            other.values,
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, and mutable (its values)

    def __repr__(self) -> str:
        return f"ImportedClaim({self.observation!r}, {self.origin!r}, {self.values!r})"


@dataclass(frozen=True, slots=True)
class Skip:
    """One record that could not be imported."""

    line: int
    message: str


@dataclass
class SkipGroup:
    count: int = 0
    examples: list[Skip] = field(default_factory=list)


@dataclass
class ImportReport:
    """Counts of what happened to a file's records; filled in while the claims stream.

    `read` counts records (rows, lines, JSON records, nmap ports); one provider record can
    yield several claims, so `imported + duplicates` may exceed `read`. `complete` is False
    when the import stopped before the end of the file (a truncated gzip, an unreadable
    JSON document): the claims read until then were still delivered.
    """

    file: str
    format: Format
    source: str
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    duplicate_lines: list[int] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, SkipGroup] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    complete: bool = True

    @property
    def skipped_count(self) -> int:
        return sum(group.count for group in self.skipped.values())

    def skip(self, reason: str, line: int, message: str) -> None:
        group = self.skipped.setdefault(reason, SkipGroup())
        group.count += 1
        if len(group.examples) < EXAMPLES_KEPT:
            group.examples.append(Skip(line, message))

    def ignore(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1

    def duplicate(self, line: int) -> None:
        self.duplicates += 1
        if len(self.duplicate_lines) < EXAMPLES_KEPT:
            self.duplicate_lines.append(line)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)

    def summary(self) -> str:
        """One line: what a person reads first."""
        parts = [
            f"{self.file}: {self.format.value}, {self.read:,} records read",
            f"{self.imported:,} claims imported as {self.source}",
            f"{self.duplicates:,} duplicates",
            f"{self.skipped_count:,} skipped",
        ]
        if self.ignored:
            parts.append(f"{sum(self.ignored.values()):,} ignored")
        text = ", ".join(parts)
        return text if self.complete else text + " (stopped before the end of the file)"

    def details(self) -> list[str]:
        """The reasons behind the counts, one line each, with example line numbers."""
        lines: list[str] = []
        for reason, group in self.skipped.items():
            first = group.examples[0]
            where = ", ".join(str(s.line) for s in group.examples[:5])
            more = " ..." if group.count > 5 else ""
            lines.append(
                f"skipped {group.count:,} ({reason}) at line {where}{more}: e.g. {first.message}"
            )
        if self.duplicates:
            where = ", ".join(str(n) for n in self.duplicate_lines[:5])
            more = " ..." if self.duplicates > 5 else ""
            lines.append(
                f"dropped {self.duplicates:,} duplicate claims (same ip, port and transport "
                f"as an earlier one) at line {where}{more}"
            )
        lines.extend(f"ignored {n:,}: {reason}" for reason, n in self.ignored.items())
        lines.extend(self.notes)
        return lines

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for machine-readable output."""
        return {
            "file": self.file,
            "format": self.format.value,
            "source": self.source,
            "read": self.read,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "duplicate_lines": list(self.duplicate_lines),
            "skipped": {
                reason: {
                    "count": group.count,
                    "examples": [{"line": s.line, "message": s.message} for s in group.examples],
                }
                for reason, group in self.skipped.items()
            },
            "ignored": dict(self.ignored),
            "notes": list(self.notes),
            "complete": self.complete,
        }
