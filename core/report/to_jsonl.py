"""The reconciled inventory as JSON lines: one service per line, for jq, log pipelines and
streaming readers that cannot take a whole JSON document.

Each line is the same record as an element of the JSON export's `services` (the model's
fields plus `sources`), with `schema_version` on every line, since a line travels alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from core.models import Service
from core.report.to_json import SCHEMA_VERSION


def write_jsonl(services: Iterable[Service], out: TextIO) -> int:
    """Stream services as JSON lines; returns the number of lines written."""
    count = 0
    for svc in services:
        data = {"schema_version": SCHEMA_VERSION, **svc.model_dump(mode="json")}
        data["sources"] = list(svc.sources)
        # ensure_ascii=False keeps names readable; JSON escaping already makes control
        # characters inert, and a raw U+2028 cannot break a line-oriented reader.
        out.write(
            json.dumps(data, ensure_ascii=False)
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
        out.write("\n")
        count += 1
    return count
