from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from core.errors import InputError
from core.importers.reader import LineReader, TruncatedInput, head


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "findings.txt"  # no .gz: the magic bytes decide
    path.write_bytes(gzip.compress(b"one\ntwo\n"))
    reader = LineReader(path)
    assert list(reader) == [(1, "one\n"), (2, "two\n")]
    assert reader.gzipped


def test_a_truncated_gzip_names_the_last_good_line(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(b"line %d\n" % n for n in range(5000)))
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    reader = LineReader(path)
    got: list[int] = []
    with pytest.raises(TruncatedInput) as info:
        for number, _ in reader:
            got.append(number)
    assert got, "the lines before the cut are delivered"
    assert info.value.line == got[-1] + 1
    assert "truncated or corrupt" in str(info.value)
    assert str(path) in str(info.value)


def test_mixed_encodings_decode_each_line_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"ip,product\n" + "192.0.2.1,Caf\u00e9\n".encode() + b"192.0.2.2,Caf\xe9\n")
    reader = LineReader(path)
    lines = [text for _, text in reader]
    assert lines[1] == lines[2].replace("192.0.2.2", "192.0.2.1")  # both read as Café
    assert reader.fallback_lines == 1 and reader.first_fallback == 3
    note = reader.encoding_note()
    assert note is not None and "line 3" in note and "Windows-1252" in note


def test_utf8_bom_is_dropped_and_utf16_is_decoded(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfip,port\n")
    assert list(LineReader(bom)) == [(1, "ip,port\n")]
    wide = tmp_path / "wide.csv"
    wide.write_bytes("ip,port\r\n192.0.2.1,80\r\n".encode("utf-16"))
    reader = LineReader(wide)
    assert [t.strip() for _, t in reader] == ["ip,port", "192.0.2.1,80"]
    assert reader.encoding_note() is not None


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(LineReader(tmp_path / "absent.xml"))


def test_head_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("x\n" * 10_000)
    assert len(head(path, max_lines=50)) == 50
