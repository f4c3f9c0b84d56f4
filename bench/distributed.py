"""Benchmark: one verification job on 1 Celery worker, on 2, and in-process.

    sudo .venv/bin/python bench/distributed.py [--hosts 8] [--runs 3] [--listeners 4]

Everything runs inside a fresh network namespace this script creates: a Redis (the
broker) and a PostgreSQL (the shared store) started through tests/lab/daemons.py, and on
each of the addresses 127.0.0.1..N a few listeners that greet like an SSH server (so
every open port is fingerprinted quickly). The job is

    portintel --db <postgres> scan 127.0.0.1-N --no-passive -q -o /dev/null

(every TCP port of N hosts, fingerprinting on), timed as the whole command's wall time,
run as is (in-process) and with `--executor celery --broker <redis>` against
`portintel worker --concurrency 1` workers that are already running.

Each worker, and the in-process run, is pinned to one CPU. Why: the TCP scanner forks one
process per CPU it may use, so an unpinned single worker (or in-process run) already
uses both cores of this machine and a second worker has nothing left to add. Pinned,
"one worker" means one core's worth of probing, as on a fleet of one-core machines.

Bars (issue 7): speed-up of 2 workers over 1 >= 1.6; the Celery path with 1 worker
<= 1.3 x the in-process run. Measured on this 2-core machine (medians of 3, see
bench/README.md): in-process 12.04 s, 1 worker 13.34 s, 2 workers 7.07 s: speed-up 1.89,
overhead 1.11. Redis, PostgreSQL and the submitting CLI are not pinned:
they share the machine's two cores with the workers, as they would share a small fleet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from core.distributed.tasks import make_app
from tests.lab.daemons import (
    LAB_PASSWORD,
    scratch_dir,
    start_postgresql,
    start_redis,
    stop_services,
)
from tests.lab.netns import Netns

ROOT = Path(__file__).resolve().parents[1]
BANNER = b"SSH-2.0-OpenSSH_9.2p1 bench\r\n"
LISTEN_PORTS = (22, 2222, 8022, 40022, 65022)  # spread over the range; not 5432 or 6379
READY_TIMEOUT = 60


def pinned(cpu: int) -> Callable[[], None]:
    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def greeters(hosts: int, per_host: int) -> list[socket.socket]:
    """Listeners on 127.0.0.1..hosts that send an SSH greeting and close (inside the ns)."""
    socks = []
    for index in range(1, hosts + 1):
        for port in LISTEN_PORTS[:per_host]:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((f"127.0.0.{index}", port))
            sock.listen(512)
            socks.append(sock)

    def serve(sock: socket.socket) -> None:
        while True:  # ends when the benchmark closes the socket
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                conn.sendall(BANNER)
            except OSError:
                pass
            finally:
                conn.close()

    for sock in socks:
        threading.Thread(target=serve, args=(sock,), daemon=True).start()
    return socks


def cli(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli", "--db", db, *args]


def timed(ns: Netns, argv: list[str], cpu: int | None) -> float:
    start = time.perf_counter()
    ns.exec(argv, cwd=ROOT, timeout=1800, preexec_fn=None if cpu is None else pinned(cpu))
    return time.perf_counter() - start


def start_workers(ns: Netns, db: str, broker: str, count: int, logs: Path) -> list[Any]:
    procs = []
    for index in range(count):
        argv = cli(db, "worker", "--broker", broker, "--concurrency", "1")
        argv += ["--vantage", f"bench{index}", "--loglevel", "WARNING"]
        with (logs / f"worker{count}-{index}.log").open("wb") as log:
            procs.append(
                ns.popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    preexec_fn=pinned(index),
                    start_new_session=True,
                )
            )
    app = make_app(broker)
    for _ in range(READY_TIMEOUT):
        replies = ns.call(lambda: app.control.ping(timeout=1.0))
        if len(replies) >= count:
            return procs
    raise RuntimeError(f"workers not ready; see {logs}")


def stop_workers(procs: list[Any]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8, help="addresses 127.0.0.1..N")
    parser.add_argument("--runs", type=int, default=3, help="runs of each configuration")
    parser.add_argument("--listeners", type=int, default=4, help="greeting ports per host")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        print("needs 2 CPUs")
        return 2

    ns = Netns()
    work = scratch_dir()
    services = []
    try:
        services = [start_redis(ns, work), start_postgresql(ns, work)]
        pg_port = services[1].port("postgresql")

        def create() -> None:
            import psycopg

            admin = f"postgresql://postgres:{LAB_PASSWORD}@127.0.0.1:{pg_port}/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")

        ns.call(create)
        db = f"postgresql+psycopg://postgres:{LAB_PASSWORD}@127.0.0.1:{pg_port}/bench"
        broker = f"redis://127.0.0.1:{services[0].port('redis')}/0"
        socks = ns.call(greeters, args.hosts, args.listeners)
        targets = f"127.0.0.1-{args.hosts}"
        scan = cli(db, "-q", "scan", targets, "--no-passive", "-o", "/dev/null")
        celery = [*scan, "--executor", "celery", "--broker", broker]
        print(f"job: portintel --db <postgres> -q scan {targets} --no-passive -o /dev/null")
        print(f"     ({args.hosts} hosts x 65,535 TCP ports, {args.listeners} open per host)")
        print("celery: the same + --executor celery --broker <redis>, workers -c 1")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        timed(ns, scan, 0)  # warm-up: page cache, first migration of the store

        times: dict[str, list[float]] = {"in-process": [], "1 worker": [], "2 workers": []}
        for _ in range(args.runs):
            times["in-process"].append(timed(ns, scan, 0))
            print(f"  in-process (1 CPU): {times['in-process'][-1]:7.3f} s")
        for count, key in ((1, "1 worker"), (2, "2 workers")):
            procs = start_workers(ns, db, broker, count, work)
            try:
                for _ in range(args.runs):
                    times[key].append(timed(ns, celery, None))
                    print(f"  celery, {key}: {times[key][-1]:7.3f} s")
            finally:
                stop_workers(procs)
        for sock in socks:
            sock.close()
    finally:
        stop_services(services)
        ns.close()
        shutil.rmtree(work, ignore_errors=True)

    print(f"load average after: {os.getloadavg()[0]:.2f}")
    med = {key: statistics.median(values) for key, values in times.items()}
    for key, value in med.items():
        print(f"median {key:10}: {value:7.3f} s over {len(times[key])} runs")
    speedup = med["1 worker"] / med["2 workers"]
    overhead = med["1 worker"] / med["in-process"]
    print(f"speed-up 2 workers vs 1:     {speedup:.2f}  (bar: >= 1.60)")
    print(f"celery 1 worker / in-process: {overhead:.2f}  (bar: <= 1.30)")
    met = speedup >= 1.6 and overhead <= 1.3
    print("BARS MET" if met else "BAR NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
