"""`portintel verify FINDINGS`: a findings file partly true, partly closed, partly changed,
checked against the lab's real daemons. The truth is the lab's own ports and dpkg versions.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.app import app
from tests.lab.daemons import RunningLab

CLOSED_PORT = 9


def invoke(lab: RunningLab, args: list[str]) -> Any:
    return lab.ns.call(lambda: CliRunner().invoke(app, args), timeout=240)


def findings(lab: RunningLab, path: Path) -> dict[str, dict[str, str]]:
    """A pentest-style CSV: each row's note says what the truth makes of it."""
    nginx, ssh, redis = lab["nginx"], lab["openssh"], lab["redis"]
    rows = {
        "true": ("127.0.0.1", nginx.port("http"), "tcp", "http", "nginx", ""),
        "true-version": (
            "127.0.0.1", redis.port("redis"), "tcp", "redis", "Redis", redis.upstream_version,
        ),
        "closed": ("127.0.0.1", CLOSED_PORT, "tcp", "smtp", "Exim", "4.96"),
        "other-service": ("127.0.0.1", ssh.port("ssh"), "tcp", "ftp", "vsftpd", "3.0.3"),
        "old-version": ("127.0.0.1", redis.port("redis"), "tcp", "redis", "Redis", "6.0.16"),
        "outside": ("127.0.0.2", nginx.port("http"), "tcp", "http", "nginx", ""),
    }  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ip", "port", "transport", "service", "product", "version", "note"])
        for note, row in rows.items():
            writer.writerow([*row, note])
    return {
        note: dict(zip(("ip", "port"), map(str, row[:2]), strict=True))
        for note, row in rows.items()
    }


def test_every_verdict_matches_the_lab(lab: RunningLab, isolated: Path) -> None:
    # Given a findings file about the lab (one duplicate endpoint on purpose: two claims
    # about redis, one with the right version and one with an old one)
    path = isolated / "pentest.csv"
    findings(lab, path)
    # When it is verified with the scope limited to 127.0.0.1
    result = invoke(lab, ["verify", str(path), "--scope", "127.0.0.1"])
    # Then some claims were refuted or changed: exit 5
    assert result.exit_code == 5, result.stderr
    rows = {r["orig_note"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["true"]["verdict"] == "confirmed"
    assert rows["true"]["found_product"].lower() == "nginx"
    assert rows["closed"]["verdict"] == "refuted"
    assert rows["closed"]["reason"].startswith("closed")
    assert rows["other-service"]["verdict"] == "changed"
    assert "service ftp -> ssh" in rows["other-service"]["reason"]
    assert rows["outside"]["verdict"] == "unverified"
    assert "out of scope" in rows["outside"]["reason"]
    # The evidence says when, from where and what answered
    assert rows["other-service"]["evidence"].startswith("SSH-2.0-OpenSSH")
    assert rows["true"]["probed_at"].endswith("Z")
    assert "127.0.0.1" in rows["true"]["vantage"]
    assert rows["true"]["file"] == str(path)


def test_a_file_of_true_claims_exits_0_and_jsonl_keeps_the_row(
    lab: RunningLab, isolated: Path
) -> None:
    path = isolated / "true.csv"
    nginx = lab["nginx"].port("http")
    path.write_text(f"ip,port,service,ticket\n127.0.0.1,{nginx},http,SEC-1\n")
    result = invoke(lab, ["verify", str(path), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["verdict"] == "confirmed"
    assert record["original"]["ticket"] == "SEC-1"
