"""TLS profiles round-trip through the store, one per endpoint per run."""

from __future__ import annotations

import dataclasses

from core.store import Store
from core.verify.tls.model import TlsProfile


def test_tls_profiles_round_trip_and_replace(store: Store) -> None:
    run = store.start_run("scan", ["192.0.2.0/24"])
    first = TlsProfile(ip="192.0.2.7", port=443, outcome="ok", versions=("TLSv1.2",))
    store.save_tls_profile(run, first)
    store.save_tls_profile(run, TlsProfile(ip="192.0.2.3", port=8443, outcome="no-tls"))
    again = dataclasses.replace(first, versions=("TLSv1.2", "TLSv1.3"))
    store.save_tls_profile(run, again)
    profiles = list(store.tls_profiles(run))
    assert [(p.ip, p.port) for p in profiles] == [("192.0.2.3", 8443), ("192.0.2.7", 443)]
    assert profiles[1] == again
    assert list(store.tls_profiles(store.start_run("scan", []))) == []
