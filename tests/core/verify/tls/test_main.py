"""`python -m core.verify.tls`: the text and JSON reports, and the exit status."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.verify.tls.__main__ import render
from core.verify.tls.model import profile_from_json
from core.verify.tls.records import Version
from tests.core.verify.tls.servers import FakeTls, answering, serve

ROOT = Path(__file__).resolve().parents[4]


@contextmanager
def background_server(config: FakeTls) -> Iterator[int]:
    """A scripted TLS server on its own thread and loop, for a child process to reach."""
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    ports: list[int] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        async with serve(answering(config.respond)) as port:
            ports.append(port)
            ready.set()
            await asyncio.wait_for(stop[0].wait(), 60)  # bounded, even if the test dies

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield ports[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()


CONFIG = FakeTls(versions={Version.TLS12: [0xC02F, 0x002F]}, ecdhe={0xC02F}, groups=[29])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.verify.tls", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip


def test_json_report_and_exit_status() -> None:
    with background_server(CONFIG) as port:
        proc = run_cli("127.0.0.1", str(port), "--json", "--timeout", "2")
    assert proc.returncode == 0, proc.stderr
    profile = profile_from_json(proc.stdout)  # the JSON is the profile, whole and valid
    assert [s.code for s in profile.accepted("TLSv1.2")] == ["0xC02F", "0x002F"]
    assert json.loads(proc.stdout)["groups_tls12"] == ["x25519"]


def test_text_report_and_failure_status() -> None:
    with background_server(FakeTls(versions={})) as port:
        proc = run_cli("127.0.0.1", str(port), "--timeout", "1")
    assert proc.returncode == 1  # no TLS found
    assert proc.stdout.startswith(f"127.0.0.1:{port}  no-tls")


@pytest.mark.parametrize("preference", [True, False])
def test_render_lists_suites_with_openssl_names_and_grades(preference: bool) -> None:
    profile = profile_from_json(json.dumps(
        {
            "ip": "192.0.2.1",
            "port": 443,
            "outcome": "ok",
            "versions": ["TLSv1.2"],
            "protocols": [
                {
                    "version": "TLSv1.2",
                    "status": "accepted",
                    "outcome": "server-hello",
                    "server_preference": preference,
                    "suites": [
                        {"code": "0xC02F", "name": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                         "openssl_name": "ECDHE-RSA-AES128-GCM-SHA256", "version": "TLSv1.2",
                         "kx": "ECDHE", "auth": "RSA", "cipher": "AES_128_GCM", "mac": "AEAD",
                         "grade": "recommended"},
                    ],
                }
            ],
            "anomalies": ["TLSv1.3: chose 0x1234, which was not offered"],
        }
    ))  # fmt: skip
    text = render(profile)
    assert "server order" in text if preference else "client order" in text
    assert "ECDHE-RSA-AES128-GCM-SHA256" in text and "recommended" in text
    assert "anomaly: TLSv1.3: chose 0x1234" in text
