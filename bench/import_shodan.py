"""Benchmark: importing a Shodan `download` file (gzip'd JSON lines, one banner per line).

    python bench/import_shodan.py [--lines 1000000] [--mode both|connector|core] [--keep DIR]
                                  [--workers N]

Generates a Shodan-style file in a temporary directory (documentation addresses only:
192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32; about 2 % of lines repeat
an earlier endpoint, as downloads with history do), then imports it and prints lines/s and
peak RSS at 100k lines and at the end (and each power of ten between).

Two modes:
- connector: what `portintel import` runs: core's importer with the Shodan connector's own
  normalizer injected (the real path, banner validation included).
- core: the importer with a minimal normalizer: the cost of reading, decompressing,
  decoding, JSON, dedupe and claim building, i.e. the importer's share.

`--workers` (default: one per core) maps the file in that many processes, as
`portintel import` does (core.parallel); 1 runs everything in this process. Besides
lines/s, each run prints the CPU seconds it used in this process and in its workers, and
the peak RSS of this process and of the largest worker.

The bar (issue 6): >= 50,000 lines/s and flat memory.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from connectors.shodan.normalize import normalize as shodan_normalize
from core.importers import Normalizer, import_file
from core.models import Endpoint, Kind, Observation, RawRecord, Transport
from core.parallel import default_workers, relaxed_gc

PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")
MODULES = (
    ("ssh", 22, "OpenSSH", "8.9p1"),
    ("http", 80, "nginx", "1.24.0"),
    ("https", 443, "nginx", "1.24.0"),
    ("mysql", 3306, "MySQL", "8.0.36"),
    ("dns-udp", 53, "ISC BIND", "9.18.18"),
)


def _endpoint(i: int) -> tuple[str, int]:
    if i % 10 == 9:
        return f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}", 1 + (i % 65535)
    return f"{PREFIXES[i % 3]}{(i // 3) % 254 + 1}", 1 + (i // 762) % 65535


def banner(i: int, rng: random.Random) -> dict[str, object]:
    ip, port = _endpoint(i)
    module, _, product, version = MODULES[i % len(MODULES)]
    data = f"{product}/{version} ready\r\n" + "x" * rng.randrange(100, 400)
    return {
        "ip_str": ip,
        "port": port,
        "transport": "udp" if module == "dns-udp" else "tcp",
        "timestamp": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:14:27.{i % 1000000:06d}",
        "data": data,
        "_shodan": {"module": module, "crawler": "0" * 40, "id": f"{i:032x}"},
        "product": product,
        "version": version,
        "hostnames": [f"host{i % 5000}.example.com"],
        "domains": ["example.com"],
        "org": "Example Hosting",
        "isp": "Example Hosting",
        "asn": f"AS{64496 + i % 16}",
        "location": {"country_code": "DE", "city": "Frankfurt am Main"},
        "hash": rng.getrandbits(31),
    }


def generate(path: Path, lines: int) -> None:
    rng = random.Random(6)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        for n in range(lines):
            i = rng.randrange(n) if n and rng.random() < 0.02 else n  # ~2 % repeats
            out.write(json.dumps(banner(i, rng)) + "\n")


def minimal(raw: RawRecord) -> list[Observation]:
    """Just enough mapping to build a real Observation per banner."""
    b = raw.payload["matches"][0]
    return [
        Observation(
            endpoint=Endpoint(ip=b["ip_str"], port=b["port"], transport=Transport(b["transport"])),
            source="shodan",
            kind=Kind.PASSIVE,
            fetched_at=raw.fetched_at,
            product=b.get("product"),
            version=b.get("version"),
        )
    ]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process, and by its finished workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, workers.ru_utime + workers.ru_stime


def run(path: Path, lines: int, name: str, normalizer: Normalizer, workers: int) -> None:
    stream = import_file(path, normalizers={"shodan": normalizer}, workers=workers)
    checkpoints = {10**k for k in range(5, 10) if 10**k < lines} | {lines}
    own0, workers0 = cpu_seconds()
    start = time.perf_counter()
    claims = 0
    report = stream.report
    with relaxed_gc():  # as `portintel import` runs it
        for _ in stream:
            claims += 1
            read = report.read
            if read in checkpoints:
                checkpoints.discard(read)
                elapsed = time.perf_counter() - start
                print(
                    f"  {name:9} {read:>9,} lines  {read / elapsed:>9,.0f} lines/s  "
                    f"peak RSS {peak_rss_mb():7.1f} MB",
                    flush=True,
                )
    elapsed = time.perf_counter() - start
    own, spent = cpu_seconds()
    own, spent = own - own0, spent - workers0
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"  {name:9} done: {report.read:,} lines in {elapsed:.1f} s = "
        f"{report.read / elapsed:,.0f} lines/s with {workers} worker(s); {claims:,} claims, "
        f"{report.duplicates:,} duplicates, {report.skipped_count} skipped; peak RSS "
        f"{peak_rss_mb():.1f} MB (largest worker {largest:.1f} MB)",
        flush=True,
    )
    print(
        f"  {name:9} CPU: {own:.1f} s here + {spent:.1f} s in workers = "
        f"{report.read / (own + spent):,.0f} lines per CPU-second",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=("both", "connector", "core"), default="both")
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portintel-bench-") as tmp:
        path = (args.keep or Path(tmp)) / "shodan-download.json.gz"
        started = time.perf_counter()
        generate(path, args.lines)
        size = path.stat().st_size / 1e6
        print(
            f"generated {args.lines:,} banners ({size:.0f} MB gzip'd) in "
            f"{time.perf_counter() - started:.1f} s; peak RSS {peak_rss_mb():.1f} MB"
        )
        if args.mode in ("both", "core"):
            run(path, args.lines, "core", minimal, args.workers)
        if args.mode in ("both", "connector"):
            run(path, args.lines, "connector", shodan_normalize, args.workers)


if __name__ == "__main__":
    main()
