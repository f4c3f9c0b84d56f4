"""The connector registry, and building connectors with their contexts from settings.

Built-ins are listed here explicitly; third parties register a `Connector` subclass under
the entry-point group `portintel.connectors` (name = the source name).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points

import httpx
from aiolimiter import AsyncLimiter

from connectors.base import Connector, ConnectorContext, ConnectorSpec
from connectors.censys import CensysConnector
from connectors.internetdb import InternetDBConnector
from connectors.netlas import NetlasConnector
from connectors.shodan import ShodanConnector
from core.cache import ResponseCache
from core.config import Settings
from core.credits import Budget
from core.errors import ConfigError
from core.http import RetryPolicy, SourceHttp

log = logging.getLogger(__name__)

BUILTINS: dict[str, type[Connector]] = {
    "shodan": ShodanConnector,
    "censys": CensysConnector,
    "netlas": NetlasConnector,
    "internetdb": InternetDBConnector,
}

USER_AGENT = "portintel/0.1 (+https://github.com/portintel/portintel)"


def available() -> dict[str, type[Connector]]:
    """Built-ins plus installed plug-ins; a plug-in never replaces a built-in."""
    found = dict(BUILTINS)
    for ep in entry_points(group="portintel.connectors"):
        if ep.name in found:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in must not break the tool
            log.warning("connector plug-in %s failed to load: %s", ep.name, exc)
            continue
        if isinstance(cls, type) and issubclass(cls, Connector):
            found[ep.name] = cls
    return found


@dataclass(frozen=True)
class SourceState:
    """Whether a source can run, and why not."""

    spec: ConnectorSpec
    credentials: tuple[str, ...]
    url: str
    enabled: bool
    missing: str | None  # the env var to set, when the required credential is absent

    @property
    def keyless(self) -> bool:
        return not self.spec.key_env

    @property
    def ready(self) -> bool:
        return self.enabled and self.missing is None


def source_state(settings: Settings, spec: ConnectorSpec) -> SourceState:
    creds = tuple(settings.credential(spec.name, env) or "" for env in spec.key_env)
    # The first credential is required; later ones (Censys's organisation id) are optional.
    missing = spec.key_env[0] if spec.key_env and not creds[0] else None
    return SourceState(
        spec=spec,
        credentials=creds,
        url=settings.source_url(spec.name, spec.url_env, spec.default_url),
        enabled=settings.source(spec.name).enabled,
        missing=missing,
    )


Chosen = list[tuple[type[Connector], SourceState]]
"""Connector classes with their states, as `select` returns them."""


def select(settings: Settings, names: Iterable[str] = ()) -> Chosen:
    """The connectors asked for (all known ones by default) with their states."""
    known = available()
    wanted = list(names) or list(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown source {unknown[0]!r}; known sources: {', '.join(sorted(known))}"
        )
    return [(known[n], source_state(settings, known[n].spec)) for n in wanted]


@asynccontextmanager
async def open_connectors(
    settings: Settings,
    chosen: Iterable[tuple[type[Connector], SourceState]],
    *,
    refresh: bool = False,
    budget: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    policy: RetryPolicy | None = None,
) -> AsyncIterator[list[Connector]]:
    """Connectors ready to run, each with its own HTTP client, limiter, budget; closed after."""
    async with AsyncExitStack() as stack:
        cache = ResponseCache(settings.cache_path(), refresh=refresh)
        stack.callback(cache.close)
        built: list[Connector] = []
        for cls, state in chosen:
            spec = cls.spec
            options = settings.source(spec.name)
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=state.url,
                    timeout=httpx.Timeout(options.timeout, connect=min(10.0, options.timeout)),
                    headers={"User-Agent": USER_AGENT},
                    transport=transport,
                    follow_redirects=False,
                )
            )
            ctx = ConnectorContext(
                spec=spec,
                http=SourceHttp(spec.name, client, AsyncLimiter(spec.rate, spec.per), policy),
                budget=Budget(spec.name, budget if budget is not None else options.budget),
                base_url=state.url,
                credentials=state.credentials,
                cache=cache,
                settings=options.model_dump(),
            )
            built.append(cls(ctx))
        yield built
