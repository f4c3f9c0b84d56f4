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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from core.errors import InputError, PortintelError
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
from core.importers.parsed import BadRow, Context, Ignored, Parser, ProviderRow, Row
from core.importers.reader import LineReader, TruncatedInput
from core.importers.records import (
    PROVIDER_FORMATS,
    Format,
    ImportedClaim,
    ImportReport,
    Normalizer,
    Origin,
    Values,
)
from core.models import Kind, Observation, utcnow

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
    _consumed: bool = field(default=False)

    def __iter__(self) -> Iterator[ImportedClaim]:
        if self._consumed:
            raise RuntimeError("an ImportStream can be iterated once")
        self._consumed = True
        reader = LineReader(self.path)
        seen = SeenEndpoints()
        try:
            yield from self._claims(reader, seen)
        except TruncatedInput as exc:
            if not self._skip_bad:
                raise self._stopped(exc, exc.line or reader.line) from exc
            self.report.complete = False
            self.report.skip("truncated file", exc.line or reader.line, str(exc))
        finally:
            seen.close()
            note = reader.encoding_note()
            if note:
                self.report.note(note)

    def _claims(self, reader: LineReader, seen: SeenEndpoints) -> Iterator[ImportedClaim]:
        report = self.report
        parser = PARSERS[self.format]
        record = 0
        for item in parser(reader, self._context):
            report.read += 1
            record += 1
            if isinstance(item, Row):
                claim = self._claim(item.observation, item.line, record, item.values, seen)
                if claim is not None:
                    yield claim
            elif isinstance(item, ProviderRow):
                observations = self._normalize(item)
                if observations is None:
                    continue
                for obs in observations:
                    imported = obs.model_copy(update={"kind": Kind.IMPORTED, "source": self.source})
                    values = item.values_for(obs.endpoint)
                    claim = self._claim(imported, item.line, record, values, seen)
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
        self, obs: Observation, line: int, record: int, values: Values, seen: SeenEndpoints
    ) -> ImportedClaim | None:
        if not seen.add(obs.endpoint):
            self.report.duplicate(line)
            return None
        self.report.imported += 1
        return ImportedClaim(obs, Origin(self._context.file, line, record), values)

    def _normalize(self, item: ProviderRow) -> list[Observation] | None:
        assert self._normalizer is not None
        try:
            return self._normalizer(item.raw)
        except (PortintelError, ValidationError, ValueError, TypeError, KeyError) as exc:
            self._bad(
                BadRow(
                    item.line,
                    f"not the documented {self.format.value} shape",
                    f"{item.raw.source} record: {_one_line(exc)}",
                )
            )
            return None

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


def _one_line(exc: Exception) -> str:
    """A library's multi-line message (pydantic's) as one capped line."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def import_file(
    path: Path,
    *,
    normalizers: Mapping[str, Normalizer] | None = None,
    source_name: str | None = None,
    skip_bad: bool = False,
    column_map: Mapping[str, str] | None = None,
    fmt: Format | None = None,
    now: datetime | None = None,
) -> ImportStream:
    """Open a findings file for import. Detection errors and a missing normalizer raise
    here, before any claim is read.

    `normalizers` maps a provider name (shodan, censys, netlas) to its pure normalize
    function; `source_name` names the source (`import:<name>`, default the format);
    `column_map` maps CSV columns (case-insensitive) to fields; `fmt` skips detection.
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
    return ImportStream(path, fmt, source, report, context, normalizer, skip_bad)
