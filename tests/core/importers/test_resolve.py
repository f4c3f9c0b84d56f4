"""Imports mapped in worker processes give exactly what one process gives: the same claims,
the same report, the same stop at the same bad record."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError, SchemaError
from core.importers import Format, ImportedClaim, ImportReport, import_file, resolve
from core.importers import importer as importer_module
from core.models import Endpoint, Kind, Observation, RawRecord, Transport
from tests.core.importers.helpers import NOW


def banner_normalizer(raw: RawRecord) -> list[Observation]:
    """A module-level stand-in for the Shodan normalizer (workers find it by fork)."""
    observations = []
    for match in raw.payload["matches"]:
        if match.get("product") == "refused":
            raise SchemaError("shodan", f"port {match['port']} does not match the shape")
        observations.append(
            Observation(
                endpoint=Endpoint(
                    ip=match["ip_str"], port=match["port"], transport=Transport(match["transport"])
                ),
                source="shodan",
                kind=Kind.PASSIVE,
                fetched_at=raw.fetched_at,
                product=match.get("product"),
                hostnames=tuple(match.get("hostnames", ())),
            )
        )
    return observations


def _banner(n: int, **extra: Any) -> str:
    record = {
        "ip_str": f"192.0.2.{n % 200 + 1}",
        "port": 1000 + n,
        "transport": "udp" if n % 7 == 0 else "tcp",
        "timestamp": "2026-11-01T00:00:00.000000",
        "product": f"product-{n % 5}",
        "hostnames": [f"h{n}.example.com"],
        "_shodan": {"module": "http"},
        **extra,
    }
    return json.dumps(record)


def _write(path: Path, lines: list[str], *, cut: int | None = None) -> Path:
    data = gzip.compress("\n".join(lines).encode() + b"\n")
    path.write_bytes(data if cut is None else data[:cut])
    return path


def _lines() -> list[str]:
    lines = [_banner(n) for n in range(60)]
    lines[5] = _banner(4)  # a duplicate endpoint
    lines[9] = "{not json"
    lines[13] = ""
    lines[17] = json.dumps([json.loads(_banner(100)), json.loads(_banner(101))])  # an array
    lines[21] = _banner(21, product="refused")  # the normalizer refuses it
    lines[25] = json.dumps({"no": "ports here"})  # not a Shodan record
    return lines


def _run(path: Path, workers: int, **kwargs: Any) -> tuple[list[ImportedClaim], ImportReport]:
    stream = import_file(
        path, normalizers={"shodan": banner_normalizer}, now=NOW, workers=workers, **kwargs
    )
    claims = list(stream)
    return claims, stream.report


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many chunks from a small file, so the hand-over order is exercised.
    monkeypatch.setattr(resolve, "CHUNK_LINES", 4)


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_give_the_same_claims_and_report(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "download.json.gz", _lines())
    serial, serial_report = _run(path, 1, skip_bad=True)
    used: list[int] = []

    def spy(*args: Any) -> Any:
        used.append(args[-1])
        return resolve.resolve_in_workers(*args)

    monkeypatch.setattr(importer_module, "resolve_in_workers", spy)
    parallel, parallel_report = _run(path, workers, skip_bad=True)
    assert used == [workers]  # the workers did run

    assert parallel == serial
    assert [c.observation.model_fields_set for c in parallel] == [
        c.observation.model_fields_set for c in serial
    ]
    assert parallel_report.as_dict() == serial_report.as_dict()
    # The file's quirks all happened, so the comparison meant something.
    assert serial_report.duplicates == 1 and serial_report.skipped_count == 3
    # 60 lines: one blank, one duplicate, three bad, one holding an array of two.
    assert len(serial) == 60 - 1 - 1 - 3 + 1
    assert {(c.observation.kind, c.observation.source) for c in serial} == {
        (Kind.IMPORTED, "import:shodan")
    }


def test_without_skip_bad_both_stop_at_the_same_record(tmp_path: Path) -> None:
    path = _write(tmp_path / "download.json.gz", _lines())
    results = []
    for workers in (1, 2):
        stream = import_file(
            path, normalizers={"shodan": banner_normalizer}, now=NOW, workers=workers
        )
        claims: list[ImportedClaim] = []
        with pytest.raises(InputError) as info:
            claims.extend(stream)
        results.append((claims, str(info.value), stream.report.as_dict()))
    assert results[0] == results[1]
    assert "download.json.gz:10: not valid JSON" in results[0][1]  # the first bad line
    assert len(results[0][0]) == 8  # lines 1-9, less the duplicate


def test_a_truncated_file_keeps_every_line_before_the_cut(tmp_path: Path) -> None:
    full = _write(tmp_path / "full.json.gz", [_banner(n) for n in range(300)])
    cut = _write(
        tmp_path / "cut.json.gz", [_banner(n) for n in range(300)], cut=full.stat().st_size // 2
    )
    serial, serial_report = _run(cut, 1, skip_bad=True)
    parallel, parallel_report = _run(cut, 2, skip_bad=True)
    assert parallel == serial and len(serial) > 10
    assert parallel_report.as_dict() == serial_report.as_dict()
    assert serial_report.complete is False


def test_a_json_document_is_not_split_across_workers(tmp_path: Path) -> None:
    # A saved search page, pretty-printed: one record over many lines.
    page = {"matches": [json.loads(_banner(n)) for n in range(10)], "total": 10}
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page, indent=2))
    serial, _ = _run(path, 1)
    parallel, _ = _run(path, 2)
    assert parallel == serial and len(serial) == 10


def test_imported_relabels_kind_and_source_and_keeps_everything_else() -> None:
    obs = banner_normalizer(
        RawRecord(
            source="shodan",
            endpoint_kind="search",
            query="q",
            fetched_at=NOW,
            payload={"matches": [json.loads(_banner(3))], "total": 1},
        )
    )[0]
    resolver = resolve.Resolver(Format.SHODAN, "import:x", None)
    expected = obs.model_copy(update={"kind": Kind.IMPORTED, "source": "import:x"})
    assert obs.kind is Kind.PASSIVE and obs != expected  # so the comparison means something
    copy = resolver._imported(obs)  # in place: the normalizer's object is ours alone
    assert copy == expected
    assert copy.model_fields_set == expected.model_fields_set
    # Results cross the process boundary as pickles: they must come back equal.
    back = pickle.loads(pickle.dumps(copy))  # noqa: S301 - our own bytes, just made
    assert back == copy and back.model_fields_set == copy.model_fields_set
