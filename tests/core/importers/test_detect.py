from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from core.errors import InputError
from core.importers import Format, detect
from tests.core.importers.helpers import FIXTURES

EXPECTED = {
    "nmap.xml": Format.NMAP_XML,
    "masscan.json": Format.MASSCAN_JSON,
    "masscan-1.0.json": Format.MASSCAN_JSON,
    "masscan.txt": Format.MASSCAN_LIST,
    "naabu.jsonl": Format.NAABU,
    "shodan-download.json.gz": Format.SHODAN,
    "shodan-host.json": Format.SHODAN,
    "censys-hosts.jsonl": Format.CENSYS,
    "censys-search.json": Format.CENSYS,
    "netlas-download.jsonl": Format.NETLAS,
    "findings.csv": Format.CSV,
    "findings-mapped.csv": Format.CSV,
}


def test_every_fixture_is_listed() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.name != "README.md") == sorted(EXPECTED)


@pytest.mark.parametrize(("name", "fmt"), sorted(EXPECTED.items()))
def test_fixtures_are_recognised_by_content(tmp_path: Path, name: str, fmt: Format) -> None:
    assert detect(FIXTURES / name) is fmt
    # The name plays no part: the same bytes under a meaningless name.
    renamed = tmp_path / "upload.bin"
    renamed.write_bytes((FIXTURES / name).read_bytes())
    assert detect(renamed) is fmt


def test_a_large_pretty_printed_document_is_recognised_from_its_head(tmp_path: Path) -> None:
    host = {
        "ip_str": "192.0.2.1",
        "data": [
            {"ip_str": "192.0.2.1", "port": p, "transport": "tcp", "data": "x" * 500}
            for p in range(1, 2000)
        ],
    }
    path = tmp_path / "host.json"
    path.write_text(json.dumps(host, indent=2))
    assert detect(path) is Format.SHODAN


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"hello world\n", "cannot tell the file's format"),
        (b'<?xml version="1.0"?><report><item/></report>\n', "cannot tell"),
        (b'{"something": "else"}\n', "cannot tell"),
        (gzip.compress(b"just some text\n"), "cannot tell"),
    ],
)
def test_unknown_content_is_refused_with_what_it_looks_like(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "mystery.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        detect(path)
    assert words in str(info.value) and str(path) in str(info.value)
