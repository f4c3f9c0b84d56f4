from __future__ import annotations

from pathlib import Path

from core.importers import Format
from tests.core.importers.helpers import FIXTURES, collect, endpoints


def test_naabu_lines_old_and_new() -> None:
    claims, report = collect(FIXTURES / "naabu.jsonl")
    assert report.format is Format.NAABU
    assert endpoints(claims) == [
        "192.0.2.10:2222/tcp",
        "192.0.2.10:8080/tcp",
        "203.0.113.10:443/tcp",
        "198.51.100.23:22/tcp",
    ]
    assert claims[0].observation.hostnames == ("www.example.com",)
    assert claims[2].observation.hostnames == ()  # the host was an address, not a name
    assert claims[0].observation.observed_at is not None
    assert claims[3].observation.observed_at is None  # old naabu wrote no time
    assert claims[2].values["tls"] is True


def test_a_bad_line_in_the_middle_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "naabu.json"
    path.write_text(
        '{"ip":"192.0.2.1","port":80}\n{"ip":"192.0.2.1","port":\n{"ip":"192.0.2.2","port":{"Port":443}}\n'
    )
    claims, report = collect(path, skip_bad=True)
    assert endpoints(claims) == ["192.0.2.1:80/tcp", "192.0.2.2:443/tcp"]
    assert report.skipped["not JSON"].examples[0].line == 2
    assert report.complete
