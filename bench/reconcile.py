"""Benchmark: raw Shodan-shaped records -> normalize -> store -> reconcile -> services.

    python bench/reconcile.py [--observations 1000000] [--workers 1] [--db PATH]
                              [--normalizer auto|shodan|local] [--profile FILE]

Generates synthetic banners (documentation addresses only: 192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24 over many ports, and 2001:db8::/32), 3-5 sightings of each endpoint spread
over scan rounds, as search pages of up to 100 banners. Everything is lazy, so memory must
not grow with --observations: peak RSS is printed at 100k and 1M observations (and each
further power of ten) in both phases, which shows whether it stays flat.

With --workers N each phase runs in N processes, all writing to the one SQLite file (its
writers take turns). Ingest: the bench's own split, by blocks of endpoints, each process
normalizing and storing its share (the product's ingest is paced by the providers' rate
limits, and imports have bench/import_shodan.py). Reconcile: the product's own,
`reconcile_all(..., workers=N)` as `portintel enrich` runs it, which forks N workers over
shares of addresses; their peak RSS after their first and last share is printed instead
of the per-stage split (--workers 1 gives that). The normalizer is the Shodan
connector's own when it is importable, else a minimal bench-local mapping.
The bar (issue): >= 50,000 observations/s end to end, flat memory.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import multiprocessing
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from core.models import (
    CertSummary,
    Endpoint,
    Kind,
    Observation,
    RawRecord,
    Service,
    TlsSummary,
    Vuln,
)
from core.naming import canonical_service
from core.pipeline import reconcile as reconcile_module
from core.pipeline.reconcile import reconcile_all
from core.store import Store

Normalizer = Callable[[RawRecord], list[Observation]]

PAGE = 100  # banners per search page, as Shodan pages them
BLOCK = 100  # endpoints whose histories are interleaved across scan rounds
FETCHED = datetime(2026, 6, 1, tzinfo=UTC)
FIRST_SCAN = datetime(2026, 1, 1, tzinfo=UTC)
V4_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")

# (module, product, versions) per port: the usual suspects of an internet scan.
CATALOGUE: dict[int, tuple[str, str | None, tuple[str, ...]]] = {
    22: ("ssh", "OpenSSH", ("8.9p1", "9.2p1", "9.6p1")),
    25: ("smtp", "Postfix smtpd", ("",)),
    80: ("http", "nginx", ("1.18.0", "1.22.1", "1.24.0")),
    443: ("https", "nginx", ("1.18.0", "1.22.1", "1.24.0")),
    3306: ("mysql", "MySQL", ("8.0.36", "5.7.44")),
    5432: ("postgresql", "PostgreSQL", ("15.6", "16.2")),
    6379: ("redis", "Redis key-value store", ("7.2.4",)),
    8080: ("http", "Apache httpd", ("2.4.57", "2.4.58")),
    8443: ("https", "Jetty", ("9.4.53",)),
}
PORTS = tuple(CATALOGUE)


class Checkpoints:
    """Peak RSS when a running count crosses 100k, 1M, 10M, ..."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.next = 100_000
        self.seen: list[tuple[int, float]] = []

    def count(self, total: int) -> None:
        while total >= self.next:
            self.seen.append((self.next, peak_rss_mib()))
            self.next *= 10


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


_HOSTNAMES = [f"h{n}.example.com" for n in range(997)]
_DAY = 86_400


def endpoint_of(index: int) -> tuple[str, int]:
    """The index-th synthetic endpoint: every 10th on IPv6, the rest IPv4 over many ports."""
    if index % 10 == 9:
        n = index // 10
        return f"2001:db8:{n >> 16 & 0xFFFF:x}:{n & 0xFFFF:x}::1", PORTS[n % len(PORTS)]
    host, spread = divmod(index, 768)
    net, last = divmod(spread, 256)
    port = PORTS[host % len(PORTS)] if host < len(PORTS) else 1024 + host
    return f"{V4_NETS[net]}{last}", port


