"""Benchmark: our fingerprinting against `nmap -sV` on the lab's open TCP ports.

    sudo python bench/fingerprint.py [--runs 3] [--timeout 5]

Starts the whole lab (tests/lab/daemons.py: real daemons on their well-known ports) in a
network namespace of its own, then, in that namespace and the same run, alternates
    nmap -sV -p <ports> -n -Pn -oX - 127.0.0.1
and our fingerprinting of the same ports, as a fresh process each time (Python start-up and
imports included, as nmap's start-up is), `--runs` times each. Only the namespace's own
127.0.0.1 is probed. Prints the median wall times, their ratio, and a table of port, the
dpkg package and version (ground truth), nmap's product/version and ours.

Bars (issue 3): our wall time <= 0.5x nmap -sV's; the right product for every lab service;
the exact version for every service that reveals one before authentication.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from defusedxml import ElementTree  # noqa: E402

from core.verify.fingerprint import Fingerprint, Options, fingerprint  # noqa: E402


async def _ours(ports: list[int], deadline: float) -> dict[int, Fingerprint]:
    opts = Options(timeout=deadline)
    async with asyncio.TaskGroup() as tg:
        tasks = {
            port: tg.create_task(
                fingerprint("127.0.0.1", port, hostnames=["lab.example.com"], options=opts)
            )
            for port in ports
        }
    return {port: task.result() for port, task in tasks.items()}


def probe_main(ports: list[int], timeout: float) -> None:
    """The timed child process: fingerprint `ports` on this namespace's 127.0.0.1, print JSON."""
    results = asyncio.run(_ours(ports, timeout))
    print(json.dumps({str(p): fp.model_dump(mode="json") for p, fp in results.items()}))


def _nmap_services(xml_text: str) -> dict[int, tuple[str, str, str]]:
    """port -> (service name, product, version) from nmap's XML output."""
    found: dict[int, tuple[str, str, str]] = {}
    root = ElementTree.fromstring(xml_text)
    for port in root.iter("port"):
        service = port.find("service")
        attrs = service.attrib if service is not None else {}
        found[int(port.get("portid", "0"))] = (
            attrs.get("name", ""),
            attrs.get("product", ""),
            attrs.get("version", ""),
        )
    return found


def _norm(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").lower())


def _same_product(expected: str, got: str | None) -> bool:
    a, b = _norm(expected), _norm(got)
    return bool(a and b) and (a in b or b in a)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=5.0, help="our per-endpoint deadline")
    parser.add_argument("--probe-ports", help=argparse.SUPPRESS)  # the timed child
    args = parser.parse_args(argv)
    if args.probe_ports:
        probe_main([int(p) for p in args.probe_ports.split(",")], args.timeout)
        return 0

    from tests.lab.daemons import running_lab  # the lab needs root and the daemons

    with running_lab() as lab:
        endpoints = sorted(
            ((p.port, svc, p) for svc in lab for p in svc.ports if p.transport == "tcp"),
            key=lambda item: item[0],
        )
        ports = [port for port, _, _ in endpoints]
        port_list = ",".join(map(str, ports))
        nmap_cmd = ["nmap", "-sV", "-p", port_list, "-n", "-Pn", "-oX", "-", "127.0.0.1"]
        ours_cmd = [sys.executable, str(Path(__file__).resolve()), "--probe-ports", port_list]
        ours_cmd += ["--timeout", str(args.timeout)]
        nmap_walls: list[float] = []
        our_walls: list[float] = []
        nmap_out = ours_out = ""
        for _ in range(args.runs):
            start = time.monotonic()
            nmap_out = lab.ns.exec(nmap_cmd, timeout=600).stdout
            nmap_walls.append(time.monotonic() - start)
            start = time.monotonic()
            ours_out = lab.ns.exec(ours_cmd, timeout=600, cwd=ROOT).stdout
            our_walls.append(time.monotonic() - start)

        nmap_found = _nmap_services(nmap_out)
        ours = {int(p): Fingerprint.model_validate(v) for p, v in json.loads(ours_out).items()}
        nmap_median, our_median = statistics.median(nmap_walls), statistics.median(our_walls)
        ratio = our_median / nmap_median
        print(f"ports ({len(ports)}): {port_list}")
        print(f"nmap:  {' '.join(nmap_cmd[:-3])} 127.0.0.1  (in namespace {lab.ns.name})")
        print(f"ours:  fingerprint() of every port at once, per-endpoint deadline {args.timeout}s")
        print(f"runs: {args.runs}; nmap -sV walls {[f'{w:.2f}' for w in nmap_walls]} s")
        print(f"runs: {args.runs}; ours walls      {[f'{w:.2f}' for w in our_walls]} s")
        print(
            f"median wall: nmap -sV {nmap_median:.2f} s, ours {our_median:.2f} s, ratio {ratio:.3f}"
        )

        header = (
            "port",
            "daemon",
            "dpkg package",
            "dpkg version",
            "nmap",
            "ours",
            "product",
            "version",
        )
        rows: list[tuple[str, ...]] = []
        product_ok = version_ok = version_due = 0
        for port, svc, lab_port in endpoints:
            fp = ours[port]
            n_name, n_product, n_version = nmap_found.get(port, ("", "", ""))
            right_product = _same_product(svc.product, fp.product)
            product_ok += right_product
            if svc.version_revealed:
                version_due += 1
                exact = fp.version == svc.upstream_version
                version_ok += exact
                version_verdict = "exact" if exact else f"WRONG (want {svc.upstream_version})"
            else:
                version_verdict = "unknown: ok" if fp.version is None else "reported"
            tls = " +tls" if fp.tls else ""
            rows.append(
                (
                    str(port),
                    f"{svc.name} ({lab_port.service})",
                    svc.package,
                    svc.version,
                    f"{n_name}: {n_product} {n_version}".strip(),
                    f"{fp.service}{tls}: {fp.product or '-'} {fp.version or ''}".strip(),
                    "ok" if right_product else f"WRONG (want {svc.product})",
                    version_verdict,
                )
            )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))

        print(f"right product: {product_ok}/{len(endpoints)}")
        print(f"exact version where revealed: {version_ok}/{version_due}")
        bars = {
            "wall <= 0.5x nmap -sV": ratio <= 0.5,
            "right product for every lab service": product_ok == len(endpoints),
            "exact version wherever revealed": version_ok == version_due,
        }
        for bar, met in bars.items():
            print(f"bar: {bar}: {'MET' if met else 'MISSED'}")
        return 0 if all(bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
