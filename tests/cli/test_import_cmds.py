"""`portintel import`: the real connectors' normalizers over every fixture, into a store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.import_cmds import EXPORTERS, import_into_store, open_import
from core.errors import InputError
from core.models import Kind, RunStatus
from core.store import Store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imports"

# Endpoints each fixture claims, as the connectors' own normalizers map them.
EXPECTED = {
    "shodan-download.json.gz": {
        "192.0.2.10:2222/tcp",
        "192.0.2.10:8080/tcp",
        "198.51.100.23:53/udp",
        "[2001:db8::a]:443/tcp",
    },
    "shodan-host.json": {"192.0.2.10:2222/tcp", "192.0.2.10:8080/tcp", "192.0.2.10:3306/tcp"},
    "censys-hosts.jsonl": {
        "192.0.2.10:2222/tcp",
        "192.0.2.10:8080/tcp",
        "203.0.113.10:443/tcp",
        "203.0.113.10:80/tcp",
        "203.0.113.10:8443/tcp",
    },
    "censys-search.json": {
        "192.0.2.10:2222/tcp",
        "192.0.2.10:8080/tcp",
        "203.0.113.10:443/tcp",
        "203.0.113.10:80/tcp",
        "203.0.113.10:8443/tcp",
    },
    "netlas-download.jsonl": {"203.0.113.10:80/tcp", "203.0.113.10:22/tcp", "203.0.113.10:53/udp"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_provider_exports_through_the_real_normalizers(name: str) -> None:
    stream = open_import(FIXTURES / name)
    claims = list(stream)
    assert {str(c.observation.endpoint) for c in claims} == EXPECTED[name]
    assert {c.observation.kind for c in claims} == {Kind.IMPORTED}
    assert stream.report.skipped_count == 0


def test_the_real_normalizers_keep_provider_detail() -> None:
    claims = {
        str(c.observation.endpoint): c.observation
        for c in open_import(FIXTURES / "shodan-download.json.gz")
    }
    tls = claims["[2001:db8::a]:443/tcp"]
    assert tls.service == "http" and tls.product == "nginx"
    assert tls.tls is not None and tls.tls.versions == ("TLSv1.2", "TLSv1.3")
    assert [v.cve for v in tls.vulns] == ["CVE-2023-44487"]
    netlas = {
        str(c.observation.endpoint): c.observation
        for c in open_import(FIXTURES / "netlas-download.jsonl")
    }
    assert netlas["203.0.113.10:80/tcp"].product == "nginx"


def test_import_into_a_store_records_a_run(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        outcome = import_into_store(store, open_import(FIXTURES / "nmap.xml"))
        run = store.run(outcome.run_id)
    assert outcome.stored == 3 and run.status is RunStatus.OK
    assert run.sources[0].source == "import:nmap" and run.sources[0].observations == 3


def test_a_bad_record_fails_the_run_and_says_what_was_stored(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("ip,port\n192.0.2.1,22\n192.0.2.1,99999\n")
    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        with pytest.raises(InputError) as info:
            import_into_store(store, open_import(path))
        run = store.run(store.latest_run_id() or 0)
    message = str(info.value)
    assert f"{path}:3:" in message and "marked failed" in message and "1 claim(s)" in message
    assert run.status is RunStatus.FAILED
    with Store(f"sqlite:///{tmp_path / 'q.db'}") as store:
        outcome = import_into_store(store, open_import(path, skip_bad=True))
        assert store.run(outcome.run_id).status is RunStatus.PARTIAL


def test_the_command(isolated: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "import",
            str(FIXTURES / "findings-mapped.csv"),
            "--source-name",
            "pentest",
            "--map",
            "Host IP=ip",
            "--map",
            "Port Number=port",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].endswith("2 claims imported as import:pentest, 0 duplicates, 0 skipped")
    assert lines[-1].startswith("stored as run #")
    with Store(f"sqlite:///{isolated / 'portintel.db'}") as store:
        run = store.run(store.latest_run_id() or 0)
    assert run.sources[0].source == "import:pentest"
    assert run.sources[0].observations == 2


def test_the_new_export_formats_are_offered() -> None:
    assert set(EXPORTERS) == {"nmap-xml", "jsonl"}
