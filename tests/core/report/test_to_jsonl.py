from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from core.models import Endpoint, PortState, Service, SourceSeen, Status
from core.report.to_json import SCHEMA_VERSION
from core.report.to_jsonl import write_jsonl

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _svc(port: int, **kw: object) -> Service:
    return Service(
        endpoint=Endpoint(ip="192.0.2.10", port=port),
        state=PortState.OPEN,
        status=Status.CONFIRMED,
        first_seen=T,
        last_seen=T,
        per_source=(SourceSeen(source="censys", first_seen=T, last_seen=T, state=PortState.OPEN),),
        **kw,  # type: ignore[arg-type]
    )


def test_one_self_describing_record_per_line() -> None:
    out = io.StringIO()
    count = write_jsonl([_svc(22, product="OpenSSH"), _svc(80, banner="a\nb\u2028c")], out)
    lines = out.getvalue().split("\n")
    assert count == 2 and lines[-1] == "" and len(lines) == 3
    first, second = (json.loads(line) for line in lines[:2])
    assert first["schema_version"] == SCHEMA_VERSION
    assert first["endpoint"] == {"ip": "192.0.2.10", "port": 22, "transport": "tcp"}
    assert first["product"] == "OpenSSH" and first["sources"] == ["censys"]
    assert first["first_seen"] == "2026-11-20T10:00:00Z"
    # Line breaks inside values (even U+2028) never split a record.
    assert second["banner"] == "a\nb\u2028c"


def test_nothing_in_nothing_out() -> None:
    out = io.StringIO()
    assert write_jsonl([], out) == 0 and out.getvalue() == ""
