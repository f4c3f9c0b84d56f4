from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError
from core.importers import Format, import_file
from core.importers import dedupe as dedupe_module
from tests.core.importers.helpers import FIXTURES, collect, endpoints


def test_a_stream_is_read_once_and_the_report_fills_in() -> None:
    stream = import_file(FIXTURES / "masscan.txt", source_name="vendor-x")
    assert stream.source == "import:vendor-x" and stream.format is Format.MASSCAN_LIST
    assert stream.report.imported == 0
    claims = list(stream)
    assert stream.report.imported == len(claims) == 3
    with pytest.raises(RuntimeError):
        list(stream)


def test_the_format_can_be_forced() -> None:
    # Read as CSV, masscan's list has no usable header: even --skip-bad cannot help.
    with pytest.raises(InputError, match=r"no ip or port column \(it has: #masscan"):
        collect(FIXTURES / "masscan.txt", fmt=Format.CSV, skip_bad=True)


def test_duplicates_are_counted_across_a_spill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given more distinct endpoints than the in-memory index holds, then all of them again
    monkeypatch.setattr(dedupe_module, "MEMORY_KEYS", 50)
    monkeypatch.setattr(dedupe_module.SeenEndpoints.__init__, "__defaults__", (50,))
    rows = [f"198.51.100.{n % 250 + 1},{1000 + n}" for n in range(120)]
    path = tmp_path / "twice.csv"
    path.write_text("ip,port\n" + "\n".join(rows + rows) + "\n")
    # When imported
    claims, report = collect(path)
    # Then each endpoint is imported once and every repeat is counted
    assert len(claims) == 120 and report.duplicates == 120
    assert report.duplicate_lines[0] == 122


def test_report_wording(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("ip,port\n192.0.2.1,80\n192.0.2.1,80\n192.0.2.1,0\n")
    _, report = collect(path, skip_bad=True)
    assert report.summary() == (
        f"{path}: csv, 3 records read, 1 claims imported as import:csv, 1 duplicates, 1 skipped"
    )
    details = report.details()
    assert details[0].startswith("skipped 1 (port out of range) at line 4")
    assert "duplicate" in details[1] and "line 3" in details[1]
    data = report.as_dict()
    assert data["skipped"]["port out of range"]["examples"] == [
        {"line": 4, "message": "port 0 is out of range 1-65535"}
    ]


def test_a_truncated_gzip_keeps_earlier_rows_only_when_asked(tmp_path: Path) -> None:
    import gzip

    body = "ip,port\n" + "".join(f"198.51.100.{n % 250 + 1},{n + 1}\n" for n in range(20000))
    data = gzip.compress(body.encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(InputError) as info:
        collect(path)
    assert "truncated" in str(info.value) and info.value.line is not None
    claims, report = collect(path, skip_bad=True)
    assert 0 < len(claims) < 20000
    assert not report.complete and "truncated file" in report.skipped
    assert "stopped before the end" in report.summary()


def test_mixed_encodings_are_said_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"ip,port,product\n192.0.2.1,80,Caf\xc3\xa9\n192.0.2.2,80,Caf\xe9\n")
    claims, report = collect(path)
    assert [c.observation.product for c in claims] == ["Café", "Café"]
    assert any("line 3" in note and "UTF-8" in note for note in report.notes)


def test_odd_ipv6_spellings_merge(tmp_path: Path) -> None:
    path = tmp_path / "v6.csv"
    path.write_text("ip,port\n2001:DB8:0:0::1,22\n[2001:db8::1],22\n2001:0db8::0001,22\n")
    claims, report = collect(path)
    assert endpoints(claims) == ["[2001:db8::1]:22/tcp"] and report.duplicates == 2
