"""Which format a findings file is in, from its content: names and extensions lie.

The first lines are decoded like the import will (gzip and encodings handled by the
reader) and looked at in order: XML (nmap's `<nmaprun>`), masscan's list format, JSON
records (classified by their keys: each tool and provider has its own), and finally a
delimited header row (CSV). A file that is none of these is refused with what its first
line looks like, so the user can tell a wrong file from a wrong guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.importers import censys_export, netlas_export, shodan_export
from core.importers.jsonstream import JsonError, json_document
from core.importers.reader import head
from core.importers.records import Format

_MASSCAN_LINE = re.compile(r"^(open|closed)\s+(tcp|udp|sctp)\s+\d+\s+\S+(\s+\d+)?\s*$")
_DELIMITERS = (",", ";", "\t")
# Key fragments that identify a format when no whole record fits in the sniffed head.
_KEY_HINTS: tuple[tuple[str, Format], ...] = (
    ('"_shodan"', Format.SHODAN),
    ('"ip_str"', Format.SHODAN),
    ('"transport_protocol"', Format.CENSYS),
    ('"host_v1"', Format.CENSYS),
    ('"prot4"', Format.NETLAS),
)
FORMATS_HELP = (
    "nmap XML (-oX), masscan JSON or list output, naabu JSON lines, Shodan download or host "
    "JSON, Censys or Netlas exports, or CSV with a header naming ip and port columns"
)


def detect(path: Path) -> Format:
    """The format of `path`, or InputError saying why none fits."""
    lines = head(path)
    first = next((text.strip() for _, text in lines if text.strip()), "")
    if not first:
        raise InputError("the file is empty: nothing to import", file=str(path))
    found = detect_text(lines)
    if found is None:
        shown = first[:80] + ("..." if len(first) > 80 else "")
        raise InputError(
            f"cannot tell the file's format from its content (first line: {shown!r}); "
            f"expected {FORMATS_HELP}",
            file=str(path),
        )
    return found


def detect_text(lines: Sequence[tuple[int, str]]) -> Format | None:
    text = "".join(t for _, t in lines)
    first = next((t.strip() for _, t in lines if t.strip()), "")
    if first.startswith("<"):
        # An XML file that declares entities goes to the nmap parser too, whatever its root:
        # defusedxml refuses it there with a message that says why.
        if "<nmaprun" in text or "<!ENTITY" in text:
            return Format.NMAP_XML
        return None
    if first.startswith("#masscan") or _MASSCAN_LINE.match(first):
        return Format.MASSCAN_LIST
    if first[:1] in "[{":
        return _json_format(lines, text)
    return _csv_format(first)


def classify(record: Any) -> Format | None:
    """The format one JSON record belongs to, by its keys."""
    if not isinstance(record, dict):
        return None
    ports = record.get("ports")
    if "rec_type" in record or (
        isinstance(ports, list) and any(isinstance(p, dict) and "proto" in p for p in ports)
    ):
        return Format.MASSCAN_JSON
    if shodan_export.is_host(record) or shodan_export.is_banner(record):
        return Format.SHODAN
    if isinstance(record.get("matches"), list):
        return Format.SHODAN
    if censys_export.looks_like(record):
        return Format.CENSYS
    if netlas_export.is_response(record) or netlas_export.is_page(record):
        return Format.NETLAS
    if netlas_export.is_host(record):
        return Format.NETLAS
    if "port" in record and ("ip" in record or "host" in record):
        return Format.NAABU
    return None


def _json_format(lines: Sequence[tuple[int, str]], text: str) -> Format | None:
    # One record per line (JSON lines, masscan's comma-trimmed lines): try the first few.
    tried = 0
    for _, line in lines:
        body = line.strip().strip(",").strip()
        if not body or body in ("[", "]"):
            continue
        tried += 1
        try:
            found = classify(json.loads(body))
        except json.JSONDecodeError:
            found = None
        if found is not None:
            return found
        if tried >= 5:
            break
    # A pretty-printed document: its first record, if it fits in the head.
    try:
        for _, record in json_document(lines):
            found = classify(record)
            if found is not None:
                return found
            break
    except JsonError:
        pass
    for hint, fmt in _KEY_HINTS:
        if hint in text:
            return fmt
    return None


def _csv_format(first: str) -> Format | None:
    delimiter = max(_DELIMITERS, key=first.count)
    return Format.CSV if first.count(delimiter) >= 1 else None
