"""`portintel report summary|list|products|ciphers|html`, `portintel diff` and `explain`.

Registered by cli/app.py:

    app.add_typer(report_app, name="report")
    app.command("diff")(diff_command)
    app.command("explain")(explain_command)

Each command reads one run from the store, colours and scores it (core.risk), and
renders a view (core.report). Terminal tables are rich tables whose cells are plain
`Text` (never markup) with control characters shown as \\xNN; CSV cells are neutralised
against spreadsheet formulas; the HTML file escapes everything (core.report.to_html).

Exit codes: report and explain exit 0, or 1 on an error (bad input, store, config).
`diff` follows diff(1) so that cron and CI can tell a change from a failure:

    0  nothing opened (see --fail-on)
    1  something opened
    2  error: bad arguments, unknown run, store or config problem
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.common import err, guard
from cli.common import output as open_output
from cli.common import settings as common_settings
from core.config import Settings
from core.errors import InputError
from core.models import Colour, Endpoint, Run, RunStatus, Service, Status, utcnow
from core.report.diff import ROW_COLUMNS, Diff, diff_services
from core.report.sanitize import csv_cell, printable
from core.report.to_html import render_html
from core.report.views import (
    Row,
    ServiceFilter,
    ciphers_view,
    columns,
    list_view,
    products_view,
    summary_view,
)
from core.risk.addresses import parse_ip
from core.risk.allowlist import Allowlist, load_allowlist
from core.risk.grading import OfferedSuite
from core.risk.prevalence import Prevalence, store_prevalence
from core.risk.scoring import Risk, annotate, score_assets
from core.store import Store


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class DiffExit(IntEnum):
    NOTHING_OPENED = 0
    OPENED = 1
    ERROR = 2


class FailOn(StrEnum):
    OPENED = "opened"  # exit 1 when a port opened
    ANY = "any"  # exit 1 when anything opened, closed or changed
    NEVER = "never"  # exit 0 whatever changed (errors still exit 2)


report_app = typer.Typer(
    name="report",
    help=(
        "Views of a run: summary (per target), list (every port), products, ciphers, "
        "and a self-contained HTML report. Tables in a terminal; --format csv|json for "
        "pipes and files."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

# -- options shared by the commands -------------------------------------------------------

RunOpt = Annotated[
    int | None, typer.Option("--run", help="Run id [default: the latest finished run]")
]
FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format", "-f", help="table, csv or json [default: from -o's suffix, else table]"
    ),
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", "-t", help="Only this address, CIDR block or hostname (repeatable)"),
]
ColourOpt = Annotated[
    list[Colour] | None, typer.Option("--colour", "--color", help="Only this risk colour")
]
StatusOpt = Annotated[
    list[Status] | None, typer.Option("--status", help="Only this reconciliation status")
]
SourceOpt = Annotated[
    list[str] | None, typer.Option("--source", "-s", help="Only ports this source reported")
]
PortOpt = Annotated[
    list[int] | None, typer.Option("--port", "-p", min=0, max=65535, help="Only this port")
]
ProductOpt = Annotated[
    list[str] | None,
    typer.Option("--product", help="Only products containing this text (any case)"),
]
AllowlistOpt = Annotated[
    Path | None,
    typer.Option(
        "--allowlist",
        help="TOML file of expected services per address or range; they weigh less "
        "[env: PORTINTEL_ALLOWLIST]",
    ),
]


def _format(fmt: Format | None, output: Path | None) -> Format:
    if fmt is not None:
        return fmt
    suffix = output.suffix.lower() if output else ""
    return {".csv": Format.CSV, ".json": Format.JSON}.get(suffix, Format.TABLE)


# -- loading a run --------------------------------------------------------------------------


@dataclass
class Assessed:
    """One run's services, coloured and scored."""

    run: Run
    services: list[Service]
    risks: dict[str, Risk]
    prevalence: Prevalence | None
    suites: dict[Endpoint, tuple[OfferedSuite, ...]]  # what TLS enumeration accepted


def _pick_run(store: Store, wanted: int | None) -> Run:
    if wanted is not None:
        return store.run(wanted)
    runs = store.runs()
    if not runs:
        raise InputError("the store has no runs yet; run `portintel enrich TARGETS` first")
    finished = [run for run in runs if run.status is not RunStatus.RUNNING]
    return (finished or runs)[-1]


def _allowlist(path: Path | None, settings: Settings) -> Allowlist:
    if path is None and settings.env.get("PORTINTEL_ALLOWLIST"):
        path = Path(settings.env["PORTINTEL_ALLOWLIST"])
    return load_allowlist(path)