def endpoint_record(index: int) -> tuple[dict[str, Any], tuple[str, ...]]:
    """What every banner of endpoint `index` shares, and the versions its product cycles
    through (empty when it names no product). Built once per endpoint, not per sighting."""
    ip, port = endpoint_of(index)
    module, product, versions = CATALOGUE.get(port, ("auto", None, ("",)))
    if port not in CATALOGUE and index % 3 == 0:
        module, product, versions = "http", "lighttpd", ("1.4.73",)
    hostname = _HOSTNAMES[index % 997]
    record: dict[str, Any] = {
        "ip_str": ip,
        "port": port,
        "transport": "tcp",
        "_shodan": {"module": module, "crawler": "0123456789abcdef"},
        "data": f"{product or 'unknown'} banner {index}\r\n",
        "org": "Example Org",
        "asn": f"AS{64496 + index % 16}",
        "hostnames": [hostname],
        "location": {"country_code": "ZZ"},
    }
    if product is not None:
        record["product"] = product
    if module in ("http", "https"):
        record["http"] = {"status": 200, "title": "Example Domain", "server": product}
    if module == "https":
        record["ssl"] = {
            "versions": ["TLSv1.2", "TLSv1.3", "-TLSv1", "-SSLv3"],
            "cipher": {"name": "TLS_AES_128_GCM_SHA256", "version": "TLSv1.3", "bits": 128},
            "cert": {
                "subject": {"CN": hostname},
                "issuer": {"CN": "Example CA"},
                "issued": "20260101000000Z",
                "expires": "20270101000000Z",
                "pubkey": {"type": "rsa", "bits": 2048},
            },
        }
    if port == 80 and index % 5 == 0:
        record["vulns"] = {"CVE-2021-23017": {"cvss": 7.7, "verified": False}}
    if index % 50 == 0:
        record["tags"] = ["cdn"]
    return record, versions if product is not None else ()


