"""The HTML report: one self-contained file with the four views, charts and score breakdowns.

Opened from disk, offline: the CSS and JavaScript are inline and a Content-Security-Policy
forbids every fetch (`default-src 'none'`), so the report cannot load anything, and
runs no script but its own (allowed by hash).

Everything that came from a banner or a provider is treated as hostile:
- text in the page is rendered by Jinja2 with autoescaping on;
- the table data travels as JSON in `<script type="application/json">`, with `<`, `>`
  and `&` written as \\u escapes so no value can close the element; the page's script
  puts values into the page with `textContent`, never as markup;
- control and bidirectional-override characters are shown as \\xNN, as in the terminal.
"""

from __future__ import annotations

import base64
import hashlib
import json
import operator
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict

from core.models import Endpoint, PortState, Run, Service, Status
from core.report.sanitize import printable
from core.report.views import (
    Row,
    ciphers_view,
    list_view,
    products_view,
    summary_view,
)
from core.risk.addresses import ip_sort_key
from core.risk.grading import OfferedSuite
from core.risk.prevalence import (
    LESS_COMMON_FROM,
    SOMEWHAT_COMMON_FROM,
    VERY_COMMON_ABOVE,
    Bucket,
    Prevalence,
)
from core.risk.scoring import Risk

BANNER_SHOWN = 160
"""Characters of a banner in a table cell; the whole (capped) banner is in its tooltip."""


class Column(BaseModel):
    """A table column: the row field it shows, its header, and how it sorts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    label: str
    kind: str = "text"  # text, number, ip, colour, grade, date, list


def _c(key: str, label: str, kind: str = "text") -> Column:
    return Column(key=key, label=label, kind=kind)


COLUMNS: dict[str, tuple[Column, ...]] = {
    "summary": (
        _c("target", "Target", "ip"),
        _c("name", "Name"),
        _c("org", "Organisation"),
        _c("open_ports", "Open ports", "number"),
        _c("green", "Green", "number"),
        _c("yellow", "Yellow", "number"),
        _c("red", "Red", "number"),
        _c("cdn_edge", "CDN edge", "number"),
        _c("score", "Score", "number"),
    ),
    "list": (
        _c("ip", "IP", "ip"),
        _c("port", "Port", "number"),
        _c("transport", "Proto"),
        _c("service", "Service"),
        _c("product", "Product"),
        _c("version", "Version"),
        _c("status", "Status"),
        _c("sources", "Sources", "list"),
        _c("colour", "Risk", "colour"),
        _c("prevalence", "Prevalence"),
        _c("first_seen", "First detected", "date"),
        _c("last_seen", "Last seen", "date"),
        _c("hostnames", "Hostnames", "list"),
        _c("cves", "CVEs", "list"),
        _c("http_title", "HTTP title"),
        _c("banner", "Banner"),
    ),
    "products": (
        _c("product", "Product"),
        _c("version", "Version"),
        _c("instances", "Instances", "number"),
        _c("targets", "Targets", "number"),
    ),
    "ciphers": (
        _c("suite", "Cipher suite"),
        _c("grade", "Grade", "grade"),
        _c("endpoints", "Endpoints", "number"),
        _c("targets", "Targets", "number"),
        _c("protocols", "Protocols", "list"),
    ),
}

TABS = (("summary", "Summary"), ("list", "List"), ("products", "Products"), ("ciphers", "Ciphers"))


class Bar(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    value: int
    y: int
    width: int
    css: str


class Chart(BaseModel):
    """A horizontal bar chart, laid out here so the template only draws it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: tuple[Bar, ...]


_LABEL_CHARS = 28


def bar_chart(
    chart_id: str, title: str, items: Sequence[tuple[str, int, str]], *, width: int = 480
) -> Chart:
    """Lay out (label, value, css class) items as bars scaled to the largest value."""
    label_width, bar_height, gap, value_room = 200, 18, 6, 60
    scale = max((value for _, value, _ in items), default=0) or 1
    bars = []
    for index, (label, value, css) in enumerate(items):
        shown = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
        span = width - label_width - value_room
        bars.append(
            Bar(
                label=printable(shown),
                value=value,
                y=index * (bar_height + gap),
                width=max(1 if value else 0, round(span * value / scale)),
                css=css,
            )
        )
    return Chart(
        id=chart_id,
        title=title,
        width=width,
        height=max(bar_height, len(items) * (bar_height + gap)),
        label_width=label_width,
        bar_height=bar_height,
        bars=tuple(bars),
    )


def charts(
    services: Sequence[Service], risks: Mapping[str, Risk], prevalence: Prevalence | None
) -> list[Chart]:
    """Ports by colour, top products, and how common this run's open ports are."""
    totals = Counter[str]()
    for risk in risks.values():
        totals["green"] += risk.green
        totals["yellow"] += risk.yellow
        totals["red"] += risk.red
        totals["cdn"] += risk.cdn_edge
    by_colour = bar_chart(
        "chart-colours",
        "Open ports by risk colour",
        [
            ("red", totals["red"], "red"),
            ("yellow", totals["yellow"], "yellow"),
            ("green", totals["green"], "green"),
            ("CDN edge", totals["cdn"], "cdn"),
        ],
    )
    top = products_view(services)[:10]
    products = bar_chart(
        "chart-products",
        "Top products (instances)",
        [(" ".join(p for p in (r.product, r.version) if p), r.instances, "product") for r in top],
    )
    result = [by_colour, products]
    if prevalence is not None:
        buckets = Counter(
            prevalence.bucket(s.endpoint.port, s.endpoint.transport)
            for s in services
            if s.state is PortState.OPEN
        )
        labels = {
            Bucket.VERY_COMMON: f"very common (>{VERY_COMMON_ABOVE})",
            Bucket.SOMEWHAT_COMMON: f"somewhat common ({SOMEWHAT_COMMON_FROM}-{VERY_COMMON_ABOVE})",
            Bucket.LESS_COMMON: f"less common ({LESS_COMMON_FROM}-{SOMEWHAT_COMMON_FROM - 1})",
            Bucket.RARE: f"rare (<{LESS_COMMON_FROM})",
        }
        result.append(
            bar_chart(
                "chart-prevalence",
                "Open ports by prevalence",
                [(labels[b], buckets[b], f"prev-{b.name.lower()}") for b in Bucket],
            )
        )
    return result


