"""Shared helpers for the importer tests: fixture paths, a collector, a stand-in normalizer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.importers import ImportedClaim, ImportReport, import_file
from core.models import Endpoint, Kind, Observation, RawRecord, Transport

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "imports"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def collect(path: Path, **kwargs: Any) -> tuple[list[ImportedClaim], ImportReport]:
    kwargs.setdefault("now", NOW)
    stream = import_file(path, **kwargs)
    claims = list(stream)
    return claims, stream.report


def endpoints(claims: list[ImportedClaim]) -> list[str]:
    return [str(c.observation.endpoint) for c in claims]


class Recorder:
    """A stand-in provider normalizer: records what it was handed, maps `port`/`ip` keys.

    It lets core's tests check the RawRecords an import builds without importing a
    connector (the real normalizers are exercised in tests/cli/test_import_cmds.py).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: list[RawRecord] = []

    def __call__(self, raw: RawRecord) -> list[Observation]:
        self.seen.append(raw)
        return [
            Observation(
                endpoint=Endpoint(ip=ip, port=port, transport=Transport(transport)),
                source=self.source,
                kind=Kind.PASSIVE,
                fetched_at=raw.fetched_at,
            )
            for ip, port, transport in self._ports(raw.payload)
        ]

    def _ports(self, payload: Any) -> list[tuple[str, int, str]]:
        found: list[tuple[str, int, str]] = []

        def walk(node: Any, ip: str | None) -> None:
            if isinstance(node, dict):
                ip = node.get("ip_str") or node.get("ip") or ip
                if "port" in node and ip:
                    transport = node.get("transport") or node.get("transport_protocol")
                    found.append((ip, node["port"], transport or node.get("prot4") or "tcp"))
                for value in node.values():
                    walk(value, ip)
            elif isinstance(node, list):
                for value in node:
                    walk(value, ip)

        walk(payload, None)
        return found
