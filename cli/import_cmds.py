"""`portintel import FILE`: the glue between the CLI, core's importers and the connectors.

core cannot import connectors, so this is where the providers' pure normalizers are handed
to the importer. Everything here is a plain function or a typer option alias; cli/app.py
registers the command.

The new export formats are in `EXPORTERS`, keyed by their `--format` names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TextIO

import typer

from cli.common import guard, note, settings
from connectors.censys.normalize import normalize as censys_normalize
from connectors.netlas.normalize import normalize as netlas_normalize
from connectors.shodan.normalize import normalize as shodan_normalize
from core.errors import InputError
from core.importers import Format, ImportReport, ImportStream, Normalizer, import_file
from core.importers.csv_rows import parse_map
from core.models import Endpoint, Observation, RunStatus, Service, SourceRun
from core.parallel import default_workers
from core.report.to_jsonl import write_jsonl
from core.report.to_nmap_xml import write_nmap_xml
from core.store import Store

FileArg = Annotated[
    Path,
    typer.Argument(
        help="Findings file: nmap -oX, masscan, naabu, Shodan/Censys/Netlas export or CSV "
        "(format told from the content; gzip is fine)",
        exists=False,  # core says "no such file" with the path, like every other input error
    ),
]
SourceNameOpt = Annotated[
    str | None,
    typer.Option("--source-name", help="Name the source import:NAME [default: the format]"),
]
SkipBadOpt = Annotated[
    bool,
    typer.Option("--skip-bad", help="Keep the valid records; report the bad ones and go on"),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="CSV column to field, e.g. --map 'Host IP=ip' (fields: ip, port, transport, "
        "service, product, version, observed_at, hostname, state); repeatable",
    ),
]
FormatOpt = Annotated[
    Format | None,
    typer.Option("--input-format", help="Skip detection and read the file as this format"),
]

EXPORTERS: dict[str, Callable[[Iterable[Service], TextIO], int]] = {
    "nmap-xml": write_nmap_xml,
    "jsonl": write_jsonl,
}


def default_normalizers() -> dict[str, Normalizer]:
    """The built-in connectors' normalizers, by the format names of their exports."""
    return {
        Format.SHODAN.value: shodan_normalize,
        Format.CENSYS.value: censys_normalize,
        Format.NETLAS.value: netlas_normalize,
    }


def open_import(
    file: Path,
    *,
    source_name: str | None = None,
    skip_bad: bool = False,
    maps: list[str] | None = None,
    fmt: Format | None = None,
    workers: int = 1,
) -> ImportStream:
    """The claims of `file`, streamed (detection and option errors raise here).

    `workers` > 1 maps a provider's JSON-lines export on that many cores (same claims).
    """
    return import_file(
        file,
        normalizers=default_normalizers(),
        source_name=source_name,
        skip_bad=skip_bad,
        column_map=parse_map(maps or []),
        fmt=fmt,
        workers=workers,
    )


@dataclass(frozen=True)
class ImportOutcome:
    run_id: int
    report: ImportReport
    stored: int


def import_into_store(
    store: Store, stream: ImportStream, seen: set[Endpoint] | None = None
) -> ImportOutcome:
    """Store the stream's claims as one run, and say plainly what happened.

    Claims are written in batches as they stream. If the import stops at a bad record
    (no --skip-bad), the run is marked failed and the error says how many of its claims
    were stored, so nothing is half-imported without saying so.
    """
    run_id = store.start_run(f"import {stream.path}", [str(stream.path)])
    report = stream.report
    try:
        claims: Iterator[Observation] = (claim.observation for claim in stream)
        if seen is not None:
            claims = _remember(claims, seen)
        stored = store.add_observations(run_id, claims)  # relaxes the GC for the whole stream
    except InputError as exc:
        _finish(store, run_id, report, RunStatus.FAILED, str(exc))
        raise InputError(
            f"{exc} Run #{run_id} is marked failed; the {report.imported:,} claim(s) read "
            "before the error are stored in it."
        ) from exc
    clean = report.complete and not report.skipped_count
    _finish(store, run_id, report, RunStatus.OK if clean else RunStatus.PARTIAL)
    return ImportOutcome(run_id, report, stored)


def _remember(observations: Iterator[Observation], seen: set[Endpoint]) -> Iterator[Observation]:
    for obs in observations:
        seen.add(obs.endpoint)
        yield obs


def _finish(
    store: Store, run_id: int, report: ImportReport, status: RunStatus, error: str = ""
) -> None:
    errors = tuple(([error] if error else []) + report.details())
    store.save_source_run(
        run_id,
        SourceRun(
            source=report.source,
            status=status,
            records=report.read,
            observations=report.imported,
            errors=errors,
        ),
    )
    store.finish_run(run_id, status)


def report_lines(report: ImportReport) -> list[str]:
    """What the user reads after an import: the summary, then each reason."""
    return [report.summary(), *(f"  {line}" for line in report.details())]


def import_command(
    file: FileArg,
    source_name: SourceNameOpt = None,
    skip_bad: SkipBadOpt = False,
    map_: MapOpt = None,
    input_format: FormatOpt = None,
) -> None:
    """Import third-party findings (nmap, masscan, naabu, Shodan, Censys, Netlas, CSV)
    as observations of their own source, ready to reconcile and verify.

    Nothing is probed: `portintel verify FILE` imports and re-probes in one go.
    """
    with guard():
        stream = open_import(
            file,
            source_name=source_name,
            skip_bad=skip_bad,
            maps=map_,
            fmt=input_format,
            workers=default_workers(),
        )
        with Store(settings().database_url()) as store:
            outcome = import_into_store(store, stream)
        for line in report_lines(outcome.report):
            note(line)
        note(f"stored as run #{outcome.run_id}")
