"""Parsed records -> their claims: the pure, costly half of an import, on one core or many.

A provider record goes through its injected normalizer and each observation becomes an
imported one (kind imported, source import:<name>), beside the record's original values;
a record core parsed itself is already a claim. A normalizer that refuses a record gives
a `BadRow`, as a parser does. Nothing here counts, dedupes or decides whether a bad record
stops the import: the importer does that, in order, in the main process.

`resolve` runs in the importer's own process. `resolve_in_workers` does the same work in
worker processes (core.parallel) on chunks of a JSON-lines file (every line of one stands
alone), and hands back exactly what `resolve` would have, in the same order.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from pydantic import ValidationError

from core.errors import PortintelError
from core.importers import censys_export, netlas_export, shodan_export
from core.importers.parsed import BadRow, Context, Ignored, Parsed, Parser, ProviderRow, Row
from core.importers.records import Format, LazyValues, Normalizer, worked_out
from core.models import Kind, Observation
from core.parallel import ordered_map

CHUNK_LINES = 2000
"""Lines per task for a worker: large enough to amortise the hand-over, small enough that
the chunks in flight stay a few megabytes."""

LINE_PARSERS: dict[Format, Parser] = {
    Format.SHODAN: shodan_export.parse_lines,
    Format.CENSYS: censys_export.parse_lines,
    Format.NETLAS: netlas_export.parse_lines,
}
"""Formats whose JSON-lines files can be parsed in chunks, with the parser that does it."""

_IMPORTED_FIELDS = frozenset({"kind", "source"})


class Mapped(NamedTuple):
    """One record's claims: each observation with the original values behind it.

    A named tuple, made once per record (see ProviderRow)."""

    line: int
    claims: list[tuple[Observation, LazyValues]]

    def materialized(self) -> Mapped:
        """The same claims with their values worked out (to send them to another process)."""
        return Mapped(
            self.line,
            [(obs, worked_out(values)) for obs, values in self.claims],
        )


Resolved = Mapped | BadRow | Ignored


@dataclass(frozen=True)
class Resolver:
    """Maps parsed records onto claims for one file."""

    format: Format
    source: str  # import:<name>
    normalizer: Normalizer | None

    def __call__(self, items: Iterable[Parsed]) -> Generator[Resolved, None, None]:
        for item in items:
            if isinstance(item, Row):
                yield Mapped(item.line, [(item.observation, item.values)])
            elif isinstance(item, ProviderRow):
                yield self._provider(item)
            else:
                yield item

    def _provider(self, item: ProviderRow) -> Mapped | BadRow:
        assert self.normalizer is not None
        try:
            observations = self.normalizer(item.raw)
        except (PortintelError, ValidationError, ValueError, TypeError, KeyError) as exc:
            return BadRow(
                item.line,
                f"not the documented {self.format.value} shape",
                f"{item.raw.source} record: {one_line(exc)}",
            )
        return Mapped(
            item.line,
            [(self._imported(obs), partial(item.values_for, obs.endpoint)) for obs in observations],
        )

    def _imported(self, obs: Observation) -> Observation:
        # Relabelled in place, not copied: a normalizer's observations are new objects that
        # nothing else holds yet (normalizers are pure), and a copy per claim cost a few per
        # cent of a Shodan import. Same values as model_copy(update=...), same fields set.
        values = obs.__dict__
        values["kind"] = Kind.IMPORTED
        values["source"] = self.source
        object.__setattr__(
            obs, "__pydantic_fields_set__", obs.__pydantic_fields_set__ | _IMPORTED_FIELDS
        )
        return obs


def resolve(
    parser: Parser, lines: Iterable[tuple[int, str]], ctx: Context, resolver: Resolver
) -> Generator[Resolved, None, None]:
    """Every record of `lines`, resolved in this process."""
    return resolver(parser(lines, ctx))


def resolve_in_workers(
    lines: Iterable[tuple[int, str]], ctx: Context, resolver: Resolver, workers: int
) -> Generator[Resolved, None, None]:
    """`resolve` for a JSON-lines file of a LINE_PARSERS format, in `workers` processes.

    `lines` is read here, in order, CHUNK_LINES at a time. An error while reading (a
    truncated gzip stream) is raised only after every line read before it is resolved
    and handed over, as `resolve` would have.
    """
    failure: list[BaseException] = []

    def chunks() -> Iterator[list[tuple[int, str]]]:
        chunk: list[tuple[int, str]] = []
        try:
            for numbered in lines:
                chunk.append(numbered)
                if len(chunk) >= CHUNK_LINES:
                    yield chunk
                    chunk = []
        except Exception as exc:  # raised below, once the lines before it are handed over
            failure.append(exc)
        if chunk:
            yield chunk

    job = (LINE_PARSERS[ctx.format], ctx, resolver)
    batches = ordered_map(
        _resolve_chunk, chunks(), workers=workers, initializer=_init, initargs=job
    )
    with closing(batches):  # closing this generator early stops the workers at once
        for batch in batches:
            yield from batch
    if failure:
        raise failure[0]


# -- in a worker process -------------------------------------------------------------------

_job: tuple[Parser, Context, Resolver] | None = None


def _init(parser: Parser, ctx: Context, resolver: Resolver) -> None:
    # Per-process state, set once as a worker starts: chunks then carry only their lines.
    global _job
    _job = (parser, ctx, resolver)


def _resolve_chunk(chunk: list[tuple[int, str]]) -> list[Resolved]:
    assert _job is not None, "core.parallel runs _init first"
    parser, ctx, resolver = _job
    return [
        item.materialized() if isinstance(item, Mapped) else item
        for item in resolve(parser, chunk, ctx, resolver)
    ]


def one_line(exc: Exception) -> str:
    """A library's multi-line message (pydantic's) as one capped line."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
