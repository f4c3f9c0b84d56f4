"""The record of one stored verification shard (see core.distributed), and its table row.

A shard's observations and this record are written in one transaction; the record's key
(run_id, shard_id) is what tells a redelivered shard that its results are already in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.models import utcnow


@dataclass(frozen=True)
class ShardRecord:
    """What one shard stored: who ran it, from where, and how much it found."""

    shard_id: str
    worker: str  # the Celery node name (or whoever ran it)
    vantage: str  # "<hostname>/<source address>" the probes left from
    observations: int
    open_ports: int
    walls: tuple[str, ...] = ()  # hosts that answered on nearly every port
    finished_at: datetime = field(default_factory=utcnow)

    def row(self, run_id: int) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "shard_id": self.shard_id,
            "worker": self.worker,
            "vantage": self.vantage,
            "observations": self.observations,
            "open_ports": self.open_ports,
            "walls": list(self.walls),
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> ShardRecord:
        return cls(
            shard_id=row["shard_id"],
            worker=row["worker"],
            vantage=row["vantage"],
            observations=row["observations"],
            open_ports=row["open_ports"],
            walls=tuple(row["walls"]),
            finished_at=row["finished_at"],
        )
