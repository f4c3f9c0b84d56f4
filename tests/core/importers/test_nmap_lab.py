"""The real nmap, run against our own listeners in a namespace, imports as ground truth says."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.importers import import_file
from core.models import PortState
from tests.core.importers.nmap_lab import SSH_GREETING, documented, run_nmap


@pytest.mark.lab
def test_a_live_nmap_scan_imports_as_the_listeners_are(tmp_path: Path) -> None:
    # Given nmap -sV's XML for an OpenSSH-like greeter on 2222, http.server on 8080, 9 closed
    path = tmp_path / "live.xml"
    path.write_text(run_nmap(), encoding="utf-8")
    # When imported
    claims = {c.observation.endpoint.port: c.observation for c in import_file(path)}
    # Then each port is what we started
    assert {p: o.state for p, o in claims.items()} == {
        9: PortState.CLOSED,
        2222: PortState.OPEN,
        8080: PortState.OPEN,
    }
    assert {o.endpoint.ip for o in claims.values()} == {"127.0.0.1"}
    assert claims[2222].service == "ssh" and claims[2222].product == "OpenSSH"
    assert claims[2222].version is not None and claims[2222].version.startswith("8.9p1")
    assert SSH_GREETING.startswith("SSH-2.0-OpenSSH_8.9p1")
    assert claims[8080].service == "http"
    # And the committed fixture's rewrite leaves no lab address behind
    assert "127.0.0.1" not in documented(path.read_text())