def _ip_key(ip: str) -> str:
    # A string that sorts like the address (IPv4 first): JavaScript numbers cannot
    # hold an IPv6 address, strings can.
    version, value = ip_sort_key(ip)
    return f"{version}{value:032x}"


def _text(text: str) -> str:
    # isprintable() is false for every control and bidi character printable() rewrites,
    # and runs in C: most cells skip the regular expression.
    return text if text.isprintable() else printable(text)


def _as_is(value: Any) -> Any:
    return value


def _as_date(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else None


def _as_list(value: Sequence[Any]) -> str:
    return ", ".join(_text(str(item)) for item in value)


def _as_text(value: Any) -> str | None:
    return None if value is None else _text(str(value))


# How each kind of column becomes a JSON cell: chosen once per column, not per cell.
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "number": _as_is,
    "date": _as_date,
    "list": _as_list,
}


def _table(view: str, rows: Sequence[Row]) -> dict[str, Any]:
    """Rows as arrays: the columns' cells, then the banner tooltip, then the address key."""
    columns = COLUMNS[view]
    keys = [column.key for column in columns]
    get: Callable[[Row], tuple[Any, ...]] = operator.attrgetter(*keys)
    convert: list[Callable[[Any], Any]] = [_CONVERT.get(c.kind, _as_text) for c in columns]
    ip_index = next((i for i, c in enumerate(columns) if c.kind == "ip"), None)
    banner = keys.index("banner") if "banner" in keys else None
    out = []
    for row in rows:
        values = get(row)
        cells = [fn(value) for fn, value in zip(convert, values, strict=True)]
        tooltip = None
        if banner is not None and cells[banner] and len(cells[banner]) > BANNER_SHOWN:
            # The table shows the start of a long banner; the cell's tooltip has it all.
            tooltip = cells[banner]
            cells[banner] = tooltip[:BANNER_SHOWN] + "…"
        cells.append(tooltip)
        cells.append(_ip_key(values[ip_index]) if ip_index is not None else None)
        out.append(cells)
    return {"columns": keys, "rows": out}


def _findings(risk: Risk) -> list[list[Any]]:
    return [
        [
            f.rule,
            f.severity.value,
            f.points,
            f.base_points,
            f.weight,
            f.endpoint,
            printable(f.evidence),
            f.rationale,
            printable(f.allowlist) if f.allowlist else None,
        ]
        for f in risk.findings
    ]


def embed_json(data: Any) -> Markup:
    """JSON safe inside a <script> element: no `</script>`, `<!--` or `&` can appear."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Outside strings JSON has none of these characters; inside strings the \u escapes
    # mean the same to JSON.parse. str.replace is far faster than one translate() pass.
    for char in "<>&\u2028\u2029":
        if char in text:
            text = text.replace(char, f"\\u{ord(char):04x}")
    return Markup(text)  # noqa: S704 - escaped above; JSON in a data element, not HTML


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("core.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _asset(name: str) -> str:
    return resources.files("core.report").joinpath(f"templates/{name}").read_text("utf-8")


def render_html(
    out: TextIO,
    services: Sequence[Service],
    risks: Mapping[str, Risk],
    *,
    generated_at: datetime,
    prevalence: Prevalence | None = None,
    run: Run | None = None,
    suites: Mapping[Endpoint, Sequence[OfferedSuite]] | None = None,
    title: str = "portintel report",
) -> None:
    """Write the report for `services` (coloured by `annotate`) and their assets' risks."""
    summary = summary_view(services, risks)
    data = {
        "tables": {
            "summary": _table("summary", summary),
            "list": _table("list", list_view(services, prevalence)),
            "products": _table("products", products_view(services)),
            "ciphers": _table("ciphers", ciphers_view(services, suites)),
        },
        "findings": {
            row.target: _findings(risks[row.target]) for row in summary if row.target in risks
        },
    }
    css, script = _asset("report.css"), _asset("report.js")
    open_count = sum(1 for s in services if s.state is PortState.OPEN)
    template = _environment().get_template("report.html.j2")
    stream = template.generate(
        title=title,
        run=run,
        run_targets=", ".join(run.targets[:8]) + (" …" if run and len(run.targets) > 8 else "")
        if run
        else "",
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        counts={
            "targets": len(summary),
            "endpoints": len(services),
            "open": open_count,
            "refuted": sum(1 for s in services if s.status is Status.REFUTED),
        },
        tabs=TABS,
        columns=COLUMNS,
        charts=charts(services, risks, prevalence),
        data=embed_json(data),
        css=Markup(css),  # noqa: S704 - our own stylesheet, shipped in the package
        script=Markup(script),  # noqa: S704 - our own script, shipped in the package
        csp=f"default-src 'none'; script-src '{_csp_hash(script)}'; "
        f"style-src '{_csp_hash(css)}'; img-src data:; base-uri 'none'; form-action 'none'",
    )
    out.writelines(stream)
