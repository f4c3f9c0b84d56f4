"""Verdicts as CSV or JSON lines: the original row's values beside what we found.

CSV columns: `verdict, reason, ip, port, transport`, what the claim said
(`claimed_service/product/version`), what answered (`found_service/product/version`,
`evidence`, `cert_sha256`), when and from where (`probed_at`, `vantage`), where the claim
came from (`file`, `line`), then the original row's own columns, prefixed `orig_` (their
names come from the first claim; a later claim's other fields go into `orig_extra` as JSON,
so nothing is dropped).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, TextIO

from core.pipeline.verdicts import ClaimVerdict
from core.report.sanitize import csv_cell
from core.report.to_csv import iso

FIXED = (
    "verdict",
    "reason",
    "ip",
    "port",
    "transport",
    "claimed_service",
    "claimed_product",
    "claimed_version",
    "found_service",
    "found_product",
    "found_version",
    "evidence",
    "cert_sha256",
    "probed_at",
    "vantage",
    "file",
    "line",
)


def record(v: ClaimVerdict) -> dict[str, Any]:
    said, found = v.claim.observation, v.probe
    return {
        "verdict": v.verdict.value,
        "reason": v.reason,
        "ip": said.endpoint.ip,
        "port": said.endpoint.port,
        "transport": said.endpoint.transport.value,
        "claimed_service": said.service,
        "claimed_product": said.product,
        "claimed_version": said.version,
        "found_service": found.service if found else None,
        "found_product": found.product if found else None,
        "found_version": found.version if found else None,
        "evidence": v.evidence,
        "cert_sha256": v.cert_sha256,
        "probed_at": iso(v.probed_at),
        "vantage": v.vantage,
        "file": v.claim.origin.file,
        "line": v.claim.origin.line,
    }


def write_verdicts_csv(verdicts: Iterable[ClaimVerdict], out: TextIO) -> int:
    stream = iter(verdicts)
    first = next(stream, None)
    original = list(first.claim.values) if first else []
    header = [*FIXED, *(f"orig_{name}" for name in original), "orig_extra"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    count = 0
    rest: Iterator[ClaimVerdict] = stream
    for v in chain([first], rest) if first else ():
        fixed = record(v)
        values = dict(v.claim.values)
        extra = {k: values.pop(k) for k in list(values) if k not in original}
        cells = [
            *(fixed[name] for name in FIXED),
            *(values.get(name) for name in original),
            json.dumps(extra, default=str) if extra else "",
        ]
        writer.writerow([csv_cell("" if cell is None else str(cell)) for cell in cells])
        count += 1
    return count


def write_verdicts_jsonl(verdicts: Iterable[ClaimVerdict], out: TextIO) -> int:
    count = 0
    for v in verdicts:
        data = record(v)
        data["original"] = dict(v.claim.values)
        out.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")
        count += 1
    return count
