"""The `portintel` command. Each command parses its flags and calls into core.pipeline.

Exit codes (stable, for scripts):
  0  done, every source that ran succeeded
  1  error: bad input, config or store; nothing was run
  2  usage error (unknown flag, missing argument)
  3  partial: some sources failed, the output holds what the others returned
  4  failed: every source that ran failed
  5  verify FILE: some claims refuted or changed
  6  verify FILE: none refuted or changed, some could not be verified
  130 interrupted (Ctrl-C); what was fetched is kept in the store and cache
`portintel diff` follows diff(1) instead (cli/report_cmds.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from contextlib import nullcontext
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec

import typer
from rich.console import Console
from rich.table import Table

from cli.common import Exit, err, guard, note, redactor, settings, state
from cli.common import output as open_output
from cli.import_cmds import EXPORTERS, import_command
from cli.progress import SourceProgress
from cli.report_cmds import diff_command, explain_command, report_app
from cli.verify_findings import VerdictFormat, is_findings_file, verify_findings
from cli.worker_cmds import BROKER_HELP, Executor, celery_step, worker_command
from connectors.base import Connector
from connectors.registry import Chosen, SourceState, open_connectors, select
from core.config import load_settings
from core.errors import InputError, PortintelError, SourceError
from core.models import RunStatus, SourceRun
from core.parallel import storing_workers
from core.pipeline.ingest import estimate, ingest, overall_status
from core.pipeline.reconcile import reconcile_all
from core.pipeline.verify import (
    Plan,
    VerifyOptions,
    claimed_endpoints,
    plan_claims,
    plan_scan,
)
from core.pipeline.verify import verify as probe
from core.report.sanitize import printable
from core.report.to_csv import write_csv
from core.report.to_json import write_json
from core.store import Store
from core.targets import Entry, Scope, build_scope, gather_entries
from core.verify.ports import parse_ports, top_tcp, top_udp

log = logging.getLogger("portintel")
P = ParamSpec("P")


class Format(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"  # one service per line
    NMAP_XML = "nmap-xml"  # for tools that read nmap's -oX


app = typer.Typer(
    name="portintel",
    help=(
        "Know which ports you really expose: merge what Shodan, Censys, Netlas and InternetDB "
        "claim about your assets into one reconciled inventory.\n\n"
        "Keys come from SHODAN_API_KEY, CENSYS_API_TOKEN (+ CENSYS_ORG_ID) and NETLAS_API_KEY, "
        "or the config file; InternetDB needs none. Exit codes: 0 ok, 1 error, 2 usage, "
        "3 partial (a source failed), 4 every source failed, 5/6 verify FILE found refuted/"
        "unverified claims, 130 interrupted."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Run a command under `cli.common.guard`: known errors are one line and exit 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with guard():
            command(*args, **kwargs)

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
    handler.addFilter(redactor)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


def _credentials(chosen: list[tuple[type[Connector], SourceState]]) -> list[str]:
    return [c for _, st in chosen for c in st.credentials if c]


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
        async with open_connectors(settings(), ready) as sources:
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
        if result.status is RunStatus.SKIPPED:
            note(f"{result.source}: skipped, {result.errors[0]}")
            continue
        line = (
            f"{result.source}: {result.status.value}, {result.records} records, "
            f"{result.observations} observations, {result.credits_spent:g} credits"
        )
        if result.errors:
            line += f" ({result.errors[0]})"
        note(line)


# Options shared by enrich, scan and verify.
TargetsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Addresses, CIDR blocks, ranges (a.b.c.d-e), hostnames, or files of them",
        show_default=False,
    ),
]
InputListOpt = Annotated[
    list[Path] | None,
    typer.Option("--input-list", "-iL", help="File of targets, one or more per line"),
]
ColumnOpt = Annotated[
    str | None,
    typer.Option(help="Read targets from this column of a CSV asset list [default: ip]"),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option("--exclude", "-x", help="Targets (or a file of them) to leave out"),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help="Only these sources [default: all configured]"),
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format")]
BudgetOpt = Annotated[
    float | None,
    typer.Option(min=0, help="Stop a source before it spends more than this many credits"),
]
RefreshOpt = Annotated[bool, typer.Option(help="Ignore cached responses (spends credits again)")]
ForceOpt = Annotated[bool, typer.Option(help="Allow more than 65,536 addresses in scope")]
SkipBadOpt = Annotated[
    bool, typer.Option(help="Skip malformed or unresolvable targets instead of stopping")
]
RateOpt = Annotated[
    float | None, typer.Option(min=1, help="Cap on probes per second [default: no cap]")
]
TimeoutOpt = Annotated[
    float, typer.Option(min=0.05, help="Seconds to wait for a probe before retrying it")
]
TlsEnumOpt = Annotated[
    bool,
    typer.Option(
        help="Enumerate TLS versions, cipher suites, order and groups wherever TLS is found"
    ),
]
RetriesOpt = Annotated[
    int, typer.Option(min=0, max=5, help="Extra probes before a port is called filtered")
]


@dataclass(frozen=True)
class Passive:
    """How the passive phase should run."""

    sources: list[str]
    budget: float | None = None
    refresh: bool = False
    enabled: bool = True


def _ready_sources(passive: Passive) -> tuple[Chosen, list[SourceRun]]:
    chosen = select(settings(), passive.sources) if passive.enabled else []
    redactor.add(_credentials(chosen))
    if passive.sources:
        not_ready = [st for _, st in chosen if not st.ready]
        if not_ready:
            st = not_ready[0]
            why = "it is disabled in the config" if not st.enabled else f"set {st.missing}"
            raise PortintelError(f"source {st.spec.name} cannot run: {why}")
    skipped = [
        SourceRun(source=st.spec.name, status=RunStatus.SKIPPED, errors=(f"set {st.missing}",))
        for _, st in chosen
        if not st.ready and st.enabled
    ]
    for run in skipped:
        note(f"{run.source}: skipped, no key ({run.errors[0]})")
    return [(cls, st) for cls, st in chosen if st.ready], skipped


async def _ingest(
    store: Store, run_id: int, scope: Scope, passive: Passive, ready: Chosen
) -> list[SourceRun]:
    if not ready:
        return []
    async with open_connectors(
        settings(), ready, refresh=passive.refresh, budget=passive.budget
    ) as sources:
        with SourceProgress(err, enabled=not state.quiet) as progress:
            return await ingest(store, run_id, sources, scope, progress)


VerifyStep = Callable[[Store, int, Scope], Coroutine[Any, Any, RunStatus]]


def _run(
    command: str,
    scope: Scope,
    passive: Passive,
    output: Path | None,
    fmt: Format,
    verify_step: VerifyStep | None = None,
) -> None:
    """passive -> (verify) -> reconcile -> export; exit code from how the sources did."""
    ready, skipped = _ready_sources(passive)
    store = Store(settings().database_url())
    run_id = store.start_run(command, [str(net) for net in scope.include])
    status = RunStatus.INTERRUPTED
    try:
        results = asyncio.run(_ingest(store, run_id, scope, passive, ready))
        for run in skipped:
            store.save_source_run(run_id, run)
        _report_sources(results)
        status = overall_status(results)
        if verify_step is not None:
            active = asyncio.run(verify_step(store, run_id, scope))
            if active is not RunStatus.OK:
                status = active
            elif status is RunStatus.FAILED:
                status = RunStatus.PARTIAL  # the probes ran, the providers did not answer
        reconcile_all(store, run_id, ips=set(scope.addresses()), workers=storing_workers())
        with open_output(output) as out:
            services = store.services(run_id)
            if fmt is Format.JSON:
                count = write_json(services, out, store.run(run_id))
            elif fmt.value in EXPORTERS:
                count = EXPORTERS[fmt.value](services, out)
            else:
                count = write_csv(services, out)
        note(f"{count} endpoints reconciled (run {run_id})")
    finally:
        store.finish_run(run_id, status)
        store.close()
    codes = {RunStatus.OK: Exit.OK, RunStatus.PARTIAL: Exit.PARTIAL}
    raise typer.Exit(codes.get(status, Exit.FAILED))


@app.command()
@guarded
def enrich(
    targets: TargetsArg = None,
    input_list: InputListOpt = None,
    column: ColumnOpt = None,
    exclude: ExcludeOpt = None,
    source: SourceOpt = None,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.CSV,
    dry_run: Annotated[
        bool, typer.Option(help="Print what each source would be asked and cost; send nothing")
    ] = False,
    budget: BudgetOpt = None,
    refresh: RefreshOpt = False,
    force: ForceOpt = False,
    skip_bad: SkipBadOpt = False,
) -> None:
    """Ask every configured source about the targets; print the reconciled inventory.

    Passive only: nothing is sent to the targets themselves. One row per
    (ip, port, transport) with the status, the service each source names, and when each
    source first and last saw it. Examples:

      portintel enrich 198.51.100.7 203.0.113.0/28 > inventory.csv

      portintel enrich -iL assets.txt -x 203.0.113.9 --format json -o inventory.json

      portintel enrich assets.csv --column address --dry-run
    """
    scope = _scope(targets or [], input_list or [], column, exclude or [], force, skip_bad)
    if dry_run:
        chosen = select(settings(), source or [])
        redactor.add(_credentials(chosen))
        _print_estimates(scope, chosen)
        raise typer.Exit(Exit.OK)
    _run("enrich", scope, Passive(source or [], budget, refresh), output, fmt)


def _verify_step(plan_for: Callable[[Store, Scope], Plan], options: VerifyOptions) -> VerifyStep:
    async def step(store: Store, run_id: int, scope: Scope) -> RunStatus:
        plan = plan_for(store, scope)
        if plan.out_of_scope:
            note(f"{len(plan.out_of_scope)} claimed endpoints are out of scope: not probed")
        note(f"probing {plan.size():,} ports on {len(plan.hosts):,} hosts")
        with (
            err.status("probing...", spinner="dots")
            if not state.quiet and err.is_terminal
            else nullcontext()
        ):
            found = await probe(store, run_id, plan, scope, options)
        for wall in found.walls:
            note(f"{wall} answers on nearly every port (a SYN-ACK wall): its ports are not listed")
        note(f"verifier: {found.open} open ports, {found.observations} observations")
        return RunStatus.OK

    return step


def _ports(
    ports: str | None, top_ports: int | None, udp: bool, udp_ports: int
) -> tuple[list[int], list[int]]:
    try:
        if ports is not None:
            spec = parse_ports(ports)
            tcp = list(spec.tcp)
            udp_list = (
                list(spec.udp) if udp or any(p.startswith("U:") for p in ports.split(",")) else []
            )
        else:
            tcp = list(top_tcp(top_ports)) if top_ports else list(range(1, 65536))
            udp_list = []
        if udp and not udp_list:
            udp_list = list(top_udp(udp_ports))
    except ValueError as exc:
        raise InputError(f"-p {ports!r}: {exc}") from None
    return tcp, udp_list


@app.command()
@guarded
def scan(
    targets: TargetsArg = None,
    input_list: InputListOpt = None,
    column: ColumnOpt = None,
    exclude: ExcludeOpt = None,
    ports: Annotated[
        str | None,
        typer.Option(
            "--ports", "-p", help="nmap-style ports: 22,80,8000-8100, T:22,U:53, - for all"
        ),
    ] = None,
    top_ports: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Only the N most common TCP ports")
    ] = None,
    udp: Annotated[bool, typer.Option(help="Also scan UDP (the top --udp-ports ports)")] = False,
    udp_ports: Annotated[int, typer.Option(min=1, max=1000, help="How many top UDP ports")] = 1000,
    passive: Annotated[
        bool, typer.Option(help="Ask the configured sources first (--no-passive: probe only)")
    ] = True,
    source: SourceOpt = None,
    rate: RateOpt = None,
    timeout: TimeoutOpt = 1.0,
    retries: RetriesOpt = 1,
    fingerprint: Annotated[
        bool, typer.Option(help="Identify the service on every open port")
    ] = True,
    tls_enum: TlsEnumOpt = True,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.CSV,
    budget: BudgetOpt = None,
    refresh: RefreshOpt = False,
    force: ForceOpt = False,
    skip_bad: SkipBadOpt = False,
    executor: Annotated[
        Executor,
        typer.Option(help="Where the probes run: here, or on `portintel worker`s (celery)"),
    ] = Executor.INPROCESS,
    broker: Annotated[str | None, typer.Option(envvar="PORTINTEL_BROKER", help=BROKER_HELP)] = None,
) -> None:
    """Passive sources, then our own probes of every in-scope host: the whole pipeline.

    All 65,535 TCP ports by default (-p or --top-ports for fewer), UDP with --udp. Every
    open port is fingerprinted; every claim is confirmed or refuted. Only the targets
    given (minus --exclude) are ever probed, whatever a provider names. Examples:

      portintel scan 192.0.2.10 > inventory.csv

      portintel scan 198.51.100.0/28 -p 1-1024 --udp --format json

      portintel scan -iL assets.txt --no-passive --rate 2000

      portintel --db postgresql+psycopg://... scan 198.51.100.0/24 --executor celery
          --broker redis://queue.example.net:6379/0   (see `portintel worker`)
    """
    scope = _scope(targets or [], input_list or [], column, exclude or [], force, skip_bad)
    tcp, udp_list = _ports(ports, top_ports, udp, udp_ports)
    options = VerifyOptions(
        timeout=timeout, retries=retries, rate=rate, fingerprint=fingerprint, tls_enum=tls_enum
    )

    def plan_for(store: Store, scope: Scope) -> Plan:
        claims = claimed_endpoints(store, set(scope.addresses()))
        return plan_scan(scope, tcp, udp_list, claims)

    if executor is Executor.CELERY:
        step = celery_step(plan_for, options, broker)
    else:
        step = _verify_step(plan_for, options)
    _run("scan", scope, Passive(source or [], budget, refresh, passive), output, fmt, step)


@app.command("verify")
@guarded
def verify_command(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Targets whose claimed ports to re-probe, or findings files (nmap -oX, "
            "masscan, naabu, Shodan/Censys/Netlas exports, CSV) whose claims to check",
            show_default=False,
        ),
    ] = None,
    input_list: InputListOpt = None,
    column: ColumnOpt = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="With findings files: only these targets may be probed "
            "[default: the hosts the files name]",
        ),
    ] = None,
    exclude: ExcludeOpt = None,
    source: SourceOpt = None,
    rate: RateOpt = None,
    timeout: TimeoutOpt = 1.0,
    retries: RetriesOpt = 1,
    tls_enum: TlsEnumOpt = True,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.CSV,
    budget: BudgetOpt = None,
    refresh: RefreshOpt = False,
    force: ForceOpt = False,
    skip_bad: SkipBadOpt = False,
) -> None:
    """Re-probe claimed ports: confirmed, refuted, changed or unverified.

    Given targets, asks the configured sources (cached answers are reused) and probes only
    the (ip, port, transport) endpoints they claim: fast, no port discovery. Given a
    findings file, imports its claims, probes them and writes one verdict per claim beside
    the original row (CSV, or JSON lines with --format json); exit 0 when every claim is
    confirmed, 5 when some are refuted or changed, 6 when the rest could not be verified.

      portintel verify 198.51.100.0/28

      portintel verify pentest-2026.xml --scope 198.51.100.0/24 -o verdicts.csv
    """
    args = targets or []
    findings = [Path(a) for a in args if is_findings_file(a)]
    options = VerifyOptions(timeout=timeout, retries=retries, rate=rate, tls_enum=tls_enum)
    if findings:
        others = [a for a in args if Path(a) not in findings]
        if others or input_list:
            raise InputError("give either findings files or targets, not both (see --scope)")
        excludes = gather_entries(exclude or [])
        verdict_fmt = VerdictFormat.JSONL if fmt is Format.JSON else VerdictFormat.CSV
        verify_findings(
            findings, scope or [], excludes, options, output, verdict_fmt, skip_bad, force
        )
        return
    scope_ = _scope(args, input_list or [], column, exclude or [], force, skip_bad)

    def plan_for(store: Store, scope: Scope) -> Plan:
        return plan_claims(scope, claimed_endpoints(store, set(scope.addresses())))

    step = _verify_step(plan_for, options)
    _run("verify", scope_, Passive(source or [], budget, refresh), output, fmt, step)


@app.command()
@guarded
def sources(
    check: Annotated[
        bool, typer.Option(help="Contact each configured source for its plan and credits")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Show each source: key configured (never the key), reachable, credits left."""
    chosen = select(settings())
    redactor.add(_credentials(chosen))
    table = Table(title="Sources")
    for column in ("source", "key", "url", "reachable", "plan", "credits left", "note"):
        table.add_column(column)

    async def probe(cls: type[Connector], st: SourceState) -> tuple[str, str, str, str]:
        if not st.ready or not check:
            return "-", "-", "-", "disabled" if not st.enabled else ""
        async with open_connectors(settings(), [(cls, st)]) as (conn,):
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


app.add_typer(report_app, name="report")
app.command("diff")(diff_command)  # its own exit codes, diff(1)-style: see its help
app.command("explain")(explain_command)
app.command("import")(import_command)
app.command("worker")(worker_command)


def main() -> None:
    """Console entry point."""
    app()
