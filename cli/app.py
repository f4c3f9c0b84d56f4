"""The `portintel` command. Each command parses its flags and calls into core.pipeline.

Exit codes (stable, for scripts):
  0  done, every source that ran succeeded
  1  error: bad input, config or store; nothing was run
  2  usage error (unknown flag, missing argument)
  3  partial: some sources failed, the output holds what the others returned
  4  failed: every source that ran failed
  130 interrupted (Ctrl-C); what was fetched is kept in the store and cache
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec, TextIO

import typer
from rich.console import Console
from rich.table import Table

from cli.progress import SourceProgress
from connectors.base import Connector
from connectors.registry import SourceState, open_connectors, select
from core.config import Settings, load_settings
from core.errors import PortintelError, SourceError
from core.models import RunStatus, SourceRun
from core.pipeline.ingest import estimate, ingest, overall_status
from core.pipeline.reconcile import reconcile_all
from core.redact import RedactingFilter
from core.report.sanitize import printable
from core.report.to_csv import write_csv
from core.report.to_json import write_json
from core.store import Store
from core.targets import Entry, Scope, build_scope, gather_entries

log = logging.getLogger("portintel")
P = ParamSpec("P")


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3
    FAILED = 4
    INTERRUPTED = 130


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"


app = typer.Typer(
    name="portintel",
    help=(
        "Know which ports you really expose: merge what Shodan, Censys, Netlas and InternetDB "
        "claim about your assets into one reconciled inventory.\n\n"
        "Keys come from SHODAN_API_KEY, CENSYS_API_TOKEN (+ CENSYS_ORG_ID) and NETLAS_API_KEY, "
        "or the config file; InternetDB needs none. Exit codes: 0 ok, 1 error, 2 usage, "
        "3 partial (a source failed), 4 every source failed, 130 interrupted."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)

err = Console(stderr=True, highlight=False)
_redactor = RedactingFilter()


class State:
    settings: Settings
    debug: bool = False
    quiet: bool = False


state = State()


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Known errors become one actionable line and exit 1; Ctrl-C exits 130."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except PortintelError as exc:
            if state.debug:
                err.print_exception()
            err.print(f"error: {printable(_redactor.redact(str(exc)))}", markup=False)
            raise typer.Exit(Exit.ERROR) from None
        except KeyboardInterrupt:
            err.print("interrupted: what was fetched so far is kept in the store", markup=False)
            raise typer.Exit(Exit.INTERRUPTED) from None

    return run


@app.callback()
@guarded
def main_options(
    config: Annotated[
        Path | None,
        typer.Option(help="TOML config file [default: $PORTINTEL_CONFIG or the user config dir]"),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help="Store URL: sqlite:///path.db or postgresql+psycopg://... [env: PORTINTEL_DB]"
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Response cache directory [env: PORTINTEL_CACHE_DIR]")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes")] = False,
    debug: Annotated[bool, typer.Option(help="Log details and show tracebacks")] = False,
) -> None:
    state.settings = load_settings(config, overrides={"db": db, "cache_dir": cache_dir})
    state.debug, state.quiet = debug, quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_redactor)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


def note(message: str) -> None:
    if not state.quiet:
        err.print(printable(message), markup=False)


def _credentials(chosen: list[tuple[type[Connector], SourceState]]) -> list[str]:
    return [c for _, st in chosen for c in st.credentials if c]


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def _scope(
    targets: list[str],
    input_list: list[Path],
    column: str | None,
    exclude: list[str],
    force: bool,
    skip_bad: bool,
) -> Scope:
    entries = gather_entries(targets, input_list, column)
    excludes: list[Entry] = gather_entries(exclude)
    scope = asyncio.run(build_scope(entries, excludes, force=force, skip_bad=skip_bad))
    for skipped in scope.skipped:
        note(f"skipped {skipped}")
    return scope


def _print_estimates(scope: Scope, chosen: list[tuple[type[Connector], SourceState]]) -> None:
    table = Table(title=f"Dry run: {scope.size():,} addresses in scope; nothing was sent")
    for column in ("source", "ready", "requests", "credits", "note"):
        table.add_column(column)

    async def run() -> None:
        ready = [(cls, st) for cls, st in chosen if st.ready]
        async with open_connectors(state.settings, ready) as sources:
            by_name = {e.source: e for e in estimate(sources, scope)}
        for cls, st in chosen:
            est = by_name.get(cls.spec.name)
            if est is None:
                why = "disabled" if not st.enabled else f"set {st.missing}"
                table.add_row(cls.spec.name, "no", "-", "-", why)
            else:
                table.add_row(est.source, "yes", str(est.requests), f"{est.credits:g}", est.note)

    asyncio.run(run())
    Console().print(table)


def _report_sources(results: list[SourceRun]) -> None:
    for result in results:
        line = (
            f"{result.source}: {result.status.value}, {result.records} records, "
            f"{result.observations} observations, {result.credits_spent:g} credits"
        )
        if result.errors:
            line += f" ({result.errors[0]})"
        note(line)


@app.command()
@guarded
def enrich(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Addresses, CIDR blocks, ranges (a.b.c.d-e), hostnames, or files of them",
            show_default=False,
        ),
    ] = None,
    input_list: Annotated[
        list[Path] | None,
        typer.Option("--input-list", "-iL", help="File of targets, one or more per line"),
    ] = None,
    column: Annotated[
        str | None,
        typer.Option(help="Read targets from this column of a CSV asset list [default: ip]"),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="Targets (or a file of them) to leave out"),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Only these sources [default: all configured]"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format")] = Format.CSV,
    dry_run: Annotated[
        bool, typer.Option(help="Print what each source would be asked and cost; send nothing")
    ] = False,
    budget: Annotated[
        float | None,
        typer.Option(min=0, help="Stop a source before it spends more than this many credits"),
    ] = None,
    refresh: Annotated[
        bool, typer.Option(help="Ignore cached responses (spends credits again)")
    ] = False,
    force: Annotated[bool, typer.Option(help="Allow more than 65,536 addresses in scope")] = False,
    skip_bad: Annotated[
        bool, typer.Option(help="Skip malformed or unresolvable targets instead of stopping")
    ] = False,
) -> None:
    """Ask every configured source about the targets; print the reconciled inventory.

    One row per (ip, port, transport) with the status, the service each source names, and
    when each source first and last saw it. Examples:

      portintel enrich 198.51.100.7 203.0.113.0/28 > inventory.csv

      portintel enrich -iL assets.txt -x 203.0.113.9 --format json -o inventory.json

      portintel enrich assets.csv --column address --dry-run
    """
    scope = _scope(targets or [], input_list or [], column, exclude or [], force, skip_bad)
    chosen = select(state.settings, source or [])
    _redactor.add(_credentials(chosen))
    if dry_run:
        _print_estimates(scope, chosen)
        raise typer.Exit(Exit.OK)
    if source:
        not_ready = [st for _, st in chosen if not st.ready]
        if not_ready:
            st = not_ready[0]
            why = "it is disabled in the config" if not st.enabled else f"set {st.missing}"
            raise PortintelError(f"source {st.spec.name} cannot run: {why}")
    skipped = [
        SourceRun(source=st.spec.name, status=RunStatus.SKIPPED, errors=(f"set {st.missing}",))
        for _, st in chosen
        if not st.ready
    ]
    for run in skipped:
        note(f"{run.source}: skipped, no key ({run.errors[0]})")
    ready = [(cls, st) for cls, st in chosen if st.ready]

    store = Store(state.settings.database_url())
    run_id = store.start_run("enrich", [str(net) for net in scope.include])
    status = RunStatus.INTERRUPTED
    try:
        results = asyncio.run(_enrich(store, run_id, scope, ready, refresh, budget))
        for run in skipped:
            store.save_source_run(run_id, run)
        status = overall_status(results)
        _report_sources(results)
        with _output(output) as out:
            services = store.services(run_id)
            count = (
                write_json(services, out, store.run(run_id))
                if fmt is Format.JSON
                else write_csv(services, out)
            )
        note(f"{count} endpoints reconciled (run {run_id})")
    finally:
        store.finish_run(run_id, status)
        store.close()
    codes = {RunStatus.OK: Exit.OK, RunStatus.PARTIAL: Exit.PARTIAL}
    raise typer.Exit(codes.get(status, Exit.FAILED))


async def _enrich(
    store: Store,
    run_id: int,
    scope: Scope,
    ready: list[tuple[type[Connector], SourceState]],
    refresh: bool,
    budget: float | None,
) -> list[SourceRun]:
    async with open_connectors(state.settings, ready, refresh=refresh, budget=budget) as sources:
        with SourceProgress(err, enabled=not state.quiet) as progress:
            results = await ingest(store, run_id, sources, scope, progress)
    reconcile_all(store, run_id, ips=set(scope.addresses()))
    return results


@app.command()
@guarded
def sources(
    check: Annotated[
        bool, typer.Option(help="Contact each configured source for its plan and credits")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Show each source: key configured (never the key), reachable, credits left."""
    chosen = select(state.settings)
    _redactor.add(_credentials(chosen))
    table = Table(title="Sources")
    for column in ("source", "key", "url", "reachable", "plan", "credits left", "note"):
        table.add_column(column)

    async def probe(cls: type[Connector], st: SourceState) -> tuple[str, str, str, str]:
        if not st.ready or not check:
            return "-", "-", "-", "disabled" if not st.enabled else ""
        async with open_connectors(state.settings, [(cls, st)]) as (conn,):
            try:
                account = await conn.account()
            except SourceError as exc:
                return "no", "-", "-", exc.reason
        credits = "-" if account.credits_left is None else f"{account.credits_left:g}"
        return "yes", account.plan or "-", credits, account.detail

    async def run() -> list[tuple[str, str, str, str]]:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(probe(cls, st)) for cls, st in chosen]
        return [t.result() for t in tasks]

    records = []
    for (cls, st), (reachable, plan, credits, detail) in zip(
        chosen, asyncio.run(run()), strict=True
    ):
        key = "keyless" if st.keyless else f"no ({st.missing})" if st.missing else "configured"
        records.append(
            {
                "source": cls.spec.name,
                "key": key,
                "url": st.url,
                "reachable": reachable,
                "plan": plan,
                "credits_left": credits,
                "note": printable(detail),
            }
        )
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    for record in records:
        table.add_row(*record.values())
    Console().print(table)


def main() -> None:
    """Console entry point."""
    app()