def banner(
    index: int, scan: int, shared: tuple[dict[str, Any], tuple[str, ...]] | None = None
) -> dict[str, Any]:
    """One Shodan-banner-shaped dict for endpoint `index` seen in scan round `scan`.

    `shared` is `endpoint_record(index)`, when the caller has it already. The banners of
    one endpoint share its nested values: the normalizer only reads them.
    """
    base, versions = shared or endpoint_record(index)
    # Deterministic jitter inside the scan's day: cheap, and the same in every worker.
    when = FIRST_SCAN + timedelta(days=7 * scan, seconds=(index * 7919 + scan * 104729) % _DAY)
    record = base.copy()
    record["timestamp"] = when.isoformat(timespec="microseconds")[:26]
    record["hash"] = (index * 2654435761 + scan) & 0x7FFFFFFF
    record["_shodan"] = {**base["_shodan"], "id": f"b{index}-{scan}"}
    if versions:
        record["version"] = versions[(index + scan // 2) % len(versions)]
    return record


def _rounds(index: int) -> int:
    """How many scans saw endpoint `index`: 3, 4 or 5."""
    return 3 + (index * 2654435761 >> 7) % 3


def plan(observations: int) -> list[tuple[int, int]]:
    """(first endpoint, observations) per block of BLOCK endpoints, `observations` in all.

    Workers take every n-th block, so together they generate exactly the same data as one.
    """
    blocks: list[tuple[int, int]] = []
    left = observations
    for start in itertools.count(0, BLOCK):
        if left <= 0:
            return blocks
        size = min(left, sum(_rounds(i) for i in range(start, start + BLOCK)))
        blocks.append((start, size))
        left -= size
    raise AssertionError("unreachable")


def raw_pages(blocks: Iterable[tuple[int, int]]) -> Iterator[RawRecord]:
    """Search pages holding the planned banners, lazily.

    Each endpoint of a block is seen in 3-5 scan rounds, and a round's page holds each
    endpoint at most once (Shodan's pages do; its normalizer keeps one per page).
    """
    for start, quota in blocks:
        emitted = 0
        shared = [(i, _rounds(i), endpoint_record(i)) for i in range(start, start + BLOCK)]
        for scan in range(5):
            matches: list[dict[str, Any]] = []
            for i, rounds, record in shared:
                if scan < rounds and emitted < quota:
                    matches.append(banner(i, scan, record))
                    emitted += 1
            for offset in range(0, len(matches), PAGE):
                yield RawRecord(
                    source="shodan",
                    endpoint_kind="search",
                    query="org:example",
                    fetched_at=FETCHED,
                    payload={"matches": matches[offset : offset + PAGE], "total": quota},
                )


# -- a bench-local normalizer, used only when connectors.shodan.normalize is missing -----


def local_normalize(raw: RawRecord) -> list[Observation]:
    """A minimal Shodan banner -> Observation mapping (no validation of the raw shape)."""
    return [_local(match, raw.fetched_at) for match in raw.payload["matches"]]


def _local(match: dict[str, Any], fetched_at: datetime) -> Observation:
    ssl = match.get("ssl")
    tls = None
    if ssl:
        cert = ssl.get("cert") or {}
        tls = TlsSummary(
            versions=tuple(v for v in ssl.get("versions", ()) if not v.startswith("-")),
            cipher=(ssl.get("cipher") or {}).get("name"),
            cert=CertSummary(
                subject=",".join(f"{k}={v}" for k, v in cert.get("subject", {}).items()),
                issuer=",".join(f"{k}={v}" for k, v in cert.get("issuer", {}).items()),
                key_type=(cert.get("pubkey") or {}).get("type"),
                key_bits=(cert.get("pubkey") or {}).get("bits"),
            ),
        )
    http = match.get("http") or {}
    return Observation(
        endpoint=Endpoint(ip=match["ip_str"], port=match["port"], transport=match["transport"]),
        source="shodan",
        kind=Kind.PASSIVE,
        observed_at=datetime.fromisoformat(match["timestamp"]),
        fetched_at=fetched_at,
        service=canonical_service(match.get("_shodan", {}).get("module")),
        product=match.get("product") or None,
        version=match.get("version") or None,
        banner=match.get("data"),
        http_server=http.get("server"),
        http_title=http.get("title"),
        http_status=http.get("status"),
        tls=tls,
        vulns=tuple(Vuln(cve=cve, cvss=v.get("cvss")) for cve, v in match.get("vulns", {}).items()),
        hostnames=tuple(match.get("hostnames", ())),
        tags=tuple(match.get("tags", ())),
        org=match.get("org"),
        asn=match.get("asn"),
    )


def pick_normalizer(choice: str) -> tuple[str, Normalizer]:
    if choice in ("auto", "shodan"):
        try:
            from connectors.shodan.normalize import normalize
        except ImportError:
            if choice == "shodan":
                raise
        else:
            return "connectors.shodan.normalize", normalize
    return "bench-local mapping", local_normalize


# -- the timed stages ----------------------------------------------------------------------


class Clock:
    """Seconds spent per stage, accumulated around interleaved generator steps."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.spent[stage] = self.spent.get(stage, 0.0) + seconds


def observations_stream(
    pages: Iterator[RawRecord], normalize: Normalizer, clock: Clock, marks: Checkpoints
) -> Iterator[Observation]:
    """Normalized observations, timing generation and normalization apart from storing."""
    total = 0
    while True:
        t0 = time.perf_counter()
        raw = next(pages, None)
        t1 = time.perf_counter()
        clock.add("generate", t1 - t0)
        if raw is None:
            return
        observations = normalize(raw)
        clock.add("normalize", time.perf_counter() - t1)
        yield from observations
        total += len(observations)
        marks.count(total)


class TimedStore(Store):
    """The real Store, with the time spent reading and writing services accounted."""

    clock: Clock
    marks: Checkpoints

    def iter_endpoint_observations(
        self, ips: Collection[str] | None = None
    ) -> Iterator[tuple[Endpoint, list[Observation]]]:
        groups = super().iter_endpoint_observations(ips)
        total = 0
        while True:
            t0 = time.perf_counter()
            item = next(groups, None)
            self.clock.add("read observations", time.perf_counter() - t0)
            if item is None:
                return
            yield item
            total += len(item[1])
            self.marks.count(total)

    def save_services(self, run_id: int, services: Iterable[Service]) -> int:
        pulled = 0.0

        def timed() -> Iterator[Service]:
            nonlocal pulled
            iterator = iter(services)
            while True:
                t0 = time.perf_counter()
                item = next(iterator, None)
                pulled += time.perf_counter() - t0
                if item is None:
                    return
                yield item

        t0 = time.perf_counter()
        count = super().save_services(run_id, timed())
        self.clock.add("write services", time.perf_counter() - t0 - pulled)
        self.clock.add("_pulled", pulled)
        return count


@dataclass
class Report:
    """What one worker did in one phase: counts, seconds per stage, peak RSS."""

    count: int
    spent: dict[str, float]
    marks: list[tuple[int, float]]
    peak_rss: float


def ingest(url: str, run_id: int, blocks: list[tuple[int, int]], normalizer: str) -> Report:
    """Generate, normalize and store some blocks' observations (one worker's share)."""
    _, normalize = pick_normalizer(normalizer)
    clock, marks = Clock(), Checkpoints("store")
    with Store(url) as store:
        t0 = time.perf_counter()
        stream = observations_stream(raw_pages(blocks), normalize, clock, marks)
        stored = store.add_observations(run_id, stream)
        wall = time.perf_counter() - t0
    spent = clock.spent
    spent["store observations"] = wall - spent["generate"] - spent["normalize"]
    return Report(stored, spent, marks.seen, peak_rss_mib())


def merge(url: str, run_id: int, workers: int, peaks: Path) -> Report:
    """reconcile_all over the whole store as the CLI runs it, in `workers` processes.

    With one it runs here, timing read/merge/write; with more, reconcile_all forks its
    own workers, whose peak RSS after each share `peaks` collects (see share_peaks).
    """
    store = TimedStore(url)
    store.clock, store.marks = Clock(), Checkpoints("reconcile")
    restore = share_peaks(peaks)
    try:
        services = reconcile_all(store, run_id, workers=workers)
    finally:
        restore()
        store.close()
    spent = store.clock.spent
    if "_pulled" in spent:  # reconciled here: the stages were timed
        # reconcile_all also gives each service its risk colour (core.risk.scoring.annotate).
        spent["reconcile+colour"] = spent.pop("_pulled") - spent["read observations"]
    return Report(services, spent, store.marks.seen, peak_rss_mib())


def share_peaks(path: Path) -> Callable[[], None]:
    """Have each reconcile worker append "pid peak-RSS-MiB" to `path` after every share.

    A bench-only instrument: it wraps core.pipeline.reconcile's share function, which the
    forked workers inherit. Returns the function that takes the wrapper off again.
    """
    real = reconcile_module._reconcile_share

    def measured(ips: list[str]) -> int | str:
        result = real(ips)
        with path.open("a") as out:
            out.write(f"{os.getpid()} {peak_rss_mib():.1f}\n")
        return result

    reconcile_module._reconcile_share = measured

    def restore() -> None:
        reconcile_module._reconcile_share = real

    return restore


def worker_peaks(path: Path) -> dict[str, list[float]]:
    """Per reconcile worker (by pid), its peak RSS after each of its shares, in order."""
    peaks: dict[str, list[float]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            pid, rss = line.split()
            peaks.setdefault(pid, []).append(float(rss))
    return peaks


def in_workers(
    workers: int, fn: Callable[..., Report], jobs: list[tuple[Any, ...]]
) -> list[Report]:
    if workers == 1:
        return [fn(*job) for job in jobs]
    # spawn: a clean interpreter per worker, no inherited SQLite connections.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fn, *zip(*jobs, strict=True)))


def run(observations: int, db: Path, normalizer: str, workers: int) -> None:
    url = f"sqlite:///{db}"
    with Store(url) as store:
        run_id = store.start_run("bench", ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"])
    blocks = plan(observations)
    peaks = db.with_name("reconcile-peaks.txt")
    peaks.unlink(missing_ok=True)  # beside a --db of the user's: an earlier run's

    t0 = time.perf_counter()
    stored = in_workers(
        workers, ingest, [(url, run_id, blocks[w::workers], normalizer) for w in range(workers)]
    )
    t1 = time.perf_counter()
    merged = merge(url, run_id, workers, peaks)
    t2 = time.perf_counter()

    count = sum(r.count for r in stored)
    wall = t2 - t0
    spent: dict[str, float] = {}
    for report in [*stored, merged]:
        for stage, seconds in report.spent.items():
            spent[stage] = spent.get(stage, 0.0) + seconds
    print(f"observations: {count:,}  endpoints/services: {merged.count:,}  workers: {workers}")
    print(f"end to end: {wall:.1f} s  ->  {count / wall:,.0f} observations/s")
    print(f"  phase 1 generate+normalize+store: {t1 - t0:6.1f} s wall")
    print(f"  phase 2 read+reconcile+write:     {t2 - t1:6.1f} s wall (reconcile_all)")
    generated = spent["generate"] / workers
    print(
        f"  without the synthetic generator (its {generated:.1f} s per worker taken out): "
        f"{count / (wall - generated):,.0f} observations/s"
    )
    print("  seconds per stage, summed over workers (obs/s on one core):")
    for stage in STAGES:
        if stage in spent:
            print(f"    {stage:<20} {spent[stage]:7.2f} s  ({count / spent[stage]:>10,.0f})")
    if workers > 1:
        print("    (phase 2 ran in reconcile_all's own workers: --workers 1 splits it too)")
    for n, report in enumerate(stored):
        who = f"store, worker {n}" if workers > 1 else "store"
        for seen, rss in report.marks:
            print(f"  peak RSS after {seen:>10,} observations ({who}): {rss:7.1f} MiB")
        print(f"  peak RSS at the end ({who}): {report.peak_rss:7.1f} MiB")
    for seen, rss in merged.marks:
        print(f"  peak RSS after {seen:>10,} observations (reconcile): {rss:7.1f} MiB")
    print(f"  peak RSS at the end (reconcile, this process): {merged.peak_rss:7.1f} MiB")
    for n, shares in enumerate(worker_peaks(peaks).values()):
        print(
            f"  peak RSS of reconcile worker {n}: {shares[0]:7.1f} MiB after its first share, "
            f"{shares[-1]:7.1f} MiB after its last ({len(shares)} shares)"
        )


STAGES = (
    "generate",
    "normalize",
    "store observations",
    "read observations",
    "reconcile+colour",
    "write services",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--normalizer", choices=("auto", "shodan", "local"), default="auto")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes per phase, each on its own share"
    )
    parser.add_argument("--profile", type=Path, help="write cProfile stats here (1 worker)")
    args = parser.parse_args(argv)

    name, _ = pick_normalizer(args.normalizer)
    print(f"normalizer: {name}")
    with tempfile.TemporaryDirectory(prefix="portintel-bench-") as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if db.exists():
            sys.exit(f"{db} exists: the bench wants an empty database")
        if args.profile is None:
            run(args.observations, db, args.normalizer, args.workers)
            return
        profiler = cProfile.Profile()
        profiler.runcall(run, args.observations, db, args.normalizer, 1)
        profiler.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())


if __name__ == "__main__":
    main()