def _assess(
    store: Store,
    settings: Settings,
    run_id: int | None,
    allowlist: Path | None,
    *,
    prevalence: bool = False,
) -> Assessed:
    run = _pick_run(store, run_id)
    services = list(annotate(store.services(run.id)))
    suites = {
        Endpoint(ip=p.ip, port=p.port): p.offered_suites() for p in store.tls_profiles(run.id)
    }
    risks = score_assets(
        services, now=utcnow(), allowlist=_allowlist(allowlist, settings), suites=suites
    )
    prevalent = store_prevalence(store) if prevalence else None
    return Assessed(run, services, risks, prevalent, suites)


def _filter(
    target: list[str] | None,
    colour: list[Colour] | None,
    status: list[Status] | None,
    source: list[str] | None,
    port: list[int] | None,
    product: list[str] | None,
) -> ServiceFilter:
    return ServiceFilter(
        targets=tuple(target or ()),
        colours=tuple(colour or ()),
        statuses=tuple(status or ()),
        sources=tuple(source or ()),
        ports=tuple(port or ()),
        products=tuple(product or ()),
    )


# -- writing rows ---------------------------------------------------------------------------

_COLOUR_STYLE = {"green": "green", "yellow": "yellow", "red": "bold red"}
_GRADE_STYLE = {"insecure": "bold red", "weak": "yellow", "secure": "green", "recommended": "green"}


def _style(column: str, value: str) -> str:
    if column == "colour":
        return _COLOUR_STYLE.get(value, "")
    if column == "grade":
        return _GRADE_STYLE.get(value, "")
    if column == "score" and value.isdigit():
        score = int(value)
        return "bold red" if score >= 50 else "yellow" if score >= 20 else "green"
    return ""


def _table(title: str, header: Sequence[str], cells: Sequence[dict[str, str]]) -> Table:
    table = Table(title=printable(title), title_justify="left")
    for name in header:
        table.add_column(name, overflow="fold")
    for row in cells:
        # Text, not str: a banner saying "[red]..." must not become rich markup.
        table.add_row(
            *(Text(printable(row[name]), style=_style(name, row[name])) for name in header)
        )
    return table


