"""Benchmark: a top-1,000 UDP scan, portintel against `nmap -sU --top-ports 1000`.

    sudo python bench/scan_udp.py [--runs 5] [--nmap-runs 3] [--imitate]

Inside a fresh network namespace this script creates, the lab's UDP services are started
on their usual ports: dnsmasq (53), chrony (NTP 123 and its command port 323), snmpd
(161, community "public") and memcached (11211, UDP on), through tests/lab/daemons.py.
A daemon that is missing or does not start is replaced by a small Python responder that
imitates its protocol on the same port (`--imitate` uses responders only); the output
says which is which. Then

    nmap -sU --top-ports 1000 -n -Pn -oG - 127.0.0.1             (inside the namespace)
    core.verify.udp.scan_udp(["127.0.0.1"], top_udp(1000))         (defaults, in-process)

run in turn, and each tool's findings are printed. The bars (issue 3): ours finds every
lab UDP service nmap finds plus those outside nmap's list (chrony's 323, memcached's
11211), in at most 2 x nmap's median wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from core.models import PortState
from core.verify.ports import top_udp
from core.verify.udp import scan_udp
from tests.lab.netns import Netns

NMAP = ["nmap", "-sU", "--top-ports", "1000", "-n", "-Pn", "-oG", "-", "127.0.0.1"]
_NMAP_PORT = re.compile(r"(\d+)/(open|open\|filtered|filtered)/udp")
LAB_UDP = {53: "dns", 123: "ntp", 161: "snmp", 323: "chrony-cmd", 11211: "memcached"}


# --- imitations, used only when a real daemon cannot run ---------------------------------


def _dns(query: bytes) -> bytes:
    # Echo the header and question with QR set and RCODE REFUSED: a valid DNS answer.
    return query[:2] + bytes([0x81, 0x05]) + query[4:6] + bytes(6) + query[12:]


def _ntp(_query: bytes) -> bytes:
    return bytes([0x24, 10]) + bytes(46)  # VN 4, mode 4 (server), stratum 10


def _snmp(_query: bytes) -> bytes:
    # A v2c GetResponse with error-status genErr and no bindings: short but well-formed.
    pdu = bytes.fromhex("020401020304 020105 020100 3000")
    body = bytes.fromhex("020101 04067075626c6963") + bytes([0xA2, len(pdu)]) + pdu
    return bytes([0x30, len(body)]) + body


def _chrony(query: bytes) -> bytes:
    # Reply header: version 6, type 2, echo command and sequence, status 0 ("success").
    command, sequence = query[4:6], query[8:12]
    return bytes([6, 2, 0, 0]) + command + b"\x00\x01\x00\x00" + bytes(6) + sequence + bytes(8)


def _memcached(query: bytes) -> bytes:
    return query[:2] + struct.pack(">3H", 0, 1, 0) + b"VERSION imitation\r\n"


IMITATIONS: dict[int, Callable[[bytes], bytes]] = {
    53: _dns,
    123: _ntp,
    161: _snmp,
    323: _chrony,
    11211: _memcached,
}


def serve(sock: socket.socket, answer: Callable[[bytes], bytes], stop: threading.Event) -> None:
    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(65535)
        except TimeoutError:
            continue
        except OSError:
            return
        sock.sendto(answer(data), peer)


def bind_udp(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    return sock


# --- the lab --------------------------------------------------------------------------------


def start_services(ns: Netns, imitate: bool, workdir: Path) -> tuple[list[object], list[str]]:
    """Start real daemons where possible; returns (their LabService records, notes)."""
    started: list[object] = []
    notes: list[str] = []
    if imitate:
        return started, ["--imitate: Python responders only"]
    try:
        from tests.lab import daemons
    except Exception as exc:  # the lab module is optional for this benchmark
        return started, [f"tests/lab/daemons.py unusable ({exc!r}): imitating all"]
    for start in (
        daemons.start_dnsmasq,
        daemons.start_chrony,
        daemons.start_snmpd,
        daemons.start_memcached,
    ):
        try:
            service = start(ns, workdir)
        except Exception as exc:  # a missing daemon is imitated instead
            notes.append(f"{start.__name__} failed ({str(exc).splitlines()[0]}): imitating")
            continue
        started.append(service)
        ports = [p.port for p in service.ports if p.transport == "udp"]
        notes.append(f"real {service.name} {service.upstream_version} on UDP {ports}")
    return started, notes


def run_nmap(ns: Netns) -> tuple[float, dict[int, str]]:
    start = time.perf_counter()
    out = ns.exec(NMAP).stdout
    elapsed = time.perf_counter() - start
    return elapsed, {int(port): state for port, state in _NMAP_PORT.findall(out)}


def run_ours(ns: Netns) -> tuple[float, dict[int, str]]:
    def scan() -> tuple[float, dict[int, str]]:
        start = time.perf_counter()
        result = scan_udp(["127.0.0.1"], top_udp(1000))
        elapsed = time.perf_counter() - start
        host = result.host("127.0.0.1")
        found = {
            port: str(r.state) for port, r in host.ports.items() if r.state is not PortState.CLOSED
        }
        return elapsed, found

    return ns.call(scan)


def describe(found: dict[int, str]) -> str:
    return ", ".join(f"{port}/{state}" for port, state in sorted(found.items())) or "(nothing)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of our scanner")
    parser.add_argument("--nmap-runs", type=int, default=3, help="runs of nmap -sU")
    parser.add_argument("--imitate", action="store_true", help="Python responders only")
    args = parser.parse_args()

    ns = Netns()
    workdir = Path(f"/tmp/pi-bench-udp-{os.getpid()}")
    workdir.mkdir(mode=0o755)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    services: list[object] = []
    try:
        services, notes = start_services(ns, args.imitate, workdir)
        real_ports = {
            p.port
            for s in services
            for p in s.ports  # type: ignore[attr-defined]
            if p.transport == "udp"
        }
        for port, answer in IMITATIONS.items():
            if port not in real_ports:
                sock = ns.call(bind_udp, port)
                thread = threading.Thread(target=serve, args=(sock, answer, stop), daemon=True)
                thread.start()
                threads.append(thread)
                notes.append(f"imitation {LAB_UDP[port]} on UDP {port}")
        for note in notes:
            print(note)

        ours: list[float] = []
        nmap: list[float] = []
        nmap_found: dict[int, str] = {}
        ours_found: dict[int, str] = {}
        print(f"\nload average before: {os.getloadavg()[0]:.2f}")
        print(f"nmap: {' '.join(NMAP)}   (inside the namespace)")
        print('ours: scan_udp(["127.0.0.1"], top_udp(1000))   (defaults, in-process)')
        nmap_at = {index * args.runs // args.nmap_runs for index in range(args.nmap_runs)}
        for index in range(args.runs):
            if index in nmap_at:
                elapsed, nmap_found = run_nmap(ns)
                nmap.append(elapsed)
                print(f"  nmap run {len(nmap):2}: {elapsed:6.3f} s  {describe(nmap_found)}")
            elapsed, ours_found = run_ours(ns)
            ours.append(elapsed)
            print(f"  ours run {index + 1:2}: {elapsed:6.3f} s  {describe(ours_found)}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        stop.set()
        if services:
            from tests.lab import daemons

            daemons.stop_services(services)  # type: ignore[arg-type]
        ns.close()
        shutil.rmtree(workdir, ignore_errors=True)

    lab = set(LAB_UDP)
    nmap_open = {p for p, state in nmap_found.items() if state == "open"} & lab
    ours_open = {p for p, state in ours_found.items() if state == "open"} & lab
    med_ours, med_nmap = statistics.median(ours), statistics.median(nmap)
    ratio = med_ours / med_nmap
    print(f"\nlab UDP services: {sorted(lab)}")
    print(f"nmap found open (last run): {sorted(nmap_open)}; missed {sorted(lab - nmap_open)}")
    print(f"ours found open (last run): {sorted(ours_open)}; missed {sorted(lab - ours_open)}")
    print(f"median nmap -sU: {med_nmap:.3f} s over {len(nmap)} runs")
    print(f"median ours:     {med_ours:.3f} s over {len(ours)} runs")
    print(f"ratio ours/nmap: {ratio:.2f}  (bar: <= 2.00)")
    met = nmap_open <= ours_open and ours_open == lab and ratio <= 2.0
    print("BAR MET" if met else "BAR NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
