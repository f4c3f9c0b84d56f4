"""The HTML report: self-contained and escaped (checked on the text), and working in a real
headless Chromium: tabs switch, tables sort and filter, hostile banners stay text.

The browser tests load the report from a file:// URL; Chromium is started with every
network feature off and a resolver that resolves nothing (tests/core/report/chromium.py).
A screenshot of each view is left in artifacts/ for a person to look at.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from core.models import Endpoint, Run, RunStatus, Service, Status, Transport, Vuln
from core.report.to_html import bar_chart, embed_json, render_html
from core.risk.allowlist import allowlist_from
from core.risk.grading import OfferedSuite
from core.risk.prevalence import Prevalence
from core.risk.scoring import annotate, score_assets
from tests.core.report.chromium import Browser, Page, find_chromium, launch
from tests.core.risk.helpers import NOW, svc, tls
from tests.lab.netns import lab_unavailable

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"

HOSTILE_PRODUCT = '<script>window.__pwned = "product"; document.title = "pwned"</script>'
HOSTILE_BANNER = '</script><script>window.__pwned = "banner"</script><!-- <b>x</b>'
HOSTILE_TITLE = '"><img src=x onerror="window.__pwned=\'title\'">'
HOSTILE_ORG = "</title><svg onload=\"window.__pwned='org'\"></svg>"
HOSTILE_SUITE = "<b>TLS_FAKE</b>"
BIDI_VERSION = "1.0\u202egnp.exe"

A, B, C = "198.51.100.7", "198.51.100.10", "2001:db8::10"
RUN = Run(
    id=7,
    started_at=datetime(2026, 6, 30, 22, 0, tzinfo=UTC),
    finished_at=datetime(2026, 6, 30, 22, 5, tzinfo=UTC),
    command="enrich",
    targets=("198.51.100.0/24", "2001:db8::/64"),
    status=RunStatus.OK,
)


def inventory(filler: int = 0) -> list[Service]:
    """A small realistic inventory with hostile text, plus `filler` plain web servers."""
    services = [
        svc(A, 22, "ssh", product="OpenSSH", version="9.6p1", hostnames=("a.example.com",)),
        svc(A, 443, "http", product="nginx", version="1.24.0", tls=tls(self_signed=True)),
        svc(
            A,
            3306,
            "mysql",
            product=HOSTILE_PRODUCT,
            version=BIDI_VERSION,
            banner=HOSTILE_BANNER,
            http_title=HOSTILE_TITLE,
            org=HOSTILE_ORG,
            vulns=(Vuln(cve="CVE-2024-0001", cvss=9.8),),
        ),
        svc(B, 80, "http", product="nginx", version="1.22.1", banner="HTTP/1.1 200 OK\r\n" * 40),
        svc(B, 9999, None, sources=("internetdb",)),
        svc(B, 443, "http", product="nginx", version="1.22.1", tls=tls(cipher=HOSTILE_SUITE)),
        svc(C, 161, "snmp", transport=Transport.UDP, status=Status.UNVERIFIED),
        svc("104.16.0.10", 8443, "http", product="cloudflare"),  # a Cloudflare edge
    ]
    services += [
        svc(f"203.0.113.{i % 250}", 8000 + i // 250, "http", product="lighttpd")
        for i in range(filler)
    ]
    return list(annotate(services))


def render(services: list[Service], **kwargs: object) -> str:
    out = io.StringIO()
    risks = score_assets(
        services,
        now=NOW,
        allowlist=allowlist_from([{"targets": [A], "ports": ["22"]}]),
    )
    prevalence = Prevalence({(443, Transport.TCP): 4000, (22, Transport.TCP): 900})
    render_html(
        out,
        services,
        risks,
        generated_at=NOW,
        prevalence=prevalence,
        run=RUN,
        **kwargs,  # type: ignore[arg-type]
    )
    return out.getvalue()


# -- the text of the page -----------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, attrs))


def test_embedded_json_cannot_close_its_element_and_round_trips() -> None:
    data = {"a": [HOSTILE_BANNER, HOSTILE_PRODUCT, "a & b", "\u2028"]}
    text = str(embed_json(data))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


def test_report_is_self_contained_and_locked_down() -> None:
    html = render(inventory())
    # Nothing is fetched: no element with src/href/action, no url(), no @import.
    elements = Elements()
    elements.feed(html)
    fetching = [
        (tag, name)
        for tag, attrs in elements.seen
        for name, _ in attrs
        if name in ("src", "href", "action", "srcset", "poster", "data")
    ]
    assert fetching == []
    assert {tag for tag, _ in elements.seen} >= {"html", "script", "style", "svg", "table"}
    assert not {"link", "img", "iframe", "object", "embed", "base"} & {t for t, _ in elements.seen}
    assert "url(" not in html and "@import" not in html
    (csp,) = [
        dict(attrs)["content"]
        for tag, attrs in elements.seen
        if tag == "meta" and dict(attrs).get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None and csp.startswith("default-src 'none';")
    # The CSP allows exactly our inline script and stylesheet, by hash.
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    for body in scripts + styles:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert html.count("<script") == 2  # the JSON data and our script


def test_hostile_text_is_escaped_everywhere() -> None:
    html = render(
        inventory(), suites={Endpoint(ip=B, port=443): [OfferedSuite(name=HOSTILE_SUITE)]}
    )
    for hostile in (HOSTILE_PRODUCT, HOSTILE_BANNER, HOSTILE_TITLE, HOSTILE_ORG, HOSTILE_SUITE):
        assert hostile not in html
    assert "window.__pwned" in html  # present, but only as inert, escaped text
    assert "\u202e" not in html  # the bidi override is shown as \x202e
    assert "\\\\x202e" in html
    # The SVG chart of top products names the hostile product: escaped by Jinja.
    assert "&lt;script&gt;window.__pwned" in html


def test_bar_chart_scales_to_the_largest_value() -> None:
    chart = bar_chart("c", "t", [("a", 10, "x"), ("b", 5, "y"), ("c", 0, "z"), ("d" * 40, 1, "w")])
    widths = [bar.width for bar in chart.bars]
    assert widths[0] == 2 * widths[1] and widths[2] == 0 and widths[3] >= 1
    assert chart.bars[3].label.endswith("…") and len(chart.bars[3].label) == 28
    assert [bar.y for bar in chart.bars] == sorted(bar.y for bar in chart.bars)


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        lab_unavailable("chromium is not installed (Debian package: chromium)")
        raise AssertionError("unreachable")  # lab_unavailable skips or fails
    with launch(executable, tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(
        render(
            inventory(filler=600),
            suites={Endpoint(ip=B, port=443): [OfferedSuite(name=HOSTILE_SUITE)]},
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def page(browser: Browser, report_file: Path) -> Page:
    browser.events.clear()
    tab = browser.new_page()
    tab.goto(report_file.as_uri())
    assert tab.evaluate("document.documentElement.dataset.ready") == "true"
    return tab


def rows(page: Page, table: str, key: str) -> list[str]:
    return page.evaluate(  # type: ignore[no-any-return]
        f"Array.from(document.querySelectorAll('#table-{table} > tbody > tr:not(.breakdown)"
        f' > td[data-key="{key}"]\')).map(td => td.textContent)'
    )


def visible(page: Page, panel: str) -> bool:
    return page.evaluate(f"!document.getElementById('panel-{panel}').hidden") is True


@pytest.mark.lab
def test_hostile_banners_do_not_run(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.title") == "portintel report - run 7"
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    injected = "[onload], [onerror], img, iframe, object, embed, b"
    assert page.evaluate(f"document.querySelectorAll('{injected}').length") == 0
    # The hostile text is on the page, as text, exactly as the provider sent it.
    page.click("#tab-list")
    page.type_into("#filter-list", "port:3306")
    assert rows(page, "list", "product") == [HOSTILE_PRODUCT]
    assert rows(page, "list", "banner") == [HOSTILE_BANNER]
    assert rows(page, "list", "http_title") == [HOSTILE_TITLE]
    assert rows(page, "list", "version") == ["1.0\\x202egnp.exe"]
    page.click("#tab-ciphers")
    assert HOSTILE_SUITE in rows(page, "ciphers", "suite")
    # No script error, no CSP violation, nothing fetched but the file itself.
    assert page.events("Runtime.exceptionThrown") == []
    errors = [e for e in page.events("Log.entryAdded") if e["params"]["entry"]["level"] == "error"]
    assert errors == []
    urls = [e["params"]["request"]["url"] for e in page.events("Network.requestWillBeSent")]
    assert urls and all(url.startswith("file://") for url in urls)


@pytest.mark.lab
def test_tabs_switch(page: Page) -> None:
    assert visible(page, "summary") and not visible(page, "list")
    for name in ("list", "products", "ciphers", "summary"):
        page.click(f"#tab-{name}")
        assert visible(page, name)
        others = {"summary", "list", "products", "ciphers"} - {name}
        assert not any(visible(page, other) for other in others)
        assert (
            page.evaluate(f"document.getElementById('tab-{name}').getAttribute('aria-selected')")
            == "true"
        )
    # Arrow keys move between tabs too.
    page.click("#tab-list")
    page.call(
        "Input.dispatchKeyEvent", {"type": "keyDown", "key": "ArrowRight", "code": "ArrowRight"}
    )
    assert visible(page, "products")


@pytest.mark.lab
def test_sorting(page: Page) -> None:
    page.click("#tab-list")
    page.type_into("#filter-list", "198.51.100")
    page.click('#table-list th[data-key="port"] button')
    ports = [int(p) for p in rows(page, "list", "port")]
    assert ports == sorted(ports) and len(ports) == 6
    assert (
        page.evaluate(
            "document.querySelector('#table-list th[data-key=port]').getAttribute('aria-sort')"
        )
        == "ascending"
    )
    page.click('#table-list th[data-key="port"] button')
    assert [int(p) for p in rows(page, "list", "port")] == sorted(ports, reverse=True)
    # Addresses sort as numbers (.7 before .10), not as text.
    page.click('#table-list th[data-key="ip"] button')
    assert rows(page, "list", "ip")[0] == A and rows(page, "list", "ip")[-1] == B
    # Risk colour sorts red first.
    page.click('#table-list th[data-key="colour"] button')
    assert rows(page, "list", "colour")[0] == "red"
    # Summary: score descending on the second click.
    page.click("#tab-summary")
    page.click('#table-summary th[data-key="score"] button')
    page.click('#table-summary th[data-key="score"] button')
    scores = [int(s) for s in rows(page, "summary", "score")]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


@pytest.mark.lab
def test_filtering_and_paging(page: Page) -> None:
    page.click("#tab-list")
    total = 8 + 600
    assert len(rows(page, "list", "ip")) == 500  # the first page
    assert f"of {total:,} matching" in page.evaluate(
        "document.getElementById('count-list').textContent"
    )
    page.click("#more-list")
    assert len(rows(page, "list", "ip")) == total
    page.type_into("#filter-list", "nginx")
    assert sorted(rows(page, "list", "port")) == ["443", "443", "80"]
    page.type_into("#filter-list", "port:443")  # a column term matches exactly
    assert rows(page, "list", "port") == ["443", "443"]
    page.type_into("#filter-list", "")
    page.evaluate(
        "(() => { const s = document.getElementById('colour-list'); s.value = 'red';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert sorted(rows(page, "list", "port")) == ["161", "3306"]
    # A target in the summary opens the list filtered to that address.
    page.click("#tab-summary")
    page.type_into("#filter-summary", B)
    page.click('#table-summary td[data-key="target"] a')
    assert visible(page, "list")
    assert page.evaluate("document.getElementById('filter-list').value") == f"ip:{B}"
    assert sorted(rows(page, "list", "port")) == ["443", "80", "9999"]
    # Products link back to the list of their instances.
    page.click("#tab-products")
    page.type_into("#filter-products", "OpenSSH")
    page.click('#table-products td[data-key="instances"] a')
    assert rows(page, "list", "product") == ["OpenSSH"]


@pytest.mark.lab
def test_score_breakdown_per_asset(page: Page) -> None:
    page.type_into("#filter-summary", f"target:{A}")
    page.click("#table-summary td.expand button")
    breakdown = page.evaluate(
        "Array.from(document.querySelectorAll('#table-summary tr.breakdown tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))"
    )
    rules = [row[0].split(" ")[0] for row in breakdown]
    assert rules == [
        "exposure.open-ports",
        "port.red",
        "vuln.critical",
        "cert.self-signed",
    ]
    points = {row[0].split(" ")[0]: row[1] for row in breakdown}
    assert points["port.red"] == "25" and points["vuln.critical"] == "15"
    assert points["exposure.open-ports"] == "4"  # 22 allowlisted: 2 x 0.2 + 2 + 2 = 4.4
    score = rows(page, "summary", "score")
    assert score == [str(sum(int(row[1].split(" ")[0]) for row in breakdown))]


@pytest.mark.lab
def test_screenshots_are_saved_as_artefacts(page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for name in ("summary", "list"):
        page.click(f"#tab-{name}")
        png = page.screenshot(ARTIFACTS / f"report-{name}.png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