def write_rows(
    view: str, rows: Sequence[Row], fmt: Format, out: TextIO, *, title: str, shown: Sequence[str]
) -> None:
    """Rows as CSV (every column), JSON (every column) or a table (`shown` columns)."""
    if fmt is Format.CSV:
        writer = csv.DictWriter(out, fieldnames=columns(view), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(v) for k, v in row.cells().items()})
    elif fmt is Format.JSON:
        data = {"view": view, "title": title, "rows": [row.as_json() for row in rows]}
        out.write(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    else:
        console = Console(file=out, highlight=False, width=None if out is sys.stdout else 200)
        console.print(_table(title, shown, [row.cells() for row in rows]))


# Columns a terminal has room for; CSV and JSON carry them all.
TABLE_COLUMNS = {
    "summary": (
        "target",
        "name",
        "org",
        "open_ports",
        "green",
        "yellow",
        "red",
        "cdn_edge",
        "score",
    ),
    "list": (
        "ip",
        "port",
        "transport",
        "service",
        "product",
        "version",
        "status",
        "sources",
        "colour",
        "prevalence",
        "first_seen",
    ),
    "products": ("product", "version", "instances", "targets"),
    "ciphers": ("suite", "grade", "endpoints", "targets", "protocols"),
}


def _view_command(
    view: str,
    build: Callable[[Assessed, ServiceFilter], Sequence[Row]],
    *,
    prevalence: bool = False,
) -> Callable[..., None]:
    def command(
        run: RunOpt = None,
        fmt: FormatOpt = None,
        output: OutputOpt = None,
        target: TargetOpt = None,
        colour: ColourOpt = None,
        status: StatusOpt = None,
        source: SourceOpt = None,
        port: PortOpt = None,
        product: ProductOpt = None,
        allowlist: AllowlistOpt = None,
    ) -> None:
        with guard(1):
            settings = common_settings()
            flt = _filter(target, colour, status, source, port, product)
            with Store(settings.database_url()) as store:
                assessed = _assess(store, settings, run, allowlist, prevalence=prevalence)
            rows = build(assessed, flt)
            title = f"{view.capitalize()}: run {assessed.run.id} ({len(rows)} rows)"
            with open_output(output) as out:
                write_rows(
                    view, rows, _format(fmt, output), out, title=title, shown=TABLE_COLUMNS[view]
                )

    return command


def _summary(a: Assessed, flt: ServiceFilter) -> Sequence[Row]:
    return summary_view(flt.apply(a.services), a.risks)


def _list(a: Assessed, flt: ServiceFilter) -> Sequence[Row]:
    return list_view(flt.apply(a.services), a.prevalence)


def _products(a: Assessed, flt: ServiceFilter) -> Sequence[Row]:
    return products_view(flt.apply(a.services))


def _ciphers(a: Assessed, flt: ServiceFilter) -> Sequence[Row]:
    return ciphers_view(flt.apply(a.services), a.suites)


report_app.command(
    "summary", help="Per target: name, organisation, open ports, counts by colour, score."
)(_view_command("summary", _summary))
report_app.command(
    "list",
    help="Every port: service, product, version, status, sources, colour, prevalence "
    "(across every run in the store), first detected.",
)(_view_command("list", _list, prevalence=True))
report_app.command("products", help="Products (and versions) with instance and target counts.")(
    _view_command("products", _products)
)
report_app.command(
    "ciphers", help="Every cipher suite offered, its grade, on how many endpoints and targets."
)(_view_command("ciphers", _ciphers))


@report_app.command("html")
def html_command(
    output: OutputOpt = None,
    run: RunOpt = None,
    target: TargetOpt = None,
    colour: ColourOpt = None,
    status: StatusOpt = None,
    source: SourceOpt = None,
    port: PortOpt = None,
    product: ProductOpt = None,
    allowlist: AllowlistOpt = None,
) -> None:
    """One self-contained HTML file: the four views as tabs, charts, score breakdowns.

    It fetches nothing and works offline; open it in any browser:

      portintel report html -o report.html
    """
    with guard(1):
        settings = common_settings()
        flt = _filter(target, colour, status, source, port, product)
        with Store(settings.database_url()) as store:
            assessed = _assess(store, settings, run, allowlist, prevalence=True)
        services = list(flt.apply(assessed.services))
        with open_output(output) as out:
            render_html(
                out,
                services,
                assessed.risks,  # whole assets' scores, whatever the filter left out
                generated_at=utcnow(),
                prevalence=assessed.prevalence,
                suites=assessed.suites,
                run=assessed.run,
            )
        if output is not None:
            err.print(f"wrote {printable(str(output))}", markup=False)


# -- explain --------------------------------------------------------------------------------


def explain_command(
    asset: Annotated[str, typer.Argument(help="An address, or a hostname seen in the run")],
    run: RunOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    allowlist: AllowlistOpt = None,
) -> None:
    """Show an asset's score and every rule that gave it points.

    Each finding names its rule, the points (and the allowlist weight that lowered them),
    the endpoint, the evidence and why the rule exists.
    """
    with guard(1):
        settings = common_settings()
        with Store(settings.database_url()) as store:
            assessed = _assess(store, settings, run, allowlist)
        ips = _resolve_asset(asset, assessed)
        risks = [assessed.risks[ip] for ip in ips]
        fmt = _format(fmt, output)
        with open_output(output) as out:
            if fmt is Format.JSON:
                data = {
                    "run": assessed.run.id,
                    "assets": [r.model_dump(mode="json") for r in risks],
                }
                out.write(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
            elif fmt is Format.CSV:
                _explain_csv(risks, out)
            else:
                console = Console(file=out, highlight=False)
                for risk in risks:
                    console.print(_explain_table(risk, assessed.run.id))


def _resolve_asset(asset: str, assessed: Assessed) -> list[str]:
    try:
        ip = parse_ip(asset.strip()).compressed
    except ValueError:
        name = asset.strip().lower().rstrip(".")
        ips = sorted(
            {s.endpoint.ip for s in assessed.services if name in (h.lower() for h in s.hostnames)}
        )
    else:
        ips = [ip] if ip in assessed.risks else []
    if not ips:
        raise InputError(
            f"{asset} has no services in run {assessed.run.id}; "
            "`portintel report summary` lists the run's targets"
        )
    return ips


_EXPLAIN_COLUMNS = (
    "asset",
    "rule",
    "severity",
    "points",
    "base_points",
    "weight",
    "endpoint",
    "evidence",
    "rationale",
    "allowlist",
)


def _explain_csv(risks: Sequence[Risk], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_EXPLAIN_COLUMNS)
    for risk in risks:
        for f in risk.findings:
            values: list[Any] = [
                risk.asset,
                f.rule,
                f.severity.value,
                f.points,
                f.base_points,
                f.weight,
                f.endpoint or "",
                f.evidence,
                f.rationale,
                f.allowlist or "",
            ]
            writer.writerow([csv_cell(str(v)) for v in values])


def _explain_table(risk: Risk, run_id: int) -> Table:
    capped = f" (capped from {risk.points})" if risk.points > risk.score else ""
    title = (
        f"{risk.asset} in run {run_id}: score {risk.score}/100{capped}; {risk.open_ports} open "
        f"ports: {risk.green} green, {risk.yellow} yellow, {risk.red} red, "
        f"{risk.cdn_edge} CDN edge"
    )
    table = Table(title=title, title_justify="left")
    for name in ("rule", "points", "endpoint", "evidence", "why"):
        table.add_column(name, overflow="fold")
    for f in risk.findings:
        points = str(f.points)
        if f.weight < 1:
            points += f" ({f.base_points} x {f.weight:g})"
        evidence = f.evidence + (f"; {f.allowlist}" if f.allowlist else "")
        table.add_row(
            Text(f"{f.rule} ({f.severity})"),
            Text(points),
            Text(f.endpoint or "asset"),
            Text(printable(evidence)),
            Text(f.rationale),
        )
    if not risk.findings:
        table.add_row(Text("-"), Text("0"), Text("asset"), Text("no rule gave points"), Text(""))
    return table


# -- diff -----------------------------------------------------------------------------------


def _two_runs(store: Store, run_a: int | None, run_b: int | None) -> tuple[Run, Run]:
    if run_a is not None and run_b is not None:
        return store.run(run_a), store.run(run_b)
    finished = [run for run in store.runs() if run.status is not RunStatus.RUNNING]
    if run_a is not None:
        later = [run for run in finished if run.id > run_a]
        if not later:
            raise InputError(f"there is no finished run after run {run_a} to compare it with")
        return store.run(run_a), later[-1]
    if len(finished) < 2:
        raise InputError(
            f"diff needs two finished runs; the store has {len(finished)}. "
            "Run `portintel enrich` again, or name the runs: portintel diff RUN_A RUN_B"
        )
    return finished[-2], finished[-1]


def diff_command(
    run_a: Annotated[
        int | None, typer.Argument(help="The earlier run [default: the second latest]")
    ] = None,
    run_b: Annotated[int | None, typer.Argument(help="The later run [default: the latest]")] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="What makes the exit code 1: opened, any change, never"),
    ] = FailOn.OPENED,
) -> None:
    """Ports opened, closed and changed between two runs (default: the last two).

    Changed means a different service, product, version, certificate, cipher or set of
    TLS versions. Exit codes, for cron and CI: 0 nothing opened, 1 something opened
    (--fail-on any: anything changed), 2 error.

      portintel diff || mail -s "new ports open" ops@example.com
    """
    with guard(DiffExit.ERROR):
        settings = common_settings()
        with Store(settings.database_url()) as store:
            before, after = _two_runs(store, run_a, run_b)
            old = list(annotate(store.services(before.id)))
            new = list(annotate(store.services(after.id)))
        diff = diff_services(
            old,
            new,
            before_targets=before.targets,
            after_targets=after.targets,
            run_a=before.id,
            run_b=after.id,
        )
        fmt = _format(fmt, output)
        with open_output(output) as out:
            _write_diff(diff, fmt, out)
    if (fail_on is FailOn.OPENED and diff.opened) or (fail_on is FailOn.ANY and diff.entries):
        raise typer.Exit(DiffExit.OPENED)
    raise typer.Exit(DiffExit.NOTHING_OPENED)


