"""Ctrl-C mid-run keeps everything fetched so far, in the store and in the cache."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests.cli.conftest import Providers

HOST = "198.51.100.23"


def count(db: str, table: str) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute(f"select count(*) from {table}").fetchone()[0])  # noqa: S608
    except sqlite3.Error:
        return 0


def test_sigint_keeps_what_was_fetched(providers: Providers) -> None:
    # Given Netlas hangs while the other sources answer at once
    providers.netlas.slow_seconds = 30
    providers.netlas.fail_always("slow")
    db = str(providers.db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "enrich", HOST, "--source", "shodan", "--source", "netlas"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        # When the Shodan answer is stored and Netlas is still waiting, the user hits Ctrl-C
        deadline = time.monotonic() + 30
        while count(db, "raw_records") == 0 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert count(db, "raw_records") >= 1
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Then the exit code says interrupted and what Shodan returned is kept
    assert proc.returncode == 130, stderr.decode()
    assert b"interrupted" in stderr
    assert count(db, "observations") > 0
    with sqlite3.connect(db) as conn:
        (status,) = conn.execute("select status from runs order by id desc limit 1").fetchone()
        sources = dict(conn.execute("select source, status from source_runs").fetchall())
    assert status == "interrupted"
    assert sources["shodan"] == "ok"
    assert sources["netlas"] == "interrupted"
    # And the cache answers a re-run of Shodan without a request
    providers.netlas.fail_always(None)
    sent = len(providers.shodan.requests)
    rerun = subprocess.run(
        [sys.executable, "-m", "cli", "enrich", HOST, "--source", "shodan"],
        capture_output=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert len(providers.shodan.requests) == sent
