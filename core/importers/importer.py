"""Importing one findings file: detect its format, parse it, map it, count everything.

`import_file` returns an `ImportStream`: iterate it for `ImportedClaim`s (generators end to
end, so a 1 GB file needs no more memory than a small one); its `report` is final once the
iteration ends. Provider-shaped files (Shodan, Censys, Netlas) are mapped by the provider
normalizers the caller injects, since core cannot import connectors; the other formats
are mapped here.

Bad records: without `skip_bad`, the first one raises `InputError` naming the file and
line, and says how many claims were delivered before it. With `skip_bad` it is counted in
the report under its reason and the import goes on (or, when the parser cannot resume,
stops and marks the report incomplete). Duplicate endpoints are dropped and counted.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.errors import InputError
from core.importers import (
    censys_export,
    csv_rows,
    masscan,
    naabu,
    netlas_export,
    nmap_xml,
    shodan_export,
)
from core.importers.dedupe import SeenEndpoints
from core.importers.detect import detect
from core.importers.jsonstream import is_json_lines, opening_lines
from core.importers.parsed import BadRow, Context, Ignored, Parser
from core.importers.reader import LineReader, TruncatedInput
from core.importers.records import (
    PROVIDER_FORMATS,
    Format,
    ImportedClaim,
    ImportReport,
    LazyValues,
    Normalizer,
    Origin,
)
from core.importers.resolve import (
    LINE_PARSERS,
    Mapped,
    Resolved,
    Resolver,
    resolve,
    resolve_in_workers,
)
from core.models import Observation, utcnow

PARSERS: dict[Format, Parser] = {
    Format.NMAP_XML: nmap_xml.parse,
    Format.MASSCAN_JSON: masscan.parse_json,
    Format.MASSCAN_LIST: masscan.parse_list,
    Format.NAABU: naabu.parse,
    Format.SHODAN: shodan_export.parse,
    Format.CENSYS: censys_export.parse,
    Format.NETLAS: netlas_export.parse,
    Format.CSV: csv_rows.parse,
}


@dataclass
class ImportStream:
    """The claims of one file, streamed; `report` is complete after iteration."""

    path: Path
    format: Format
    source: str
    report: ImportReport
    _context: Context
    _normalizer: Normalizer | None
    _skip_bad: bool
    _workers: int = 1
    _consumed: bool = field(default=False)

    def __iter__(self) -> Iterator[ImportedClaim]:
        if self._consumed:
            raise RuntimeError("an ImportStream can be iterated once")
        self._consumed = True
        reader = LineReader(self.path)
        seen = SeenEndpoints()
        items = self._resolved(reader)
        try:
            yield from self._claims(items, seen)
        except TruncatedInput as exc:
            if not self._skip_bad:
                raise self._stopped(exc, exc.line or reader.line) from exc
            self.report.complete = False
            self.report.skip("truncated file", exc.line or reader.line, str(exc))
        finally:
            items.close()  # stops worker processes now, not when garbage is collected
            seen.close()
            note = reader.encoding_note()
            if note:
                self.report.note(note)

    def _resolved(self, reader: LineReader) -> Generator[Resolved, None, None]:
        """The file's records mapped onto claims: here, or in worker processes when the
        file is a provider's JSON lines and `workers` > 1 (same items, same order)."""
        resolver = Resolver(self.format, self.source, self._normalizer)
        lines: Iterator[tuple[int, str]] = iter(reader)
        if self._workers > 1 and self.format in LINE_PARSERS:
            opening = opening_lines(lines)
            lines = itertools.chain(opening, lines)
            if is_json_lines(opening):
                return resolve_in_workers(lines, self._context, resolver, self._workers)
        return resolve(PARSERS[self.format], lines, self._context, resolver)

    def _claims(self, items: Iterator[Resolved], seen: SeenEndpoints) -> Iterator[ImportedClaim]:
        report = self.report
        for record, item in enumerate(items, start=1):
            report.read += 1
            if isinstance(item, Mapped):
                for obs, values in item.claims:
                    claim = self._claim(obs, item.line, record, values, seen)
                    if claim is not None:
                        yield claim
            elif isinstance(item, BadRow):
                self._bad(item)
                if not item.resumable:
                    report.complete = False
                    return
            elif isinstance(item, Ignored):
                report.ignore(item.reason)

    def _claim(
        self, obs: Observation, line: int, record: int, values: LazyValues, seen: SeenEndpoints
    ) -> ImportedClaim | None:
        if not seen.add(obs.endpoint):
            self.report.duplicate(line)
            return None
        self.report.imported += 1
        return ImportedClaim(obs, Origin(self._context.file, line, record), values)

    def _bad(self, item: BadRow) -> None:
        if not self._skip_bad:
            raise self._stopped(InputError(item.message), item.line)
        self.report.skip(item.reason, item.line, item.message)

    def _stopped(self, exc: InputError, line: int) -> InputError:
        message = str(exc).removeprefix(f"{self._context.file}:{exc.line}: ")
        message = message.removeprefix(f"{self._context.file}: ")
        delivered = self.report.imported
        return InputError(
            f"{message} (the import stopped here after {delivered:,} claim(s); "
            "--skip-bad keeps the valid records and reports the rest)",
            file=self._context.file,
            line=line,
        )


def import_file(
    path: Path,
    *,
    normalizers: Mapping[str, Normalizer] | None = None,
    source_name: str | None = None,
    skip_bad: bool = False,
    column_map: Mapping[str, str] | None = None,
    fmt: Format | None = None,
    now: datetime | None = None,
    workers: int = 1,
) -> ImportStream:
    """Open a findings file for import. Detection errors and a missing normalizer raise
    here, before any claim is read.

    `normalizers` maps a provider name (shodan, censys, netlas) to its pure normalize
    function; `source_name` names the source (`import:<name>`, default the format);
    `column_map` maps CSV columns (case-insensitive) to fields; `fmt` skips detection;
    `workers` > 1 maps a provider's JSON-lines file in that many processes
    (core.parallel: same claims, same report, in the same order).
    """
    fmt = fmt or detect(path)
    normalizer = None
    if fmt in PROVIDER_FORMATS:
        normalizer = (normalizers or {}).get(fmt.value)
        if normalizer is None:
            raise InputError(
                f"a {fmt.value} export needs the {fmt.value} normalizer, which this "
                "build was not given",
                file=str(path),
            )
    name = (source_name or fmt.value).strip()
    source = name if name.startswith("import:") else f"import:{name}"
    context = Context(
        file=str(path),
        format=fmt,
        source=source,
        fetched_at=now or utcnow(),
        column_map={k.strip().lower(): v for k, v in (column_map or {}).items()},
    )
    report = ImportReport(file=str(path), format=fmt, source=source)
    return ImportStream(path, fmt, source, report, context, normalizer, skip_bad, workers)