def _write_diff(diff: Diff, fmt: Format, out: TextIO) -> None:
    if fmt is Format.JSON:
        out.write(json.dumps(diff.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n")
        return
    if fmt is Format.CSV:
        writer = csv.DictWriter(out, fieldnames=ROW_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in diff.rows():
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
        return
    title = (
        f"Run {diff.run_a} -> run {diff.run_b}: {len(diff.opened)} opened, "
        f"{len(diff.closed)} closed, {len(diff.changed)} changed"
    )
    if diff.unscanned:
        title += f"; {diff.unscanned} endpoints outside the other run's targets not compared"
    table = Table(title=title, title_justify="left")
    for name in ("change", "endpoint", "service", "product", "colour", "what changed"):
        table.add_column(name, overflow="fold")
    for entry in diff.entries:
        host = f"[{entry.ip}]" if ":" in entry.ip else entry.ip
        product = " ".join(p for p in (entry.product, entry.version) if p)
        details = "; ".join(
            f"{f.field}: {f.before or '-'} -> {f.after or '-'}" for f in entry.fields
        )
        table.add_row(
            Text(
                entry.change.value,
                style={"opened": "bold red", "closed": "green"}.get(entry.change.value, "yellow"),
            ),
            Text(f"{host}:{entry.port}/{entry.transport}"),
            Text(printable(entry.service or "")),
            Text(printable(product)),
            Text(entry.colour or "", style=_COLOUR_STYLE.get(entry.colour or "", "")),
            Text(printable(details)),
        )
    Console(file=out, highlight=False).print(table)
