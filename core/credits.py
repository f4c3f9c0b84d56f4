"""Credit accounting: estimates before a run, and the --budget that caps spending."""

from __future__ import annotations

from core.errors import BudgetExhausted
from core.models import Frozen


class CostEstimate(Frozen):
    """What a job would ask of one source and cost, printed by --dry-run."""

    source: str
    requests: int
    credits: float
    note: str = ""


class Budget:
    """Credits one source may spend in a run. `None` means no cap."""

    def __init__(self, source: str, limit: float | None = None) -> None:
        self.source = source
        self.limit = limit
        self.spent = 0.0

    def spend(self, credits: float) -> None:
        """Call before a request that costs credits: refuses rather than overspends."""
        if self.limit is not None and self.spent + credits > self.limit:
            raise BudgetExhausted(
                self.source,
                f"budget of {self.limit:g} credits reached ({self.spent:g} spent); "
                "raise --budget to fetch more",
            )
        self.spent += credits
