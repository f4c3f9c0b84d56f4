"""`portintel report ...`, `diff` and `explain`, run in-process against a real SQLite store.

The app under test is assembled the way cli/app.py registers these commands: portintel's
own callback (so --db and the config work) with report_app, diff and explain added.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli.app import main_options
from cli.report_cmds import diff_command, explain_command, report_app
from core.models import PortState, RunStatus, Service, Status, Vuln
from core.store import Store
from tests.core.risk.helpers import svc, tls

A, B, C = "198.51.100.7", "198.51.100.10", "2001:db8::10"
MARKUP = "[bold red]not markup[/bold red]"


def build_app() -> typer.Typer:
    app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    app.callback()(main_options)
    app.add_typer(report_app, name="report")
    app.command("diff")(diff_command)
    app.command("explain")(explain_command)
    return app


APP = build_app()


def first_run() -> list[Service]:
    return [
        svc(A, 22, "ssh", product="OpenSSH", version="8.9p1", hostnames=("a.example.com",)),
        svc(A, 443, "http", product="nginx", version="1.24.0", tls=tls(self_signed=True)),
        svc(B, 80, "http", product='=HYPERLINK("x")', sources=("censys",)),
        svc(B, 8080, "http", product=MARKUP),
    ]


def second_run() -> list[Service]:
    return [
        svc(A, 22, "ssh", product="OpenSSH", version="9.6p1", hostnames=("a.example.com",)),
        svc(A, 443, "http", product="nginx", version="1.24.0", tls=tls(self_signed=True)),
        svc(
            A,
            3306,
            "mysql",
            product="MySQL",
            vulns=(Vuln(cve="CVE-2024-0001", cvss=9.8),),
            hostnames=("a.example.com",),
        ),
        svc(B, 80, "http", product='=HYPERLINK("x")', sources=("censys",)),
        svc(B, 8080, "http", product=MARKUP, state=PortState.CLOSED, status=Status.REFUTED),
        svc(C, 9999, None, sources=("internetdb",)),
    ]


def seed(db: Path, *runs: list[Service]) -> list[int]:
    ids = []
    with Store(f"sqlite:///{db}") as store:
        for services in runs:
            run_id = store.start_run("enrich", ["198.51.100.0/24", "2001:db8::/64"])
            store.save_services(run_id, services)
            store.finish_run(run_id, RunStatus.OK)
            ids.append(run_id)
    return ids


@pytest.fixture
def db(isolated: Path) -> Path:
    return isolated / "portintel.db"  # where the isolated fixture points PORTINTEL_DB


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(APP, list(args), env={"COLUMNS": "220"})  # room for whole cells
    return result.exit_code, result.stdout, result.stderr


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- report views ---------------------------------------------------------------------------


def test_summary_table_defaults_to_the_latest_run(runner: CliRunner, db: Path) -> None:
    seed(db, first_run(), second_run())
    code, out, _ = invoke(runner, "report", "summary")
    assert code == 0
    assert "run 2" in out and A in out and C in out
    code, out, _ = invoke(runner, "report", "summary", "--format", "json")
    rows = json.loads(out)["rows"]
    assert [r["target"] for r in rows] == [A, C, B]  # highest score first
    assert rows[0]["red"] == 1 and rows[0]["score"] == 6 + 25 + 15 + 5
    assert rows[0]["name"] == "a.example.com"


def test_run_option_selects_an_older_run(runner: CliRunner, db: Path) -> None:
    seed(db, first_run(), second_run())
    _, out, _ = invoke(runner, "report", "list", "--run", "1", "-f", "csv")
    assert {(r["ip"], r["port"]) for r in csv_rows(out)} == {
        (A, "22"),
        (A, "443"),
        (B, "80"),
        (B, "8080"),
    }


def test_list_csv_has_prevalence_across_runs_and_neutralised_cells(
    runner: CliRunner, db: Path
) -> None:
    seed(db, first_run(), second_run())
    code, out, _ = invoke(runner, "report", "list", "--format", "csv")
    assert code == 0
    rows = {(r["ip"], r["port"]): r for r in csv_rows(out)}
    assert len(rows) == 6
    # 22/tcp is open on one address in both runs: one instance, not two.
    assert rows[(A, "22")]["instances"] == "1" and rows[(A, "22")]["prevalence"] == "rare"
    assert rows[(A, "3306")]["colour"] == "red"
    assert rows[(C, "9999")]["colour"] == "yellow"
    assert rows[(B, "80")]["product"] == '\'=HYPERLINK("x")'  # no formula for a spreadsheet
    assert rows[(A, "22")]["first_seen"] == "2026-05-01T08:00:00Z"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--colour", "red"], {(A, "3306")}),
        (["--status", "refuted"], {(B, "8080")}),
        (["--source", "censys"], {(B, "80")}),
        (["--source", "censys", "--source", "internetdb"], {(B, "80"), (C, "9999")}),
        (["--port", "22", "--port", "443"], {(A, "22"), (A, "443")}),
        (["--target", "2001:db8::/32"], {(C, "9999")}),
        (["--target", "a.example.com", "--port", "3306"], {(A, "3306")}),
        (["--product", "NGINX"], {(A, "443")}),
        (["--colour", "green", "--target", B], {(B, "80"), (B, "8080")}),
    ],
)
def test_list_filters(
    runner: CliRunner, db: Path, args: list[str], expected: set[tuple[str, str]]
) -> None:
    seed(db, second_run())
    code, out, _ = invoke(runner, "report", "list", "-f", "csv", *args)
    assert code == 0
    assert {(r["ip"], r["port"]) for r in csv_rows(out)} == expected


def test_terminal_table_shows_markup_as_text(runner: CliRunner, db: Path) -> None:
    seed(db, first_run())
    code, out, _ = invoke(runner, "report", "products")
    assert code == 0
    assert "[bold red]not" in out  # printed, not interpreted by rich


def test_output_file_format_from_its_suffix(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    seed(db, second_run())
    target = tmp_path / "products.json"
    code, out, _ = invoke(runner, "report", "products", "-o", str(target))
    assert code == 0 and out == ""
    data = json.loads(target.read_text())
    assert data["view"] == "products"
    assert {(r["product"], r["instances"]) for r in data["rows"]} >= {("nginx", 1), ("MySQL", 1)}
    # the refuted port's product is not in use
    assert all(r["product"] != "not markup" for r in data["rows"])


def test_ciphers_view(runner: CliRunner, db: Path) -> None:
    seed(db, second_run())
    code, out, _ = invoke(runner, "report", "ciphers", "-f", "csv")
    assert code == 0
    assert csv_rows(out) == [
        {
            "suite": "TLS_AES_128_GCM_SHA256",
            "grade": "recommended",
            "endpoints": "1",
            "targets": "1",
            "protocols": "TLSv1.2;TLSv1.3",
        }
    ]


def test_html_report(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    seed(db, first_run(), second_run())
    target = tmp_path / "report.html"
    code, _, err = invoke(runner, "report", "html", "-o", str(target))
    assert code == 0 and "wrote" in err
    html = target.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Run 2 (enrich, ok)" in html
    assert "CVE-2024-0001" in html


def test_no_runs_is_one_clear_error(runner: CliRunner, db: Path) -> None:
    code, out, err = invoke(runner, "report", "summary")
    assert code == 1 and out == ""
    assert "no runs yet" in err


def test_unknown_run(runner: CliRunner, db: Path) -> None:
    seed(db, first_run())
    code, _, err = invoke(runner, "report", "list", "--run", "9")
    assert code == 1 and "no run 9" in err


# -- explain --------------------------------------------------------------------------------


def test_explain_lists_every_rule_that_gave_points(runner: CliRunner, db: Path) -> None:
    seed(db, second_run())
    code, out, _ = invoke(runner, "explain", A, "--format", "json")
    assert code == 0
    (risk,) = json.loads(out)["assets"]
    assert [f["rule"] for f in risk["findings"]] == [
        "exposure.open-ports",
        "port.red",
        "vuln.critical",
        "cert.self-signed",
    ]
    assert sum(f["points"] for f in risk["findings"]) == risk["points"] == risk["score"] == 51
    code, out, _ = invoke(runner, "explain", "a.example.com")  # by hostname, as a table
    assert code == 0
    assert "score 51/100" in out and "port.red" in out and "cert.self-signed" in out


def test_explain_with_an_allowlist(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    seed(db, second_run())
    allow = tmp_path / "allow.toml"
    allow.write_text(f'[[allow]]\ntargets = ["{A}"]\nports = ["3306"]\nreason = "replica"\n')
    code, out, _ = invoke(runner, "explain", A, "-f", "csv", "--allowlist", str(allow))
    assert code == 0
    red = next(r for r in csv_rows(out) if r["rule"] == "port.red")
    assert (red["points"], red["base_points"], red["weight"]) == ("5", "25", "0.2")
    assert "replica" in red["allowlist"]


def test_explain_unknown_asset(runner: CliRunner, db: Path) -> None:
    seed(db, second_run())
    code, _, err = invoke(runner, "explain", "203.0.113.99")
    assert code == 1 and "203.0.113.99 has no services in run 1" in err


# -- diff -----------------------------------------------------------------------------------


def test_diff_of_the_last_two_runs_exits_1_when_a_port_opened(runner: CliRunner, db: Path) -> None:
    seed(db, first_run(), second_run())
    code, out, _ = invoke(runner, "diff", "-f", "csv")
    assert code == 1
    rows = [(r["change"], r["ip"], r["port"], r["field"]) for r in csv_rows(out)]
    assert rows == [
        ("opened", A, "3306", ""),
        ("opened", C, "9999", ""),
        ("closed", B, "8080", "state"),
        ("closed", B, "8080", "status"),
        ("changed", A, "22", "version"),
    ]
    code, out, _ = invoke(runner, "diff")
    assert code == 1 and "2 opened, 1 closed, 1 changed" in out


def test_diff_exit_codes(runner: CliRunner, db: Path) -> None:
    later = [s for s in second_run() if s.endpoint.port not in (3306, 9999)]
    seed(db, second_run(), later)  # two ports closed, nothing opened
    code, out, _ = invoke(runner, "diff", "-f", "json")
    assert code == 0
    data = json.loads(out)
    assert (data["run_a"], data["run_b"], len(data["opened"]), len(data["closed"])) == (1, 2, 0, 2)
    code, _, _ = invoke(runner, "diff", "1", "2", "--fail-on", "any")
    assert code == 1  # closing counts as a change
    code, _, _ = invoke(runner, "diff", "2", "1")  # backwards: 3306 and 9999 opened
    assert code == 1
    code, _, _ = invoke(runner, "diff", "2", "1", "--fail-on", "never")
    assert code == 0
    code, _, _ = invoke(runner, "diff", "1", "1", "--fail-on", "any")
    assert code == 0  # a run compared with itself: nothing changed


def test_diff_opened_only_8080_counts(runner: CliRunner, db: Path) -> None:
    seed(db, second_run(), first_run())
    code, out, _ = invoke(runner, "diff", "-f", "csv")
    assert code == 1  # 8080 was refuted in the earlier run and is open again
    opened = [r for r in csv_rows(out) if r["change"] == "opened"]
    assert [(r["port"], r["field"]) for r in opened] == [("8080", "state"), ("8080", "status")]


def test_diff_errors_exit_2(runner: CliRunner, db: Path) -> None:
    seed(db, first_run())
    code, _, err = invoke(runner, "diff")
    assert code == 2 and "two finished runs" in err
    code, _, err = invoke(runner, "diff", "1", "7")
    assert code == 2 and "no run 7" in err
    code, _, _ = invoke(runner, "diff", "--fail-on", "sometimes")
    assert code == 2  # usage error
