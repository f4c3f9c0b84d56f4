"""The reconciled inventory as JSON: the same data as the CSV, with a schema version.

Written incrementally (one service at a time) so memory does not grow with the inventory.
Text from banners is kept as data: JSON escaping makes it inert.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from core.models import Run, Service

SCHEMA_VERSION = 1


def write_json(services: Iterable[Service], out: TextIO, run: Run | None = None) -> int:
    head: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    if run is not None:
        head["run"] = run.model_dump(mode="json")
    out.write(json.dumps(head)[:-1] + ', "services": [')
    count = 0
    for svc in services:
        out.write(",\n  " if count else "\n  ")
        data = svc.model_dump(mode="json")
        data["sources"] = list(svc.sources)
        out.write(json.dumps(data, ensure_ascii=False))
        count += 1
    out.write("\n]}\n" if count else "]}\n")
    return count
