"""Models to table rows and back: the store's hot paths.

A million observations pass through here twice per run, so the conversions avoid
per-field Python work. On the way in, the indexed scalars are read straight off the model
and the rest goes through pydantic's compiled JSON dump. On the way out, an Observation is
rebuilt from its own row without validating it again: the row was written from a
validated model, so validation would only re-check what is known to hold (and re-parse an
IP address per row, the single most expensive step). Nested models (TLS, vulns) are
small and rarer, and are validated.

Times: SQLite keeps a DateTime as text in SQLAlchemy's layout ("YYYY-MM-DD HH:MM:SS.ffffff",
UTC, no zone); other backends take and give aware datetimes. `TimeCodec` hides which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic_core import from_json

from core.errors import StoreError
from core.models import (
    Colour,
    Endpoint,
    Evidence,
    Kind,
    Observation,
    PortState,
    Service,
    Status,
    TlsSummary,
    Transport,
    Vuln,
    trusted,
)

# The Observation fields with a column of their own (besides the endpoint's and raw_id).
_OBS_SCALARS = (
    "source",
    "kind",
    "evidence",
    "state",
    "observed_at",
    "fetched_at",
    "service",
    "product",
    "version",
)
# The observations columns that hold Observation fields, in the order rows are read.
OBS_FIELDS = (*_OBS_SCALARS, "raw_id")
OBS_EXTRA: set[str] = set(Observation.model_fields) - {"endpoint", *OBS_FIELDS}
"""Observation fields kept together in the `extra` JSON column."""

_KIND = {k.value: k for k in Kind}
_EVIDENCE = {e.value: e for e in Evidence}
_STATE = {s.value: s for s in PortState}
_TRANSPORT = {t.value: t for t in Transport}
# Enum member -> its plain text. `.value` is a slow descriptor on 3.11, and drivers should
# be handed plain str, not a str subclass they might adapt by name.
_TEXT: dict[StrEnum, str] = {
    member: member.value
    for enum in (Kind, Evidence, PortState, Transport, Status, Colour)
    for member in enum
}


class TimeCodec:
    """UTC datetimes to and from what the backend's driver stores."""

    def __init__(self, text: bool) -> None:
        self.text = text  # SQLite: times travel as text
        self._shared: datetime | None = None
        self._shared_text = ""

    def encode(self, value: datetime | None) -> Any:
        if value is None or not self.text:
            return value
        if value.tzinfo is not UTC:  # models hold UTC already: astimezone is rarely needed
            value = value.astimezone(UTC)
        return value.isoformat(" ", "microseconds")[:26]

    def encode_shared(self, value: datetime) -> Any:
        """`encode` for a value that repeats row after row (one raw record's fetched_at)."""
        if value is not self._shared:
            self._shared, self._shared_text = value, self.encode(value)
        return self._shared_text if self.text else value

    @staticmethod
    def decode(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            # Parsing with an explicit offset is several times faster than replace().
            return datetime.fromisoformat(value + "+00:00")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


# -- trusted construction (core.models.trusted): rows this store wrote ---------------------


def _template(cls: type[BaseModel]) -> dict[str, Any]:
    """Every field of `cls` in declaration order, at its default (None when required).

    Copies of it are filled in place: a model's __dict__ must keep the declared field
    order, since pydantic serialises in that order.
    """
    return {
        name: None if field.is_required() else field.get_default(call_default_factory=True)
        for name, field in cls.model_fields.items()
    }


_OBS_TEMPLATE = _template(Observation)


def _vulns(items: Sequence[dict[str, Any]]) -> tuple[Vuln, ...]:
    return tuple(Vuln.model_validate(item) for item in items)


# How each extra field comes back from JSON; nested models are validated (they are rare
# and small), flat values only need their container type back.
_EXTRA_DECODERS: dict[str, Callable[[Any], Any]] = {
    "cpes": tuple,
    "hostnames": tuple,
    "tags": tuple,
    "vulns": _vulns,
    "tls": TlsSummary.model_validate,
    "banner": str,
    "http_server": str,
    "http_title": str,
    "http_status": int,
    "org": str,
    "asn": str,
}


# -- observations ------------------------------------------------------------------------


# The observations table's columns, in the order `observation_values` gives them.
OBS_COLUMNS = ("run_id", "raw_id", "ip", "port", "transport", *_OBS_SCALARS, "extra")
_OBS_SERIALIZER = Observation.__pydantic_serializer__
_SERVICE_SERIALIZER = Service.__pydantic_serializer__


def observation_values(run_id: int, obs: Observation, time: TimeCodec) -> tuple[Any, ...]:
    """The `observations` row for one observation of run `run_id`, in OBS_COLUMNS order."""
    endpoint = obs.endpoint
    extra = None
    if not OBS_EXTRA.isdisjoint(obs.model_fields_set):
        # The serializer itself, not model_dump_json: same JSON, less Python around it.
        extra = _OBS_SERIALIZER.to_json(obs, include=OBS_EXTRA, exclude_defaults=True).decode()
        if extra == "{}":
            extra = None
    return (
        run_id,
        obs.raw_id,
        endpoint.ip,
        endpoint.port,
        _TEXT[endpoint.transport],
        obs.source,
        _TEXT[obs.kind],
        _TEXT[obs.evidence],
        _TEXT[obs.state],
        time.encode(obs.observed_at),
        time.encode_shared(obs.fetched_at),
        obs.service,
        obs.product,
        obs.version,
        extra,
    )


class ExtraDecoder:
    """The `extra` column's JSON to field values, reusing the previous row's when the text
    repeats. Rows come grouped by endpoint, and an endpoint's sightings often carry the
    same banner, certificate and names; the values are immutable, so sharing is safe."""

    def __init__(self) -> None:
        self._text: str | None = None
        self._values: dict[str, Any] = {}

    def __call__(self, text: str) -> dict[str, Any]:
        if text != self._text:
            self._values = self._decode(text)
            self._text = text
        return self._values

    @staticmethod
    def _decode(text: str) -> dict[str, Any]:
        extra = from_json(text)
        unknown = extra.keys() - _EXTRA_DECODERS.keys()
        if unknown:
            # A field this code does not know: written by a newer portintel.
            raise StoreError(
                f"stored observations hold fields this portintel does not know "
                f"({', '.join(sorted(unknown))}): upgrade portintel to read this store"
            )
        return {
            name: None if value is None else _EXTRA_DECODERS[name](value)
            for name, value in extra.items()
        }


def observation(
    endpoint: Endpoint, row: Sequence[Any], extras: ExtraDecoder | None = None
) -> Observation:
    """Rebuild an Observation from a row of (ip, port, transport, *OBS_FIELDS, extra)."""
    decode = TimeCodec.decode
    values = _OBS_TEMPLATE.copy()
    values["endpoint"] = endpoint
    values["source"] = row[3]
    values["kind"] = _KIND[row[4]]
    values["evidence"] = _EVIDENCE[row[5]]
    values["state"] = _STATE[row[6]]
    values["observed_at"] = decode(row[7])
    values["fetched_at"] = decode(row[8])
    values["service"] = row[9]
    values["product"] = row[10]
    values["version"] = row[11]
    values["raw_id"] = row[12]
    if row[13]:
        values.update((extras or ExtraDecoder())(row[13]))
    return trusted(Observation, values)


def group_observations(
    rows: Iterable[Sequence[Any]],
) -> Iterator[tuple[Endpoint, list[Observation]]]:
    """Fold rows ordered by (ip, port, transport) into one list per endpoint."""
    key: tuple[Any, Any, Any] | None = None
    endpoint: Endpoint | None = None
    group: list[Observation] = []
    extras = ExtraDecoder()
    for row in rows:
        row_key = (row[0], row[1], row[2])
        if row_key != key:
            if endpoint is not None:
                yield endpoint, group
            key = row_key
            # Stored addresses are canonical already: no need to parse one per endpoint.
            endpoint = trusted(
                Endpoint, {"ip": row[0], "port": row[1], "transport": _TRANSPORT[row[2]]}
            )
            group = []
        assert endpoint is not None
        group.append(observation(endpoint, row, extras))
    if endpoint is not None:
        yield endpoint, group


# -- services ----------------------------------------------------------------------------


def service_rows(
    run_id: int, service: Service, time: TimeCodec
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The `services` row of one reconciled endpoint, and its `service_sources` rows (one
    per source that spoke about it), each in its table's column order."""
    endpoint = service.endpoint
    ip, port, transport = endpoint.ip, endpoint.port, _TEXT[endpoint.transport]
    colour = service.colour
    encode = time.encode
    first, last = service.first_seen, service.last_seen
    first_text, last_text = encode(first), encode(last)

    def seen(value: datetime) -> Any:
        # A source's times are most often the service's own: encoded once (a text time
        # costs about a microsecond).
        return first_text if value is first else last_text if value is last else encode(value)

    row = (
        run_id,
        ip,
        port,
        transport,
        _TEXT[service.state],
        _TEXT[service.status],
        service.service,
        service.product,
        service.version,
        service.chosen_from,
        first_text,
        last_text,
        None if colour is None else _TEXT[colour],
        _SERVICE_SERIALIZER.to_json(service).decode(),
    )
    sources = [
        (
            run_id,
            ip,
            port,
            transport,
            source.source,
            seen(source.first_seen),
            seen(source.last_seen),
            _TEXT[source.state],
        )
        for source in service.per_source
    ]
    return row, sources


def service(data: str) -> Service:
    """A Service from its stored JSON (validated: services are read far less often)."""
    return Service.model_validate_json(data)
