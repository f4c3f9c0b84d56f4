"""Provider-shaped exports: the RawRecords core hands the injected normalizers.

A stand-in normalizer records what it receives; the real connectors' normalizers run over
the same fixtures in tests/cli/test_import_cmds.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError, SchemaError
from core.importers import Format
from core.models import Kind, Observation, RawRecord
from tests.core.importers.helpers import FIXTURES, Recorder, collect, endpoints


def test_shodan_download_lines_become_one_match_search_pages() -> None:
    shodan = Recorder("shodan")
    claims, report = collect(FIXTURES / "shodan-download.json.gz", normalizers={"shodan": shodan})
    assert report.format is Format.SHODAN
    assert [r.endpoint_kind for r in shodan.seen] == ["search"] * 5
    assert shodan.seen[0].payload["matches"][0]["port"] == 2222
    assert shodan.seen[0].query.endswith("shodan-download.json.gz:1")
    assert endpoints(claims) == [
        "192.0.2.10:2222/tcp",
        "192.0.2.10:8080/tcp",
        "198.51.100.23:53/udp",
        "[2001:db8::a]:443/tcp",
    ]
    # Imported claims are the importer's, whatever the normalizer called them.
    assert {(c.observation.kind, c.observation.source) for c in claims} == {
        (Kind.IMPORTED, "import:shodan")
    }
    assert claims[0].values["module"] == "ssh" and claims[0].values["product"] == "OpenSSH"
    assert report.duplicates == 1 and report.duplicate_lines == [3]


def test_a_shodan_host_lookup_is_a_host_record_with_values_per_port() -> None:
    shodan = Recorder("shodan")
    claims, _ = collect(
        FIXTURES / "shodan-host.json", normalizers={"shodan": shodan}, source_name="pentest-2026"
    )
    assert [r.endpoint_kind for r in shodan.seen] == ["host"]
    by_port = {c.observation.endpoint.port: c for c in claims}
    assert by_port[8080].values["product"] == "SimpleHTTPServer"
    assert claims[0].observation.source == "import:pentest-2026"


def test_censys_exports_as_host_and_search_records() -> None:
    censys = Recorder("censys")
    claims, _ = collect(FIXTURES / "censys-hosts.jsonl", normalizers={"censys": censys})
    assert [r.endpoint_kind for r in censys.seen] == ["host", "host"]
    assert censys.seen[0].payload["result"]["resource"]["ip"] == "192.0.2.10"
    assert claims[0].values["protocol"] == "SSH" and claims[0].values["product"] == "openssh"
    censys = Recorder("censys")
    collect(FIXTURES / "censys-search.json", normalizers={"censys": censys})
    assert [r.endpoint_kind for r in censys.seen] == ["search"]
    assert len(censys.seen[0].payload["result"]["hits"]) == 2


def test_netlas_download_documents_become_response_pages() -> None:
    netlas = Recorder("netlas")
    claims, report = collect(FIXTURES / "netlas-download.jsonl", normalizers={"netlas": netlas})
    assert [r.endpoint_kind for r in netlas.seen] == ["search"] * 4
    assert list(netlas.seen[0].payload) == ["items"]
    assert endpoints(claims) == [
        "203.0.113.10:80/tcp",
        "203.0.113.10:22/tcp",
        "203.0.113.10:53/udp",
    ]
    assert report.duplicates == 1  # the same ip:port answered for a domain


def test_a_provider_format_needs_its_normalizer() -> None:
    with pytest.raises(InputError, match="needs the censys normalizer"):
        collect(FIXTURES / "censys-hosts.jsonl", normalizers={"shodan": Recorder("shodan")})


def test_a_normalizer_refusing_a_record_is_a_bad_row(tmp_path: Path) -> None:
    def picky(raw: RawRecord) -> list[Observation]:
        if raw.payload["matches"][0]["port"] == 8080:
            raise SchemaError("shodan", "timestamp is not in Shodan's format")
        return Recorder("shodan")(raw)

    with pytest.raises(InputError) as info:
        collect(FIXTURES / "shodan-download.json.gz", normalizers={"shodan": picky})
    assert info.value.line == 2 and "timestamp" in str(info.value)
    claims, report = collect(
        FIXTURES / "shodan-download.json.gz", normalizers={"shodan": picky}, skip_bad=True
    )
    assert len(claims) == 3
    assert report.skipped["not the documented shodan shape"].count == 2  # lines 2 and 3


def test_records_of_another_shape_in_a_provider_file(tmp_path: Path) -> None:
    path = tmp_path / "banners.json"
    path.write_text(
        '{"ip_str": "192.0.2.1", "port": 80, "transport": "tcp", '
        '"timestamp": "2026-01-01T00:00:00"}\n'
        '{"hello": "world"}\n[1, 2]\n'
    )
    claims, report = collect(path, normalizers={"shodan": Recorder("shodan")}, skip_bad=True)
    assert len(claims) == 1
    assert report.skipped["not a Shodan record"].examples[0].line == 2
    assert report.skipped["not a record"].count == 2
