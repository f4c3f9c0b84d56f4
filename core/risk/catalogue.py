"""The service catalogue: which colour a port gets from the service found on it.

Green for common, expected services, red for services that should not face the
internet, yellow when no service could be identified or the service is not catalogued.
The colours live in `data/catalogue.toml`, one rationale per entry, so a reviewer can
argue with an entry without reading code.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.models import Colour
from core.naming import canonical_service


class Classification(BaseModel):
    """A port's colour and why: the catalogue entry (or its absence) that decided it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    colour: Colour
    entry: str  # service:<name>, product:<phrase>, unidentified, or unlisted:<name>
    why: str


class _ProductRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    match: str = Field(min_length=1)
    service: str
    why: str


class _ServiceEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    colour: Colour
    why: str = Field(min_length=1)


_MEMO_SIZE = 1 << 14

UNIDENTIFIED_WHY = "No service could be identified on this port: worth a look."
UNLISTED_WHY = "The service is not in the catalogue, so its exposure cannot be judged."


class Catalogue:
    """Service colours and the product phrases that reveal a red service."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Build from the parsed TOML document (see data/catalogue.toml for the shape)."""
        self.services = {
            name: _ServiceEntry.model_validate(entry)
            for name, entry in data.get("service", {}).items()
        }
        if any(entry.colour is Colour.YELLOW for entry in self.services.values()):
            raise ValueError("the catalogue lists no yellow services: yellow means unknown")
        self.products = [_ProductRule.model_validate(rule) for rule in data.get("product", [])]
        # Whole words only: "redis" must not match "Redistributor".
        self._patterns = [
            (re.compile(rf"(?<![a-z0-9]){re.escape(rule.match)}(?![a-z0-9])", re.I), rule)
            for rule in self.products
        ]
        self._memo: dict[tuple[str | None, str | None], Classification] = {}

    def classify(self, service: str | None, product: str | None = None) -> Classification:
        """The colour of a port running `service` (any spelling) with `product`."""
        key = (service, product)
        known = self._memo.get(key)
        if known is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()  # products are few; this only bounds hostile variety
            known = self._memo[key] = self._classify(service, product)
        return known

    def _classify(self, service: str | None, product: str | None) -> Classification:
        if product:
            for pattern, rule in self._patterns:
                if pattern.search(product):
                    return Classification(
                        colour=Colour.RED, entry=f"product:{rule.match}", why=rule.why
                    )
        name = canonical_service(service)
        if name is None:
            return Classification(colour=Colour.YELLOW, entry="unidentified", why=UNIDENTIFIED_WHY)
        entry = self.services.get(name)
        if entry is None:
            return Classification(colour=Colour.YELLOW, entry=f"unlisted:{name}", why=UNLISTED_WHY)
        return Classification(colour=entry.colour, entry=f"service:{name}", why=entry.why)


@cache
def default_catalogue() -> Catalogue:
    """The catalogue shipped in the package (parsed once per process)."""
    text = resources.files("core.risk").joinpath("data/catalogue.toml").read_text("utf-8")
    return Catalogue(tomllib.loads(text))
