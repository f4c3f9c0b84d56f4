"""`portintel enrich` end to end: CLI -> connectors -> emulators -> store -> reconciled CSV/JSON.

Expected endpoints come from the fixture files' raw fields, never from our own normalizers.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from core.store import Store
from tests.cli.conftest import Providers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"
HOST = "198.51.100.23"


def raw_endpoints(ip: str) -> dict[tuple[str, int, str], set[str]]:
    """(ip, port, transport) -> the sources whose fixture claims it, read from the raw JSON."""
    claims: dict[tuple[str, int, str], set[str]] = {}

    def add(port: int, transport: str, source: str) -> None:
        claims.setdefault((ip, int(port), transport.lower()), set()).add(source)

    name = ip.replace(":", "_")
    shodan = FIXTURES / "shodan" / "hosts" / f"{name}.json"
    if shodan.exists():
        for banner in json.loads(shodan.read_text()).get("data", []):
            add(banner["port"], banner["transport"], "shodan")
    censys = FIXTURES / "censys" / "hosts" / f"{name}.json"
    if censys.exists():
        for svc in json.loads(censys.read_text())["result"]["resource"].get("services", []):
            add(svc["port"], svc.get("transport_protocol", "tcp"), "censys")
    internetdb = FIXTURES / "internetdb" / "hosts" / f"{name}.json"
    if internetdb.exists():
        for port in json.loads(internetdb.read_text()).get("ports", []):
            add(port, "tcp", "internetdb")
    return claims


def rows(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_enrich_merges_every_source_per_endpoint(providers: Providers, runner: CliRunner) -> None:
    # Given all four sources configured, when one host is enriched
    result = runner.invoke(app, ["enrich", HOST])
    # Then the run succeeds and the CSV has one row per endpoint any source claimed
    assert result.exit_code == 0, result.stderr
    table = rows(result.stdout)
    got = {(r["ip"], int(r["port"]), r["transport"]): set(r["sources"].split(";")) for r in table}
    expected = raw_endpoints(HOST)
    assert set(got) == set(expected)
    for endpoint, sources in expected.items():
        assert sources <= got[endpoint], endpoint
    assert list(table[0])[:10] == [
        "ip", "port", "transport", "status", "service", "product", "version", "sources",
        "first_seen", "last_seen",
    ]  # fmt: skip
    assert all(r["status"] in {"unverified", "conflict", "cdn-edge"} for r in table)
    assert all(r["first_seen"].endswith("Z") for r in table)


def test_json_output_and_file_output(
    providers: Providers, runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "inventory.json"
    result = runner.invoke(app, ["enrich", HOST, "--format", "json", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1
    assert doc["run"]["command"] == "enrich"
    endpoints = {
        (s["endpoint"]["ip"], s["endpoint"]["port"], s["endpoint"]["transport"])
        for s in doc["services"]
    }
    assert endpoints == set(raw_endpoints(HOST))


def test_rerun_within_ttl_sends_nothing_and_refresh_does(
    providers: Providers, runner: CliRunner
) -> None:
    assert runner.invoke(app, ["enrich", HOST]).exit_code == 0
    sent = providers.requests()
    assert sent > 0
    again = runner.invoke(app, ["enrich", HOST])
    assert again.exit_code == 0
    assert providers.requests() == sent  # all answers came from the cache
    assert rows(again.stdout) and len(rows(again.stdout)) == len(raw_endpoints(HOST))
    assert runner.invoke(app, ["enrich", HOST, "--refresh"]).exit_code == 0
    assert providers.requests() > sent


def test_dry_run_sends_nothing(providers: Providers, runner: CliRunner) -> None:
    result = runner.invoke(app, ["enrich", HOST, "198.51.100.0/24", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert providers.requests() == 0
    for name in ("shodan", "censys", "netlas", "internetdb"):
        assert name in result.stdout
    assert not Path(str(providers.db)).exists() or not list(
        Store(f"sqlite:///{providers.db}").runs()
    )


def test_a_failing_source_gives_partial_and_the_others_complete(
    providers: Providers, runner: CliRunner
) -> None:
    providers.netlas.fail_always("500")
    result = runner.invoke(app, ["enrich", HOST, "--refresh"])
    assert result.exit_code == 3, result.stderr
    assert "netlas: failed" in result.stderr
    sources = {s for r in rows(result.stdout) for s in r["sources"].split(";")}
    assert {"shodan", "censys", "internetdb"} <= sources
    store = Store(f"sqlite:///{providers.db}")
    run = store.run(store.latest_run_id())
    by_source = {s.source: s for s in run.sources}
    assert by_source["netlas"].status.value == "failed"
    assert by_source["netlas"].errors
    assert by_source["shodan"].status.value == "ok"


def test_bad_key_is_one_line_naming_the_source_and_not_retried(
    providers: Providers, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CENSYS_API_TOKEN", "wrong-token-value")
    result = runner.invoke(app, ["enrich", HOST])
    assert result.exit_code == 3
    assert "censys: failed" in result.stderr
    assert len(providers.censys.requests) == 1
    assert "wrong-token-value" not in result.stderr + result.stdout


def test_every_source_failing_exits_4(providers: Providers, runner: CliRunner) -> None:
    for emulator in providers.all:
        emulator.fail_always("garbage")
    result = runner.invoke(app, ["enrich", HOST, "--refresh"])
    assert result.exit_code == 4, result.stderr


def test_unconfigured_sources_are_skipped_with_the_env_var_to_set(
    isolated: Path, runner: CliRunner, internetdb_emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTINTEL_INTERNETDB_URL", internetdb_emulator.url)
    result = runner.invoke(app, ["enrich", HOST])
    assert result.exit_code == 0, result.stderr
    assert "set SHODAN_API_KEY" in result.stderr
    assert "set NETLAS_API_KEY" in result.stderr
    assert {r["sources"] for r in rows(result.stdout)} == {"internetdb"}
    asked = runner.invoke(app, ["enrich", HOST, "--source", "shodan"])
    assert asked.exit_code == 1
    assert "SHODAN_API_KEY" in asked.stderr


def test_malformed_target_file_names_file_line_value(
    providers: Providers, runner: CliRunner, tmp_path: Path
) -> None:
    assets = tmp_path / "assets.txt"
    assets.write_text(f"{HOST}\n192.0.2.999\n")
    result = runner.invoke(app, ["enrich", str(assets)])
    assert result.exit_code == 1
    assert f"{assets}:2:" in result.stderr and "192.0.2.999" in result.stderr
    assert providers.requests() == 0
    skipped = runner.invoke(app, ["enrich", str(assets), "--skip-bad"])
    assert skipped.exit_code == 0, skipped.stderr
    assert "skipped" in skipped.stderr and "192.0.2.999" in skipped.stderr


def test_huge_scope_needs_force(providers: Providers, runner: CliRunner) -> None:
    result = runner.invoke(app, ["enrich", "198.18.0.0/15", "--dry-run"])
    assert result.exit_code == 1
    assert "--force" in result.stderr
    assert providers.requests() == 0


def test_budget_stops_a_source_before_it_overspends(
    providers: Providers, runner: CliRunner
) -> None:
    # A /24 is searched (1 credit a page); a budget of 0 forbids even the first page.
    result = runner.invoke(app, ["enrich", "198.51.100.0/24", "--budget", "0", "-s", "shodan"])
    assert result.exit_code == 4, result.stderr
    assert "budget" in result.stderr
    assert not providers.shodan.calls("/shodan/host/search")


def test_keys_never_reach_output_store_or_cache(providers: Providers, runner: CliRunner) -> None:
    result = runner.invoke(app, ["--debug", "enrich", HOST, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    secrets = [providers.shodan.key, providers.censys.key, providers.netlas.key]
    blobs = [result.stdout, result.stderr, providers.db.read_bytes().decode("latin-1")]
    for path in (providers.home / "responses").rglob("*"):
        if path.is_file():
            blobs.append(path.read_bytes().decode("latin-1"))
    for secret in secrets:
        assert all(secret not in blob for blob in blobs), secret


def test_sources_shows_configuration_and_credits(providers: Providers, runner: CliRunner) -> None:
    result = runner.invoke(app, ["sources", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = {s["source"]: s for s in json.loads(result.stdout)}
    assert set(listed) == {"shodan", "censys", "netlas", "internetdb"}
    assert listed["internetdb"]["key"] == "keyless"
    assert all(listed[n]["key"] == "configured" for n in ("shodan", "censys", "netlas"))
    assert all(s["reachable"] == "yes" for s in listed.values())
    shodan_credits = json.loads((FIXTURES / "shodan" / "api-info.json").read_text())
    assert listed["shodan"]["credits_left"] == str(shodan_credits["query_credits"])
    assert providers.shodan.key not in result.stdout
    table = runner.invoke(app, ["sources"])
    assert table.exit_code == 0 and "Sources" in table.stdout


def test_internal_targets_ask_no_source(providers: Providers, runner: CliRunner) -> None:
    result = runner.invoke(app, ["enrich", "127.0.0.1", "10.0.0.0/30"])
    assert result.exit_code == 0, result.stderr
    assert providers.requests() == 0
    assert "internetdb: skipped, nothing to ask" in result.stderr


def test_exports_other_tools_read(providers: Providers, runner: CliRunner) -> None:
    import xml.etree.ElementTree as ET  # our own output, not untrusted input

    xml = runner.invoke(app, ["enrich", HOST, "--format", "nmap-xml"])
    assert xml.exit_code == 0, xml.stderr
    ports = ET.fromstring(xml.stdout).findall("./host/ports/port")  # noqa: S314
    got = {(int(p.get("portid") or 0), p.get("protocol")) for p in ports}
    assert got == {(port, transport) for _, port, transport in raw_endpoints(HOST)}
    lines = runner.invoke(app, ["enrich", HOST, "--format", "jsonl"]).stdout.splitlines()
    assert len(lines) == len(raw_endpoints(HOST))
    assert all(json.loads(line)["endpoint"]["ip"] == HOST for line in lines)
