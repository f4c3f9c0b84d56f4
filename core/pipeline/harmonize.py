"""Provider banners go through our own matcher, so passive and active names agree.

Shodan, Censys and Netlas each name products their own way; our verifier names them by
core/verify/data/probes.toml. Running that same matcher over the banner a provider
returned makes "the same nginx" the same string everywhere, so reconciliation compares
like with like. A decisive match wins; the provider's version is kept only when the
match names no version and the products agree. No banner, or no decisive match: the
provider's own names stay.
"""

from __future__ import annotations

from core.models import Observation
from core.verify.matcher import match_banner


def harmonize(obs: Observation) -> Observation:
    if not obs.banner:
        return obs
    match = match_banner(obs.banner, obs.endpoint.port)
    if match is None or match.soft:
        return obs
    if match.product is None:
        return obs.model_copy(update={"service": match.service})
    same_product = (obs.product or "").casefold() == match.product.casefold()
    version = match.version or (obs.version if same_product else None)
    cpes = obs.cpes if match.cpe is None or match.cpe in obs.cpes else (match.cpe, *obs.cpes)
    return obs.model_copy(
        update={
            "service": match.service,
            "product": match.product,
            "version": version,
            "cpes": cpes,
        }
    )
