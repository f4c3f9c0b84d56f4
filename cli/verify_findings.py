"""`portintel verify FINDINGS_FILE`: import third-party claims, re-probe them, give verdicts.

The file is read twice, streaming both times: once to store the claims and learn their
endpoints, once (after probing) to write each claim's verdict beside its original row.
The scope is `--scope` when given; otherwise the hosts the file names (the user handed
us those claims to check), minus `--exclude` either way.

Exit codes: 0 every claim confirmed; 5 some refuted or changed; 6 none refuted or
changed but some unverified (filtered or out of scope); 1 error.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path

import typer

from cli.common import note, settings
from cli.common import output as open_output
from cli.import_cmds import import_into_store, open_import, report_lines
from core.errors import InputError
from core.importers.detect import detect
from core.models import Endpoint, Kind, Observation, RunStatus
from core.parallel import storing_workers
from core.pipeline.reconcile import reconcile_all
from core.pipeline.verdicts import ClaimVerdict, Verdict, judge
from core.pipeline.verify import VerifyOptions, plan_claims
from core.pipeline.verify import verify as probe
from core.report.to_verdicts import write_verdicts_csv, write_verdicts_jsonl
from core.store import Store
from core.targets import Entry, build_scope


class VerdictExit:
    ALL_CONFIRMED = 0
    REFUTED_OR_CHANGED = 5
    UNVERIFIED = 6


class VerdictFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def is_findings_file(arg: str) -> bool:
    """A file whose content is a findings format (nmap XML, masscan, CSV with ports...)."""
    path = Path(arg)
    if not path.is_file():
        return False
    try:
        detect(path)
    except InputError:
        return False
    return True


def vantage(ip: str) -> str:
    """This machine's name and the source address it would use to reach `ip`.

    A connected UDP socket makes the kernel pick the route and address; nothing is sent.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((ip, 9))
            source = sock.getsockname()[0]
    except OSError:
        source = "?"
    return f"{socket.gethostname()} ({source})"


def _newest_probes(store: Store, ips: set[str]) -> dict[Endpoint, Observation]:
    newest: dict[Endpoint, Observation] = {}
    for endpoint, observations in store.iter_endpoint_observations(ips):
        probes = [o for o in observations if o.kind is Kind.ACTIVE]
        if probes:
            newest[endpoint] = max(probes, key=lambda o: o.fetched_at)
    return newest


def verify_findings(
    files: Sequence[Path],
    scope_args: Sequence[str],
    excludes: Sequence[Entry],
    options: VerifyOptions,
    output: Path | None,
    fmt: VerdictFormat,
    skip_bad: bool,
    force: bool,
) -> None:
    store = Store(settings().database_url())
    run_id: int | None = None
    status = RunStatus.FAILED
    try:
        claimed: set[Endpoint] = set()
        for path in files:
            outcome = import_into_store(store, open_import(path, skip_bad=skip_bad), claimed)
            for line in report_lines(outcome.report):
                note(line)
        given = [Entry(a) for a in scope_args]
        if not given:
            given = [Entry(ip) for ip in sorted({e.ip for e in claimed})]
            note(f"scope: the {len(given)} hosts the findings name (--scope to narrow it)")
        if not given:
            raise InputError("the findings files hold no claims to verify")
        scope = asyncio.run(build_scope(given, excludes, force=force, skip_bad=skip_bad))
        plan = plan_claims(scope, claimed)
        run_id = store.start_run("verify", [str(net) for net in scope.include])
        status = RunStatus.INTERRUPTED
        note(f"probing {plan.size():,} claimed endpoints on {len(plan.hosts):,} hosts")
        asyncio.run(probe(store, run_id, plan, scope, options))
        reconcile_all(store, run_id, ips=set(scope.addresses()), workers=storing_workers())
        probes = _newest_probes(store, plan.hosts)
        vantages = {ip: vantage(ip) for ip in plan.hosts}
        counts = dict.fromkeys(Verdict, 0)

        def verdicts() -> Iterator[ClaimVerdict]:
            for path in files:
                for claim in open_import(path, skip_bad=True):
                    endpoint = claim.observation.endpoint
                    verdict = judge(
                        claim,
                        probes.get(endpoint),
                        in_scope=endpoint.ip in scope,
                        vantage=vantages.get(endpoint.ip),
                    )
                    counts[verdict.verdict] += 1
                    yield verdict

        with open_output(output) as out:
            writer = write_verdicts_jsonl if fmt is VerdictFormat.JSONL else write_verdicts_csv
            writer(verdicts(), out)
        status = RunStatus.OK
    finally:
        if run_id is not None:
            store.finish_run(run_id, status)
        store.close()
    note(", ".join(f"{n} {v.value}" for v, n in counts.items()))
    if counts[Verdict.REFUTED] or counts[Verdict.CHANGED]:
        raise typer.Exit(VerdictExit.REFUTED_OR_CHANGED)
    if counts[Verdict.UNVERIFIED]:
        raise typer.Exit(VerdictExit.UNVERIFIED)
    raise typer.Exit(VerdictExit.ALL_CONFIRMED)
