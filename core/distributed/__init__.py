"""Scale-out: verification shards run as Celery tasks on workers with a Redis broker,
writing to a shared store (PostgreSQL across machines).

The submitting machine keeps the passive phase (provider rate limits are per key, not
per machine) and reconciliation; only the probing is shared out. Modules:

    shards   a Plan split into host-group x port-range Shards; a Shard travels as JSON
             and carries its part of the job's scope (pure, no Celery)
    vantage  where a worker probes from (hostname and source address), as a tag
    work     one shard on a worker: the scope gate, the probes, one transaction
    tasks    the Celery app factory and the shard task (the only module importing celery)
    submit   the submitting side: send the shards, follow them, check all are stored

Nothing here is imported by the single-machine path: it needs none of the extra.
"""

from __future__ import annotations

import importlib

from core.errors import ConfigError

INSTALL = "pip install 'portintel[distributed]'"
_NEEDED = ("celery", "redis")


def require_extra(what: str) -> None:
    """Raise a one-line ConfigError saying what to install when the extra is missing."""
    for name in _NEEDED:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ConfigError(
                f"{what} needs the distributed extra ({name} is not installed): {INSTALL}"
            ) from None
