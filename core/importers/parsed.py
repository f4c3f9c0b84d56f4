"""What a format's parser hands the importer, one item per record it read.

Parsers are generators over numbered lines. They never raise for a bad record: they
yield a `BadRow`, and the importer decides (by `skip_bad`) whether that stops the import.
A `Row` is a claim core mapped itself (nmap, masscan, naabu, CSV); a `ProviderRow` is a
provider-shaped record that an injected normalizer maps; `Ignored` is a record that makes
no port claim (a masscan banner line, an nmap "unfiltered" port).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from core.importers.records import Format, Values
from core.models import Endpoint, Observation, RawRecord


@dataclass(frozen=True, slots=True)
class Context:
    """What every parser of one file knows."""

    file: str
    format: Format
    source: str  # import:<format>, or import:<--source-name>
    fetched_at: datetime  # when the import ran
    column_map: dict[str, str]  # CSV only: file column (lower-case) -> portintel field


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    observation: Observation
    values: Values


class ProviderRow(NamedTuple):
    # A named tuple: immutable like the dataclasses here, and made once per line of a
    # provider's file in a third of a frozen dataclass's time.
    line: int
    raw: RawRecord
    values_for: Callable[[Endpoint], Values]  # the original values behind one claim


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str  # groups like problems in the report ("port out of range")
    message: str
    resumable: bool = True  # False: the parser cannot go on (broken XML, broken JSON document)


@dataclass(frozen=True, slots=True)
class Ignored:
    line: int
    reason: str


Parsed = Row | ProviderRow | BadRow | Ignored


class Parser(Protocol):
    def __call__(self, lines: Iterable[tuple[int, str]], ctx: Context) -> Iterator[Parsed]: ...
